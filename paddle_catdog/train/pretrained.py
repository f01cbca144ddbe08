"""Starting from trained weights (``--pretrained``) and the freeze-then-fine-tune schedule.

``--pretrained imagenet`` fetches Paddle's published ImageNet weights for the chosen ResNet with
Paddle's own download helper (the URL and md5 that ``paddle.vision.models.resnet`` uses; cached in
``~/.cache/paddle/hapi/weights``). Our ResNets have exactly paddle.vision's parameter names and
shapes at width 64, so those weights load directly; only the 1000-class head is left out when the
class count differs. ``--pretrained PATH`` loads a local ``.pdparams`` (a pickle: trusted files
only), ``.safetensors`` or ``.npz`` file, or a checkpoint folder of ours.

``--freeze-epochs N`` trains only the head for N epochs with the backbone frozen: its parameters get
no gradient and its batch-norm layers run in eval mode, so their running statistics keep the
pretrained values (the Keras transfer-learning guide and torchvision's fine-tuning tutorial do the
same; a fresh head's large early gradients would otherwise wreck them). After that every layer
trains at ``--finetune-lr-scale`` times the schedule's learning rate.
"""
from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Dict, List, Set
from urllib.parse import urlparse

from paddle import nn
from paddle.utils import download

from .. import checkpoint as ckpt
from ..config import IMAGENET_MODELS, TrainConfig, with_defaults
from ..weights import FORMATS, PretrainedError, efficientnet_lite0_weights, read_weights_file

log = logging.getLogger("paddle_catdog")

# The URLs and md5 sums of paddle.vision.models.resnet.model_urls (Paddle 3.x), copied rather
# than imported because that table is not public API.
IMAGENET_WEIGHTS: Dict[str, tuple] = {
    "resnet18": ("https://paddle-hapi.bj.bcebos.com/models/resnet18.pdparams",
                 "cf548f46534aa3560945be4b95cd11c4"),
    "resnet34": ("https://paddle-hapi.bj.bcebos.com/models/resnet34.pdparams",
                 "8d2275cf8706028345f78ac0e1d31969"),
    "resnet50": ("https://paddle-hapi.bj.bcebos.com/models/resnet50.pdparams",
                 "ca6f485ee1ab0492d38f323885b0ad80"),
}
IMAGENET_WIDTH = 64  # the published networks are the paper's width
IMAGENET_MODEL = "resnet18"  # what --pretrained imagenet fine-tunes unless --model says otherwise


# What --pretrained changes unless the option is given explicitly, and why:
PRETRAINED_DEFAULTS = {
    "width": IMAGENET_WIDTH,   # the published weights only fit the full-width network
    "image_size": 224,         # the resolution the ImageNet weights were trained at
    "epochs": 6,               # a pretrained backbone converges in a few epochs on 25k photos
    "time_budget": 0.0,        # a fixed epoch count, not the from-scratch CPU time budget
    "start_image_size": 0,     # no progressive resizing: the features were learned at 224
    "freeze_epochs": 1,        # one epoch fits the new head before its gradients reach the backbone
    "lr": 1e-3,                # AdamW on a fresh linear head; the backbone later gets 1e-4 at most
    "finetune_lr_scale": 0.1,  # 10x lower once unfrozen, so the pretrained features are adjusted, not relearned
    "warmup_epochs": 0.0,      # the head is linear and starts from zero-mean features: no warm-up needed
    "crop_scale_min": 0.5,     # milder crops: the features already know objects at many scales
    "eval_from": 0.6,          # the last 3 of 6 epochs: a fine-tuning run is short enough to watch
    # the augmentation and dropout this recipe was measured with (docs/en/transfer.md), which the
    # from-scratch defaults dropped on 2026-11-30:
    "rotate_degrees": 5.0,
    "jitter": 0.2,
    "dropout": 0.1,
}

EFFICIENTNET = "efficientnet_lite0"  # --pretrained efficientnet_lite0: the weights a pip package ships

# What --pretrained efficientnet_lite0 changes unless the option is given explicitly, and why:
EFFICIENTNET_DEFAULTS = {
    "model": EFFICIENTNET,
    "image_size": 224,         # the resolution the ImageNet weights were trained at
    "eval_image_size": 0,      # evaluated and predicted at 224 too
    "start_image_size": 0,     # no progressive resizing
    "normalize": "centered",   # (x - 127) / 128: how the TensorFlow-trained weights saw their inputs
    "linear_probe": True,      # backbone features once, then the classifier: minutes on 2 CPU cores
    "time_budget": 8.0,        # the feature pass stops when its share runs out (train/transfer.py)
    "epochs": None,            # no epochs: the budget decides how many photos get features
}

CONNECT_TIMEOUT = 5.0  # seconds; Paddle's helper itself has no timeout and retries 3 times


