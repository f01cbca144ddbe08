"""The entry points: ``run_train.py`` and ``run_predict.py`` at the top of the repository, the
console scripts ``catdog-train``, ``-predict``, ``-evaluate``, ``-export`` and ``-data``, and
``python -m paddle_catdog COMMAND``. Each parses its command line, calls the package, and turns
every expected failure into one ``error:`` line on stderr and exit code 2 (``_run``)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Callable, Optional, Sequence

from . import evaluate as evaluation
from .checkpoint import CheckpointError
from .config import add_config_arguments, config_from_args
from .data import download
from .data.layouts import DataError
from .demo import command as demonstration
from .predict import command as prediction
from .predict import export as exporting
from .runtime import command_logging, setup_logging
from .train import fit, prepare_config
from .train.loop import TrainingError

# What a user can cause (a bad path, option or file) rather than a bug: one line, no traceback.
EXPECTED = (DataError, CheckpointError, TrainingError, ValueError, OSError)


def _terminated(signum: int, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, Slurm, Kubernetes) takes Ctrl-C's path


def _run(command: Callable[[], int], interrupted: str = "interrupted") -> int:
    """The one error path of every command; ``interrupted`` is what Ctrl-C (or SIGTERM, how
    schedulers stop a job) prints. Both unwind the command like an exception, so the last
    checkpoint stays whole, data loader workers are shut down and the output lock is released;
    without this handler SIGTERM would end Paddle in a C++ abort with its workers orphaned."""
    previous = signal.getsignal(signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:  # signal handlers can only be set there
        signal.signal(signal.SIGTERM, _terminated)
    try:
        with command_logging():
            return command()
    except EXPECTED as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


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


def predict_main(argv: Optional[Sequence[str]] = None) -> int:
    # A file name that is not UTF-8 reaches Python with surrogates in it; print it back as its
    # original bytes (as ls does) instead of failing on the first such name.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = prediction.build_parser().parse_args(argv)
    return _run(lambda: prediction.predict(args))


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
