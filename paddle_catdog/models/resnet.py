"""ResNet-18/34/50 written as Paddle dygraph layers.

The structure and the parameter names follow ``paddle.vision.models.resnet`` exactly
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc`` ...), so that Paddle's
published ImageNet weights load into these models directly and the parameter counts match.
``width`` scales every stage (64 is the paper's network); the CPU recipe uses narrower nets.
``stem_kernel`` is the first convolution's size (7 in the paper; ResNet-10, the CPU recipe's
network, uses 3).
"""
from __future__ import annotations

from typing import List, Optional, Type, Union

import paddle
from paddle import nn

from ..config import DROPOUT

from .head import PooledLinearHead
from .layers import Conv2D


class BasicBlock(nn.Layer):
    """Two 3x3 convolutions with an identity (or projected) shortcut: ResNet-18/34."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Layer] = None, data_format: str = "NCHW") -> None:
        super().__init__()
        f = data_format
        self.conv1 = Conv2D(inplanes, planes, 3, stride=stride, padding=1, bias_attr=False, data_format=f)
        self.bn1 = nn.BatchNorm2D(planes, data_format=f)
        self.relu = nn.ReLU()
        self.conv2 = Conv2D(planes, planes, 3, padding=1, bias_attr=False, data_format=f)
        self.bn2 = nn.BatchNorm2D(planes, data_format=f)
        self.downsample = downsample

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Layer):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a shortcut: ResNet-50. Stride sits on the 3x3 conv
    (the "ResNet v1.5" variant that Paddle and torchvision use)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Layer] = None, data_format: str = "NCHW") -> None:
        super().__init__()
        f = data_format
        self.conv1 = Conv2D(inplanes, planes, 1, bias_attr=False, data_format=f)
        self.bn1 = nn.BatchNorm2D(planes, data_format=f)
        self.conv2 = Conv2D(planes, planes, 3, stride=stride, padding=1, bias_attr=False, data_format=f)
        self.bn2 = nn.BatchNorm2D(planes, data_format=f)
        self.conv3 = Conv2D(planes, planes * self.expansion, 1, bias_attr=False, data_format=f)
        self.bn3 = nn.BatchNorm2D(planes * self.expansion, data_format=f)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = Union[Type[BasicBlock], Type[Bottleneck]]


class ResNet(PooledLinearHead, nn.Layer):
    """``ResNet(block, layers)`` as in torchvision; ``forward_features`` returns the last feature
    map (N, C, H/32, W/32) so notebooks can show it and Grad-CAM can hook it. ``stem_kernel``:
    the size of the first convolution (stride 2, "same" padding) before the max pooling.

    ``data_format="NHWC"`` computes channels-last inside the network (benchmarks/bench_train.py
    measures whether that is faster); input and feature map stay NCHW and the parameters keep
    their names and shapes, so checkpoints load either way."""

    def __init__(self, block: Block, layers: List[int], num_classes: int = 2,
                 width: int = 64, dropout: float = DROPOUT, zero_init_residual: bool = False,
                 data_format: str = "NCHW", stem_kernel: int = 7) -> None:
        super().__init__()
        if data_format not in ("NCHW", "NHWC"):
            raise ValueError(f"data_format must be NCHW or NHWC (got {data_format!r})")
        self.data_format = f = data_format
        self.inplanes = width
        self.conv1 = nn.Conv2D(3, width, stem_kernel, stride=2, padding=stem_kernel // 2, bias_attr=False,
                               data_format=f)
        self.bn1 = nn.BatchNorm2D(width, data_format=f)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1, data_format=f)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2D((1, 1))
        self.num_features = width * 8 * block.expansion
        # Dropout has no parameters, so the state dict keeps Paddle's keys whatever its rate.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.fc = nn.Linear(self.num_features, num_classes)
        if zero_init_residual:
            # Start every residual branch at zero (last BN's scale = 0), so each block begins as
            # the identity: from-scratch training converges faster (Goyal et al. 2017; torchvision
            # offers the same switch). Pretrained weights overwrite it.
            for m in self.sublayers():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                    last_bn.weight.set_value(paddle.zeros_like(last_bn.weight))

    # What the model says about itself (timm's pretrained_cfg idea): the classifier's parameters
    # (fine-tuning keeps them fresh and freezes the rest) and the stages worth showing.
    head_names = ("fc",)

    @property
    def stage_names(self) -> List[str]:
        return ["conv1", "layer1", "layer2", "layer3", "layer4"]

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample, f = None, self.data_format
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                Conv2D(self.inplanes, planes * block.expansion, 1, stride=stride, bias_attr=False,
                          data_format=f),
                nn.BatchNorm2D(planes * block.expansion, data_format=f),
            )
        layers = [block(self.inplanes, planes, stride, downsample, data_format=f)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, data_format=f) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        channels_last = self.data_format == "NHWC"
        if channels_last:
            x = x.transpose([0, 2, 3, 1])
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return x.transpose([0, 3, 1, 2]) if channels_last else x


def resnet10(num_classes: int = 2, **options) -> ResNet:
    """ResNet-18 with one basic block per stage instead of two and a 3x3 stem convolution instead
    of the 7x7 (the same widths, max pooling and head): a little under half the convolution work.
    On a 2-core CPU under a time budget it trains 1.6-1.8x the epochs of ResNet-18 and, at 8,000
    photos, learns more from them; the 3x3 stem is 1.1-1.2x faster again and scored higher (the
    ablations in benchmarks/README.md). No ImageNet weights are published for it."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes, stem_kernel=3, **options)


def resnet18(num_classes: int = 2, **options) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **options)


def resnet34(num_classes: int = 2, **options) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **options)


def resnet50(num_classes: int = 2, **options) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, **options)
