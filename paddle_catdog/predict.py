"""Prediction from a checkpoint or exported folder: ``Predictor`` (dygraph) and
``inference.InferencePredictor`` (Paddle Inference) for code and notebooks, ``load_predictor`` to
pick one, ``main`` for ``run_predict.py``. Preprocessing is ``build_transform(cfg, train=False)``,
the same function evaluation uses, rebuilt from the config stored beside the weights."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import numpy as np
import paddle

from . import checkpoint as ckpt
from .config import TrainConfig
from .dataset import IMAGE_EXTENSIONS, is_image_file
from .models import Probabilities
from .transforms import ImageDecodeError, build_transform, read_bytes

DEFAULT_OUTPUT = "output"
T = TypeVar("T")


class BasePredictor:
    """What both engines share: preprocessing with ``build_transform(cfg, train=False)``, batching
    with decoding running ahead in threads, and the result format. Subclasses set ``cfg``,
    ``classes`` and ``transform`` and implement ``predict_batch``."""

    cfg: TrainConfig
    classes: List[str]

    def preprocess(self, path: str) -> np.ndarray:
        try:
            return self.transform(read_bytes(path))
        except OSError as e:
            raise ImageDecodeError(f"cannot read: {e.strerror or e}") from e

    def _load(self, path: str) -> Tuple[Optional[np.ndarray], Optional[str]]:
        try:
            return self.preprocess(path), None
        except ImageDecodeError as e:
            return None, str(e)

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities."""
        raise NotImplementedError

    def predict_paths(self, paths: Sequence[str], batch_size: int = 16, workers: int = 0
                      ) -> Iterator[Tuple[str, Optional[np.ndarray], Optional[str]]]:
        """Yield (path, probabilities, None) or (path, None, error) for each path, in order.
        Images decode in ``workers`` threads (0: up to 4) up to two batches ahead, so the next
        batch is being decoded while this one runs through the model."""
        pending: List[Tuple[str, Optional[np.ndarray], Optional[str]]] = []
        n_images = 0
        loaded = decode_ahead(self._load, paths, workers or min(4, os.cpu_count() or 1), 2 * batch_size)
        for path, (image, error) in loaded:
            pending.append((path, image, error))
            n_images += image is not None
            if n_images >= batch_size:
                yield from self._flush(pending)
                pending, n_images = [], 0
        yield from self._flush(pending)

    def _flush(self, pending):
        """Run the batch and yield every pending item in its input order (failed ones included,
        so one bad file does not split the batch)."""
        images = [x for _, x, _ in pending if x is not None]
        probs = iter(self.predict_batch(np.stack(images)) if images else [])
        for path, image, error in pending:
            yield (path, None, error) if image is None else (path, next(probs), None)

    def result(self, path: str, probs: np.ndarray) -> Dict[str, object]:
        k = int(probs.argmax())
        return {"path": path, "label": self.classes[k], "probability": float(probs[k]),
                "probabilities": {c: float(p) for c, p in zip(self.classes, probs)}}


def decode_ahead(fn: Callable[[str], T], items: Iterable[str], workers: int, ahead: int
                 ) -> Iterator[Tuple[str, T]]:
    """Yield (item, fn(item)) in order while up to ``ahead`` later items run in a thread pool
    (OpenCV releases the GIL while decoding and resizing, so threads really run in parallel)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        queue: Deque[Tuple[str, Future]] = deque()
        for item in items:
            queue.append((item, pool.submit(fn, item)))
            if len(queue) > ahead:
                done, future = queue.popleft()
                yield done, future.result()
        while queue:
            done, future = queue.popleft()
            yield done, future.result()


class Predictor(BasePredictor):
    """The plain dygraph path: load a checkpoint once, then classify images."""

    def __init__(self, weights: str, device: str = "auto") -> None:
        from .engine import setup_device
        setup_device(device)
        self.model, self.cfg, self.classes, self.meta = ckpt.load_model(Path(weights))
        self.head = Probabilities(self.model, self.cfg.tta)  # softmax (+ flip averaging)
        self.transform = build_transform(self.cfg, train=False)

    @paddle.no_grad()
    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities."""
        return self.head(paddle.to_tensor(batch)).numpy()


