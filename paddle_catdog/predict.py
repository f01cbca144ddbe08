"""Prediction from a checkpoint folder: ``Predictor`` for code and notebooks, ``main`` for
``run_predict.py``. Preprocessing is ``build_transform(cfg, train=False)``, the same function
evaluation uses, rebuilt from the config stored in the checkpoint."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from . import checkpoint as ckpt
from .dataset import IMAGE_EXTENSIONS, is_image_file
from .transforms import ImageDecodeError, build_transform, read_bytes

DEFAULT_OUTPUT = "output"


class Predictor:
    """Load a checkpoint once, then classify images (paths or RGB arrays)."""

    def __init__(self, weights: str, device: str = "auto") -> None:
        from .engine import setup_device
        setup_device(device)
        self.model, self.cfg, self.classes, self.meta = ckpt.load_model(Path(weights))
        self.transform = build_transform(self.cfg, train=False)

    def preprocess(self, path: str) -> np.ndarray:
        try:
            return self.transform(read_bytes(path))
        except OSError as e:
            raise ImageDecodeError(f"cannot read: {e.strerror or e}") from e

    @paddle.no_grad()
    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities."""
        logits = self.model(paddle.to_tensor(batch))
        return F.softmax(logits.astype("float32"), axis=1).numpy()

    def predict_paths(self, paths: Sequence[str], batch_size: int = 16
                      ) -> Iterator[Tuple[str, Optional[np.ndarray], Optional[str]]]:
        """Yield (path, probabilities, None) or (path, None, error) for each path, in order."""
        pending: List[Tuple[str, np.ndarray]] = []
        for path in list(paths) + [None]:
            if path is not None:
                try:
                    pending.append((path, self.preprocess(path)))
                except ImageDecodeError as e:
                    yield from self._flush(pending)
                    pending = []
                    yield path, None, str(e)
                    continue
            if pending and (path is None or len(pending) >= batch_size):
                yield from self._flush(pending)
                pending = []

    def _flush(self, pending):
        if pending:
            probs = self.predict_batch(np.stack([x for _, x in pending]))
            for (p, _), pr in zip(pending, probs):
                yield p, pr, None

    def result(self, path: str, probs: np.ndarray) -> Dict[str, object]:
        k = int(probs.argmax())
        return {"path": path, "label": self.classes[k], "probability": float(probs[k]),
                "probabilities": {c: float(p) for c, p in zip(self.classes, probs)}}


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
                        help=f"checkpoint folder (default: the newest best/ under {DEFAULT_OUTPUT}/)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line: path, label, probability, probabilities")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="where to run")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        print(f"error: --batch-size must be at least 1 (got {args.batch_size})", file=sys.stderr)
        return 2
    try:
        weights = Path(args.weights) if args.weights else find_default_weights()
        predictor = Predictor(str(weights), args.device)
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
