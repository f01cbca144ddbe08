"""Layers shaped for Paddle's CPU kernels, with the parameters of the standard ones.

``Conv2D`` is ``nn.Conv2D`` (same parameters, names and state dict) whose dygraph forward computes
a convolution whose output map is tiny as one matrix product over the whole batch (``F.unfold``,
then one GEMM). Paddle's CPU convolution runs im2col and a GEMM per image, and on a 2x2 map that
GEMM is a sliver: ResNet-18's last stage at 64 px input ran 3.5x faster this way, forward and
backward, while on maps of 8x8 and more the native kernel wins (benchmarks/bench_layers.py). A
traced or exported graph (``paddle.jit``) keeps the native operator, so Paddle Inference and ONNX
see an ordinary convolution.
"""
from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

# Output positions (Ho * Wo) up to which one batched GEMM beats the native kernel: every 2x2 map,
# and 4x4 maps of stride-1 convolutions (benchmarks/bench_layers.py).
GEMM_MAX_POSITIONS = 4
GEMM_MAX_POSITIONS_STRIDE1 = 16


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The convolution output size: floor((n - k + 2p) / s) + 1."""
    return (size - kernel + 2 * padding) // stride + 1


def gemm_conv2d(x: paddle.Tensor, weight: paddle.Tensor, bias, stride: int, padding: int) -> paddle.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (NCHW, no groups or dilation) as one GEMM:
    columns of every output position of every image, (N * Ho * Wo, C * k * k), times the weight."""
    n, _, h, w = x.shape
    out_channels, _, k, _ = weight.shape
    ho, wo = output_size(h, k, stride, padding), output_size(w, k, stride, padding)
    if k == 1 and padding == 0:
        cols = x[:, :, ::stride, ::stride].transpose([0, 2, 3, 1]).reshape([n * ho * wo, -1])
    else:
        cols = F.unfold(x, k, strides=stride, paddings=padding).transpose([0, 2, 1]).reshape([n * ho * wo, -1])
    y = paddle.matmul(cols, weight.reshape([out_channels, -1]), transpose_y=True)
    if bias is not None:
        y = y + bias
    return y.reshape([n, ho, wo, out_channels]).transpose([0, 3, 1, 2])


class Conv2D(nn.Conv2D):
    """``nn.Conv2D`` that computes tiny output maps as one batched GEMM in dygraph (see the module
    docstring); anything else, and every traced graph, takes the native operator."""

    def _uses_gemm(self, x: paddle.Tensor) -> bool:
        if not paddle.in_dynamic_mode() or self._data_format != "NCHW" or self._groups != 1:
            return False
        stride, padding, dilation = self._stride, self._padding, self._dilation
        if not (isinstance(padding, int) or len(set(padding)) == 1):
            return False
        if len(set(stride)) != 1 or tuple(dilation) != (1, 1) or len(set(self._kernel_size)) != 1:
            return False
        pad = padding if isinstance(padding, int) else padding[0]
        ho = output_size(x.shape[2], self._kernel_size[0], stride[0], pad)
        wo = output_size(x.shape[3], self._kernel_size[0], stride[0], pad)
        limit = GEMM_MAX_POSITIONS_STRIDE1 if stride[0] == 1 else GEMM_MAX_POSITIONS
        return ho * wo <= limit

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self._uses_gemm(x):
            pad = self._padding if isinstance(self._padding, int) else self._padding[0]
            return gemm_conv2d(x, self.weight, self.bias, self._stride[0], pad)
        return super().forward(x)
