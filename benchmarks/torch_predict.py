#!/usr/bin/env python
"""The outside reference for bench_predict.py: the same prediction in PyTorch eager.

It reads a paddle_catdog checkpoint of a basic-block ResNet (resnet10 or resnet18, any width) into
its PyTorch twin (``torch_twin.twin``), preprocesses with the package's own ``build_transform(cfg,
train=False)`` (OpenCV and numpy only: importing it does not load Paddle), decodes in threads ahead
of the model as ``run_predict.py`` does, averages the softmax of each photo and its mirror image
when the checkpoint's config says ``tta``, and prints one JSON line per photo (path, label,
probability, probabilities), like ``run_predict.py --json``. So a whole-process timing of this
script against ``run_predict.py`` compares like with like: same photos, same pixels, same math,
same batch size, same number of math threads.

``--time-batches 1,32`` instead times the model alone on random input (ms per image per batch
size, one JSON line each): bench_predict.py's per-photo figures for PyTorch eager, run in a process
of its own because PyTorch's and Paddle's OpenMP thread pools slow each other down when both
libraries are loaded in one process.

    python benchmarks/torch_predict.py --weights output/best --img ../shared/data/dogs-vs-cats/val
    python benchmarks/torch_predict.py --weights output/best --time-batches 1,32 --iters 20,5
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch
from safetensors.numpy import load_file

from paddle_catdog.config import TrainConfig
from paddle_catdog.data.layouts import IMAGE_EXTENSIONS
from paddle_catdog.transforms import build_transform, read_bytes
from torch_twin import LAYERS, twin

def torch_state(weights: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    """Paddle's ResNet state dict under PyTorch's names: BatchNorm's ``_mean``/``_variance`` are
    ``running_mean``/``running_var``, and a Linear weight is stored (in, out) in Paddle, (out, in)
    in PyTorch."""
    state = {}
    for key, value in weights.items():
        key = key.replace("._mean", ".running_mean").replace("._variance", ".running_var")
        if key == "fc.weight":
            value = value.T
        state[key] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def load_twin(folder: Path) -> Tuple[torch.nn.Module, TrainConfig, List[str]]:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    cfg = TrainConfig.from_dict(meta["config"], strict=False)
    if meta["model"] not in LAYERS:
        sys.exit(f"torch_predict.py has twins of {', '.join(LAYERS)} only, not {meta['model']}")
    model = twin(meta["model"], num_classes=len(meta["classes"]), width=cfg.width, dropout=cfg.dropout)
    missing, unexpected = model.load_state_dict(torch_state(load_file(str(folder / "model.safetensors"))),
                                                strict=False)
    # PyTorch's BatchNorm has a num_batches_tracked counter that Paddle's has not: nothing else may differ
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        sys.exit(f"the checkpoint does not fit the twin: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.eval(), cfg, list(meta["classes"])


def image_paths(inputs: Sequence[str]) -> List[str]:
    paths: List[str] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(str(p) for p in item.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            paths.append(str(item))
    return paths


def batches(paths: List[str], transform, batch_size: int, workers: int) -> Iterator[Tuple[List[str], np.ndarray]]:
    """Batches of preprocessed photos, decoded in ``workers`` threads (OpenCV releases the GIL)
    while the model runs; ``map`` keeps the input order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        images = pool.map(lambda p: transform(read_bytes(p)), paths)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            yield chunk, np.stack([next(images) for _ in chunk])


@torch.inference_mode()
def probabilities(model: torch.nn.Module, batch: np.ndarray, flip_tta: bool) -> np.ndarray:
    x = torch.from_numpy(batch)
    probs = torch.softmax(model(x), dim=1)
    if flip_tta:  # as paddle_catdog.models.Probabilities: the mean of the two views' softmax
        probs = (probs + torch.softmax(model(torch.flip(x, dims=[3])), dim=1)) / 2
    return probs.numpy()


def time_batches(model: torch.nn.Module, cfg: TrainConfig, batch_sizes: List[int], iters: List[int]) -> None:
    """Print the mean ms per image of ``probabilities`` at each batch size (2 untimed passes first)."""
    size = cfg.image_size
    for batch_size, n in zip(batch_sizes, iters):
        x = np.random.default_rng(0).standard_normal((batch_size, 3, size, size)).astype(np.float32)
        for _ in range(2):
            probabilities(model, x, cfg.tta)
        start = time.perf_counter()
        for _ in range(n):
            probabilities(model, x, cfg.tta)
        ms = 1000 * (time.perf_counter() - start) / n / batch_size
        print(json.dumps({"batch": batch_size, "iters": n, "ms_per_image": round(ms, 3)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a paddle_catdog checkpoint folder of a resnet10 or resnet18")
    parser.add_argument("--img", action="append", help="an image or a folder; repeat for more")
    parser.add_argument("--time-batches", default=None, help="instead of predicting, time these batch "
                        "sizes (comma-separated) on random input at the checkpoint's image size")
    parser.add_argument("--iters", default="20", help="timed passes per batch size (comma-separated, or one for all)")
    parser.add_argument("--batch-size", type=int, default=16, help="as run_predict.py's default")
    parser.add_argument("--threads", type=int, default=0, help="math threads (0: one per core)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(args.threads or cores)
    model, cfg, classes = load_twin(Path(args.weights))
    if args.time_batches:
        sizes = [int(v) for v in args.time_batches.split(",")]
        iters = [int(v) for v in args.iters.split(",")]
        return time_batches(model, cfg, sizes, iters * len(sizes) if len(iters) == 1 else iters)
    if not args.img:
        parser.error("--img is required (or --time-batches)")
    transform = build_transform(cfg, train=False)
    for chunk, batch in batches(image_paths(args.img), transform, args.batch_size, min(4, cores)):
        for path, probs in zip(chunk, probabilities(model, batch, cfg.tta)):
            k = int(probs.argmax())
            print(json.dumps({"path": path, "label": classes[k], "probability": float(probs[k]),
                              "probabilities": {c: float(p) for c, p in zip(classes, probs)}}))


if __name__ == "__main__":
    main()
