"""The transfer recipe (``--linear-probe``, the default of ``--pretrained efficientnet_lite0``): a
frozen pretrained backbone's features, computed once, then a new classifier on them.

1. **Features.** The backbone up to its pooled features (``models.PooledFeatures``) is saved as a
   static graph and run by Paddle Inference with oneDNN (several times faster than dygraph on CPU:
   benchmarks/README.md), over the evaluation transform of each photo: first every validation
   photo (and its mirror image with ``--tta``), then the training photos in a seeded shuffled order,
   each with its mirror image as a second view when the budget has room for both, until the time
   budget's share runs out. A slow CPU gets fewer photos, not a late finish. The features stay in
   memory (1,280 floats per view).
2. **Classifier.** The model's ``fc`` is fitted on them as a multinomial logistic regression
   (full batch, L-BFGS) whose L2 penalty is chosen on a held-out fifth of the *training* features
   (never on validation), then refitted on all of them: seconds.
3. **Checkpoint.** The backbone with the fitted ``fc`` is saved as ``best`` and ``last`` like any
   run's, so prediction, evaluation, Grad-CAM and export treat it like any other model. Its
   validation figures are computed from the cached features exactly as ``Probabilities`` computes
   them (the softmax of each view, averaged).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from .. import distributed as dist
from ..config import TrainConfig
from ..data.layouts import SampleSet
from ..data.loader import make_loader
from ..data.split import Data
from ..metrics import progress_bar
from ..models import PooledFeatures
from ..static_graph import StaticRunner, resolve_precision
from ..transforms import eval_size
from .recorder import EpochRecorder

log = logging.getLogger("paddle_catdog")

HEAD_RESERVE_S = 10.0  # kept free at the end of the budget: fitting the head (7 s for 16,000 views here), checkpoints
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 strengths tried (per-example mean loss + l2/2 |W|^2)
HOLDOUT = 0.2  # share of the training features that picks the penalty


class FeatureSet:
    """Features (views, N, D) of N photos with labels (N,); view 1 is the mirror image."""

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.features, self.labels = features, labels

    def flat(self) -> Tuple[np.ndarray, np.ndarray]:
        """Every view as its own example (training)."""
        views = self.features.shape[0]
        return self.features.reshape(-1, self.features.shape[-1]), np.tile(self.labels, views)


def _batches(runner: StaticRunner, samples: SampleSet, cfg: TrainConfig, views: int,
             desc: str) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(features (views, n, D), labels (n,)) per batch of ``samples`` under the evaluation transform."""
    loader = make_loader(samples, cfg, train=False)
    for images, labels in progress_bar(loader, cfg.progress, desc=desc, total=len(loader)):
        batch = images.numpy()
        outs = [runner.run(batch)]
        if views > 1:  # the mirror image, as Probabilities' flip TTA makes it
            outs.append(runner.run(np.ascontiguousarray(batch[:, :, :, ::-1])))
        yield np.stack(outs).astype(np.float32), labels.numpy().astype(np.int64).reshape(-1)


def extract(runner: StaticRunner, samples: SampleSet, cfg: TrainConfig, views: int,
            deadline: Optional[float] = None, desc: str = "features") -> FeatureSet:
    """Features of ``samples`` in order, stopping after the batch that passes ``deadline``."""
    feats: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    for f, y in _batches(runner, samples, cfg, views, desc):
        feats.append(f)
        labels.append(y)
        if deadline is not None and time.time() > deadline:
            break
    if not feats:
        return FeatureSet(np.zeros((views, 0, 0), np.float32), np.zeros(0, np.int64))
    return FeatureSet(np.concatenate(feats, axis=1), np.concatenate(labels))


def _train_views(n: int, seconds_per_view: float, remaining_s: float) -> int:
    """2 (each photo and its mirror image) when all ``n`` photos fit twice, else 1."""
    return 2 if 2 * n * seconds_per_view <= remaining_s else 1


