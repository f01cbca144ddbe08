"""Prediction through Paddle Inference: the exported static graph (see export.py), run by Paddle's
C++ predictor with oneDNN on CPU, or on the GPU where Paddle has CUDA and sees one.

``InferencePredictor`` takes an exported folder, or a training checkpoint that it exports on the
fly (cached in ``<checkpoint>/inference/``). It shares preprocessing, batching and the result
format with the dygraph ``Predictor`` through ``predict.BasePredictor``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import paddle
import paddle.inference as paddle_infer

from .. import checkpoint as ckpt
from ..runtime import setup_device
from ..transforms import build_transform
from .export import ensure_exported, model_files, read_export_meta
from .predictor import BasePredictor

# oneDNN caches its compiled kernels per input shape; a folder needs two (full and last batch),
# a service a few more. Bounded so a caller sending every batch size cannot grow memory forever.
ONEDNN_SHAPE_CACHE = 8

PRECISIONS = ("auto", "fp32", "bf16")

# The CPU predictor's precision. bf16 runs oneDNN's bfloat16
# kernels, which CPUs with AMX or AVX512-BF16 execute natively: ResNet-18 at 224 px ran ~3x faster
# than fp32 here, with the same val/ accuracy (benchmarks/README.md). 'auto' picks bf16 on such
# CPUs and fp32 elsewhere (emulated bf16 is slower than fp32); fp32 matches the dygraph model to 1e-4.


def fast_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AMX or AVX512-BF16), per Paddle's check."""
    try:
        return bool(paddle.base.core.supports_bfloat16_fast_performance())
    except Exception:  # an older or stripped build without the check: stay exact
        return False


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> 'bf16' on a CPU with native bfloat16, else 'fp32'. The GPU runs fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if device == "gpu":
        return "fp32"
    if precision == "auto":
        return "bf16" if fast_bf16() else "fp32"
    return precision


def make_config(folder: Path, device: str = "cpu", num_threads: int = 0,
                precision: str = "fp32") -> paddle_infer.Config:
    """Paddle Inference settings for an exported folder on ``device`` ('cpu' or 'gpu') at
    ``precision`` ('fp32' or 'bf16', CPU only; see ``resolve_precision``)."""
    graph, params = model_files(folder)
    config = paddle_infer.Config(str(graph), str(params))
    if device == "gpu":
        config.enable_use_gpu(256, 0)  # initial memory pool in MB, GPU id
    else:
        config.disable_gpu()
        config.enable_mkldnn()  # oneDNN: fused conv+bn+relu kernels
        config.set_mkldnn_cache_capacity(ONEDNN_SHAPE_CACHE)
        # One math thread per core: more oversubscribes (decoding threads run beside it).
        config.set_cpu_math_library_num_threads(num_threads or os.cpu_count() or 1)
        if precision == "bf16":
            config.enable_mkldnn_bfloat16()  # every op oneDNN has a bf16 kernel for
    config.switch_ir_optim(True)
    # No enable_memory_optim(): with PIR graphs (Paddle 3) it fails to create the predictor
    # ("Not find predictor_id 0 and pass_name memory_optimize_pass").
    config.disable_glog_info()
    return config


class InferencePredictor(BasePredictor):
    """Load an exported model (or export a checkpoint) once, then classify images."""

    def __init__(self, weights: str, device: str = "auto", num_threads: int = 0,
                 precision: str = "auto") -> None:
        chosen = setup_device(device, num_threads)  # validates --device gpu like training does
        self.precision = resolve_precision(precision, chosen)
        self.folder = ensure_exported(Path(weights))
        self.cfg, self.classes, self.meta = read_export_meta(self.folder)
        self.transform = build_transform(self.cfg, train=False)
        try:
            self.predictor = paddle_infer.create_predictor(make_config(self.folder, chosen, num_threads,
                                                                      self.precision))
        except Exception as e:  # the C++ side raises several types for a damaged graph
            raise ckpt.CheckpointError(f"{self.folder}: Paddle Inference cannot load the model ({e})") from e
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, C) probabilities (softmax is part of the graph)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(batch)
        self.predictor.run()
        probs = self.output.copy_to_cpu()
        if self.precision == "bf16":  # bf16 softmax sums to 1 only to ~3 digits: renormalize
            probs = probs.astype(np.float32) / probs.sum(axis=1, keepdims=True, dtype=np.float32)
        return probs
