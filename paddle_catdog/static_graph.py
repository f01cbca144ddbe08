"""Running a layer as a static graph through Paddle Inference: ``paddle.jit.save`` writes the
graph, Paddle's C++ predictor runs it with oneDNN on CPU (or on the GPU). Prediction runs exported
models this way (predict/inference.py); the transfer recipe runs the frozen backbone this way to
compute its features (train/features.py), several times faster than dygraph on CPU.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import numpy as np
import paddle
import paddle.inference as paddle_infer
from paddle import nn

# oneDNN caches its compiled kernels per input shape; a folder needs two (full and last batch),
# a service a few more. Bounded so a caller sending every batch size cannot grow memory forever.
ONEDNN_SHAPE_CACHE = 8

PRECISIONS = ("auto", "fp32", "bf16")


def fast_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AMX or AVX512-BF16), per Paddle's check."""
    try:
        return bool(paddle.base.core.supports_bfloat16_fast_performance())
    except Exception:  # an older or stripped build without the check: stay exact
        return False


def resolve_precision(precision: str, device: str) -> str:
    """The CPU predictor's precision: 'auto' -> 'bf16' on a CPU with native bfloat16, else
    'fp32'; the GPU runs fp32. bf16 runs oneDNN's bfloat16 kernels, which CPUs with AMX or
    AVX512-BF16 execute natively: faster than fp32 with the same val/ accuracy
    (benchmarks/README.md); elsewhere it would be emulated, slower than fp32. fp32 matches the
    dygraph model to 1e-4."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if device == "gpu":
        return "fp32"
    if precision == "auto":
        return "bf16" if fast_bf16() else "fp32"
    return precision


def make_config(graph: Path, params: Path, device: str = "cpu", num_threads: int = 0,
                precision: str = "fp32") -> paddle_infer.Config:
    """Paddle Inference settings for a saved graph and its weights on ``device`` ('cpu' or
    'gpu') at ``precision`` ('fp32' or 'bf16', CPU only; see ``resolve_precision``)."""
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


def graph_files(prefix: Path) -> List[Path]:
    """(graph, weights) that ``paddle.jit.save(layer, prefix)`` wrote. Paddle 3 with PIR writes
    ``.json``; older releases wrote ``.pdmodel``: accept either."""
    prefix = Path(prefix)
    params = prefix.with_name(prefix.name + ".pdiparams")
    for suffix in (".json", ".pdmodel"):
        graph = prefix.with_name(prefix.name + suffix)
        if graph.is_file():
            return [graph, params]
    return [prefix.with_name(prefix.name + ".json"), params]


class StaticRunner:
    """A layer saved as a static graph under ``prefix`` and run by Paddle Inference:
    ``run(batch)`` -> the first output as a numpy array."""

    def __init__(self, prefix: Path, device: str = "cpu", num_threads: int = 0, precision: str = "fp32") -> None:
        graph, params = graph_files(prefix)
        self.predictor = paddle_infer.create_predictor(make_config(graph, params, device, num_threads, precision))
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    @classmethod
    def from_layer(cls, layer: nn.Layer, prefix: Path, image_size: int, **options) -> "StaticRunner":
        """Save ``layer`` (eval mode; input (N, 3, size, size) float32 with a free N) and load it."""
        layer.eval()
        spec = paddle.static.InputSpec([None, 3, image_size, image_size], "float32", "image")
        paddle.jit.save(layer, str(prefix), input_spec=[spec])
        return cls(prefix, **options)

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(batch)
        self.predictor.run()
        return self.output.copy_to_cpu()
