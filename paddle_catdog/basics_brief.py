"""Notebook 01's brief trainings on real photos, small enough for a CPU: a fully connected
network (``MLP``) against a small CNN, on the photos and on the same photos with their pixels
permuted; and a deep plain stack of conv layers against the same stack with residual
connections. The numbers the notebook states about them are checked in tests/test_basics.py."""
from __future__ import annotations

from dataclasses import dataclass
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
from .models import create_model
from .runtime import seed_everything
from .transforms import build_transform

Arrays = Tuple[np.ndarray, np.ndarray]  # (N, 3, S, S) float32 images, (N,) int64 labels
History = Dict[str, List[float]]  # "loss" per batch, "train_acc" and "val_acc" per epoch


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


def brief_models(image_size: int, pooling: str = "max", activation: str = "relu"
                 ) -> Dict[str, Callable[[], nn.Layer]]:
    """The two networks the notebook compares, as builders (called after seeding): the MLP with
    128 hidden units and the package's CNN (three conv blocks of 16, 32, 64 channels)."""
    return {"MLP": lambda: MLP(image_size, hidden=128),
            "CNN": lambda: create_model("cnn", channels=(16, 32, 64), hidden=64,
                                        pooling=pooling, activation=activation)}


def train_epoch(model: nn.Layer, x: np.ndarray, y: np.ndarray, optimizer: paddle.optimizer.Optimizer,
                batch_size: int, rng: np.random.Generator,
                schedule: Optional[paddle.optimizer.lr.LRScheduler] = None) -> List[float]:
    """One pass over shuffled batches: forward, cross-entropy, backward, step, and the learning
    rate ``schedule`` (if any) one step on. The loss of each batch is returned so curves can show
    learning within an epoch."""
    model.train()
    losses = []
    for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // batch_size)):
        loss = F.cross_entropy(model(paddle.to_tensor(x[idx])), paddle.to_tensor(y[idx]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if schedule is not None:
            schedule.step()
        losses.append(float(loss))
    return losses


def accuracy(model: nn.Layer, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Share of correct argmax predictions, in eval mode (dropout off, batch-norm statistics)."""
    model.eval()
    with paddle.no_grad():
        preds = [model(paddle.to_tensor(x[i:i + batch_size])).argmax(1).numpy()
                 for i in range(0, len(x), batch_size)]
    return float((np.concatenate(preds) == y).mean()) if len(x) else float("nan")


def train_briefly(model: nn.Layer, train: Arrays, val: Arrays, epochs: int, lr: float = 2e-3,
                  batch_size: int = 32, seed: int = 0) -> History:
    """A few epochs of Adam whose learning rate falls from ``lr`` to 0 along a cosine (so the
    last epoch's weights are not a random point of a noisy walk); ``{"loss": per batch,
    "train_acc", "val_acc": per epoch}``. Both accuracies are measured after each epoch in eval
    mode, so their gap is overfitting, not dropout or a moving average."""
    rng = np.random.default_rng(seed)
    steps = epochs * max(1, len(train[0]) // batch_size)
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=max(1, steps))
    optimizer = paddle.optimizer.Adam(learning_rate=schedule, parameters=model.parameters())
    history: History = {"loss": [], "train_acc": [], "val_acc": []}
    for _ in range(epochs):
        history["loss"] += train_epoch(model, *train, optimizer, batch_size, rng, schedule)
        history["train_acc"].append(accuracy(model, *train))
        history["val_acc"].append(accuracy(model, *val))
    return history


def epoch_means(losses: Sequence[float], epochs: int) -> np.ndarray:
    """The mean batch loss of each epoch (``losses`` holds the same number of batches per epoch)."""
    return np.asarray(losses, np.float64).reshape(epochs, -1).mean(axis=1)


@dataclass
class BriefRun:
    model: nn.Layer
    history: History


def compare_mlp_cnn(train: Arrays, val: Arrays, epochs: int, pooling: str = "max",
                    activation: str = "relu", permuted: bool = True, seed: int = 0
                    ) -> Dict[Tuple[str, str], BriefRun]:
    """``{(network, "photos" | "permuted"): BriefRun}``: the MLP and the CNN of ``brief_models``
    trained from the same seed on the photos and, with ``permuted``, on the same photos with one
    fixed shuffle of their pixel positions (``permute_pixels``)."""
    size = train[0].shape[-1]
    inputs = {"photos": (train, val)}
    if permuted:
        inputs["permuted"] = ((permute_pixels(train[0]), train[1]), (permute_pixels(val[0]), val[1]))
    runs = {}
    for name, build in brief_models(size, pooling, activation).items():
        for photos, (tr, va) in inputs.items():
            seed_everything(seed)
            model = build()
            runs[name, photos] = BriefRun(model, train_briefly(model, tr, va, epochs=epochs, seed=seed))
    return runs


# --- Why ResNet: a deep plain stack against the same stack with residual connections ---------

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
    global average pooling and a classifier: the same network with or without residual
    connections."""
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


def compare_depth(train: Arrays, val: Arrays, depth: int, epochs: int, width: int = 16,
                  grad_batch: int = 32, seed: int = 0) -> Dict[str, Tuple[np.ndarray, History]]:
    """``{"plain" | "residual": (gradient norm per layer at initialisation, history)}``: both
    stacks from the same seed, their gradients measured on the first ``grad_batch`` training
    photos, then trained briefly on the same photos."""
    out = {}
    for name, residual in (("plain", False), ("residual", True)):
        seed_everything(seed)
        stack = deep_stack(depth, width=width, residual=residual)
        norms = layer_grad_norms(stack, train[0][:grad_batch], train[1][:grad_batch])
        out[name] = (norms, train_briefly(stack, train, val, epochs=epochs, seed=seed))
    return out
