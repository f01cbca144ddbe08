"""Evaluate a checkpoint: accuracy, per-class precision / recall / F1, a confusion-matrix PNG,
the training-curves PNG and a VisualDL PR curve.

    catdog-evaluate --weights output/best [--data-dir DIR]
    python -m paddle_catdog evaluate --weights output/best          (the same)
    python run_train.py --eval-only --weights output/best           (the same)

Without ``--data-dir``, or with the folder the checkpoint trained on, the images are the validation
split of the checkpoint's own run (``data.split.load_data``: its val folder, or exactly the seeded
split it held out of its training folder), never its training images. With another
``--data-dir DIR``: DIR's ``val/`` (or ``val_list.txt``) when it has one, else every image in DIR.
The report says which images were scored.
Images go through ``build_transform(cfg, train=False)`` via ``data.loader.make_loader``, exactly as
evaluation during training does, then through the exported graph in fp32 (Paddle Inference: the
dygraph model's probabilities to 1e-4, several times faster), so the accuracy printed here is
the one training reported.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from . import checkpoint as ckpt
from .data.check import drop_unreadable
from .data.layouts import LIST_NAMES, DataError, SampleSet, find_samples, resolve_splits
from .data.loader import make_loader
from .data.split import load_data
from .metrics import classification_report, format_report, progress_bar
from .plots import close_all, plot_confusion_matrix, plot_curves
from .runlog import HISTORY, VdlLogger, read_history
from .predict.inference import InferencePredictor
from .runtime import setup_device

CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "curves.png"
REPORT_JSON = "evaluation.json"


# ----------------------------------------------------------------------------------- the data
def same_folder(a: Optional[str], b: Optional[str]) -> bool:
    return bool(a and b) and Path(a).resolve() == Path(b).resolve()


def eval_samples(cfg, classes: Sequence[str], data_dir: Optional[str] = None) -> SampleSet:
    """The images to evaluate (see the module docstring), in the checkpoint's class order."""
    return select_eval_images(cfg, classes, data_dir)[0]


def select_eval_images(cfg, classes: Sequence[str], data_dir: Optional[str] = None) -> Tuple[SampleSet, str]:
    """The images to evaluate and which images they are, in words for the report."""
    if data_dir is None or same_folder(data_dir, cfg.data_dir):
        return held_out_samples(cfg, classes, data_dir)
    val_path = resolve_splits(data_dir)[1] or next(
        (str(p) for p in (Path(data_dir) / "val", Path(data_dir) / LIST_NAMES[1]) if p.exists()), None)
    if val_path:
        return find_samples(val_path, classes=list(classes)), f"the validation images of {data_dir} ({val_path})"
    scored = f"every labelled image in {data_dir}"
    if cfg.data_dir and same_folder(data_dir, resolve_splits(cfg.data_dir, cfg.val_dir)[0]):
        scored += " (WARNING: the folder this checkpoint trained on; the accuracy is inflated)"
    return find_samples(data_dir, classes=list(classes)), scored


def held_out_samples(cfg, classes: Sequence[str], data_dir: Optional[str]) -> Tuple[SampleSet, str]:
    """The validation images of the checkpoint's own run: its val folder, or exactly the seeded
    split it held out of its training folder (``load_data``), never its training images."""
    folder = data_dir or cfg.data_dir
    if not folder or not Path(folder).exists():
        raise DataError(f"the checkpoint's data folder {cfg.data_dir!r} is not here; pass --data-dir")
    run_cfg = dataclasses.replace(cfg, data_dir=str(folder))
    data = load_data(run_cfg, check=False)  # decode-check only the val images, in evaluate_checkpoint
    if data.classes != list(classes):
        raise DataError(f"{folder}: classes {data.classes} differ from the checkpoint's {list(classes)}")
    _, val_path = resolve_splits(data.data_dir, cfg.val_dir)
    if val_path:
        return data.val, f"the validation images the checkpoint was scored on ({val_path})"
    return data.val, (f"the {len(data.val.samples)} images held out of {folder} for validation "
                      f"(val_split {cfg.val_split}, seed {cfg.seed}); its training images are not scored")


