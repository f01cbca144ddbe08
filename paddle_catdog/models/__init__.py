"""The one model factory: ``create_model(name, num_classes, **options)``, and
``register_model(name, builder)`` to add a network of one's own (notebook 02's ``SimpleCNN``) to
it for the rest of the process, so that ``fit``, checkpoints and prediction build it by name."""
from __future__ import annotations

import inspect
from typing import Callable, Dict

import paddle
import paddle.nn.functional as F
from paddle import nn

from .cnn import ACTIVATIONS, POOLINGS, SimpleCNN, cnn
from .efficientnet import EfficientNetLite, efficientnet_lite0
from .resnet import BasicBlock, Bottleneck, ResNet, resnet10, resnet18, resnet34, resnet50

MODELS: Dict[str, Callable[..., nn.Layer]] = {
    "cnn": cnn,
    "resnet10": resnet10,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "efficientnet_lite0": efficientnet_lite0,
}
# The models every process knows: a checkpoint of one of these loads anywhere. A registered model's
# checkpoint loads only in a process that registered the same name again (its code is not saved).
BUILTIN_MODELS = frozenset(MODELS)


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
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)} (a network of "
                         "your own: register_model(name, builder) first, in this process)")
    return MODELS[name](num_classes=num_classes, **options)


def register_model(name: str, builder: Callable[..., nn.Layer]) -> None:
    """Add ``builder`` to the factory under ``name`` for the rest of this process:
    ``TrainConfig(model=name)`` then trains it with ``fit``, and ``load_model`` / ``Predictor``
    rebuild it from its checkpoints. ``builder(num_classes=..., **options)`` is called like the
    built-in builders, with the options ``TrainConfig.model_options()`` gives (a network that
    takes none ignores them). A built-in name is refused; registering a name again replaces the
    earlier builder (re-running the notebook cell that defines the class). The builder's code is
    not saved: a new process must register the name again before loading such a checkpoint."""
    if name in BUILTIN_MODELS:
        raise ValueError(f"{name!r} is a built-in model ({', '.join(sorted(BUILTIN_MODELS))}): "
                         "choose another name for your network")
    if not name or not name.isidentifier():
        raise ValueError(f"model name {name!r}: use letters, digits and underscores, e.g. 'simple_cnn'")
    parameters = inspect.signature(builder).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        raise TypeError(f"register_model({name!r}, ...): the builder must accept num_classes and "
                        "**options (the config's model options), e.g. "
                        "def build(num_classes=2, **options): return MyNet(num_classes)")
    MODELS[name] = builder


__all__ = ["MODELS", "BUILTIN_MODELS", "create_model", "register_model", "Probabilities", "PooledFeatures", "SimpleCNN", "ResNet", "BasicBlock", "Bottleneck",
           "POOLINGS", "ACTIVATIONS", "cnn", "resnet10", "resnet18", "resnet34", "resnet50",
           "EfficientNetLite", "efficientnet_lite0"]
