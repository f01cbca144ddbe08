#!/usr/bin/env python
"""What decoding upright and refusing oversized images costs: microseconds per photo for the
header size check alone (``imagesize.declared_size``), for ``transforms.Decode`` (the check, then
``IMREAD_COLOR | IMREAD_ANYDEPTH``, which applies EXIF orientation, then RGB), and for the plain
``cv2.imdecode(..., IMREAD_UNCHANGED)`` + BGR->RGB that Decode used before; same run, one OpenCV
thread, the best of ``--repeats`` passes over photos already in memory (no disk).

    python benchmarks/bench_decode.py --data ../shared/data/dogs-vs-cats     # or set CATDOG_DATA
    python benchmarks/bench_decode.py --quick
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List

import cv2
import numpy as np
from _common import emit

from paddle_catdog.data.layouts import DataError, find_samples, resolve_splits
from paddle_catdog.imagesize import declared_size
from paddle_catdog.transforms import Decode, read_bytes


def best_us(fns: Dict[str, Callable[[bytes], object]], blobs: List[bytes], repeats: int) -> Dict[str, float]:
    """Microseconds per photo for each of ``fns``: the fastest of ``repeats`` passes over
    ``blobs``, the passes of the functions interleaved so that a noisy moment hits all of them."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for blob in blobs:
                fn(blob)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: t / len(blobs) * 1e6 for name, t in best.items()}


def before(blob: bytes) -> np.ndarray:
    """Decode before the EXIF change: stored pixels as they are, BGR -> RGB."""
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, ::-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("CATDOG_DATA"), help="photo folder (val/ is used)")
    parser.add_argument("--images", type=int, default=1000, help="photos to decode")
    parser.add_argument("--repeats", type=int, default=5, help="passes; the fastest counts")
    parser.add_argument("--quick", action="store_true", help="100 photos, 1 pass: a smoke test")
    args = parser.parse_args()
    if not args.data:
        print("error: pass --data (or set CATDOG_DATA)", file=sys.stderr)
        return 2
    n, repeats = (100, 1) if args.quick else (args.images, args.repeats)
    try:
        train, val = resolve_splits(args.data)
        samples = find_samples(val or train).samples[:n]
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    blobs = [read_bytes(path) for path, _ in samples]
    cv2.setNumThreads(1)
    us = best_us({"before": before, "header": declared_size, "now": Decode()}, blobs, repeats)
    emit("decode", images=len(blobs), us_header_check=round(us["header"], 1),
         us_decode_before=round(us["before"], 1), us_decode_now=round(us["now"], 1),
         ratio_now_over_before=round(us["now"] / us["before"], 3), quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
