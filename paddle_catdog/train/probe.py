"""Measuring the run's speed early, so the time budget can fix the plan once (budget.py).

``FirstSteps`` is called after each of epoch 1's first steps (``train_one_epoch``'s ``on_step``).
It times steps UNTIMED_STEPS..PLAN_AFTER_STEPS as they train (data loading included), then on
the batch in hand times a few probe steps (forward and backward, no update) at every size the
plan may train at, and forward passes in evaluation mode at the evaluation size: how the step
cost grows with size on this host, for this network. The probes leave the weights, gradients and
batch-norm statistics as they found them. Then it asks the budget for the plan and logs it.
"""
from __future__ import annotations

import logging
import math
import statistics
import time
from typing import Callable, Dict, Sequence, Tuple

import paddle
import paddle.nn.functional as F

from ..transforms import eval_size
from .budget import PLAN_AFTER_STEPS, UNTIMED_STEPS, Speed, TimeBudget, probe_sizes
from .optim import WarmupCosine
from .pretrained import set_train_mode

log = logging.getLogger("paddle_catdog")

PROBE_REPEATS = 2  # timed passes per size, after one untimed (the default recipe: ~8 s for 5 sizes)
EXPONENT_RANGE = (1.0, 2.5)  # probe time ~ size^b: fixed costs keep b above 1, the math near 2
ADDED_SHARE = 0.35  # per-step work beside the probe's math, at most this share of it (a clean run:
# 0.18 s measured beside a 0.144 s probe at 64 px); a larger excess is a slow minute (step_costs)


def _resized(images: paddle.Tensor, size: int) -> paddle.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=[size, size], mode="bilinear", align_corners=False)


def _sync() -> None:
    """Wait for queued GPU kernels, so a clock reading covers them (a CPU ran them already)."""
    if paddle.get_device().startswith("gpu"):
        paddle.device.synchronize()


def _timed(fn: Callable[[], None], repeats: int = PROBE_REPEATS) -> float:
    fn()  # warm-up: a new input size allocates
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _batchnorm_state(model: paddle.nn.Layer) -> Dict[str, paddle.Tensor]:
    """The running statistics (the buffers), to be put back by ``_restore``."""
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


def _restore(model: paddle.nn.Layer, saved: Dict[str, paddle.Tensor]) -> None:
    for name, buffer in model.named_buffers():
        buffer.set_value(saved[name])


def step_seconds(model: paddle.nn.Layer, images: paddle.Tensor, labels: paddle.Tensor, size: int) -> float:
    """Seconds of one forward and backward pass of ``images`` at ``size`` (no optimizer step)."""
    x = _resized(images, size)

    def step() -> None:
        F.cross_entropy(model(x).astype("float32"), labels).backward()
        model.clear_gradients()
    return _timed(step)


def forward_seconds(model: paddle.nn.Layer, images: paddle.Tensor, size: int) -> float:
    """Seconds of one forward pass of ``images`` at ``size`` in evaluation mode."""
    x = _resized(images, size)
    model.eval()
    try:
        with paddle.no_grad():
            return _timed(lambda: model(x))
    finally:
        set_train_mode(model)


def step_costs(probes: Dict[int, float], step_s: float, size: int) -> Tuple[Tuple[int, float], ...]:
    """Seconds per training step at each probed size, such that ``size`` costs the measured
    ``step_s``. The probes are smoothed by one power law (``t = a * size**b``, fitted in log space,
    b within EXPONENT_RANGE): two timings per size are noisy (one run probed 112 px faster than
    96). What the measured step took beyond its probe is per-step work that does not grow with the
    size (optimizer, loading, bookkeeping) up to ADDED_SHARE of the probe; beyond that it is a slow
    minute or the run's first steps, which slow every size in proportion. (Adding all of it to
    every size priced one run's 128 px step at 1.9x its 64 px step, where its epochs took 3.2-3.7x;
    scaling all of it priced another's at 4.6x, the probes' own ratio, where epochs take ~3.5x.)"""
    sizes = sorted(probes)
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(probes[s], 1e-9)) for s in sizes]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / spread if spread else EXPONENT_RANGE[0]
    slope = min(max(slope, EXPONENT_RANGE[0]), EXPONENT_RANGE[1])

    def fitted(s: int) -> float:
        return math.exp(my + slope * (math.log(s) - mx))
    added = min(max(step_s - fitted(size), 0.0), ADDED_SHARE * fitted(size))
    scale = step_s / (fitted(size) + added)
    return tuple((s, scale * (fitted(s) + added)) for s in sizes)


def measure(model: paddle.nn.Layer, images: paddle.Tensor, labels: paddle.Tensor, step_s: float,
            size: int, sizes: Sequence[int], evaluation_size: int) -> Speed:
    """``Speed`` from the measured ``step_s`` at ``size`` and a probe at each of ``sizes``
    (``step_costs``), and a forward pass at ``evaluation_size``."""
    saved = _batchnorm_state(model)
    probes = {s: step_seconds(model, images, labels, s) for s in sorted(set(sizes) | {size})}
    forward = forward_seconds(model, images, evaluation_size)
    _restore(model, saved)  # the probes' batches leave no trace in the running statistics
    log.info("probed s/step %s", ", ".join(f"{s} px {t:.3f}" for s, t in sorted(probes.items())))
    return Speed(steps=step_costs(probes, step_s, size),
                 eval_photo_s=forward / int(images.shape[0]), eval_size=evaluation_size)


class FirstSteps:
    """``on_step`` for epoch 1 under a time budget: fixes ``budget``'s plan after its first
    PLAN_AFTER_STEPS steps (or the whole epoch, if shorter) and sets ``scheduler``'s length."""

    def __init__(self, model: paddle.nn.Layer, budget: TimeBudget, scheduler: WarmupCosine,
                 steps_in_epoch: int, val_photos: int) -> None:
        self.model, self.budget, self.scheduler = model, budget, scheduler
        self.val_photos = val_photos
        self.plan_at = min(PLAN_AFTER_STEPS, steps_in_epoch)
        self.timed_from = min(UNTIMED_STEPS, self.plan_at - 1)
        self.t0 = time.perf_counter()

    def __call__(self, step: int, images: paddle.Tensor, labels: paddle.Tensor) -> None:
        if self.budget.decided:
            return
        if step == self.timed_from:
            _sync()
            self.t0 = time.perf_counter()
        if step < self.plan_at:
            return
        _sync()
        step_s = (time.perf_counter() - self.t0) / max(1, step - self.timed_from)
        cfg, size = self.budget.cfg, int(images.shape[-1])
        speed = measure(self.model, images, labels, step_s, size, probe_sizes(cfg), eval_size(cfg))
        plan = self.budget.decide(speed, self.val_photos, step)
        self.scheduler.set_total_steps(plan.total_steps)
        log.info("measured s/step %s, %.1f ms/photo to evaluate at %d px; %.1f of %.1f min left",
                 ", ".join(f"{s} px {t:.2f}" for s, t in speed.steps), 1000 * speed.eval_photo_s,
                 speed.eval_size, self.budget.seconds_left() / 60, self.budget.seconds / 60)
        for line in plan.describe():
            log.info("%s", line)
