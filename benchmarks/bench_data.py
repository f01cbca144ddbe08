#!/usr/bin/env python
"""Data loading speed: decoded-and-augmented images/s for one worker, and for the whole
DataLoader with N workers, through the project's own ``ImageDataset``, ``build_transform(cfg,
train=True)`` and ``engine.make_loader`` (the loader training uses).

Compare the loader figure with bench_train.py's images/s for the same model and size: the loader
must be faster, or training waits for it.

    python benchmarks/bench_data.py --data ../shared/data/dogs-vs-cats      # or set CATDOG_DATA
    python benchmarks/bench_data.py --data DIR --workers 0,1,2,4 --sizes 64,128
    python benchmarks/bench_data.py --quick

Each figure is given twice: decoding every photo (``source=decode``) and from the photos decoded
once into memory (``source=cached``, data/cache.py), with the cache's own decode rate and size.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from _common import emit, int_list

from paddle_catdog.config import TrainConfig
from paddle_catdog.data.cache import decode_once
from paddle_catdog.data.layouts import DataError, SampleSet, find_samples, resolve_splits
from paddle_catdog.data.loader import ImageDataset
from paddle_catdog.data.loader import make_loader
from paddle_catdog.transforms import build_transform


def per_worker(samples: SampleSet, cfg: TrainConfig, n: int, images=None) -> float:
    """Images/s of one process doing what each loader worker does: read, decode, augment (with
    ``images``, the photos decoded once: augment only)."""
    dataset = ImageDataset(samples.samples, build_transform(cfg, train=True, decode=images is None),
                           samples.classes, images)
    n = min(n, len(dataset))
    start = time.perf_counter()
    for i in range(n):
        dataset[i]
    return n / (time.perf_counter() - start)


def whole_loader(samples: SampleSet, cfg: TrainConfig, batches: int, images=None) -> tuple:
    """(images/s after the first batch, seconds to the first batch) of the training loader."""
    start = time.perf_counter()
    seen, first = 0, 0.0
    for i, (images, _) in enumerate(make_loader(samples, cfg, train=True, images=images)):
        if i == 0:  # worker start-up is paid once per epoch; keep it apart from the rate
            first = time.perf_counter() - start
            start = time.perf_counter()
            continue
        seen += int(images.shape[0])
        if i >= batches:
            break
    return seen / max(time.perf_counter() - start, 1e-9), first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("CATDOG_DATA"),
                        help="image folder or data root with train/ (default: $CATDOG_DATA)")
    parser.add_argument("--workers", type=int_list, default="0,1,2", help="loader worker counts")
    parser.add_argument("--sizes", type=int_list, default="64,128", help="input sizes in pixels")
    parser.add_argument("--batch", type=int, default=TrainConfig.batch_size, help="batch size")
    parser.add_argument("--images", type=int, default=600, help="images timed in the per-worker figure")
    parser.add_argument("--batches", type=int, default=12, help="batches timed per loader figure")
    parser.add_argument("--quick", action="store_true", help="a few images and batches: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.images, args.batches, args.batch, args.workers = 32, 2, 8, [0, 1]
    if not args.data:
        print("error: no data: pass --data DIR or set CATDOG_DATA", file=sys.stderr)
        return 2
    try:
        train, _ = resolve_splits(args.data)
        samples = find_samples(train)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = min(args.images, len(samples.samples))
    for size in args.sizes:
        cfg = TrainConfig(data_dir=args.data, image_size=size, batch_size=args.batch, progress=False)
        # the photos decoded once (what training does when they fit in --cache-mb), timed
        subset = SampleSet(samples.samples[:max(n, args.batch * (args.batches + 1))], samples.classes, samples.layout)
        start = time.perf_counter()
        cached = decode_once(subset.samples, cfg)
        emit("data_cache", image_size=size, images=len(subset.samples),
             images_per_s=round(len(subset.samples) / (time.perf_counter() - start), 1),
             mb=round(sum(img.nbytes for img in cached) / 2 ** 20, 1), quick=args.quick)
        for label, source in (("decode", None), ("cached", cached)):
            emit("data_worker", image_size=size, images=n, source=label,
                 images_per_s=round(per_worker(subset, cfg, n, source), 1), quick=args.quick)
            for workers in args.workers:
                cfg.num_workers = workers
                rate, first = whole_loader(subset, cfg, args.batches, source)
                emit("data_loader", image_size=size, workers=workers, batch=cfg.batch_size, source=label,
                     batches=args.batches, images_per_s=round(rate, 1), first_batch_s=round(first, 2),
                     quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
