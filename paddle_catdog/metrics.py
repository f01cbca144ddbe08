"""Scoring a model: probabilities over a loader through the one ``Probabilities`` head
(``predict_probs``), loss and accuracy summed over data-parallel ranks (``score``), and the
confusion matrix with per-class precision, recall and F1 (``classification_report``)."""
from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import numpy as np
import paddle
from tqdm import tqdm

from . import distributed as dist
from .models import Probabilities


def progress_bar(iterable: Iterable, enabled: bool, **kw) -> Iterable:
    """``iterable`` behind a tqdm bar when ``enabled``."""
    return tqdm(iterable, dynamic_ncols=True, leave=False, **kw) if enabled else iterable


@paddle.no_grad()
def predict_probs(model: paddle.nn.Layer, loader: paddle.io.DataLoader, progress: bool = False,
                  desc: str = "eval", tta: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and labels (N,) over ``loader`` in eval mode, through the same
    ``Probabilities`` head prediction and export use (``tta``: flip averaging)."""
    model.eval()
    head = Probabilities(model, tta)
    probs, labels = [], []
    for images, y in progress_bar(loader, progress, desc=desc, total=len(loader)):
        probs.append(head(images).numpy())
        labels.append(y.numpy())
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64).reshape(-1)


def score(model: paddle.nn.Layer, loader: paddle.io.DataLoader, progress: bool = False,
          tta: bool = False) -> Dict[str, float]:
    """Loss (plain cross-entropy) and accuracy on ``loader``, summed over all ranks' shards."""
    start = time.time()
    probs, labels = predict_probs(model, loader, progress, tta=tta)
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)) if len(labels) else np.zeros(0)
    correct = int((probs.argmax(1) == labels).sum()) if len(labels) else 0
    nll_sum, correct, n = dist.reduce_sums([nll.sum(), correct, len(labels)])
    if n == 0:
        return {"loss": float("nan"), "acc": float("nan"), "seconds": 0.0}
    return {"loss": float(nll_sum / n), "acc": float(correct / n), "seconds": time.time() - start}


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    labels, preds = np.asarray(labels, np.int64), np.asarray(preds, np.int64)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def per_class_metrics(cm: np.ndarray, classes: Sequence[str]) -> List[Dict[str, Any]]:
    """Precision, recall, F1 and support per class from a confusion matrix. A class never
    predicted has precision 0 (not NaN), as scikit-learn reports it with zero_division=0."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    rows = []
    for k, name in enumerate(classes):
        p = tp[k] / predicted[k] if predicted[k] else 0.0
        r = tp[k] / actual[k] if actual[k] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append({"class": name, "precision": float(p), "recall": float(r), "f1": float(f1),
                     "support": int(actual[k])})
    return rows


def classification_report(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> Dict[str, Any]:
    """Accuracy, the confusion matrix and per-class metrics of the arg-max predictions."""
    labels = np.asarray(labels, np.int64)
    preds = np.asarray(probs).argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    cm = confusion_matrix(labels, preds, len(classes))
    per_class = per_class_metrics(cm, classes)
    return {"accuracy": float((preds == labels).mean()) if len(labels) else float("nan"),
            "n": int(len(labels)), "classes": list(classes), "confusion_matrix": cm.tolist(),
            "per_class": per_class,
            "macro_f1": float(np.mean([r["f1"] for r in per_class])) if per_class else float("nan")}


def format_report(report: Dict[str, Any]) -> str:
    """The report as a plain-text table (what the command prints)."""
    width = max([len(r["class"]) for r in report["per_class"]] + [9])
    lines = [f"accuracy {report['accuracy']:.4f} on {report['n']} images",
             f"{'class':<{width}}  precision  recall     f1  support"]
    for r in report["per_class"]:
        lines.append(f"{r['class']:<{width}}  {r['precision']:9.4f}  {r['recall']:6.4f}  "
                     f"{r['f1']:.4f}  {r['support']:7d}")
    lines.append(f"{'macro F1':<{width}}  {'':9}  {'':6}  {report['macro_f1']:.4f}")
    return "\n".join(lines)
