"""Helpers shared by the benchmark scripts: one JSON line per figure, timing, option lists. The
package is installed (``pip install -e .``); importing it quiets Paddle's C++ logs."""
from __future__ import annotations

import json
import os
import time
from typing import Callable, List

import paddle_catdog  # noqa: F401  (first: it quiets Paddle's C++ logs before Paddle loads)


def emit(bench: str, **fields) -> None:
    """One figure: a JSON object on its own line (``quick`` marks figures not to be quoted)."""
    print(json.dumps({"bench": bench, **fields}), flush=True)


def seconds_per_call(fn: Callable[[], object], iters: int, warmup: int = 1) -> float:
    """Mean wall time of ``fn`` over ``iters`` calls after ``warmup`` untimed ones (oneDNN and
    Paddle build their kernels on the first calls)."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / max(iters, 1)


def int_list(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def str_list(text: str) -> List[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
