"""PyTorch twins of paddle_catdog's basic-block ResNets for bench_vs_torch.py and torch_predict.py:
``twin("resnet10")`` (one block per stage, 3x3 stem) and ``twin("resnet18")`` (two, 7x7 stem).
Stride-2 stem conv (no bias), BN, ReLU, 3x3/2 max-pool (padding 1), four stages of width w, 2w,
4w, 8w (stride 2 from stage 2, 1x1 conv + BN projection shortcut), global average pool, dropout,
linear. The parameter names are the Paddle model's, so a checkpoint loads into its twin.
zero_init_residual sets each block's last BN scale to 0, as the Paddle model does."""
from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


# blocks per stage and stem kernel of each twin, as in paddle_catdog.models.resnet
LAYERS = {"resnet10": (1, 1, 1, 1), "resnet18": (2, 2, 2, 2)}
STEM_KERNEL = {"resnet10": 3, "resnet18": 7}


class ResNet(nn.Module):
    def __init__(self, layers=LAYERS["resnet18"], num_classes=2, width=32, dropout=0.1,
                 zero_init_residual=True, stem_kernel=7):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, stem_kernel, stride=2, padding=stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], 2)
        self.layer3 = self._make_layer(width * 4, layers[2], 2)
        self.layer4 = self._make_layer(width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(width * 8, num_classes)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def twin(name: str, **options) -> ResNet:
    """The PyTorch twin of the package's model ``name`` (resnet10 or resnet18)."""
    if name not in LAYERS:
        raise ValueError(f"no PyTorch twin of {name!r}; twins: {', '.join(LAYERS)}")
    return ResNet(LAYERS[name], stem_kernel=STEM_KERNEL[name], **options)
