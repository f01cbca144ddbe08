"""One pass over the training data: forward, loss, backward, optimizer step, per batch."""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, Optional

import paddle
import paddle.nn.functional as F

from .. import distributed as dist
from ..metrics import progress_bar
from .optim import WarmupCosine
from .pretrained import set_train_mode


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, ...); the message is for the user."""


def sync_interval(device: str) -> int:
    """Steps between reading the running figures on the host. On a GPU each read waits for the
    queued kernels (a sync per step would stall it); on a CPU the kernels ran already, so reading
    every step costs nothing and a diverged loss stops at once."""
    return GPU_SYNC_EVERY if device == "gpu" else 1


GPU_SYNC_EVERY = 25


def train_one_epoch(model: paddle.nn.Layer, loader: paddle.io.DataLoader,
                    optimizer: paddle.optimizer.Optimizer, scheduler: WarmupCosine,
                    label_smoothing: float = 0.0, scaler: Optional[paddle.amp.GradScaler] = None,
                    progress: bool = False, desc: str = "train", sync_every: int = 1,
                    on_step: Optional[Callable[[int, paddle.Tensor, paddle.Tensor], None]] = None
                    ) -> Dict[str, float]:
    """One pass over ``loader``; returns the mean cross-entropy of the true class (``loss``: the
    quantity validation reports, without label smoothing), the mean training objective
    (``objective``: with it), accuracy, images/s and the last LR. Sums stay on the device and
    are read every ``sync_every`` steps (``sync_interval``), before that step is applied; a read
    that finds a non-finite loss raises TrainingError (on a CPU: before the bad step applies).
    ``on_step(step, images, labels)`` runs after each step (1-based) is applied (probe.FirstSteps)."""
    set_train_mode(model)  # model.train(), but frozen batch-norm layers stay in eval mode
    sums, seen, start = None, 0, time.time()
    bar = progress_bar(loader, progress, desc=desc, total=len(loader))
    for step, (images, labels) in enumerate(bar, 1):
        with paddle.amp.auto_cast(enable=scaler is not None):
            logits = model(images)
            loss = F.cross_entropy(logits.astype("float32"), labels, label_smoothing=label_smoothing)
        with paddle.no_grad():
            n = int(labels.shape[0])
            batch = paddle.stack([loss.detach() * n,
                                  F.cross_entropy(logits.detach().astype("float32"), labels) * n,
                                  (logits.argmax(axis=1) == labels.reshape([-1])).astype("float32").sum()])
            sums = batch if sums is None else sums + batch
            seen += n
        if step % sync_every == 0 or step == len(loader):  # before this step is applied
            figures = _read(sums, seen, scheduler.last_epoch + 1)
            if progress:
                bar.set_postfix(loss=f"{figures[1]:.3f}", acc=f"{figures[2]:.3f}")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        if on_step is not None:
            on_step(step, images, labels)
    elapsed = max(time.time() - start, 1e-9)
    total = [float(v) for v in sums.numpy()] if sums is not None else [0.0, 0.0, 0.0]
    objective, nll, correct, seen = dist.reduce_sums(total + [seen])  # all ranks' batches
    seen = max(seen, 1)
    return {"loss": nll / seen, "objective": objective / seen, "acc": correct / seen,
            "images_per_s": seen / elapsed, "lr": float(optimizer.get_lr()), "seconds": elapsed}


def _read(sums: paddle.Tensor, seen: int, step: int):
    """(objective, loss, accuracy) so far, read on the host; a non-finite objective ends training."""
    objective, nll, correct = (float(v) / seen for v in sums.numpy())
    if not math.isfinite(objective):
        raise TrainingError(f"loss became {objective} by step {step}: training diverged (try a lower "
                            "--lr); the last good checkpoint is kept")
    return objective, nll, correct
