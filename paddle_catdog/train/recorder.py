"""Per-epoch bookkeeping of a run: ``history.jsonl``, VisualDL, the ``best`` and ``last``
checkpoints, and the epoch's log line. Only the main process (rank 0) writes."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import paddle

from .. import checkpoint as ckpt
from ..config import TrainConfig
from ..files import old_name, write_failure
from ..runlog import HISTORY, VdlLogger, append_history, keep_history
from ..transforms import image_grid

log = logging.getLogger("paddle_catdog")


def write_skipped(output: Path, skipped: Sequence[Tuple[str, str]]) -> None:
    path = output / "skipped.txt"
    if skipped:
        # surrogateescape: a file name that is not UTF-8 (old archives have them) is written back
        # as its original bytes instead of crashing the run.
        try:
            path.write_text("".join(f"{p}\t{r}\n" for p, r in skipped), encoding="utf-8",
                            errors="surrogateescape")
        except OSError as e:
            raise write_failure(path, e) from e
        log.warning("skipped %d file(s) that do not decode; listed in %s", len(skipped), path)
        for p, r in skipped[:20]:
            log.warning("  skipped %s: %s", p, r)
        if len(skipped) > 20:
            log.warning("  ... and %d more", len(skipped) - 20)
    elif path.exists():
        path.unlink()


# What a run leaves in its --output, and what readers cache or write beside its checkpoints
RUN_FILES = ("last", "best", HISTORY, "vdl", "skipped.txt", "best.inference", "last.inference",
             "best.eval", "last.eval")


def prior_run(output: Path) -> Optional[str]:
    """What an earlier run left in ``output`` that a fresh run would mix with or lose, or None
    when it left no checkpoint (then there is nothing to resume nor keep: logs of a run that was
    stopped before its first checkpoint do not count)."""
    found = [name for name in ("last", "best") if (output / name / ckpt.META).is_file()
             or (old_name(output / name) / ckpt.META).is_file()]
    if found and (output / HISTORY).is_file():
        found.append(HISTORY)
    return ", ".join(found) or None


def clear_run(output: Path) -> None:
    """Delete what a run leaves in ``output`` (``RUN_FILES`` and interrupted swaps), nothing else."""
    for name in RUN_FILES:
        for path in (output / name, old_name(output / name), output / f"{name}.tmp"):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


class EpochRecorder:
    """Writes what each finished epoch leaves: its history row, its VisualDL scalars, the ``best``
    checkpoint when validation accuracy improved and the ``last`` one always (best first: a kill
    between the two leaves last at the previous epoch, so the resumed run redoes this one and best
    never misses an epoch last records), then logs the epoch line."""

    def __init__(self, output: Path, cfg: TrainConfig, classes: Sequence[str], main: bool,
                 start_epoch: int = 0, best_acc: float = -1.0) -> None:
        self.output, self.cfg, self.classes, self.main = Path(output), cfg, list(classes), main
        self.best_acc = best_acc
        self.vdl = VdlLogger(self.output / "vdl" if main else None)
        if main and start_epoch > 0:
            try:
                keep_history(self.output / HISTORY, upto_epoch=start_epoch)
            except OSError as e:
                raise write_failure(self.output / HISTORY, e) from e
        elif main:
            (self.output / HISTORY).unlink(missing_ok=True)
            self.vdl.hparams(cfg)

    def augmented_images(self, dataset: paddle.io.Dataset, n: int = 32) -> None:
        """Log a grid of ``n`` augmented training images (once, in a fresh run). Taken from the
        dataset in this thread, not from a loader: an iterator abandoned after one batch keeps
        its prefetch thread augmenting (drawing from ``random``) while the first epoch runs, and
        the two threads' draws interleave differently every run."""
        images = np.stack([dataset[i][0] for i in range(min(n, len(dataset)))])
        self.vdl.image("train/augmented", image_grid(images, normalize=self.cfg.normalize))

    def record(self, epoch: int, planned: TrainConfig, size: int, train: Dict[str, float],
               val: Optional[Dict[str, float]], seconds: float, model: paddle.nn.Layer,
               optimizer: paddle.optimizer.Optimizer, scheduler, scaler=None) -> None:
        """Everything epoch ``epoch`` (1-based) leaves; ``planned`` is the run's config as the
        budget planned it (epochs, final size), which the checkpoints record; ``val`` None: not
        evaluated."""
        epochs = planned.epochs
        # loss: cross-entropy of the true class, as validation reports it (train: augmented photos
        # in train mode; val: flip-averaged); objective: what training minimises (label smoothing)
        logged = {"train/loss": train["loss"], "train/acc": train["acc"], "train/lr": train["lr"],
                  "train/images_per_s": train["images_per_s"]}
        metrics = {"train_loss": train["loss"], "train_acc": train["acc"]}
        if "objective" in train:
            logged["train/objective"] = metrics["train_objective"] = train["objective"]
        improved = val is not None and val["acc"] > self.best_acc
        if val is not None:
            logged.update({"val/loss": val["loss"], "val/acc": val["acc"]})
            metrics.update({"val_loss": val["loss"], "val_acc": val["acc"]})
            if "full" in val:  # the plan's last, full evaluation (with --tta's flip) or a plain one
                metrics["val_full"] = bool(val["full"])
            self.best_acc = max(self.best_acc, val["acc"])
        self.vdl.scalars(logged, epoch)
        metrics["epoch_seconds"] = seconds
        if self.main:
            self.append_history({"epoch": epoch, "lr": train["lr"], "size": size,
                                 "images_per_s": train["images_per_s"], **metrics})
            # the plan is saved, so a resumed run ends where this one would have, and prediction
            # uses the size the run trained at
            if improved:
                ckpt.save_checkpoint(self.output / "best", model, planned, self.classes, epoch,
                                     self.best_acc, metrics)
            ckpt.save_checkpoint(self.output / "last", model, planned, self.classes, epoch,
                                 self.best_acc, metrics, optimizer, scheduler, scaler)
        val_text = (f"val loss {val['loss']:.4f} acc {val['acc']:.4f}{' *' if improved else ''}"
                    if val is not None else "(no evaluation)")
        log.info("epoch %d/%d  train loss %.4f acc %.4f  %s  lr %.2e  %.0f img/s  %.0fs", epoch,
                 epochs, train["loss"], train["acc"], val_text, train["lr"], train["images_per_s"],
                 seconds)

    def append_history(self, row: Dict[str, float]) -> None:
        """Append the epoch's row; a failed write (a full disk) is cut back off, so that a resumed
        run does not meet half a JSON line, and ends the run with one line naming the file."""
        path = self.output / HISTORY
        size = path.stat().st_size if path.exists() else 0
        try:
            append_history(path, row)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
            raise write_failure(path, e, "the checkpoints of the previous epoch are kept") from e

    def close(self) -> None:
        """Flush VisualDL. Its logs are optional: a failed last write (a full disk) is a warning,
        and must not replace the error that is ending the run."""
        try:
            self.vdl.close()
        except OSError as e:
            log.warning("VisualDL logs in %s may be incomplete: %s", self.output / "vdl", e)
