"""Export a checkpoint to Paddle's inference format: ``catdog-export --weights CKPT --output DIR``.

An exported folder holds::

    model.json / model.pdiparams   the static graph and its weights (``paddle.jit.save``); the input
                                   is ``image`` of shape (N, 3, H, W) with a free N, the output is
                                   softmax probabilities (N, classes)
    export.json                    the checkpoint's TrainConfig, the class names and where the
                                   model came from

The graph starts at the normalized tensor: preprocessing stays in Python and is rebuilt from
``export.json`` with ``build_transform(cfg, train=False)``, the very function evaluation uses, so
the exported model sees exactly the pixels the evaluation saw. Nothing in the folder is a pickle:
Paddle Inference reads the graph and weights in C++, and ``export.json`` is plain JSON.

``ensure_exported(checkpoint)`` keeps an export cached beside the checkpoint folder
(``output/best`` -> ``output/best.inference/``; never inside it, which belongs to the training run)
and redoes it only when the checkpoint's weights, its meta.json or the Paddle version changed, or
when the cache describes its preprocessing in other words than this release does.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import paddle
from paddle import nn

from .. import checkpoint as ckpt
from ..config import TrainConfig
from ..files import atomic_folder, sha256_of
from ..models import Probabilities
from ..runtime import setup_device
from ..static_graph import graph_files
from ..transforms import NORMALIZATIONS, eval_size

MODEL_PREFIX = "model"
EXPORT_META = "export.json"
CACHE_SUFFIX = ".inference"  # beside a training checkpoint folder: best -> best.inference


def export_cache(checkpoint: Path) -> Path:
    """Where the export of a training checkpoint folder is cached: beside it, not inside."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + CACHE_SUFFIX)
EXPORT_FORMAT_VERSION = 1


def model_files(folder: Path) -> Tuple[Path, Path]:
    """(graph, weights) of an exported folder."""
    graph, params = graph_files(Path(folder) / MODEL_PREFIX)
    return graph, params


def is_exported(folder: Path) -> bool:
    graph, params = model_files(folder)
    return (Path(folder) / EXPORT_META).is_file() and graph.is_file() and params.is_file()


def fingerprint(checkpoint: Path) -> Dict[str, str]:
    """What an export depends on: the checkpoint's weights and meta.json (by content, so a copied
    or touched checkpoint is not re-exported) and the Paddle version that wrote the graph."""
    return {"paddle": paddle.__version__,
            **{name: sha256_of(Path(checkpoint) / name) for name in (ckpt.WEIGHTS, ckpt.META)}}


def preprocess_numbers(cfg: TrainConfig) -> Dict[str, Any]:
    """What build_transform(cfg, train=False) does, in numbers, for a runtime without Python
    (ONNX Runtime on a phone): take the central square of side center_crop_ratio x the short side,
    resize it to resize x resize (area interpolation when shrinking), RGB / 255, minus mean, over
    std."""
    mean, std = NORMALIZATIONS[cfg.normalize]
    return {"center_crop_ratio": cfg.eval_crop_ratio, "resize": eval_size(cfg),
            "mean": list(mean), "std": list(std), "color": "RGB", "scale": "1/255"}


def export_model(model: nn.Layer, cfg: TrainConfig, classes: Sequence[str], output: Path,
                 source: Optional[Dict[str, str]] = None) -> Path:
    """Write ``model`` (eval mode, softmax appended) and ``export.json`` into ``output``
    atomically (``files.atomic_folder``): a reader never sees half an export."""
    with atomic_folder(Path(output)) as tmp:
        model.eval()
        size = eval_size(cfg)  # what build_transform(cfg, train=False) produces
        spec = paddle.static.InputSpec([None, 3, size, size], "float32", "image")
        paddle.jit.save(Probabilities(model, cfg.tta), str(tmp / MODEL_PREFIX), input_spec=[spec])
        # Older (non-PIR) saves add a pickled name table Paddle Inference never reads; drop it so
        # the folder holds no pickle at all.
        for info in tmp.glob("*.pdiparams.info"):
            info.unlink()
        meta = {"format_version": EXPORT_FORMAT_VERSION, "model": cfg.model, "classes": list(classes),
                "input": {"name": "image", "shape": [None, 3, size, size],
                          "layout": "NCHW, RGB, normalized by build_transform(cfg, train=False)"},
                "preprocess": preprocess_numbers(cfg),
                "output": "softmax probabilities (N, classes)", "config": cfg.to_dict(),
                "source": source or {}}
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return Path(output)


