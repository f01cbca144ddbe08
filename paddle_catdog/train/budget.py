"""The time budget: the one object that decides how many epochs a run trains, at which input
size each epoch trains (progressive resizing up to a final size it chooses) and which epochs are
evaluated.

With ``--epochs`` given (or ``--time-budget 0``) the count is fixed. Otherwise the run starts from
a plan of DEFAULT_EPOCHS and, after every epoch, re-plans from the newest epoch's measured speed
so that it ends within ``--time-budget`` minutes on a fast or a slow machine alike. After the first
epoch it also chooses the final size (``plan_final_size``): ``--image-size`` when at least
``--min-epochs`` fit at it, else the largest smaller size at which they do. A CPU that trains 2-3x
slower then gets more epochs of smaller photos rather than a few epochs of large ones.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Dict, Optional, Sequence, Tuple

from .. import distributed as dist
from ..config import TrainConfig
from ..transforms import eval_size

DEFAULT_EPOCHS = 20  # the plan before the first measurement, and the count with --time-budget 0
RAMP_FRACTION = 0.85  # progressive resizing reaches the full size after this share of the epochs

# Training time grows with input size a little slower than the pixel count (fixed per-step costs):
# Two default runs on 2 cores (data loading included) trained an epoch in 53-55 s at 64 px and
# 127-140 s at 128 px: about size^1.3-1.4 (the model step alone scales closer to size^1.75). With
# 1.75, then 1.5, both runs ended ~4 minutes before their budget.
SIZE_COST_EXPONENT = 1.3
SMALLEST_FINAL_SIZE = 80  # the size plan goes no lower: cats and dogs stay recognisable at 80 px


def train_size(cfg: TrainConfig, epoch: int, epochs: Optional[int] = None) -> int:
    """Training input size of ``epoch`` (0-based) in a run of ``epochs``: ``cfg.image_size``, or
    with progressive resizing a linear ramp from ``cfg.start_image_size`` in steps of 16 px that
    reaches the full size after RAMP_FRACTION of the epochs (the last epochs train at the size
    evaluated)."""
    start, final = cfg.start_image_size, cfg.image_size
    epochs = epochs or cfg.epochs or DEFAULT_EPOCHS
    ramp = round(RAMP_FRACTION * epochs) - 1
    if not start or start >= final or epochs < 3 or epoch >= ramp:  # too short a run to ramp
        return final
    size = start + (final - start) * epoch / ramp
    return min(final, int(size // 16 * 16) or 16)


def evaluates(cfg: TrainConfig, epoch: int, epochs: int) -> bool:
    """Whether 0-based ``epoch`` of ``epochs`` is evaluated: the first (a sanity check, and the
    budget's measure of evaluation time), the last, and those from ``cfg.eval_from`` of the run on."""
    return epoch == 0 or epoch >= epochs - 1 or epoch + 1 >= math.ceil(cfg.eval_from * epochs)


def epochs_for_budget(cfg: TrainConfig, budget_s: float, elapsed_s: float, train_s: float,
                      other_s: float, done: int = 1, size: Optional[int] = None,
                      eval_s: float = 0.0) -> int:
    """How many epochs in total fit in the budget after ``done`` epochs, the newest of which
    trained in ``train_s`` seconds at ``size`` (default: its progressive-resizing size). Later
    epochs' training time is scaled by (their size / size) ** SIZE_COST_EXPONENT; each also costs
    ``other_s`` (checkpoints, loader start) and ``eval_s`` when it evaluates (see ``evaluates``).
    A 3% margin absorbs jitter. Never fewer than ``done``: then the run stops now."""
    remaining = (budget_s - elapsed_s) * 0.97
    size = size or train_size(cfg, done - 1)
    best = done
    for total in range(done + 1, 1000):
        cost = sum(train_s * (train_size(cfg, e, total) / size) ** SIZE_COST_EXPONENT + other_s
                   + (eval_s if evaluates(cfg, e, total) else 0.0) for e in range(done, total))
        if cost > remaining:
            break
        best = total
    return best


def final_sizes(cfg: TrainConfig) -> Sequence[int]:
    """The final sizes the plan may choose, largest first: ``cfg.image_size``, then 16 px steps
    down to SMALLEST_FINAL_SIZE (and not below the start size)."""
    floor = max(SMALLEST_FINAL_SIZE, cfg.start_image_size or 0)
    return [cfg.image_size] + list(range((cfg.image_size - 1) // 16 * 16, floor - 1, -16))


def plan_final_size(cfg: TrainConfig, budget_s: float, elapsed_s: float, train_s: float,
                    other_s: float, done: int, size: int, eval_s: float = 0.0) -> Tuple[int, int]:
    """(final size, epochs) for the rest of the run after ``done`` epochs, the newest of which
    trained in ``train_s`` at ``size``: the largest of ``final_sizes`` at which ``cfg.min_epochs``
    epochs fit in the budget (``epochs_for_budget``), else the smallest of them. ``eval_s`` was
    measured at ``cfg``'s evaluation size; evaluating at a smaller final size costs less."""
    for final in final_sizes(cfg):
        planned = dataclasses.replace(cfg, image_size=final)
        scaled_eval_s = eval_s * (eval_size(planned) / eval_size(cfg)) ** SIZE_COST_EXPONENT
        epochs = epochs_for_budget(planned, budget_s, elapsed_s, train_s, other_s, done=done,
                                   size=size, eval_s=scaled_eval_s)
        if epochs >= cfg.min_epochs:
            break
    return final, epochs


class TimeBudget:
    """The run's plan: ``epochs`` (re-planned after every epoch when a budget applies), the final
    size (``cfg.image_size`` of ``planned()``, chosen once after the first epoch), the training
    ``size`` of each epoch and whether it ``evaluates``."""

    def __init__(self, cfg: TrainConfig, start: Optional[float] = None, resumed: bool = False) -> None:
        self.cfg = cfg
        # A resumed run finishes the plan its checkpoint recorded (the checkpoint's --epochs).
        self.seconds = 60 * cfg.time_budget if cfg.epochs is None and not resumed else 0.0
        self.epochs = cfg.epochs or DEFAULT_EPOCHS
        self.start = time.time() if start is None else start
        self.eval_s = 0.0  # the newest evaluation's duration

    @property
    def active(self) -> bool:
        return self.seconds > 0

    def size(self, epoch: int) -> int:
        return train_size(self.cfg, epoch, self.epochs)

    def evaluates(self, epoch: int) -> bool:
        return evaluates(self.cfg, epoch, self.epochs)

    def replan(self, done: int, train: Dict[str, float], val: Optional[Dict[str, float]],
               epoch_s: float) -> bool:
        """After ``done`` epochs, the newest of which took ``epoch_s`` seconds (``train`` and
        ``val`` are its figures): set ``epochs`` from its speed; returns whether a re-plan ran."""
        if val is not None:
            self.eval_s = val["seconds"]
        if not self.active or done >= self.epochs:
            return False
        elapsed = time.time() - self.start
        other_s = epoch_s - train["seconds"] - (val["seconds"] if val else 0.0)
        measured = dict(budget_s=self.seconds, elapsed_s=elapsed, train_s=train["seconds"],
                        other_s=other_s, done=done, size=self.size(done - 1), eval_s=self.eval_s)
        if done == 1 and self.cfg.min_epochs:
            final, _ = plan_final_size(self.cfg, **measured)
            # every rank must train at the same size: rank 0's choice (ranks measure alike)
            final = int(dist.reduce_sums([final if dist.is_main() else 0])[0])
            chosen = dataclasses.replace(self.cfg, image_size=final)
            # evaluation was measured at the old size: scale it as plan_final_size did
            self.eval_s *= (eval_size(chosen) / eval_size(self.cfg)) ** SIZE_COST_EXPONENT
            measured["eval_s"], self.cfg = self.eval_s, chosen
        epochs = epochs_for_budget(self.cfg, **measured)
        # every rank must run the same number of epochs: take the ranks' mean
        self.epochs = int(round(dist.reduce_sums([epochs])[0] / dist.world_size()))
        return True

    def planned(self) -> TrainConfig:
        """The config as planned so far (epochs, final size): what checkpoints record, so that a
        resumed run, evaluation and prediction use the sizes this run trained at."""
        return dataclasses.replace(self.cfg, epochs=self.epochs)
