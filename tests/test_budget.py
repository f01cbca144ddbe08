"""The plan of a run (train/budget.py): pure functions of the epoch and step, decided once from
measured speed, only ever shortened afterwards."""
import math
import time

import pytest

from paddle_catdog.config import TrainConfig
from paddle_catdog.train import budget, probe
from paddle_catdog.train.budget import (MARGIN, Speed, TimeBudget, choose_plan, epoch_cost, evaluates,
                                        final_sizes, plan_for, run_cost, train_size)
from paddle_catdog.train.optim import WarmupCosine
from paddle_catdog.train.probe import step_costs

STEPS = 125  # 8,000 photos at batch 64
CFG = TrainConfig(image_size=128, start_image_size=64, eval_from=0.6, min_epochs=12)


def speed(step_s=0.35, exponent=1.4, eval_photo_s=0.004):
    """Roughly the default recipe on 2 cores: 0.35 s a step at 64 px, ~size^1.4."""
    return Speed(steps=tuple((s, step_s * (s / 64) ** exponent) for s in range(64, 129, 16)),
                 eval_photo_s=eval_photo_s, eval_size=128)


def test_speed_between_and_beyond_the_measured_sizes():
    s = Speed(steps=((64, 1.0), (128, 4.0)), eval_photo_s=0.01, eval_size=128)
    assert s.step_at(64) == 1.0 and s.step_at(128) == 4.0
    assert s.step_at(96) == pytest.approx(1.0 * (96 / 64) ** 2)  # the power law through both
    assert s.step_at(256) == pytest.approx(4.0 * 2 ** budget.DEFAULT_EXPONENT)
    assert s.slower(2).step_at(96) == pytest.approx(2 * s.step_at(96))
    assert budget.probe_sizes(TrainConfig(image_size=128, start_image_size=64)) == [64, 80, 96, 112, 128]
    assert budget.probe_sizes(TrainConfig(image_size=32, start_image_size=64)) == [32]


def test_progressive_resizing_ramps_in_16px_steps_and_ends_at_the_final_size():
    sizes = [train_size(64, 128, e, 20) for e in range(20)]
    assert sizes[0] == 64 and sizes[-1] == 128
    assert sizes == sorted(sizes) and all(s % 16 == 0 for s in sizes)
    assert sizes.count(128) >= 2  # the last epochs train at the evaluated size
    assert all(train_size(0, 96, e, 15) == 96 for e in range(15))
    assert train_size(64, 128, 0, 1) == 128  # one epoch: no ramp


def test_evaluations_are_the_last_share_of_the_run_and_the_last_is_full():
    assert [e for e in range(10) if evaluates(e, 10, 0.6)] == [5, 6, 7, 8, 9]
    assert all(evaluates(e, 10, 0.0) for e in range(10))
    assert [e for e in range(3) if evaluates(e, 3, 1.0)] == [2]
    plan = plan_for(CFG, STEPS, 10)
    assert [e for e in range(10) if plan.full_evaluation(e)] == [9]


def test_the_default_run_evaluates_only_epochs_at_the_final_size():
    """An evaluation before progressive resizing reaches the final size scores a network at a
    size it has not trained at, and its time is the budget's: the defaults evaluate only the
    epochs at the final size, at least the last two of a run long enough to ramp."""
    cfg = TrainConfig()
    for epochs in range(8, 60):
        plan = plan_for(cfg, STEPS, epochs)
        evaluated = [e for e in range(epochs) if plan.evaluates(e)]
        at_final = [e for e in range(epochs) if plan.size(e) == cfg.image_size]
        assert evaluated[-1] == epochs - 1 and len(evaluated) >= 2, epochs
        assert set(evaluated) <= set(at_final), (epochs, evaluated, at_final)
        assert len(at_final) - len(evaluated) <= 1, (epochs, evaluated, at_final)  # rounding


