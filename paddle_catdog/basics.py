"""The mechanics of a CNN that notebook 01 computes with the same Paddle layers the models use:
hand-made edge kernels, pooling and the small shifts it absorbs, the parameter count of a conv
layer against a fully connected one, activation functions with their derivatives, and the first
conv layer's kernels as pictures. The notebook's brief trainings live in ``basics_brief``, its
diagrams in ``basics_figures``."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from .models.cnn import POOLINGS

# Hand-made 3x3 kernels: Sobel responds to horizontal / vertical intensity changes (edges);
# the Laplacian to changes in every direction.
EDGE_KERNELS: Dict[str, np.ndarray] = {
    "sobel_x (vertical edges)": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32),
    "sobel_y (horizontal edges)": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float32),
    "laplacian (all edges)": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
}

# PReLU learns its negative slope; 0.25 is its usual starting value (He et al., 2015).
_PRELU_SLOPE = paddle.to_tensor([0.25])

# Common activation functions, as plain functions of a tensor (paddle.nn.functional) so their
# derivatives come from autograd. Explicit entries rather than getattr, so grep finds them all.
ACTIVATION_FUNCTIONS: Dict[str, Callable[[paddle.Tensor], paddle.Tensor]] = {
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu (0.1)": lambda x: F.leaky_relu(x, 0.1),
    "prelu (slope 0.25 at start)": lambda x: F.prelu(x, _PRELU_SLOPE.astype(x.dtype)),
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "gelu": F.gelu,
    "silu / swish": F.silu,
    "mish": F.mish,
    "hardsigmoid": F.hardsigmoid,
    "hardswish": F.hardswish,
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


def edge_features(gray: np.ndarray, pool_size: int = 1) -> np.ndarray:
    """(C, H, W) magnitudes of the ``EDGE_KERNELS`` responses, then ``pool_size`` x
    ``pool_size`` max pooling (1: none): a fixed stand-in for a conv layer and its pooling."""
    maps = np.stack([np.abs(convolve(gray, k)) for k in EDGE_KERNELS.values()])
    if pool_size == 1:
        return maps
    with paddle.no_grad():
        return F.max_pool2d(paddle.to_tensor(maps[None]), pool_size, pool_size).numpy()[0]


def shift_change(gray: np.ndarray, shifts: Sequence[int] = (1, 2, 3, 4),
                 pool_sizes: Sequence[int] = (1, 2, 4)) -> Dict[int, List[float]]:
    """``{pool_size: [relative change per shift]}``: how much the edge features change,
    ||f(shifted) - f(image)|| / ||f(image)||, when the image moves ``s`` pixels to the right.
    An unpooled map moves with the image, so every edge lands on other positions; a k x k max
    keeps its value while the strongest response stays inside its window: pooling makes the
    features (nearly) invariant to small shifts, the tutorial's translation invariance."""
    # Same-sized crops of one image, the window moving left so the content moves right: no
    # wrapped-around border (np.roll's) is mistaken for a change.
    m = max(shifts)
    width = gray.shape[1] - m
    views = {s: gray[:, m - s: m - s + width] for s in (0, *shifts)}
    out: Dict[int, List[float]] = {}
    for k in pool_sizes:
        base = edge_features(views[0], k)
        out[k] = [float(np.linalg.norm(edge_features(views[s], k) - base) / np.linalg.norm(base))
                  for s in shifts]
    return out


def conv_vs_dense_params(height: int, width: int, in_channels: int, out_channels: int,
                         kernel: int = 3) -> Dict[str, int]:
    """Parameters of a ``kernel``x``kernel`` conv layer and of a fully connected layer producing
    the same-sized output from the same input. The conv layer sees only a small window (local
    connectivity) and reuses its kernel at every position (weight sharing), so its count does not
    depend on the image size; the dense layer connects every input to every output."""
    conv = kernel * kernel * in_channels * out_channels + out_channels
    n_in, n_out = height * width * in_channels, height * width * out_channels
    return {"conv": conv, "dense": n_in * n_out + n_out, "ratio": (n_in * n_out + n_out) // conv}


def activation_curves(names: Optional[Sequence[str]] = None, lo: float = -7.0, hi: float = 7.0,
                      n: int = 561) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{name: (x, f(x), f'(x))}`` for ``ACTIVATION_FUNCTIONS``; the derivative comes from
    Paddle's autograd, i.e. what back-propagation multiplies the gradient by."""
    x_np = np.linspace(lo, hi, n, dtype=np.float32)
    out = {}
    for name in names or list(ACTIVATION_FUNCTIONS):
        x = paddle.to_tensor(x_np, stop_gradient=False)
        y = ACTIVATION_FUNCTIONS[name](x)
        (dy,) = paddle.grad(y.sum(), x)
        out[name] = (x_np, y.numpy(), dy.numpy())
    return out


def first_conv_weight(model: nn.Layer) -> np.ndarray:
    """The first conv layer's weight, (N, C, k, k), as numpy."""
    return next(p for p in model.parameters() if p.ndim == 4).numpy()


def kernels_as_images(weight: np.ndarray) -> np.ndarray:
    """(N, C, k, k) kernels as (N, k, k, C) images in [0, 1], each scaled on its own so that its
    pattern (edge, colour blob) shows whatever its magnitude."""
    w = weight.transpose(0, 2, 3, 1)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    return (w - lo) / np.maximum(hi - lo, 1e-8)


def first_conv_filters(model: nn.Layer) -> np.ndarray:
    """The first conv layer's kernels as images (``kernels_as_images``)."""
    return kernels_as_images(first_conv_weight(model))


def neighbour_correlation(weight: np.ndarray) -> float:
    """Correlation between horizontally and vertically adjacent weights of (N, C, k, k) kernels,
    over all kernels and channels: near 0 for random kernels (noise), near 1 for smooth patterns
    such as colour blobs and soft light-to-dark edges, negative for a checkerboard."""
    a = np.concatenate([weight[..., :, :-1].ravel(), weight[..., :-1, :].ravel()])
    b = np.concatenate([weight[..., :, 1:].ravel(), weight[..., 1:, :].ravel()])
    return float(np.corrcoef(a, b)[0, 1])
