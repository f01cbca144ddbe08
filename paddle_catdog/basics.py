"""The ideas behind a CNN, computed with the same Paddle layers the models use (notebook 01):
convolution with a hand-made kernel, the three pooling layers, the parameter count of a conv layer
against a fully connected one, and the activation functions with their derivatives."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from .models.cnn import ACTIVATIONS, POOLINGS

# Hand-made 3x3 kernels: Sobel responds to horizontal / vertical intensity changes (edges);
# the Laplacian to changes in every direction.
EDGE_KERNELS: Dict[str, np.ndarray] = {
    "sobel_x (vertical edges)": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32),
    "sobel_y (horizontal edges)": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float32),
    "laplacian (all edges)": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
}


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> HW float32 in [0, 1] (ITU-R 601 luma weights)."""
    return (rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def convolve(gray: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """One-channel 'same' convolution with ``F.conv2d``: the operation a Conv2D layer applies
    with learned kernels instead of this hand-made one."""
    x = paddle.to_tensor(gray[None, None].astype(np.float32))
    w = paddle.to_tensor(kernel[None, None].astype(np.float32))
    return F.conv2d(x, w, padding=kernel.shape[0] // 2).numpy()[0, 0]


def pool(fmap: np.ndarray, kind: str) -> np.ndarray:
    """2x2, stride-2 pooling of an HW or CHW map with the CNN's own layer (``max``, ``avg``,
    ``l2``): every output value summarises 4 inputs, so a quarter of the values remain."""
    if kind not in POOLINGS:
        raise ValueError(f"unknown pooling {kind!r}; choose one of: {', '.join(POOLINGS)}")
    x = paddle.to_tensor(fmap.astype(np.float32))
    x = x.reshape([1, 1, *fmap.shape]) if fmap.ndim == 2 else x.unsqueeze(0)
    with paddle.no_grad():
        out = POOLINGS[kind]()(x).numpy()[0]
    return out[0] if fmap.ndim == 2 else out


def conv_vs_dense_params(height: int, width: int, in_channels: int, out_channels: int,
                         kernel: int = 3) -> Dict[str, int]:
    """Parameters of a ``kernel``x``kernel`` conv layer and of a fully connected layer producing
    the same-sized output from the same input. The conv layer sees only a small window (local
    connectivity) and reuses its kernel at every position (weight sharing), so its count does not
    depend on the image size; the dense layer connects every input to every output."""
    conv = kernel * kernel * in_channels * out_channels + out_channels
    n_in, n_out = height * width * in_channels, height * width * out_channels
    return {"conv": conv, "dense": n_in * n_out + n_out, "ratio": (n_in * n_out + n_out) // conv}


def activation_curves(names: Optional[Sequence[str]] = None, lo: float = -4.0, hi: float = 4.0,
                      n: int = 401) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{name: (x, f(x), f'(x))}`` for the CNN's activation layers; the derivative comes from
    Paddle's autograd, i.e. what back-propagation multiplies the gradient by."""
    x_np = np.linspace(lo, hi, n, dtype=np.float32)
    out = {}
    for name in names or list(ACTIVATIONS):
        x = paddle.to_tensor(x_np, stop_gradient=False)
        y = ACTIVATIONS[name]()(x)
        (dy,) = paddle.grad(y.sum(), x)
        out[name] = (x_np, y.numpy(), dy.numpy())
    return out


def first_conv_filters(model: nn.Layer) -> np.ndarray:
    """The first conv layer's kernels as (N, k, k, 3) images in [0, 1], each scaled on its own
    so that its pattern (edge, colour blob) shows whatever its magnitude."""
    weight = next(p for p in model.parameters() if p.ndim == 4).numpy()  # (N, 3, k, k)
    w = weight.transpose(0, 2, 3, 1)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    return (w - lo) / np.maximum(hi - lo, 1e-8)