def test_the_plans_learning_rate_is_the_schedulers_at_every_step():
    plan = plan_for(CFG, STEPS, 6)
    scheduler = WarmupCosine(CFG.lr, plan.warmup_steps, plan.total_steps)
    for step in range(plan.total_steps):
        assert scheduler.get_lr() == pytest.approx(plan.lr(step), rel=1e-12)
        scheduler.step()
    assert plan.lr(plan.warmup_steps - 1) == pytest.approx(CFG.lr)  # warm-up ends at the peak
    assert plan.lr(plan.total_steps - 1) < 1e-3 * CFG.lr  # ... and the cosine at zero


def test_the_plan_prints_every_epoch():
    lines = plan_for(CFG, STEPS, 14).describe()
    assert len(lines) == 15 and "14 epochs" in lines[0]
    assert "64 px" in lines[1] and "128 px" in lines[-1] and lines[-1].endswith("evaluate (full)")
    assert sum("evaluate" in line for line in lines[1:]) == 14 - math.ceil(0.6 * 14) + 1


def test_the_plan_fills_the_budget_and_one_more_epoch_would_not_fit():
    left, done = 27 * 60, 40
    plan = choose_plan(CFG, STEPS, speed(), left, 2000, done)
    assert plan.final_size == 128 and plan.epochs >= CFG.min_epochs
    assert run_cost(plan, speed(), CFG, 2000, done) <= MARGIN * left
    longer = plan_for(CFG, STEPS, plan.epochs + 1)
    assert run_cost(longer, speed(), CFG, 2000, done) > MARGIN * left


def test_a_slow_cpu_gets_smaller_photos_and_enough_epochs():
    assert final_sizes(CFG) == [128, 112, 96, 80]
    left = 27 * 60
    fast = choose_plan(CFG, STEPS, speed(0.35), left, 2000, 40)
    slow = choose_plan(CFG, STEPS, speed(0.6), left, 2000, 40)
    slower = choose_plan(CFG, STEPS, speed(1.2), left, 2000, 40)
    assert fast.final_size == 128
    assert 80 <= slow.final_size < 128 and slow.epochs >= 12
    assert slower.final_size == 80 and slower.epochs < 12  # too slow even at 80 px: the smallest
    # the largest size at which 12 epochs fit: one step larger they do not
    if slow.final_size < 128:
        bigger = TrainConfig(image_size=slow.final_size + 16, start_image_size=64, min_epochs=0)
        assert choose_plan(bigger, STEPS, speed(0.6), left, 2000, 40).epochs < 12
    off = TrainConfig(image_size=128, start_image_size=64, min_epochs=0)
    assert choose_plan(off, STEPS, speed(1.2), left, 2000, 40).final_size == 128  # 0: off


def test_evaluation_is_costed_at_the_size_the_plan_chose():
    """The size plan used to count evaluation at --image-size after choosing a smaller size."""
    small, large = plan_for(CFG, STEPS, 10, 96), plan_for(CFG, STEPS, 10, 128)
    s = speed()
    fixed = budget.EPOCH_OVERHEAD_S + budget.EVAL_OVERHEAD_S + small.steps_per_epoch * s.step_at(small.size(9))
    full_96 = epoch_cost(small, 9, s, CFG, 2000) - fixed
    full_128 = epoch_cost(large, 9, s, CFG, 2000) - fixed - STEPS * (s.step_at(128) - s.step_at(96))
    assert full_96 == pytest.approx(full_128 * s.step_at(96) / s.step_at(128))
    # a plain (intermediate) evaluation costs half the full one, with --tta's flip
    plain = epoch_cost(large, 8, s, CFG, 2000) - budget.EPOCH_OVERHEAD_S - budget.EVAL_OVERHEAD_S
    assert plain - STEPS * s.step_at(large.size(8)) == pytest.approx(full_128 / 2)


def make_budget(minutes_used, minutes=28.0):
    b = TimeBudget(TrainConfig(time_budget=minutes, start_image_size=64), STEPS,
                   start=time.time() - 60 * minutes_used)
    b.decide(speed(), 2000, 40)
    return b


