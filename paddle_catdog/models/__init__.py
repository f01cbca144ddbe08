"""The one model factory: ``create_model(name, num_classes, **options)``."""
from __future__ import annotations

from typing import Callable, Dict

import paddle
import paddle.nn.functional as F
from paddle import nn

from .cnn import ACTIVATIONS, POOLINGS, SimpleCNN, cnn
from .efficientnet import EfficientNetLite, efficientnet_lite0
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50

MODELS: Dict[str, Callable[..., nn.Layer]] = {
    "cnn": cnn,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "efficientnet_lite0": efficientnet_lite0,
}


class Probabilities(nn.Layer):
    """A classifier followed by softmax, optionally averaged over the image and its mirror image
    (horizontal-flip test-time augmentation). Evaluation, ``Predictor`` and the exported graph all
    use this one head, so they agree to the last digit."""

    def __init__(self, model: nn.Layer, flip_tta: bool = False) -> None:
        super().__init__()
        self.model = model
        self.flip_tta = flip_tta

    def forward(self, image: paddle.Tensor) -> paddle.Tensor:
        probs = F.softmax(self.model(image).astype("float32"), axis=1)
        if self.flip_tta:  # cats and dogs look the same mirrored; the two views' errors differ
            mirrored = F.softmax(self.model(paddle.flip(image, axis=[3])).astype("float32"), axis=1)
            probs = (probs + mirrored) / 2
        return probs


class PooledFeatures(nn.Layer):
    """What a model's linear classifier reads: its feature map average-pooled and flattened,
    (N, num_features). The transfer recipe computes these once with the backbone frozen."""

    def __init__(self, model: nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: paddle.Tensor) -> paddle.Tensor:
        return paddle.flatten(self.model.avgpool(self.model.forward_features(image)), 1)


def create_model(name: str, num_classes: int = 2, **options) -> nn.Layer:
    """Build a model by name; a wrong name raises ValueError listing the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes, **options)


__all__ = ["MODELS", "create_model", "Probabilities", "PooledFeatures", "SimpleCNN", "ResNet", "BasicBlock", "Bottleneck",
           "POOLINGS", "ACTIVATIONS", "cnn", "resnet18", "resnet34", "resnet50",
           "EfficientNetLite", "efficientnet_lite0"]
