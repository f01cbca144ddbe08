"""The plan of a run, decided once: how many epochs, the input size of each, the learning rate of
every step and which epochs are evaluated (``Plan``, pure functions of the epoch or step).

With ``--epochs`` (or ``--time-budget 0``, or on ``--resume``) the plan is fixed from the start.
With a time budget, the run trains the first PLAN_AFTER_STEPS steps of epoch 1 (all warm-up),
measures them and times a few probe steps at every size (``probe.py``), then fixes the plan:
the final size (``--image-size``, or a smaller one where fewer than ``--min-epochs`` would fit) and
the epoch count that fills the budget. From then on the learning rate, the sizes and the
evaluations follow the plan; after each epoch its measured time is checked against the budget
(``TimeBudget.check``): a plan that would overrun is shortened, so the learning rate jumps down
and still ends at zero within the budget; a run ahead of its plan may be lengthened only in the
plan's first half.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from .. import distributed as dist
from ..config import TrainConfig
from ..transforms import eval_size
from .optim import warmup_cosine

DEFAULT_EPOCHS = 20  # the count with --time-budget 0 (and the provisional plan of epoch 1's first steps)
RAMP_FRACTION = 0.85  # progressive resizing reaches the full size after this share of the epochs
SMALLEST_FINAL_SIZE = 80  # the size plan goes no lower: cats and dogs stay recognisable at 80 px
PLAN_AFTER_STEPS = 100  # steps of epoch 1 trained before the plan is fixed (still warm-up) ...
UNTIMED_STEPS = 40  # ... of which the first are not timed: a run's first steps are slower than its
# steady pace (loader workers starting, memory being allocated). Plans made from steps 6-40 and
# 21-60 ended 12-minute runs 4.0 and 2.4 minutes early (their steps measured 0.39 and 0.36 s at
# 64 px; later epochs ran at 0.32)
MARGIN = 0.97  # the plan fills this share of the time left (jitter, the final checkpoint)
EPOCH_OVERHEAD_S = 2.0  # per epoch beyond its steps: loader start, checkpoints (measured: 1-3 s)
PACE_TOLERANCE = 0.05  # the plan changes only when the rest would miss the budget by more than this
LOADER_FACTOR = 1.3  # evaluation time over its model time (decoding, batching), measured ~1.2-1.4
EVAL_OVERHEAD_S = 3.0  # per evaluation beyond its photos: loader workers starting, scoring
DEFAULT_EXPONENT = 1.5  # step time ~ size^this, beyond the sizes measured


def train_size(start: int, final: int, epoch: int, epochs: int) -> int:
    """Training input size of 0-based ``epoch`` of ``epochs``: ``final``, or with progressive
    resizing (``start`` > 0) a linear ramp from ``start`` in steps of 16 px that reaches ``final``
    after RAMP_FRACTION of the epochs (the last epochs train at the size evaluated)."""
    ramp = round(RAMP_FRACTION * epochs) - 1
    if not start or start >= final or epochs < 3 or epoch >= ramp:  # too short a run to ramp
        return final
    size = start + (final - start) * epoch / ramp
    return min(final, int(size // 16 * 16) or 16)


def evaluates(epoch: int, epochs: int, eval_from: float) -> bool:
    """Whether 0-based ``epoch`` of ``epochs`` is evaluated: the last, and those from ``eval_from``
    of the run on. Early checkpoints are never the best; each evaluation costs time."""
    return epoch >= epochs - 1 or epoch + 1 >= math.ceil(eval_from * epochs)


@dataclass(frozen=True)
class Plan:
    """Everything a run does, as functions of the epoch or the step: ``size``, ``evaluates``,
    ``lr`` (linear warm-up, then cosine to zero at the last step). ``describe`` prints it."""

    epochs: int
    final_size: int
    start_size: int
    steps_per_epoch: int
    warmup_steps: int
    peak_lr: float
    eval_from: float

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def size(self, epoch: int) -> int:
        return train_size(self.start_size, self.final_size, epoch, self.epochs)

    def evaluates(self, epoch: int) -> bool:
        return evaluates(epoch, self.epochs, self.eval_from)

    def full_evaluation(self, epoch: int) -> bool:
        """The last epoch's evaluation is the full one (with --tta's flip); earlier ones score
        the plain image only, at half the cost, for the curves and the best checkpoint."""
        return epoch >= self.epochs - 1

    def lr(self, step: int) -> float:
        return warmup_cosine(step, self.peak_lr, self.warmup_steps, self.total_steps)

    def describe(self) -> List[str]:
        """One line per epoch: its size, its first and last learning rate, whether it evaluates."""
        lines = [f"plan: {self.epochs} epochs of {self.steps_per_epoch} steps, "
                 f"{self.size(0)} -> {self.final_size} px, lr peak {self.peak_lr:g} after "
                 f"{self.warmup_steps} warm-up steps, cosine to 0"]
        for e in range(self.epochs):
            first, last = e * self.steps_per_epoch, (e + 1) * self.steps_per_epoch - 1
            evaluation = ("  evaluate (full)" if self.full_evaluation(e) else
                          "  evaluate" if self.evaluates(e) else "")
            lines.append(f"  epoch {e + 1:3d}  {self.size(e):4d} px  lr {self.lr(first):.2e} -> "
                         f"{self.lr(last):.2e}{evaluation}")
        return lines


def plan_for(cfg: TrainConfig, steps_per_epoch: int, epochs: Optional[int] = None,
             final_size: Optional[int] = None) -> Plan:
    """``cfg``'s plan with ``epochs`` (default ``cfg.epochs`` or DEFAULT_EPOCHS) at ``final_size``
    (default ``cfg.image_size``)."""
    return Plan(epochs=epochs or cfg.epochs or DEFAULT_EPOCHS, final_size=final_size or cfg.image_size,
                start_size=cfg.start_image_size, steps_per_epoch=steps_per_epoch,
                warmup_steps=round(cfg.warmup_epochs * steps_per_epoch), peak_lr=cfg.lr,
                eval_from=cfg.eval_from)


@dataclass(frozen=True)
class Speed:
    """What the first steps measured: ``steps`` pairs (size, seconds per training step at that
    size, data loading included), one for every size the plan may train at; ``eval_photo_s``
    seconds to evaluate one photo (one view, model only) at ``eval_size``. A size between two
    measured ones is interpolated on a power law; the cost is no power law across all sizes (the
    GEMM path of models/layers.py takes over on maps of 4x4 and less), hence one probe per size."""

    steps: Tuple[Tuple[int, float], ...]
    eval_photo_s: float
    eval_size: int

    def step_at(self, size: int) -> float:
        table = sorted(self.steps)
        for (a, ta), (b, tb) in zip(table, table[1:]):
            if a <= size <= b:
                return ta * (tb / ta) ** (math.log(size / a) / math.log(b / a)) if b > a else ta
        (a, ta) = table[0] if size < table[0][0] else table[-1]
        return ta * (size / a) ** DEFAULT_EXPONENT  # outside the measured sizes

    def evaluation_s(self, size: int, photos: int, tta: bool) -> float:
        per_photo = self.eval_photo_s * self.step_at(size) / self.step_at(self.eval_size)
        return EVAL_OVERHEAD_S + LOADER_FACTOR * photos * (2 if tta else 1) * per_photo

    def slower(self, pace: float) -> "Speed":
        """Every cost ``pace`` times as high."""
        return Speed(tuple((size, t * pace) for size, t in self.steps), self.eval_photo_s * pace, self.eval_size)


def epoch_cost(plan: Plan, epoch: int, speed: Speed, cfg: TrainConfig, val_photos: int,
               steps: Optional[int] = None) -> float:
    """Predicted seconds of 0-based ``epoch`` (``steps`` of it, default all): its steps at its
    size, the per-epoch overhead, and its evaluation at the plan's evaluation size."""
    seconds = (plan.steps_per_epoch if steps is None else steps) * speed.step_at(plan.size(epoch))
    if plan.evaluates(epoch):
        final = eval_size(dataclasses.replace(cfg, image_size=plan.final_size))
        seconds += speed.evaluation_s(final, val_photos, cfg.tta and plan.full_evaluation(epoch))
    return seconds + EPOCH_OVERHEAD_S


