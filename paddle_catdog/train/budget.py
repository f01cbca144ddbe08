"""The time budget: the one object that decides how many epochs a run trains, at which input
size each epoch trains (progressive resizing) and which epochs are evaluated.

With ``--epochs`` given (or ``--time-budget 0``) the count is fixed. Otherwise the run starts from
a plan of DEFAULT_EPOCHS and, after every epoch, re-plans from the newest epoch's measured speed
so that it ends within ``--time-budget`` minutes on a fast or a slow machine alike.
"""
from __future__ import annotations

import math
import time
from typing import Dict, Optional

from .. import distributed as dist
from ..config import TrainConfig

DEFAULT_EPOCHS = 20  # the plan before the first measurement, and the count with --time-budget 0
RAMP_FRACTION = 0.85  # progressive resizing reaches the full size after this share of the epochs

# Training time grows with input size a little slower than the pixel count (fixed per-step costs):
# Two default runs on 2 cores (data loading included) trained an epoch in 53-55 s at 64 px and
# 127-140 s at 128 px: about size^1.3-1.4 (the model step alone scales closer to size^1.75). With
# 1.75, then 1.5, both runs ended ~4 minutes before their budget.
SIZE_COST_EXPONENT = 1.3


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


class TimeBudget:
    """The run's plan: ``epochs`` (re-planned after every epoch when a budget applies), the
    training ``size`` of each epoch and whether it ``evaluates``."""

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
        epochs = epochs_for_budget(self.cfg, self.seconds, elapsed, train["seconds"], other_s,
                                   done=done, size=self.size(done - 1), eval_s=self.eval_s)
        # every rank must run the same number of epochs: take the ranks' mean
        self.epochs = int(round(dist.reduce_sums([epochs])[0] / dist.world_size()))
        return True