# ----------------------------------------------------------------------------------- the head
def _fit_logistic(x: np.ndarray, y: np.ndarray, num_classes: int, l2: float,
                  max_iter: int = 200) -> Tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression: (W (D, C), b (C,)) minimising mean cross-entropy +
    l2 / 2 * |W|^2, by full-batch L-BFGS."""
    xt, yt = paddle.to_tensor(x), paddle.to_tensor(y)
    weight = paddle.create_parameter([x.shape[1], num_classes], "float32",
                                     default_initializer=paddle.nn.initializer.Constant(0.0))
    bias = paddle.create_parameter([num_classes], "float32",
                                   default_initializer=paddle.nn.initializer.Constant(0.0))
    optimizer = paddle.optimizer.LBFGS(learning_rate=1.0, max_iter=max_iter, history_size=20,
                                       line_search_fn="strong_wolfe", parameters=[weight, bias])

    def closure() -> paddle.Tensor:
        optimizer.clear_grad()
        loss = F.cross_entropy(paddle.matmul(xt, weight) + bias, yt) + 0.5 * l2 * (weight ** 2).sum()
        loss.backward()
        return loss
    with warnings.catch_warnings():  # Paddle's L-BFGS copies tensors with to_tensor, which warns
        warnings.filterwarnings("ignore", message="To copy construct from a tensor")
        optimizer.step(closure)
    return weight.numpy(), bias.numpy()


def _probs(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = x @ weight + bias
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def score_features(data: FeatureSet, weight: np.ndarray, bias: np.ndarray) -> Dict[str, float]:
    """Loss and accuracy with each photo's views' probabilities averaged (``Probabilities``' TTA)."""
    probs = _probs(data.features, weight, bias).mean(axis=0)
    picked = np.clip(probs[np.arange(len(data.labels)), data.labels], 1e-12, None)
    return {"loss": float(-np.log(picked).mean()), "acc": float((probs.argmax(1) == data.labels).mean())}


def fit_head(train: FeatureSet, num_classes: int, seed: int) -> Tuple[np.ndarray, np.ndarray, float]:
    """(W, b, chosen L2) of the classifier on ``train``: features standardized (then folded
    back into W and b, so the head reads the backbone's raw features), the L2 penalty picked by
    held-out accuracy (then loss) on a seeded fifth of the photos, then refitted on all."""
    every_view = train.features.reshape(-1, train.features.shape[-1])
    mean, std = every_view.mean(axis=0), every_view.std(axis=0) + 1e-6
    scaled = FeatureSet((train.features - mean) / std, train.labels)
    order = np.random.default_rng(seed).permutation(len(train.labels))
    cut = int(len(order) * HOLDOUT)
    fit_part = FeatureSet(scaled.features[:, order[cut:]], scaled.labels[order[cut:]])
    held = FeatureSet(scaled.features[:, order[:cut]], scaled.labels[order[:cut]])
    best: Tuple[float, float, float] = (math.inf, 0.0, PENALTIES[-1])
    for l2 in PENALTIES if cut > 0 else ():
        held_score = score_features(held, *_fit_logistic(*fit_part.flat(), num_classes, l2))
        log.info("  head: L2 %g -> held-out acc %.4f loss %.4f", l2, held_score["acc"], held_score["loss"])
        best = min(best, (held_score["loss"], -held_score["acc"], l2))
    l2 = best[2]
    weight, bias = _fit_logistic(*scaled.flat(), num_classes, l2)
    weight = weight / std[:, None]
    bias = bias - mean @ weight
    return weight.astype(np.float32), bias.astype(np.float32), l2


# ---------------------------------------------------------------------------------- the recipe
def _runner(model: paddle.nn.Layer, cfg: TrainConfig, device: str, folder: Path) -> StaticRunner:
    precision = resolve_precision("auto", device)
    log.info("features through Paddle Inference (%s, %s)", device, precision)
    return StaticRunner.from_layer(PooledFeatures(model), folder / "features", eval_size(cfg),
                                   device=device, num_threads=cfg.num_threads, precision=precision)


def _shuffled(samples: SampleSet, seed: int) -> SampleSet:
    order = list(samples.samples)
    random.Random(seed).shuffle(order)
    return SampleSet(order, samples.classes, samples.layout)


def linear_probe(cfg: TrainConfig, data: Data, model: paddle.nn.Layer, recorder: EpochRecorder,
                 device: str, start: float) -> None:
    """Features within the budget, the fitted head, the checkpoints (see the module docstring)."""
    if dist.world_size() > 1:
        raise ValueError("--linear-probe runs in one process (it takes minutes): start it "
                         "without paddle.distributed.launch")
    budget_s = 60 * cfg.time_budget
    deadline = start + budget_s * 0.97 - HEAD_RESERVE_S if budget_s > 0 else None
    val_views = 2 if cfg.tta else 1
    with tempfile.TemporaryDirectory(prefix="catdog-features-") as tmp:
        runner = _runner(model, cfg, device, Path(tmp))
        t0 = time.time()
        val = extract(runner, data.val, cfg, val_views, desc="features val")
        per_view = (time.time() - t0) / max(1, val_views * len(val.labels))
        train_set = _shuffled(data.train, cfg.seed)
        remaining = math.inf if deadline is None else deadline - time.time()
        views = _train_views(len(train_set.samples), per_view, remaining)
        t1 = time.time()
        train = extract(runner, train_set, cfg, views, deadline, desc=f"features train x{views}")
        extract_s = time.time() - t1
    if len(np.unique(train.labels)) < 2:
        raise ValueError(f"--time-budget {cfg.time_budget:g} min left no time for training photos "
                         f"of every class ({len(train.labels)} photos): raise it")
    log.info("features: %d val x%d, %d of %d train photos x%d in %.0f s (%.1f ms per view)",
             len(val.labels), val_views, len(train.labels), len(train_set.samples), views,
             time.time() - t0, 1000 * per_view)
    t2 = time.time()
    weight, bias, l2 = fit_head(train, len(data.classes), cfg.seed)
    model.fc.weight.set_value(paddle.to_tensor(weight))
    model.fc.bias.set_value(paddle.to_tensor(bias))
    train_score = score_features(train, weight, bias)
    val_score = {**score_features(val, weight, bias), "seconds": time.time() - t2}
    log.info("head fitted in %.1f s (L2 %g)", time.time() - t2, l2)
    planned = dataclasses.replace(cfg, epochs=1)
    images_per_s = len(train.labels) * views / max(extract_s, 1e-9)
    recorder.record(1, planned, eval_size(cfg), {**train_score, "lr": 0.0, "images_per_s": images_per_s,
                                                 "seconds": extract_s}, val_score,
                    time.time() - start, model, None, None)