def run_cost(plan: Plan, speed: Speed, cfg: TrainConfig, val_photos: int, done_steps: int) -> float:
    """Predicted seconds of the rest of ``plan`` after ``done_steps`` steps (mid-epoch allowed)."""
    done_epochs, into = divmod(done_steps, plan.steps_per_epoch)
    total = 0.0
    for e in range(done_epochs, plan.epochs):
        left = plan.steps_per_epoch - into if e == done_epochs else None
        total += epoch_cost(plan, e, speed, cfg, val_photos, left)
    return total


def fitting_epochs(cfg: TrainConfig, steps_per_epoch: int, final_size: int, speed: Speed,
                   seconds_left: float, val_photos: int, done_steps: int) -> int:
    """The most epochs at ``final_size`` whose rest (after ``done_steps``) costs at most
    MARGIN * ``seconds_left``; at least the epochs begun."""
    begun = max(1, math.ceil(done_steps / steps_per_epoch))
    best = begun
    for epochs in range(begun, 1000):
        plan = plan_for(cfg, steps_per_epoch, epochs, final_size)
        if run_cost(plan, speed, cfg, val_photos, done_steps) > MARGIN * seconds_left:
            break
        best = epochs
    return best


def probe_sizes(cfg: TrainConfig) -> List[int]:
    """Every size a plan may train at: the start size and the 16 px steps up to ``cfg.image_size``
    (the ramps and the final sizes ``final_sizes`` offers)."""
    start = min(cfg.start_image_size or cfg.image_size, cfg.image_size)
    return sorted({start, cfg.image_size, *final_sizes(cfg),
                   *range((start + 15) // 16 * 16, cfg.image_size, 16)})


def final_sizes(cfg: TrainConfig) -> Sequence[int]:
    """The final sizes the plan may choose, largest first: ``cfg.image_size``, then 16 px steps
    down to SMALLEST_FINAL_SIZE (and not below the start size)."""
    floor = max(SMALLEST_FINAL_SIZE, cfg.start_image_size or 0)
    return [cfg.image_size] + list(range((cfg.image_size - 1) // 16 * 16, floor - 1, -16))


def choose_plan(cfg: TrainConfig, steps_per_epoch: int, speed: Speed, seconds_left: float,
                val_photos: int, done_steps: int) -> Plan:
    """The plan for the rest of the budget: the largest of ``final_sizes`` at which
    ``cfg.min_epochs`` epochs fit (else the smallest), with as many epochs as fit at it."""
    sizes = final_sizes(cfg) if cfg.min_epochs else [cfg.image_size]
    for final in sizes:
        epochs = fitting_epochs(cfg, steps_per_epoch, final, speed, seconds_left, val_photos, done_steps)
        if epochs >= cfg.min_epochs:
            break
    return plan_for(cfg, steps_per_epoch, epochs, final)


class TimeBudget:
    """The run's ``plan``: fixed from the start (``--epochs``, ``--time-budget 0``, a resumed run),
    or with a budget decided once by ``decide`` after epoch 1's first steps and afterwards only
    shortened by ``check``."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, start: Optional[float] = None,
                 resumed: bool = False) -> None:
        self.cfg = cfg
        # A resumed run finishes the plan its checkpoint recorded (the checkpoint's --epochs).
        self.seconds = 60 * cfg.time_budget if cfg.epochs is None and not resumed else 0.0
        self.start = time.time() if start is None else start
        self.plan = plan_for(cfg, steps_per_epoch)
        self.decided = not self.active
        self.speed: Optional[Speed] = None

    @property
    def active(self) -> bool:
        return self.seconds > 0

    def seconds_left(self) -> float:
        return self.seconds - (time.time() - self.start)

    def decide(self, speed: Speed, val_photos: int, done_steps: int) -> Plan:
        """Fix the plan from ``speed`` after ``done_steps`` steps; every rank takes rank 0's."""
        plan = choose_plan(self.cfg, self.plan.steps_per_epoch, speed, self.seconds_left(),
                           val_photos, done_steps)
        epochs, final = dist.reduce_sums([plan.epochs if dist.is_main() else 0,
                                          plan.final_size if dist.is_main() else 0])
        self.plan = dataclasses.replace(plan, epochs=int(epochs), final_size=int(final))
        self.speed, self.val_photos, self.decided = speed, val_photos, True
        self.actual_s = self.predicted_s = 0.0  # the epochs since the plan, measured and predicted
        return self.plan

    def check(self, done: int, epoch_s: float) -> bool:
        """After ``done`` epochs, the newest of which took ``epoch_s``: re-fit the epoch count to
        the budget at the pace the run has kept since the plan (all its epochs after the first,
        against their predictions: one slow epoch on a busy host is not a trend). A run more than
        PACE_TOLERANCE behind is shortened, at any time (the rate only jumps down); one as far
        ahead is lengthened only in the plan's first half, where a longer cosine raises the rate
        by a few percent. Returns whether the plan changed."""
        if not self.active or self.speed is None or done <= 1 or done >= self.plan.epochs:
            return False  # epoch 1 also ran the probes and the planning: its time is no pace
        self.actual_s += epoch_s
        self.predicted_s += epoch_cost(self.plan, done - 1, self.speed, self.cfg, self.val_photos)
        pace = self.actual_s / self.predicted_s
        steps = done * self.plan.steps_per_epoch
        rest = pace * run_cost(self.plan, self.speed, self.cfg, self.val_photos, steps)
        behind = rest > self.seconds_left() * (1 + PACE_TOLERANCE)
        ahead = rest < self.seconds_left() * (1 - PACE_TOLERANCE) and 2 * done <= self.plan.epochs
        if not (behind or ahead):
            return False
        epochs = fitting_epochs(self.cfg, self.plan.steps_per_epoch, self.plan.final_size,
                                self.speed.slower(pace), self.seconds_left(), self.val_photos, steps)
        epochs = min(epochs, self.plan.epochs) if behind else max(epochs, self.plan.epochs)
        epochs = max(done, int(dist.reduce_sums([epochs if dist.is_main() else 0])[0]))
        if epochs == self.plan.epochs:
            return False
        self.plan = dataclasses.replace(self.plan, epochs=epochs)
        return True

    def planned(self) -> TrainConfig:
        """The config as planned (epochs, final size): what checkpoints record, so that a resumed
        run, evaluation and prediction use the sizes this run trained at."""
        return dataclasses.replace(self.cfg, epochs=self.plan.epochs, image_size=self.plan.final_size)
