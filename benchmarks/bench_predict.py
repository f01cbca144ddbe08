#!/usr/bin/env python
"""Prediction speed, dygraph vs Paddle Inference, in the same run.

For ResNet-18 (paper width 64) at 224 px, the default TrainConfig model at its size and
EfficientNet-Lite0 at 224 px (--pretrained efficientnet_lite0), prints
ms per image at batch 1 and images/s at batch 32 for each engine (ONNX Runtime too where the
onnx extra is installed), then the speed-ups. Both engines
go through the package's own predictors (``predict.Predictor`` and ``inference.InferencePredictor``
on a checkpoint written here, so the export path is the real one) and get the same math threads.
``--folder DIR`` adds end-to-end figures: decode + preprocess + predict over image files.

    python benchmarks/bench_predict.py            # full: about 1-2 minutes on 2 cores
    python benchmarks/bench_predict.py --quick    # smoke test: tiny sizes, 2 iterations
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

from _common import cpu_count, emit, seconds_per_call

import numpy as np
import paddle

from paddle_catdog import checkpoint as ckpt
from paddle_catdog.config import TrainConfig
from paddle_catdog.data.layouts import find_samples, resolve_splits
from paddle_catdog.models import create_model
from paddle_catdog.predict.inference import InferencePredictor, fast_bf16
from paddle_catdog.predict.onnx import OnnxPredictor
from paddle_catdog.predict.predictor import BasePredictor, Predictor


def model_configs(quick: bool) -> List[Tuple[str, TrainConfig]]:
    """(label, config) of the models measured: the paper's ResNet-18, the project default and the
    transfer recipe's EfficientNet-Lite0."""
    default = TrainConfig()
    paper = TrainConfig(model="resnet18", width=64, image_size=224)
    # what --pretrained efficientnet_lite0 trains (its input size and scaling)
    lite0 = TrainConfig(model="efficientnet_lite0", image_size=224, normalize="centered")
    if quick:  # same networks, tiny inputs
        return [("resnet18-w64", TrainConfig(model="resnet18", width=64, image_size=32)),
                ("default", TrainConfig(image_size=32)),
                ("efficientnet-lite0", TrainConfig(model="efficientnet_lite0", image_size=32))]
    return [("resnet18-w64", paper), ("default", default), ("efficientnet-lite0", lite0)]


def write_checkpoint(cfg: TrainConfig, folder: Path) -> Path:
    """Random weights: speed does not depend on their values."""
    model = create_model(cfg.model, num_classes=2, **cfg.model_options())
    return ckpt.save_checkpoint(folder, model, cfg, ["cat", "dog"], epoch=0, best_metric=0.0)


def measure(predictor: BasePredictor, size: int, batch: int, iters: int) -> float:
    """Seconds per forward pass of a (batch, 3, size, size) input, softmax and copy-out included."""
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    return seconds_per_call(lambda: predictor.predict_batch(x), iters, warmup=2)


def folder_figures(predictor: BasePredictor, paths: List[str], batch: int) -> float:
    start = time.perf_counter()
    n = sum(1 for _, probs, _ in predictor.predict_paths(paths, batch) if probs is not None)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny inputs and 2 iterations (a smoke test)")
    parser.add_argument("--threads", type=int, default=0, help="math threads for both engines (0: one per core)")
    parser.add_argument("--iters-b1", type=int, default=40, help="timed batch-1 passes")
    parser.add_argument("--iters-batch", type=int, default=5, help="timed passes at --batch")
    parser.add_argument("--batch", type=int, default=32, help="the large batch size")
    parser.add_argument("--folder", default=None, help="also time predict_paths over images here "
                        "(a folder or a data root with train/ val/)")
    parser.add_argument("--limit", type=int, default=256, help="images used from --folder")
    args = parser.parse_args()
    if args.quick:
        args.iters_b1, args.iters_batch, args.batch, args.limit = 2, 1, 4, 16
    threads = args.threads or cpu_count()
    paths: List[str] = []
    if args.folder:
        train, val = resolve_splits(args.folder)
        paths = [p for p, _ in find_samples(val or train).samples[:args.limit]]
    common = {"threads": threads, "quick": args.quick}
    for label, cfg in model_configs(args.quick):
        with tempfile.TemporaryDirectory() as tmp:
            weights = write_checkpoint(cfg, Path(tmp) / "ckpt")
            ms: Dict[Tuple[str, int], float] = {}
            engines = (["dygraph", "inference"] + (["inference-bf16"] if fast_bf16() else [])
                       + (["onnxruntime"] if importlib.util.find_spec("onnxruntime") else []))
            for engine in engines:
                if engine == "dygraph":
                    predictor: BasePredictor = Predictor(str(weights), "cpu")
                    paddle.base.core.set_num_threads(threads)
                elif engine == "onnxruntime":  # the onnx extra: model.onnx converted on the fly
                    predictor = OnnxPredictor(str(weights), num_threads=threads)
                else:
                    precision = "bf16" if engine.endswith("bf16") else "fp32"
                    predictor = InferencePredictor(str(weights), "cpu", num_threads=threads,
                                                   precision=precision)
                shape = {"model": label, "arch": cfg.model, "width": cfg.width, "image_size": cfg.image_size,
                         "engine": engine, **common}
                for batch, iters in ((1, args.iters_b1), (args.batch, args.iters_batch)):
                    seconds = measure(predictor, cfg.image_size, batch, iters)
                    ms[engine, batch] = 1000 * seconds / batch
                    emit("predict", **shape, batch=batch, iters=iters, ms_per_image=round(ms[engine, batch], 3),
                         images_per_s=round(batch / seconds, 2))
                if paths:
                    emit("predict_folder", **shape, batch=args.batch, images=len(paths),
                         images_per_s=round(folder_figures(predictor, paths, args.batch), 2))
            for batch in (1, args.batch):
                for engine in engines[1:]:
                    emit("predict_speedup", model=label, image_size=cfg.image_size, batch=batch,
                         engine=engine, **common,
                         inference_over_dygraph=round(ms["dygraph", batch] / ms[engine, batch], 2))


if __name__ == "__main__":
    main()
