"""Prediction through Paddle Inference: the exported static graph (see export.py), run by Paddle's
C++ predictor with oneDNN on CPU, or on the GPU where Paddle has CUDA and sees one.

``InferencePredictor`` takes an exported folder, or a training checkpoint that it exports on the
fly (cached beside it, ``<checkpoint>.inference/``). It shares preprocessing, batching and the result
format with the dygraph ``Predictor`` through ``predict.BasePredictor``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import checkpoint as ckpt
from ..runtime import choose_device
from ..static_graph import PRECISIONS, StaticRunner, fast_bf16, resolve_precision
from ..transforms import build_transform
from .export import MODEL_PREFIX, ensure_exported, read_export_meta
from .predictor import BasePredictor

__all__ = ["InferencePredictor", "PRECISIONS", "fast_bf16", "resolve_precision"]


class InferencePredictor(BasePredictor):
    """Load an exported model (or export a checkpoint) once, then classify images."""

    def __init__(self, weights: str, device: str = "auto", num_threads: int = 0,
                 precision: str = "auto") -> None:
        chosen = choose_device(device)  # validates --device gpu; Paddle's global device stays
        self.precision = resolve_precision(precision, chosen)
        self.folder = ensure_exported(Path(weights))
        self.cfg, self.classes, self.meta = read_export_meta(self.folder)
        self.transform = build_transform(self.cfg, train=False)
        try:
            self.runner = StaticRunner(self.folder / MODEL_PREFIX, chosen, num_threads, self.precision)
        except Exception as e:  # the C++ side raises several types for a damaged graph
            raise ckpt.CheckpointError(f"{self.folder}: Paddle Inference cannot load the model ({e})") from e

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities (softmax is part of the graph)."""
        probs = self.runner.run(batch)
        if self.precision == "bf16":  # bf16 softmax sums to 1 only to ~3 digits: renormalize
            probs = probs.astype(np.float32) / probs.sum(axis=1, keepdims=True, dtype=np.float32)
        return probs
