"""What both prediction engines share (``BasePredictor``: preprocessing, batching with decoding
running ahead in threads, the result format) and the plain dygraph one (``Predictor``).
Preprocessing is ``build_transform(cfg, train=False)``, the same function evaluation uses, rebuilt
from the config stored beside the weights."""
from __future__ import annotations

import dataclasses
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import numpy as np
import paddle

from .. import checkpoint as ckpt
from ..config import TrainConfig
from ..models import Probabilities
from ..runtime import choose_device
from ..transforms import ImageDecodeError, build_transform, read_bytes

T = TypeVar("T")


class BasePredictor:
    """What both engines share: preprocessing with ``build_transform(cfg, train=False)``, batching
    with decoding running ahead in threads, and the result format. Subclasses set ``cfg``,
    ``classes`` and ``transform`` and implement ``predict_batch``."""

    cfg: TrainConfig
    classes: List[str]

    def limit_image_pixels(self, limit: int) -> None:
        """Refuse images whose header declares more than ``limit`` pixels (--max-image-pixels),
        before decoding them; the checkpoint's own setting applies otherwise."""
        self.cfg = dataclasses.replace(self.cfg, max_image_pixels=limit)
        self.transform = build_transform(self.cfg, train=False)

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
        # the model lives on its own device; Paddle's global device and threads stay as they are
        self.place = paddle.CUDAPlace(0) if choose_device(device) == "gpu" else paddle.CPUPlace()
        self.model, self.cfg, self.classes, self.meta = ckpt.load_model(Path(weights))
        self.model.to(device=self.place)
        self.head = Probabilities(self.model, self.cfg.tta)  # softmax (+ flip averaging)
        self.transform = build_transform(self.cfg, train=False)

    @paddle.no_grad()
    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities."""
        return self.head(paddle.to_tensor(batch, place=self.place)).numpy()