# ------------------------------------------------------------------------------------ the run
def exported_probs(predictor: InferencePredictor, loader, progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and labels (N,) over ``loader``'s batches (already through the
    evaluation transform) from the exported graph in fp32: the dygraph model's answers to 1e-4
    (tests/test_export.py), several times faster on CPU (benchmarks/README.md: 6.8x for
    EfficientNet-Lite0, whose evaluation of val/ took 5.4 minutes in dygraph)."""
    probs, labels = [], []
    for images, y in progress_bar(loader, progress, desc="eval", total=len(loader)):
        probs.append(predictor.predict_batch(images.numpy()))
        labels.append(y.numpy())
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64).reshape(-1)


def eval_folder(checkpoint: Path) -> Path:
    """Where evaluating a checkpoint folder writes by default: beside it (``best`` -> ``best.eval``)."""
    return checkpoint.with_name(checkpoint.name + ".eval")


def evaluate_checkpoint(weights: str, data_dir: Optional[str] = None, batch_size: Optional[int] = None,
                        device: str = "auto", num_workers: int = 0, out_dir: Optional[str] = None,
                        progress: bool = False, vdl: bool = True) -> Dict[str, Any]:
    """Evaluate ``weights`` (a checkpoint folder); write the PNGs and ``evaluation.json`` into
    ``out_dir`` (default: ``eval_folder(weights)``, beside the checkpoint: it belongs to the
    training run, and its next swap would drop anything added) and the PR curve into
    ``<run>/vdl``, where ``<run>`` is the checkpoint folder's parent (the training ``--output``)."""
    folder = ckpt.resolve_checkpoint(Path(weights))
    cfg, classes, meta = ckpt.load_config(folder)
    samples, scored = select_eval_images(cfg, classes, data_dir)
    good, skipped = drop_unreadable(samples.samples, max_pixels=cfg.max_image_pixels)
    if not good:
        raise DataError(f"no decodable images to evaluate in {data_dir or cfg.data_dir}")
    cfg.num_workers, cfg.progress = num_workers, progress
    cfg.batch_size = batch_size or cfg.batch_size
    loader = make_loader(SampleSet(good, list(classes), samples.layout), cfg, train=False)
    probs, labels = exported_probs(InferencePredictor(str(weights), device, precision="fp32"), loader, progress)
    report = classification_report(labels, probs, classes)
    report.update(weights=str(folder), data=data_dir or cfg.data_dir, scored=scored, skipped=skipped,
                  epoch=meta.get("epoch"))

    out = Path(out_dir) if out_dir else eval_folder(Path(weights))
    out.mkdir(parents=True, exist_ok=True)
    run = folder.parent
    files = {"confusion_matrix": str(out / CONFUSION_PNG)}
    plot_confusion_matrix(np.asarray(report["confusion_matrix"]), classes, out / CONFUSION_PNG,
                          title=f"{meta.get('model', '')} epoch {meta.get('epoch', '?')}: "
                                f"accuracy {report['accuracy']:.3f}")
    history = read_history(run / HISTORY)
    if history:  # a checkpoint copied away from its run has no curves to draw
        plot_curves(history, out / CURVES_PNG)
        files["curves"] = str(out / CURVES_PNG)
    close_all()
    if vdl:
        logger = VdlLogger(run / "vdl")
        for k, name in enumerate(classes):  # one-vs-rest: VisualDL's PR curve is binary
            logger.pr_curve(f"eval/pr_{name}", (labels == k).astype(np.int64), probs[:, k],
                            step=int(meta.get("epoch") or 0))
        logger.close()
        files["vdl"] = str(run / "vdl")
    report["files"] = files
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2), encoding="utf-8")
    files["report"] = str(out / REPORT_JSON)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catdog-evaluate",
        description="Evaluate a checkpoint: accuracy, per-class precision/recall/F1, "
                    f"{CONFUSION_PNG} and {CURVES_PNG} beside the weights, a PR curve in VisualDL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_eval_arguments(parser)
    parser.add_argument("--data-dir", default=None,
                        help="labelled images to evaluate: DIR/val when present, else all of DIR "
                             "(default: the val split of the checkpoint's own config)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per forward pass (default: the checkpoint's)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="where to run")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader worker processes")
    return parser


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that only evaluation has (shared with ``run_train.py --eval-only``)."""
    parser.add_argument("--weights", default=None,
                        help="checkpoint folder (default: the newest best/ under output/)")
    parser.add_argument("--out-dir", default=None,
                        help="where to write the PNGs and evaluation.json (default: beside the "
                             "checkpoint folder, e.g. output/best.eval/; never inside it)")
    parser.add_argument("--no-vdl", dest="vdl", action="store_false",
                        help="do not log the PR curve to <run>/vdl")


def evaluate(args: argparse.Namespace, **overrides) -> int:
    """Evaluate as ``args`` (from ``build_parser``) says, with ``overrides`` taking precedence;
    print the table and the files written."""
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1 (got {args.batch_size})")
    setup_device(args.device)  # the command owns its process: one math thread per core
    options = dict(data_dir=args.data_dir, batch_size=args.batch_size, device=args.device,
                   num_workers=args.num_workers, out_dir=args.out_dir, vdl=args.vdl, progress=False)
    output = overrides.pop("output", ckpt.DEFAULT_OUTPUT)
    options.update(overrides)
    folder = args.weights or str(ckpt.find_default_weights(output))
    report = evaluate_checkpoint(folder, **options)
    print(f"checkpoint {report['weights']} (epoch {report['epoch']}), data {report['data']}")
    print(f"scored: {report['scored']}")
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} undecodable file(s), e.g. {report['skipped'][0][0]}")
    print(format_report(report))
    for what, path in report["files"].items():
        print(f"{what}: {path}")
    return 0
