"""The process around the model: logging, the device and its math threads, seeds, and counting
parameters. Training, prediction, evaluation and export all start here."""
from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from typing import Iterator

import numpy as np
import paddle


log = logging.getLogger("paddle_catdog")


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    return handler


@contextlib.contextmanager
def command_logging() -> Iterator[None]:
    """While a command runs (it owns the process): the ``paddle_catdog`` logger writes timestamped
    lines to stderr itself and does not propagate (Paddle puts a handler of its own on the root
    logger at import, which would print every line again in its format). Restored afterwards, so
    a caller of the command in-process (a test, a notebook) keeps its logging as it was."""
    saved = (log.propagate, list(log.handlers), log.level)
    log.handlers, log.propagate = [_stderr_handler()], False
    try:
        yield
    finally:
        log.propagate, log.handlers, log.level = saved[0], saved[1], saved[2]


def setup_logging(level: int = logging.INFO) -> None:
    """Show the ``paddle_catdog`` logger's messages from ``level`` on: as timestamped lines on
    stderr when nobody configured logging (a command, a plain notebook), else through the
    handlers the caller set up (it keeps propagating; nothing else is touched)."""
    if not log.hasHandlers():  # no handler here nor on the root logger
        log.addHandler(_stderr_handler())
    log.setLevel(level)


def choose_device(device: str = "auto") -> str:
    """'cpu' or 'gpu' for ``device`` ('auto', 'cpu', 'gpu'), changing nothing: 'gpu' needs a CUDA
    build and a visible GPU."""
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "gpu" and not has_gpu:
        raise ValueError("--device gpu: this Paddle build has no CUDA or no GPU is visible "
                         "(install paddlepaddle-gpu, see docs/en/gpu.md)")
    return "gpu" if device == "gpu" or (device == "auto" and has_gpu) else "cpu"


def setup_device(device: str = "auto", num_threads: int = 0) -> str:
    """Pick and set the process's Paddle device and CPU math threads: for what owns the process
    (a command, a training run). Predictors leave both alone (``choose_device``)."""
    chosen = choose_device(device)
    paddle.set_device(chosen)
    if chosen == "cpu":
        # Paddle's default CPU thread count oversubscribes small machines; one math thread per
        # core was fastest in benchmarks/README.md.
        paddle.base.core.set_num_threads(num_threads or os.cpu_count() or 1)
    return chosen


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def count_params(layer: paddle.nn.Layer) -> int:
    """Number of values in the layer's parameters (trainable or not)."""
    return sum(int(np.prod(p.shape)) for p in layer.parameters())