def export_checkpoint(checkpoint: Path, output: Path) -> Path:
    """Rebuild the model from a training checkpoint (safetensors + meta.json) and export it."""
    checkpoint = ckpt.resolve_checkpoint(Path(checkpoint))
    model, cfg, classes, _ = ckpt.load_model(checkpoint)
    return export_model(model, cfg, classes, output, source=fingerprint(checkpoint))


def read_export_meta(folder: Path) -> Tuple[TrainConfig, List[str], Dict[str, Any]]:
    """(config, class names, the whole export.json) of an exported folder; plain JSON only."""
    folder = Path(folder)
    if not is_exported(folder):
        raise ckpt.CheckpointError(f"{folder} is not an exported model folder (needs {EXPORT_META}, "
                                   f"{MODEL_PREFIX}.json and {MODEL_PREFIX}.pdiparams)")
    try:
        meta = json.loads((folder / EXPORT_META).read_text(encoding="utf-8"))
        cfg = TrainConfig.from_dict(meta["config"], strict=False)
        classes = list(meta["classes"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ckpt.CheckpointError(f"{folder / EXPORT_META}: corrupt ({e})") from e
    return cfg, classes, meta


def _cache_is_current(cache: Path, checkpoint: Path) -> bool:
    if not is_exported(cache):
        return False
    try:
        cfg, _, meta = read_export_meta(cache)
    except ckpt.CheckpointError:
        return False
    # an export written by an older release describes its preprocessing in other words: rewrite it
    return meta.get("source") == fingerprint(checkpoint) and meta.get("preprocess") == preprocess_numbers(cfg)


def ensure_exported(weights: Path) -> Path:
    """An exported folder for ``weights``: the folder itself when it already is one; for a training
    checkpoint, its cache beside it (``export_cache``), (re-)exported when missing or out of date.
    Where that cannot be written, a fresh export in a temporary folder instead."""
    weights = Path(weights)
    if is_exported(weights):
        return weights
    checkpoint = ckpt.resolve_checkpoint(weights)
    cache = export_cache(weights)
    if _cache_is_current(cache, checkpoint):
        return cache
    try:
        return export_checkpoint(checkpoint, cache)
    except PermissionError:
        return export_checkpoint(checkpoint, Path(tempfile.mkdtemp(prefix="catdog-export-")) / cache.name)


ONNX_FILE = "model.onnx"
OPSET = 13  # what ONNX Runtime and most mobile runtimes read


def require(module: str) -> Any:
    """The optional package, or one clear error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"ONNX needs the onnx extra: pip install -e \".[onnx]\" (no module {module})") from e


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what is printed to stdout, by Python or by C++ (file descriptor 1), to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def export_onnx(folder: Path) -> Path:
    """Write ``model.onnx`` into an exported folder (written under a temporary name, then renamed:
    a reader never sees half a file); returns its path."""
    paddle2onnx = require("paddle2onnx")
    graph, params = model_files(folder)
    target = Path(folder) / ONNX_FILE
    tmp = target.with_name(f".{ONNX_FILE}.{os.getpid()}.tmp")
    try:
        with _stdout_to_stderr():  # its progress lines must not mix with a command's output
            paddle2onnx.export(str(graph), str(params), str(tmp), opset_version=OPSET, verbose=False)
        os.replace(tmp, target)
    except ValueError:
        raise
    except Exception as e:  # paddle2onnx raises several types for a graph it cannot convert
        raise ckpt.CheckpointError(f"{folder}: paddle2onnx cannot convert the model ({e})") from e
    finally:
        tmp.unlink(missing_ok=True)
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catdog-export",
        description="Export a training checkpoint to Paddle's inference format (static graph with "
                    "softmax, free batch size) plus export.json with the preprocessing config and "
                    "class names.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--weights", required=True, help="training checkpoint folder (e.g. output/best)")
    parser.add_argument("--output", required=True, help="folder to write the exported model to")
    parser.add_argument("--format", default="paddle", choices=("paddle", "onnx"),
                        help="paddle: Paddle Inference's files; onnx: those plus model.onnx "
                             "(paddle2onnx, for ONNX Runtime; pip install -e \".[onnx]\")")
    return parser


def export(args: argparse.Namespace) -> int:
    setup_device("cpu")  # exporting traces the graph; the device does not matter
    if args.format == "onnx":
        require("paddle2onnx")  # before the export: a missing extra fails at once
    folder = export_checkpoint(Path(args.weights), Path(args.output))
    graph, params = model_files(folder)
    files = [graph.name, params.name, EXPORT_META]
    if args.format == "onnx":
        files.append(export_onnx(folder).name)
    print(f"exported {args.weights} -> {folder} ({', '.join(files)})")
    return 0
