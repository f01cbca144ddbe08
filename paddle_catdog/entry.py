"""The one error path of every command (``run_command``) and the prediction command, which needs
nothing else: ``cli.py`` builds the other commands on the same path, and ``launch_predict.py``
starts prediction from here without loading them."""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, Optional, Sequence, Tuple, Type

from .predict import command as prediction
from .runtime import command_logging

# What a user can cause (a bad path, option or file) rather than a bug: one line, no traceback.
# DataError and CheckpointError are ValueErrors; cli.py adds the trainer's TrainingError.
EXPECTED: Tuple[Type[BaseException], ...] = (ValueError, OSError)


def _terminated(signum: int, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, Slurm, Kubernetes) takes Ctrl-C's path


def run_command(command: Callable[[], int], interrupted: str = "interrupted",
                expected: Tuple[Type[BaseException], ...] = EXPECTED) -> int:
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
    except expected as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def predict_main(argv: Optional[Sequence[str]] = None) -> int:
    # A file name that is not UTF-8 reaches Python with surrogates in it; print it back as its
    # original bytes (as ls does) instead of failing on the first such name.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = prediction.build_parser().parse_args(argv)
    return run_command(lambda: prediction.predict(args))
