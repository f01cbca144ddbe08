"""The optimizer and its learning-rate schedule: AdamW (or Nesterov momentum) without weight decay
on biases and batch-norm parameters, under a linear warm-up and a cosine decay stepped per batch."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import paddle

from ..config import TrainConfig


def warmup_cosine(step: int, peak: float, warmup_steps: int, total_steps: int) -> float:
    """The learning rate of 0-based ``step``: linear warm-up to ``peak`` over ``warmup_steps``,
    then cosine decay to zero at ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """``warmup_cosine`` as Paddle's scheduler, stepped per iteration. Written in closed form
    (rather than LinearWarmup(CosineAnnealingDecay)) so that ``total_steps`` can be set when the
    time budget fixes (or shortens) the plan, and is saved on resume."""

    def __init__(self, learning_rate: float, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = max(0, int(warmup_steps))
        self.total_steps = max(1, int(total_steps))
        super().__init__(learning_rate, last_epoch=-1)

    def state_keys(self) -> None:  # what state_dict() saves
        self.keys = ["last_epoch", "last_lr", "warmup_steps", "total_steps"]

    def get_lr(self) -> float:
        return warmup_cosine(self.last_epoch, self.base_lr, self.warmup_steps, self.total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        """A new schedule length, from the next step on (the rate already computed is redone)."""
        self.total_steps = max(1, int(total_steps))
        self.last_lr = self.get_lr()


def build_optimizer(cfg: TrainConfig, model: paddle.nn.Layer, steps_per_epoch: int,
                    epochs: Optional[int] = None) -> Tuple[paddle.optimizer.Optimizer, WarmupCosine]:
    """The optimizer over ``model``'s parameters and its schedule over ``epochs`` (default
    ``cfg.epochs``; the time budget sets it again when it fixes the plan)."""
    scheduler = WarmupCosine(cfg.lr, round(cfg.warmup_epochs * steps_per_epoch),
                             (epochs or cfg.epochs or 1) * steps_per_epoch)
    # No weight decay on biases and batch-norm parameters (1-D): standard for both optimizers.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        optimizer = paddle.optimizer.AdamW(learning_rate=scheduler, parameters=groups,
                                           weight_decay=cfg.weight_decay)
    else:
        groups[0]["weight_decay"] = paddle.regularizer.L2Decay(cfg.weight_decay)
        groups[1]["weight_decay"] = paddle.regularizer.L2Decay(0.0)
        optimizer = paddle.optimizer.Momentum(learning_rate=scheduler, momentum=0.9,
                                              parameters=groups, use_nesterov=True)
    return optimizer, scheduler
