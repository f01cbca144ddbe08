"""Command-line entry points behind ``run_train.py`` and ``run_predict.py``: parse, call the
package, and turn expected failures into one line on stderr with exit code 2."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Optional, Sequence, Set, Tuple

# Quiet Paddle's C++ info logs and an import-time warning about ccache (a compiler cache that
# only matters for building custom operators); both would bury our own output.
os.environ.setdefault("GLOG_minloglevel", "2")
# OpenCV prints its own multi-line warnings for files it cannot decode; we report each such file
# once, with the reason, so they would only break the one-line-per-error output.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
warnings.filterwarnings("ignore", message=".*ccache.*")
warnings.filterwarnings("ignore", message=".*always track global mean and variance.*")


def build_train_parser() -> argparse.ArgumentParser:
    from .config import add_config_arguments
    parser = argparse.ArgumentParser(
        prog="run_train.py",
        description="Train a cat-vs-dog (or any N-class) image classifier with PaddlePaddle. "
                    "Example: python run_train.py --data-dir ../shared/data/dogs-vs-cats")
    add_config_arguments(parser)
    # Evaluation options stay out of TrainConfig: they describe no training run.
    from .evaluate import add_eval_arguments
    group = parser.add_argument_group("evaluate instead of training (python -m paddle_catdog.evaluate)")
    group.add_argument("--eval-only", action="store_true",
                       help="evaluate --weights on the val split (or --data-dir) and exit")
    add_eval_arguments(group)
    return parser


def parse_train_args(argv: Optional[Sequence[str]] = None):
    """Return (TrainConfig, names of the options given explicitly on the command line)."""
    from .config import config_from_args
    parser = build_train_parser()
    args = parser.parse_args(argv)
    # A second parse with every default suppressed tells which options the user actually typed.
    probe = build_train_parser()
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    explicit: Set[str] = set(vars(probe.parse_args(argv)))
    return config_from_args(args), explicit


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def train_main(argv: Optional[Sequence[str]] = None) -> int:
    cfg, explicit = parse_train_args(argv)
    if "eval_only" in explicit:
        return _eval_main(argv, cfg, explicit)
    from .checkpoint import CheckpointError
    from .dataset import DataError
    from .engine import TrainingError, fit
    try:
        if cfg.download:
            from .data import DEFAULT_DEST, PETIMAGES_URL, prepare
            cfg.data_dir = str(prepare(PETIMAGES_URL, cfg.data_dir or DEFAULT_DEST, progress=cfg.progress))
        fit(cfg, explicit)
    except (DataError, CheckpointError, TrainingError, ValueError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted: the last finished epoch is in the 'last' checkpoint; "
              "continue with --resume", file=sys.stderr)
        return 130
    return 0


def _eval_main(argv: Optional[Sequence[str]], cfg, explicit: Set[str]) -> int:
    """``run_train.py --eval-only``: the training options typed here (data dir, batch size,
    device, workers, output) pass through; the rest comes from the checkpoint."""
    from .evaluate import run
    args = build_train_parser().parse_args(argv)
    return run(args.weights, output=cfg.output, out_dir=args.out_dir, vdl=args.vdl,
               data_dir=cfg.data_dir if "data_dir" in explicit else None,
               batch_size=cfg.batch_size if "batch_size" in explicit else None,
               device=cfg.device, num_workers=cfg.num_workers if "num_workers" in explicit else 0,
               progress=cfg.progress)


def predict_main(argv: Optional[Sequence[str]] = None) -> int:
    from .predict import main
    # A file name that is not UTF-8 reaches Python with surrogates in it; print it back as its
    # original bytes (as ls does) instead of failing on the first such name.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    return main(argv)