ENGINES = ("inference", "dygraph")
# Paddle Inference arithmetic on CPU; inference.resolve_precision says what 'auto' picks.
PRECISIONS = ("auto", "fp32", "bf16")


def load_predictor(weights: str, engine: str = "inference", device: str = "auto",
                   precision: str = "auto") -> BasePredictor:
    """Paddle Inference (a training checkpoint is exported on the fly, cached) at ``precision``
    (see ``inference.resolve_precision``), or plain dygraph (needs a training checkpoint, fp32)."""
    from .export import is_exported
    if engine == "inference":
        from .inference import InferencePredictor
        return InferencePredictor(weights, device, precision=precision)
    if engine != "dygraph":
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if is_exported(Path(weights)) and not (Path(weights) / ckpt.WEIGHTS).is_file():
        raise ckpt.CheckpointError(f"{weights} is an exported model: use --engine inference "
                                   "(--engine dygraph needs a training checkpoint)")
    return Predictor(weights, device)


def find_default_weights(output: str = DEFAULT_OUTPUT) -> Path:
    """The newest ``best`` checkpoint under ``output`` (``output/best`` or ``output/*/best``)."""
    root = Path(output)
    found = [p.parent for p in list(root.glob(f"best/{ckpt.META}")) + list(root.glob(f"*/best/{ckpt.META}"))]
    if not found:
        raise ckpt.CheckpointError(f"no checkpoint found under {root}/: train first "
                                   "(python run_train.py --data-dir ...) or pass --weights")
    return max(found, key=lambda p: (p / ckpt.META).stat().st_mtime)


def expand_inputs(inputs: Sequence[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Files stay as given; folders give their image files (sorted, recursive). Returns paths
    and (path, error) for inputs that do not exist or hold no images."""
    paths, errors = [], []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(str(f) for f in p.rglob("*") if is_image_file(f))
            if files:
                paths += files
            else:
                errors.append((item, f"no images in folder (looked for {', '.join(IMAGE_EXTENSIONS)})"))
        elif p.exists():
            paths.append(item)
        else:
            errors.append((item, "no such file"))
    return paths, errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_predict.py", description="Classify images with a trained checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--img", action="append", required=True, metavar="PATH",
                        help="an image file or a folder of images; repeat for more")
    parser.add_argument("--weights", default=None,
                        help="training checkpoint or exported model folder (default: the newest "
                             f"best/ under {DEFAULT_OUTPUT}/)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line: path, label, probability, probabilities")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="where to run")
    parser.add_argument("--engine", default="inference", choices=ENGINES,
                        help="inference: Paddle Inference (oneDNN on CPU) on the exported model, "
                             "exported on the fly from a checkpoint and cached in <checkpoint>/"
                             "inference/; dygraph: the plain training-time model")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="Paddle Inference arithmetic on CPU: auto is bf16 where the CPU has "
                             "native bfloat16 (AMX, AVX512-BF16; ~3x faster, same accuracy on val/), "
                             "else fp32; fp32 matches the dygraph model to 1e-4")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        print(f"error: --batch-size must be at least 1 (got {args.batch_size})", file=sys.stderr)
        return 2
    try:
        weights = Path(args.weights) if args.weights else find_default_weights()
        predictor = load_predictor(str(weights), args.engine, args.device, args.precision)
    except (ckpt.CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths, errors = expand_inputs(args.img)
    for path, reason in errors:
        print(f"error: {path}: {reason}", file=sys.stderr)
    failed = bool(errors)
    for path, probs, error in predictor.predict_paths(paths, args.batch_size):
        if error is not None:
            print(f"error: {path}: {error}", file=sys.stderr)
            failed = True
            continue
        r = predictor.result(path, probs)
        if args.json:
            print(json.dumps(r, ensure_ascii=False), flush=True)
        else:
            print(f"{path}\t{r['label']}\t{r['probability']:.4f}", flush=True)
    return 2 if failed else 0
