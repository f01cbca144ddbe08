"""The tutorial's plain CNN: [conv -> batch norm -> activation -> pooling] x N, then fully
connected layers. Pooling (max, avg, L2-norm) and the activation are chosen by name, so the
notebooks and the results table can compare them on the same network."""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import paddle
from paddle import nn

from ..config import DROPOUT


class L2Pool2D(nn.Layer):
    """L2-norm pooling: the square root of the mean of squares over each window.

    Between average pooling (all values count equally) and max pooling (only the largest counts):
    squaring weights large activations more. ``eps`` keeps the gradient of sqrt finite at 0."""

    def __init__(self, kernel_size: int = 2, stride: int = 2, eps: float = 1e-6) -> None:
        super().__init__()
        self.pool = nn.AvgPool2D(kernel_size, stride)
        self.eps = eps

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.sqrt(self.pool(x * x) + self.eps)


# Explicit tables rather than getattr on strings, so grep finds every layer that can be built.
POOLINGS: Dict[str, Callable[[], nn.Layer]] = {
    "max": lambda: nn.MaxPool2D(2, 2),
    "avg": lambda: nn.AvgPool2D(2, 2),
    "l2": lambda: L2Pool2D(2, 2),
}

ACTIVATIONS: Dict[str, Callable[[], nn.Layer]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.Silu,
    "swish": nn.Swish,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


def _choose(table: Dict[str, Callable[[], nn.Layer]], name: str, what: str) -> nn.Layer:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose one of: {', '.join(table)}")
    return table[name]()


class ConvBlock(nn.Sequential):
    """conv 3x3 -> batch norm -> activation -> 2x2 pooling (halves height and width)."""

    def __init__(self, cin: int, cout: int, activation: str, pooling: str) -> None:
        super().__init__(
            nn.Conv2D(cin, cout, 3, padding=1, bias_attr=False),
            nn.BatchNorm2D(cout),
            _choose(ACTIVATIONS, activation, "activation"),
            _choose(POOLINGS, pooling, "pooling"),
        )


class SimpleCNN(nn.Layer):
    """Plain CNN. ``channels`` gives one conv block per entry; the head is global average
    pooling (so any input size works), then ``hidden`` units, dropout, and the classifier."""

    def __init__(self, num_classes: int = 2, channels: Sequence[int] = (32, 64, 128, 256),
                 pooling: str = "max", activation: str = "relu", hidden: int = 256,
                 dropout: float = DROPOUT) -> None:
        super().__init__()
        blocks, cin = [], 3
        for cout in channels:
            blocks.append(ConvBlock(cin, cout, activation, pooling))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.num_features = cin
        self.avgpool = nn.AdaptiveAvgPool2D((1, 1))
        self.fc1 = nn.Linear(cin, hidden)
        self.act = _choose(ACTIVATIONS, activation, "activation")
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    head_names = ("fc1", "fc")  # the classifier: hidden layer and output (see ResNet.head_names)

    @property
    def stage_names(self) -> List[str]:
        return [f"features.{i}" for i in range(len(self.features))]

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.features(x)

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(self.act(self.fc1(x))))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))


def cnn(num_classes: int = 2, **options) -> SimpleCNN:
    return SimpleCNN(num_classes, **options)
