"""The optimizer and its learning-rate schedule: AdamW (or Nesterov momentum) without weight decay
on biases and batch-norm parameters, under a linear warm-up and a cosine decay stepped per batch."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import paddle

from ..config import TrainConfig


class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warm-up to the peak, then cosine decay to zero, stepped per iteration. Written in
    closed form (rather than LinearWarmup(CosineAnnealingDecay)) so that ``total_steps`` can be set
    after every epoch when the time budget re-plans the epoch count, and is saved on resume."""

    def __init__(self, learning_rate: float, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = max(0, int(warmup_steps))
        self.total_steps = max(1, int(total_steps))
        super().__init__(learning_rate, last_epoch=-1)

    def state_keys(self) -> None:  # what state_dict() saves
        self.keys = ["last_epoch", "last_lr", "warmup_steps", "total_steps"]

    def get_lr(self) -> float:
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.base_lr * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(cfg: TrainConfig, model: paddle.nn.Layer, steps_per_epoch: int,
                    epochs: Optional[int] = None) -> Tuple[paddle.optimizer.Optimizer, WarmupCosine]:
    """The optimizer over ``model``'s parameters and its schedule over ``epochs`` (default
    ``cfg.epochs``; the time budget sets it again as it re-plans)."""
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
