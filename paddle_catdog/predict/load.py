"""Choosing and loading a predictor, and the inputs it is given: ``load_predictor`` (Paddle
Inference or dygraph) and ``expand_inputs`` (files and folders of images). The newest ``best/``
under ``output/`` is ``checkpoint.find_default_weights``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

from .. import checkpoint as ckpt
from ..data.layouts import IMAGE_EXTENSIONS, is_image_file
from .export import is_exported
from .inference import InferencePredictor
from .onnx import OnnxPredictor
from .predictor import BasePredictor, Predictor

ENGINES = ("inference", "dygraph", "onnxruntime")


def load_predictor(weights: str, engine: str = "inference", device: str = "auto",
                   precision: str = "auto") -> BasePredictor:
    """Paddle Inference (a training checkpoint is exported on the fly, cached) at ``precision``
    (see ``inference.resolve_precision``), ONNX Runtime on ``model.onnx`` (the onnx extra), or
    plain dygraph (needs a training checkpoint, fp32)."""
    if engine == "inference":
        return InferencePredictor(weights, device, precision=precision)
    if engine == "onnxruntime":  # the CPU; model.onnx from catdog-export --format onnx or on the fly
        return OnnxPredictor(weights)
    if engine != "dygraph":
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if is_exported(Path(weights)) and not (Path(weights) / ckpt.WEIGHTS).is_file():
        raise ckpt.CheckpointError(f"{weights} is an exported model: use --engine inference "
                                   "(--engine dygraph needs a training checkpoint)")
    return Predictor(weights, device)


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