def apply_pretrained_defaults(cfg: TrainConfig, explicit: Set[str]) -> TrainConfig:
    """Fine-tuning defaults for the options not in ``explicit``; checks --width for imagenet."""
    if not cfg.pretrained:
        return cfg
    if cfg.pretrained == EFFICIENTNET:
        if "model" in explicit and cfg.model != EFFICIENTNET:
            raise PretrainedError(f"--pretrained {EFFICIENTNET} holds weights for --model "
                                  f"{EFFICIENTNET}, not {cfg.model!r}")
        return _with_logged_defaults(cfg, EFFICIENTNET_DEFAULTS, explicit)
    if cfg.pretrained == "imagenet":
        model = cfg.model if "model" in explicit else IMAGENET_MODEL
        if model not in IMAGENET_MODELS:
            raise PretrainedError(f"--pretrained imagenet: Paddle publishes weights for "
                                  f"{', '.join(IMAGENET_MODELS)}, not {model!r}")
        if "width" in explicit and cfg.width not in (0, IMAGENET_WIDTH):
            raise PretrainedError(f"--pretrained imagenet needs --width {IMAGENET_WIDTH} "
                                  f"(the published networks' width), got {cfg.width}")
        # the from-scratch default network (resnet10) has no published weights
        return _with_logged_defaults(cfg, {**PRETRAINED_DEFAULTS, "model": IMAGENET_MODEL}, explicit)
    return _with_logged_defaults(cfg, PRETRAINED_DEFAULTS, explicit)


def _with_logged_defaults(cfg: TrainConfig, defaults: Dict[str, object], explicit: Set[str]) -> TrainConfig:
    changed = {k: v for k, v in defaults.items() if k not in explicit and getattr(cfg, k) != v}
    if changed:
        log.info("--pretrained %s: defaults %s", cfg.pretrained, changed)
    return with_defaults(cfg, defaults, explicit)


def _check_reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail at once when the host does not answer: Paddle's helper would otherwise retry with an
    unbounded timeout."""
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise PretrainedError(f"cannot download {url} ({e.strerror or e}); offline, download it "
                              "elsewhere and pass --pretrained PATH/TO/FILE.pdparams") from e


def imagenet_weights_path(model: str) -> Path:
    """The cached or freshly downloaded ImageNet .pdparams for ``model``."""
    url, md5 = IMAGENET_WEIGHTS[model]
    cached = Path(download.WEIGHTS_HOME) / Path(urlparse(url).path).name
    if not cached.is_file():  # the helper verifies the md5 of a cached file without network
        _check_reachable(url)
    try:
        return Path(download.get_weights_path_from_url(url, md5))
    except Exception as e:  # the helper raises RuntimeError, httpx errors, ...
        raise PretrainedError(f"cannot download {url} ({e}); download it elsewhere and pass "
                              "--pretrained PATH/TO/FILE.pdparams") from e


def pretrained_source(cfg: TrainConfig) -> Path:
    """The weights file ``cfg.pretrained`` names: 'imagenet' downloaded, 'efficientnet_lite0'
    converted from its package. Called before the data is scanned so that a missing file or
    network fails at once."""
    if cfg.pretrained == "imagenet":
        return imagenet_weights_path(cfg.model)
    if cfg.pretrained == EFFICIENTNET:
        return efficientnet_lite0_weights()
    path = Path(cfg.pretrained)
    if not path.exists():
        raise PretrainedError(f"--pretrained: no such file {path} (use 'imagenet', "
                              f"'{EFFICIENTNET}' or a {FORMATS} file)")
    return path


def load_pretrained(model: nn.Layer, path: Path) -> List[str]:
    """Load the weights at ``path`` into ``model``; returns the keys left at their fresh values
    (the head when the class count differs)."""
    skipped = ckpt.load_weights_into(model, read_weights_file(path), str(path),
                                     skip_mismatched=tuple(model.head_names))
    log.info("loaded pretrained weights from %s%s", path,
             f" (kept fresh: {', '.join(skipped)})" if skipped else "")
    return skipped


# ------------------------------------------------------------------------------------ freezing
_BATCH_NORMS = (nn.BatchNorm, nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.SyncBatchNorm)


def set_backbone_frozen(model: nn.Layer, frozen: bool) -> None:
    """Stop (or restore) gradients of every parameter outside the head (the model's
    ``head_names``: ResNet's and EfficientNet's ``fc``, the plain CNN's ``fc1`` and ``fc``)."""
    inner = getattr(model, "_layers", model)  # DataParallel wraps the model
    head = {id(p) for name in inner.head_names for p in getattr(inner, name).parameters()}
    for p in model.parameters():
        if id(p) not in head:
            p.stop_gradient = frozen


def set_train_mode(model: nn.Layer) -> None:
    """``model.train()``, except batch-norm layers whose parameters are all frozen stay in eval
    mode so their running statistics are neither used from the batch nor updated."""
    model.train()
    for layer in model.sublayers():
        params = layer.parameters(include_sublayers=False)
        if isinstance(layer, _BATCH_NORMS) and params and all(p.stop_gradient for p in params):
            layer.eval()


def apply_freeze_schedule(model: nn.Layer, scheduler, cfg: TrainConfig, epoch: int) -> bool:
    """Set up epoch ``epoch`` (0-based) of the freeze schedule; returns whether the backbone is
    frozen. It depends only on the epoch number, so a resumed run picks up the same phase."""
    if cfg.freeze_epochs <= 0:
        return False
    frozen = epoch < cfg.freeze_epochs
    set_backbone_frozen(model, frozen)
    scheduler.base_lr = cfg.lr * (1.0 if frozen else cfg.finetune_lr_scale)
    scheduler.last_lr = scheduler.get_lr()  # the optimizer reads last_lr before the next step()
    if epoch == cfg.freeze_epochs:
        log.info("epoch %d: backbone unfrozen, learning rate x%g", epoch + 1, cfg.finetune_lr_scale)
    return frozen
