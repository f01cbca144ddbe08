"""The ideas behind a CNN, computed with the same Paddle layers the models use (notebook 01):
convolution with a hand-made kernel, the three pooling layers and the small shifts pooling
absorbs, the parameter count of a conv layer against a fully connected one, activation functions
with their derivatives, a fully connected network (``MLP``) trained briefly against the CNN, and
a deep plain stack against the same stack with skip connections (why ResNet trains)."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from .config import TrainConfig
from .data.check import drop_unreadable
from .data.layouts import Sample
from .data.loader import ImageDataset
from .data.split import Data, limit_per_class
from .models.cnn import POOLINGS
from .transforms import build_transform

Arrays = Tuple[np.ndarray, np.ndarray]  # (N, 3, S, S) float32 images, (N,) int64 labels

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


def first_conv_filters(model: nn.Layer) -> np.ndarray:
    """The first conv layer's kernels as (N, k, k, 3) images in [0, 1], each scaled on its own
    so that its pattern (edge, colour blob) shows whatever its magnitude."""
    weight = next(p for p in model.parameters() if p.ndim == 4).numpy()  # (N, 3, k, k)
    w = weight.transpose(0, 2, 3, 1)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    return (w - lo) / np.maximum(hi - lo, 1e-8)


# --- Fully connected against convolutional: a brief training on the same photos ---------------

def load_arrays(samples: Sequence[Sample], classes: Sequence[str], cfg: TrainConfig) -> Arrays:
    """Decode and preprocess the photos once, through the evaluation transform (resize, center
    crop, normalize: no augmentation, so overfitting shows), into arrays. A brief training then
    repeats its epochs without decoding the JPEGs again."""
    dataset = ImageDataset(samples, build_transform(cfg, train=False), classes)
    items = [dataset[i] for i in range(len(dataset))]
    return np.stack([x for x, _ in items]), np.array([y for _, y in items], np.int64)


def brief_arrays(data: Data, cfg: TrainConfig, val_per_class: int) -> Tuple[Arrays, Arrays]:
    """Train and validation arrays for the notebook's brief trainings: ``data`` (from
    ``load_data(cfg, check=False)``, already limited to ``cfg.max_per_class`` training photos
    per class) with at most ``val_per_class`` validation photos per class. Only these few are
    decode-checked; a file that fails is skipped with its path printed."""
    val = limit_per_class(data.val.samples, val_per_class, cfg.seed)
    train, bad_train = drop_unreadable(data.train.samples, max_pixels=cfg.max_image_pixels)
    val, bad_val = drop_unreadable(val, max_pixels=cfg.max_image_pixels)
    for path, reason in bad_train + bad_val:
        print(f"skipped {path}: {reason}")
    return load_arrays(train, data.classes, cfg), load_arrays(val, data.classes, cfg)


def permute_pixels(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same fixed shuffle of pixel positions applied to every (C, H, W) image: the colours
    stay, the neighbourhoods are gone. A network that flattens its input loses nothing."""
    n, c, h, w = x.shape
    order = np.random.default_rng(seed).permutation(h * w)
    return x.reshape(n, c, h * w)[:, :, order].reshape(n, c, h, w)


class MLP(nn.Layer):
    """The fully connected network: the photo flattened into one vector of 3*S*S numbers (the
    pixels' arrangement is thrown away), one hidden layer, the classifier. Its first layer alone
    has 3*S*S*hidden weights: every pixel is connected to every hidden unit."""

    def __init__(self, image_size: int, hidden: int = 128, num_classes: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3 * image_size * image_size, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc2(F.relu(self.fc1(paddle.flatten(x, 1))))


def train_epoch(model: nn.Layer, x: np.ndarray, y: np.ndarray, optimizer: paddle.optimizer.Optimizer,
                batch_size: int, rng: np.random.Generator) -> List[float]:
    """One pass over shuffled mini-batches: forward, cross-entropy, backward, step. The loss of
    each batch is returned so curves can show learning within an epoch."""
    model.train()
    losses = []
    for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // batch_size)):
        loss = F.cross_entropy(model(paddle.to_tensor(x[idx])), paddle.to_tensor(y[idx]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return losses


def accuracy(model: nn.Layer, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Share of correct argmax predictions, in eval mode (dropout off, batch-norm statistics)."""
    model.eval()
    with paddle.no_grad():
        preds = [model(paddle.to_tensor(x[i:i + batch_size])).argmax(1).numpy()
                 for i in range(0, len(x), batch_size)]
    return float((np.concatenate(preds) == y).mean()) if len(x) else float("nan")


def train_briefly(model: nn.Layer, train: Arrays, val: Arrays, epochs: int, lr: float = 1e-3,
                  batch_size: int = 32, seed: int = 0) -> Dict[str, List[float]]:
    """A few epochs of Adam; ``{"loss": per batch, "train_acc", "val_acc": per epoch}``. Train
    and validation accuracy are both measured after each epoch in eval mode, so their gap is
    overfitting, not dropout or a moving average."""
    rng = np.random.default_rng(seed)
    optimizer = paddle.optimizer.Adam(learning_rate=lr, parameters=model.parameters())
    history: Dict[str, List[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    for _ in range(epochs):
        history["loss"] += train_epoch(model, *train, optimizer, batch_size, rng)
        history["train_acc"].append(accuracy(model, *train))
        history["val_acc"].append(accuracy(model, *val))
    return history


# --- Why ResNet: a deep plain stack against the same stack with skip connections -------------

class ConvBNReLU(nn.Layer):
    """conv 3x3 -> batch norm -> ReLU; with ``residual`` the input is added back before the
    ReLU, ``relu(x + f(x))``, as in ResNet's blocks (one conv here instead of two)."""

    def __init__(self, width: int, residual: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2D(width, width, 3, padding=1, bias_attr=False)
        self.bn = nn.BatchNorm2D(width)
        self.residual = residual

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = self.bn(self.conv(x))
        return F.relu(x + out) if self.residual else F.relu(out)


def deep_stack(depth: int, width: int = 16, residual: bool = False, num_classes: int = 2) -> nn.Sequential:
    """A stem that quarters the image, ``depth`` ``ConvBNReLU`` layers of ``width`` channels,
    global average pooling and a classifier: the same network with or without skips."""
    return nn.Sequential(
        nn.Conv2D(3, width, 3, stride=2, padding=1, bias_attr=False), nn.BatchNorm2D(width), nn.ReLU(),
        nn.MaxPool2D(2, 2),
        *[ConvBNReLU(width, residual) for _ in range(depth)],
        nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(width, num_classes))


def layer_grad_norms(model: nn.Layer, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """L2 norm of the loss gradient on each ``ConvBNReLU``'s conv weight, first layer to last,
    from one batch in training mode: how strongly back-propagation updates each depth."""
    model.train()
    F.cross_entropy(model(paddle.to_tensor(x)), paddle.to_tensor(y)).backward()
    norms = np.array([float(layer.conv.weight.grad.norm()) for layer in model.sublayers()
                      if isinstance(layer, ConvBNReLU)])
    model.clear_gradients()
    return norms
