"""The classifier head that ResNet and EfficientNet-Lite share: global average pooling, optional
dropout, one linear layer ``fc``. ``forward_features`` (each network's own) stays separate from
``forward_head``, so Grad-CAM and the notebooks can hook the last feature map and the transfer
recipe can fit ``fc`` on the pooled features (``models.PooledFeatures``)."""
from __future__ import annotations

import paddle


class PooledLinearHead:
    """Mixed into an ``nn.Layer`` that sets ``avgpool``, ``dropout`` (or None) and ``fc``, and
    defines ``forward_features``."""

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.flatten(self.avgpool(x), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))
