#!/usr/bin/env python
"""Prediction speed, dygraph vs Paddle Inference vs ONNX Runtime vs PyTorch eager, in the same run.

For ResNet-18 (paper width 64) at 224 px, the default TrainConfig model (ResNet-10 width 32) at
its size, ResNet-18 width 32 at the same size (the default network until 2026-11-30) and
EfficientNet-Lite0 at 224 px (--pretrained efficientnet_lite0), prints
ms per image at batch 1 and images/s at batch 32 for each engine (ONNX Runtime too where the
onnx extra is installed; PyTorch eager for the basic-block ResNets where benchmarks/requirements.txt is
installed), then the speed-ups. The Paddle engines
go through the package's own predictors (``predict.Predictor`` and ``inference.InferencePredictor``
on a checkpoint written here, so the export path is the real one), PyTorch through
``torch_predict.py``'s twin loaded from the same checkpoint, all with the same math threads.
``--folder DIR`` adds end-to-end figures: decode + preprocess + predict over image files, and
``--whole-process`` times whole commands over the same photos: ``run_predict.py`` (its default
engine, and each engine) against ``torch_predict.py``, imports and model loading included.

    python benchmarks/bench_predict.py            # full: about 1-2 minutes on 2 cores
    python benchmarks/bench_predict.py --quick    # smoke test: tiny sizes, 2 iterations
    python benchmarks/bench_predict.py --folder ../shared/data/dogs-vs-cats --whole-process \
        --limit 2000 --weights output/best      # + whole commands over 2,000 photos (~5 min)
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

from _common import cpu_count, emit, seconds_per_call, str_list

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
    """(label, config) of the models measured: the paper's ResNet-18, the project default, the
    default's ResNet-18 twin and the transfer recipe's EfficientNet-Lite0."""
    default = TrainConfig()
    r18 = dataclasses.replace(default, model="resnet18")
    paper = TrainConfig(model="resnet18", width=64, image_size=224)
    # what --pretrained efficientnet_lite0 trains (its input size and scaling)
    lite0 = TrainConfig(model="efficientnet_lite0", image_size=224, normalize="centered")
    if quick:  # same networks, tiny inputs
        return [("resnet18-w64", TrainConfig(model="resnet18", width=64, image_size=32)),
                ("default", TrainConfig(image_size=32)),
                ("resnet18-w32", TrainConfig(model="resnet18", image_size=32)),
                ("efficientnet-lite0", TrainConfig(model="efficientnet_lite0", image_size=32))]
    return [("resnet18-w64", paper), ("default", default), ("resnet18-w32", r18), ("efficientnet-lite0", lite0)]


def write_checkpoint(cfg: TrainConfig, folder: Path) -> Path:
    """Random weights: speed does not depend on their values."""
    model = create_model(cfg.model, num_classes=2, **cfg.model_options())
    return ckpt.save_checkpoint(folder, model, cfg, ["cat", "dog"], epoch=0, best_metric=0.0)


def measure(predictor: BasePredictor, size: int, batch: int, iters: int) -> float:
    """Seconds per forward pass of a (batch, 3, size, size) input, softmax and copy-out included."""
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    return seconds_per_call(lambda: predictor.predict_batch(x), iters, warmup=2)


HERE = Path(__file__).resolve().parent
TORCH = importlib.util.find_spec("torch") is not None  # benchmarks/requirements.txt
TWINS = ("resnet10", "resnet18")  # the networks torch_twin.py has twins of (importing it loads torch)


def torch_ms_per_image(weights: Path, batches: List[int], iters: List[int], threads: int) -> Dict[int, float]:
    """PyTorch eager's ms per image at each batch size, timed by torch_predict.py in a process of
    its own (with Paddle loaded in the same process, the two OpenMP pools slow each other down)."""
    out = subprocess.run([sys.executable, str(HERE / "torch_predict.py"), "--weights", str(weights),
                          "--threads", str(threads), "--time-batches", ",".join(map(str, batches)),
                          "--iters", ",".join(map(str, iters))],
                         capture_output=True, text=True, check=True).stdout
    return {row["batch"]: row["ms_per_image"] for row in map(json.loads, out.splitlines())}


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
    parser.add_argument("--models", default="resnet18-w64,default,resnet18-w32,efficientnet-lite0",
                        help="which of the four models to measure (comma-separated labels)")
    parser.add_argument("--whole-process", action="store_true",
                        help="also time whole commands (run_predict.py per engine, torch_predict.py) over "
                             "--limit photos of --folder, each --repeats times")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each whole command")
    parser.add_argument("--weights", default=None,
                        help="a trained checkpoint of the default network for --whole-process (its "
                             "labels are then meaningful); default: random weights")
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
        if label not in str_list(args.models):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            weights = write_checkpoint(cfg, Path(tmp) / "ckpt")
            engines = (["dygraph", "inference"] + (["inference-bf16"] if fast_bf16() else [])
                       + (["onnxruntime"] if importlib.util.find_spec("onnxruntime") else [])
                       + (["pytorch-eager"] if TORCH and cfg.model in TWINS else []))
            ms: Dict[Tuple[str, int], float] = {}
            for engine in engines:
                shape = {"model": label, "arch": cfg.model, "width": cfg.width, "image_size": cfg.image_size,
                         "engine": engine, **common}
                ms.update(engine_figures(engine, weights, cfg, args, threads, paths, shape))
            for batch in (1, args.batch):
                for engine in engines[1:]:
                    extra = ({"over_pytorch_eager": round(ms["pytorch-eager", batch] / ms[engine, batch], 2)}
                             if "pytorch-eager" in engines else {})
                    emit("predict_speedup", model=label, image_size=cfg.image_size, batch=batch,
                         engine=engine, **common,
                         inference_over_dygraph=round(ms["dygraph", batch] / ms[engine, batch], 2), **extra)
            if args.whole_process and label == "default" and paths:
                whole_process(Path(args.weights) if args.weights else weights, paths, engines, args, common)


def engine_figures(engine: str, weights: Path, cfg: TrainConfig, args, threads: int, paths: List[str],
                   shape: Dict) -> Dict[Tuple[str, int], float]:
    """Emit one engine's figures; returns its ms per image at batch 1 and at ``args.batch``."""
    ms: Dict[Tuple[str, int], float] = {}
    sizes = ((1, args.iters_b1), (args.batch, args.iters_batch))
    if engine == "pytorch-eager":
        timed = torch_ms_per_image(weights, [1, args.batch], [args.iters_b1, args.iters_batch], threads)
        for batch, iters in sizes:
            ms[engine, batch] = timed[batch]
            emit("predict", **shape, batch=batch, iters=iters, ms_per_image=timed[batch],
                 images_per_s=round(1000 / timed[batch], 2))
        return ms
    if engine == "dygraph":
        predictor: BasePredictor = Predictor(str(weights), "cpu")
        paddle.base.core.set_num_threads(threads)
    elif engine == "onnxruntime":  # the onnx extra: model.onnx converted on the fly
        predictor = OnnxPredictor(str(weights), num_threads=threads)
    else:
        precision = "bf16" if engine.endswith("bf16") else "fp32"
        predictor = InferencePredictor(str(weights), "cpu", num_threads=threads, precision=precision)
    for batch, iters in sizes:
        seconds = measure(predictor, cfg.image_size, batch, iters)
        ms[engine, batch] = 1000 * seconds / batch
        emit("predict", **shape, batch=batch, iters=iters, ms_per_image=round(ms[engine, batch], 3),
             images_per_s=round(batch / seconds, 2))
    if paths:
        emit("predict_folder", **shape, batch=args.batch, images=len(paths),
             images_per_s=round(folder_figures(predictor, paths, args.batch), 2))
    return ms