def test_the_plan_is_decided_once_and_a_run_on_pace_keeps_it():
    b = make_budget(0.5)
    planned = b.plan
    assert b.decided and planned.epochs >= 12
    on_pace = epoch_cost(planned, 1, speed(), b.cfg, 2000)
    b.start -= run_cost(planned, speed(), b.cfg, 2000, 40) - run_cost(planned, speed(), b.cfg, 2000, 2 * STEPS)
    assert not b.check(2, on_pace) and b.plan == planned  # two epochs later, as planned


def test_a_run_ahead_of_its_plan_is_lengthened_only_in_its_first_half():
    b = make_budget(0.5)
    planned = b.plan
    fast = 0.7 * epoch_cost(planned, 1, speed(), b.cfg, 2000)
    assert b.check(2, fast) and b.plan.epochs > planned.epochs  # early: the budget is used
    late = make_budget(0.5)
    half = late.plan.epochs // 2 + 1
    late.start -= 60 * 10  # ten minutes on, past the plan's half: kept
    assert not late.check(half, 0.7 * epoch_cost(late.plan, half - 1, speed(), late.cfg, 2000))


def test_a_run_behind_its_plan_is_shortened_and_never_below_what_is_done():
    b = make_budget(0.5)
    planned = b.plan
    assert not b.check(1, 1e6)  # epoch 1 also ran the probes: no pace is read from it
    slow = 1.5 * epoch_cost(planned, 1, speed(), b.cfg, 2000)
    assert b.check(2, slow)
    assert 2 <= b.plan.epochs < planned.epochs
    assert b.plan.final_size == planned.final_size and b.plan.peak_lr == planned.peak_lr
    late = make_budget(0.5)
    late.start -= 27 * 60  # 27 minutes later, 3 epochs done: no time for another
    assert late.check(3, 1.5 * epoch_cost(late.plan, 2, speed(), late.cfg, 2000))
    assert late.plan.epochs == 3


def test_fixed_epochs_need_no_plan():
    b = TimeBudget(TrainConfig(epochs=7), STEPS)
    assert b.decided and not b.active and b.plan.epochs == 7 and not b.check(3, 1e6)
    assert TimeBudget(TrainConfig(time_budget=28.0), STEPS, resumed=True).decided


def test_probed_step_costs_are_smoothed_and_anchored_to_the_measured_step():
    """Noisy probes (two timings per size; one run's put 112 px below 96) follow one power law and
    rise with the size. The measured step's excess over its probe is added to every size up to
    ADDED_SHARE of the probe (work that does not grow with the size); beyond, it slows every size
    in proportion (a slow minute), instead of adding 0.13 s to each."""
    noisy = dict(step_costs({64: 0.15, 80: 0.29, 96: 0.35, 112: 0.33, 128: 0.40}, 0.28, 64))
    assert noisy[64] == pytest.approx(0.28)
    assert [noisy[s] for s in sorted(noisy)] == sorted(noisy.values())
    clean = {s: 0.1 * (s / 64) ** 2 for s in (64, 96, 128)}
    small = dict(step_costs(clean, 0.12, 64))  # 0.02 s beside the probe: added
    assert small == pytest.approx({s: t + 0.02 for s, t in clean.items()})
    large = dict(step_costs(clean, 0.27, 64))  # 0.17 s beside it: 0.035 added, then 2x
    added = probe.ADDED_SHARE * 0.1
    assert large == pytest.approx({s: (t + added) * 0.27 / (0.1 + added) for s, t in clean.items()})
    assert large[128] / large[64] > 3  # the probes' 4x, a little flattened; an added 0.17 s gives 2.1x
    flat = dict(step_costs({64: 0.3, 128: 0.3}, 0.3, 64))  # no growth measured: linear probes
    assert flat[128] > 1.5 * flat[64]
    assert step_costs({64: 0.1}, 0.25, 64) == ((64, 0.25),)
