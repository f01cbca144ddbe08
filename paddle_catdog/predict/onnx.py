"""ONNX: ``catdog-export --format onnx`` and ``run_predict.py --engine onnxruntime``.

The exported Paddle graph (export.py: softmax and flip TTA included, a free batch size) is
converted by paddle2onnx into ``model.onnx`` beside it, in the same folder as ``export.json``
(classes, input size, mean and std), so a server or phone without Paddle can run it.
``OnnxPredictor`` runs it with ONNX Runtime on the CPU, through the same preprocessing and result
format as the other engines (``BasePredictor``). Both packages are the optional extra
``pip install -e ".[onnx]"``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import checkpoint as ckpt
from ..transforms import build_transform
from .export import ONNX_FILE, ensure_exported, export_onnx, is_exported, read_export_meta, require
from .predictor import BasePredictor

class OnnxPredictor(BasePredictor):
    """``model.onnx`` of an exported folder (exported and converted on the fly from a training
    checkpoint, cached beside it like Paddle Inference's export), run by ONNX Runtime on the CPU."""

    def __init__(self, weights: str, num_threads: int = 0) -> None:
        ort = require("onnxruntime")
        given_export = is_exported(Path(weights))
        self.folder = ensure_exported(Path(weights))
        self.cfg, self.classes, self.meta = read_export_meta(self.folder)
        self.transform = build_transform(self.cfg, train=False)
        path = self.folder / ONNX_FILE
        if not path.is_file() and given_export:  # a folder the user exported: theirs, not written to
            raise ckpt.CheckpointError(f"{self.folder} has no {ONNX_FILE}: export it with "
                                       "catdog-export --format onnx, or pass the training checkpoint")
        if not path.is_file():  # the export cache beside a checkpoint is ours to complete
            path = export_onnx(self.folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count() or 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # a damaged file
            raise ckpt.CheckpointError(f"{path}: ONNX Runtime cannot load it ({e})") from e
        self.input = self.session.get_inputs()[0].name

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities (softmax is part of the graph)."""
        return self.session.run(None, {self.input: np.ascontiguousarray(batch, dtype=np.float32)})[0]