def whole_process(weights: Path, paths: List[str], engines: List[str], args, common: Dict) -> None:
    """Wall time of whole commands over the same photos (a folder of links to them): Python start,
    imports, model loading, decoding, prediction and printing. The first run of run_predict.py
    exports the model beside the checkpoint; one untimed run of each command warms that cache and
    the file cache, then the commands take turns ``--repeats`` times."""
    python = sys.executable
    commands: Dict[str, List[str]] = {"run_predict (default engine)": [python, "run_predict.py"]}
    for engine in engines:
        if engine == "inference":
            commands["run_predict --precision fp32"] = [python, "run_predict.py", "--precision", "fp32"]
        elif engine in ("dygraph", "onnxruntime"):
            commands[f"run_predict --engine {engine}"] = [python, "run_predict.py", "--engine", engine]
    if "pytorch-eager" in engines:
        commands["torch_predict (PyTorch eager)"] = [python, str(HERE / "torch_predict.py")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i, path in enumerate(paths):  # a numbered link each: every command sees the same files
            (folder / f"{i:05d}{Path(path).suffix}").symlink_to(Path(path).resolve())
        argv = {name: cmd + ["--weights", str(weights), "--img", str(folder)]
                + (["--json"] if "run_predict.py" in cmd else []) for name, cmd in commands.items()}
        seconds: Dict[str, List[float]] = {name: [] for name in argv}
        answers: Dict[str, Dict[str, Dict[str, float]]] = {}
        for repeat in range(args.repeats + 1):
            for name, cmd in argv.items():
                start = time.perf_counter()
                out = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, check=True).stdout
                if repeat:  # the first round only warms caches
                    seconds[name].append(time.perf_counter() - start)
                answers[name] = {Path(r["path"]).name: r["probabilities"]
                                 for r in map(json.loads, out.splitlines()) if r.get("probabilities")}
    reference = "torch_predict (PyTorch eager)"
    for name, times in seconds.items():
        fields = {"command": name, "photos": len(paths), "runs_s": [round(t, 2) for t in times],
                  "photos_per_s": round(len(paths) / min(times), 1), **common}
        if reference in seconds:
            fields["over_pytorch_eager"] = round(min(seconds[reference]) / min(times), 2)
            # each turn against PyTorch's in the same turn: robust to the host's speed drifting
            fields["over_pytorch_eager_median_of_turns"] = round(statistics.median(
                r / t for r, t in zip(seconds[reference], times)), 2)
            fields["max_probability_difference"] = max_difference(answers[name], answers[reference])
        emit("predict_whole_process", **fields)


def max_difference(a: Dict[str, Dict[str, float]], b: Dict[str, Dict[str, float]]) -> float:
    """The largest difference of any class probability between two commands' answers."""
    assert a.keys() == b.keys(), "the two commands answered for different photos"
    return round(max(abs(a[k][c] - b[k][c]) for k in a for c in a[k]), 6)


if __name__ == "__main__":
    main()
