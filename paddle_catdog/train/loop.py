"""One pass over the training data: forward, loss, backward, optimizer step, per batch."""
from __future__ import annotations

import math
import time
from typing import Dict, Optional

import paddle
import paddle.nn.functional as F

from .. import distributed as dist
from ..metrics import progress_bar
from .optim import WarmupCosine
from .pretrained import set_train_mode


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, ...); the message is for the user."""


def train_one_epoch(model: paddle.nn.Layer, loader: paddle.io.DataLoader,
                    optimizer: paddle.optimizer.Optimizer, scheduler: WarmupCosine,
                    label_smoothing: float = 0.0, scaler: Optional[paddle.amp.GradScaler] = None,
                    progress: bool = False, desc: str = "train") -> Dict[str, float]:
    """One pass over ``loader``; returns mean loss, accuracy, images/s and the last LR. Raises
    TrainingError on a non-finite loss before the optimizer applies it."""
    set_train_mode(model)  # model.train(), but frozen batch-norm layers stay in eval mode
    total_loss, correct, seen, start = 0.0, 0, 0, time.time()
    bar = progress_bar(loader, progress, desc=desc, total=len(loader))
    for images, labels in bar:
        with paddle.amp.auto_cast(enable=scaler is not None):
            logits = model(images)
            loss = F.cross_entropy(logits.astype("float32"), labels, label_smoothing=label_smoothing)
        value = float(loss)
        if not math.isfinite(value):
            raise TrainingError(f"loss became {value} at step {scheduler.last_epoch}: training "
                                "diverged (try a lower --lr); the last good checkpoint is kept")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        n = int(labels.shape[0])
        total_loss += value * n
        correct += int((logits.argmax(axis=1) == labels).astype("int64").sum())
        seen += n
        if progress:
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    elapsed = max(time.time() - start, 1e-9)
    total_loss, correct, seen = dist.reduce_sums([total_loss, correct, seen])  # all ranks' batches
    return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1),
            "images_per_s": seen / elapsed, "lr": float(optimizer.get_lr()), "seconds": elapsed}
