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
import statistics
import time
from typing import Callable, Dict, Sequence

import paddle
import paddle.nn.functional as F

from ..transforms import eval_size
from .budget import PLAN_AFTER_STEPS, UNTIMED_STEPS, Speed, TimeBudget, probe_sizes
from .optim import WarmupCosine
from .pretrained import set_train_mode

log = logging.getLogger("paddle_catdog")

PROBE_REPEATS = 2  # timed passes per size, after one untimed (the default recipe: ~8 s for 5 sizes)


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


def measure(model: paddle.nn.Layer, images: paddle.Tensor, labels: paddle.Tensor, step_s: float,
            size: int, sizes: Sequence[int], evaluation_size: int) -> Speed:
    """``Speed`` from the measured ``step_s`` at ``size`` and a probe at each of ``sizes``: a size
    costs its probe plus what the measured step took beyond its probe (loading, bookkeeping: a
    cost per step that does not grow with the math)."""
    saved = _batchnorm_state(model)
    probes = {s: step_seconds(model, images, labels, s) for s in sorted(set(sizes) | {size})}
    forward = forward_seconds(model, images, evaluation_size)
    _restore(model, saved)  # the probes' batches leave no trace in the running statistics
    overhead = max(0.0, step_s - probes[size])
    return Speed(steps=tuple((s, t + overhead) for s, t in sorted(probes.items())),
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
