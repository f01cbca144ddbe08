"""The entry points: ``run_train.py`` and ``run_predict.py`` at the top of the repository, the
console scripts ``catdog-train``, ``-predict``, ``-evaluate``, ``-export``, ``-data`` and ``-demo``,
and ``python -m paddle_catdog COMMAND``. Each parses its command line, calls the package, and turns
every expected failure into one ``error:`` line on stderr and exit code 2 (``entry.run_command``;
prediction's command lives there, so it can start without loading the others)."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from . import evaluate as evaluation
from .config import add_config_arguments, config_from_args
from .data import download
from .demo import command as demonstration
from .entry import EXPECTED, predict_main, run_command
from .predict import export as exporting
from .runtime import setup_logging
from .train import fit, prepare_config
from .train.loop import TrainingError

__all__ = ["main", "train_main", "predict_main", "evaluate_main", "export_main", "data_main", "demo_main"]


def _run(command: Callable[[], int], interrupted: str = "interrupted") -> int:
    """``entry.run_command``, with the trainer's errors among the expected ones."""
    return run_command(command, interrupted, EXPECTED + (TrainingError,))


def build_train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_train.py",
        description="Train a cat-vs-dog (or any N-class) image classifier with PaddlePaddle. "
                    "Example: python run_train.py --download, or --data-dir YOUR/PHOTOS")
    add_config_arguments(parser)
    # Evaluation options stay out of TrainConfig: they describe no training run.
    group = parser.add_argument_group("evaluate instead of training (catdog-evaluate)")
    group.add_argument("--eval-only", action="store_true",
                       help="evaluate --weights on the val split (or --data-dir) and exit")
    evaluation.add_eval_arguments(group)
    return parser


def train_main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_train_parser().parse_args(argv)
    cfg, typed = config_from_args(args)
    if args.eval_only:
        # the training options typed here (data dir, batch size, device, workers, output) pass
        # through; the rest comes from the checkpoint
        return _run(lambda: evaluation.evaluate(
            argparse.Namespace(weights=args.weights, out_dir=args.out_dir, vdl=args.vdl,
                               data_dir=cfg.data_dir, batch_size=getattr(args, "batch_size", None),
                               device=cfg.device, num_workers=getattr(args, "num_workers", 0)),
            output=cfg.output, progress=cfg.progress))

    def train() -> int:
        given = {k: getattr(cfg, k) for k in typed}  # what was typed: the presets fill in the rest
        if cfg.download:
            setup_logging()
            given["data_dir"] = str(download.prepare(download.PETIMAGES_URL,
                                                     cfg.data_dir or download.DOWNLOAD_DEST,
                                                     progress=cfg.progress))
        fit(prepare_config(**given))
        return 0
    return _run(train, interrupted="interrupted: the last finished epoch is in the 'last' "
                                   "checkpoint; continue with --resume")


def evaluate_main(argv: Optional[Sequence[str]] = None) -> int:
    args = evaluation.build_parser().parse_args(argv)
    return _run(lambda: evaluation.evaluate(args))


def export_main(argv: Optional[Sequence[str]] = None) -> int:
    args = exporting.build_parser().parse_args(argv)
    return _run(lambda: exporting.export(args))


def data_main(argv: Optional[Sequence[str]] = None) -> int:
    args = download.build_parser().parse_args(argv)
    setup_logging()

    def get() -> int:
        print(download.prepare(args.url, args.dest, args.sha256, not args.keep_bad, args.progress,
                               args.keep_archive))
        return 0
    return _run(get)


def demo_main(argv: Optional[Sequence[str]] = None) -> int:
    args = demonstration.build_parser().parse_args(argv)
    setup_logging()
    return _run(lambda: demonstration.serve(args))


COMMANDS = {"train": train_main, "predict": predict_main, "evaluate": evaluate_main,
            "export": export_main, "data": data_main, "demo": demo_main}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m paddle_catdog COMMAND [options]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m paddle_catdog {{{','.join(COMMANDS)}}} [options]  (--help after "
              "the command lists its options)", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])
