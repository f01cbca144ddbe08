"""The one model factory: ``create_model(name, num_classes, **options)``."""
from __future__ import annotations

from typing import Callable, Dict

from paddle import nn

from .cnn import ACTIVATIONS, POOLINGS, SimpleCNN, cnn
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50

MODELS: Dict[str, Callable[..., nn.Layer]] = {
    "cnn": cnn,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
}


def create_model(name: str, num_classes: int = 2, **options) -> nn.Layer:
    """Build a model by name; a wrong name raises ValueError listing the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes, **options)


__all__ = ["MODELS", "create_model", "SimpleCNN", "ResNet", "BasicBlock", "Bottleneck",
           "POOLINGS", "ACTIVATIONS", "cnn", "resnet18", "resnet34", "resnet50"]
