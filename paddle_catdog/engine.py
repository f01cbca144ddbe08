"""Training and evaluation: ``train_one_epoch``, ``evaluate`` and ``fit(cfg)``.

``fit`` reads the data, builds the model from the factory, trains with AdamW or Momentum under a
warm-up + cosine schedule, evaluates every epoch, logs to VisualDL and writes the ``last`` and
``best`` checkpoints (see checkpoint.py). It runs on the GPU when Paddle has CUDA and sees one.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from . import checkpoint as ckpt
from . import distributed as dist
from .config import TrainConfig
from .data import default_data_dir
from .dataset import (DataError, ImageDataset, SampleSet, drop_unreadable, find_samples,
                      limit_per_class, resolve_splits, seed_worker, stratified_split)
from .models import Probabilities, create_model
from .pretrained import (apply_freeze_schedule, apply_pretrained_defaults, load_pretrained,
                         pretrained_source, set_train_mode)
from .transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform

log = logging.getLogger("paddle_catdog")

# Options that describe this invocation rather than the experiment: on --resume they come from
# the command line, everything else from the checkpoint (unless given explicitly).
RUNTIME_FIELDS = {"output", "resume", "device", "num_workers", "num_threads", "progress", "data_dir",
                  "val_dir", "download"}


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, ...); the message is for the user."""


def setup_logging(level: int = logging.INFO) -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def setup_device(device: str = "auto", num_threads: int = 0) -> str:
    """Pick and set the Paddle device: 'gpu' needs a CUDA build and a visible GPU."""
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "gpu" and not has_gpu:
        raise ValueError("--device gpu: this Paddle build has no CUDA or no GPU is visible "
                         "(install paddlepaddle-gpu, see README)")
    chosen = "gpu" if device == "gpu" or (device == "auto" and has_gpu) else "cpu"
    paddle.set_device(chosen)
    if chosen == "cpu":
        # Paddle's default CPU thread count oversubscribes small machines; one math thread per
        # core was fastest in benchmarks/README.md.
        paddle.base.core.set_num_threads(num_threads or os.cpu_count() or 1)
    return chosen


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


# ----------------------------------------------------------------------------------------- data
@dataclass
class Data:
    train: SampleSet
    val: SampleSet
    classes: List[str]
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def load_data(cfg: TrainConfig, check: bool = True) -> Data:
    """Find train and val images in ``cfg.data_dir`` (see dataset.py for the layouts), split if
    there is no val folder, and drop files that do not decode (``Data.skipped``)."""
    data_dir = default_data_dir(cfg.data_dir)  # or says how to get the photos
    train_path, val_path = resolve_splits(data_dir, cfg.val_dir)
    train = find_samples(train_path)
    classes = train.classes
    if val_path:
        val = find_samples(val_path, classes=classes)
        train_samples, val_samples = train.samples, val.samples
    else:
        train_samples, val_samples = stratified_split(train.samples, cfg.val_split, cfg.seed)
    train_samples = limit_per_class(train_samples, cfg.max_per_class, cfg.seed)
    skipped: List[Tuple[str, str]] = []
    if check:
        train_samples, bad_train = drop_unreadable(train_samples, progress=cfg.progress)
        val_samples, bad_val = drop_unreadable(val_samples, progress=cfg.progress)
        skipped = bad_train + bad_val
    train_set = SampleSet(train_samples, classes, train.layout)
    val_set = SampleSet(val_samples, classes, train.layout)
    present = [c for c, n in train_set.counts().items() if n > 0]
    if len(present) < 2:
        raise DataError(f"{data_dir}: need images of at least 2 classes to train, found "
                        f"{len(present)} ({', '.join(present) or 'none'})")
    if not val_set.samples:
        raise DataError(f"{data_dir}: no validation images (add a val/ folder or raise --val-split)")
    return Data(train_set, val_set, classes, skipped)


RAMP_FRACTION = 0.85  # progressive resizing reaches the full size after this share of the epochs


def train_size(cfg: TrainConfig, epoch: int, epochs: Optional[int] = None) -> int:
    """Training input size of ``epoch`` (0-based): ``cfg.image_size``, or with progressive
    resizing a linear ramp from ``cfg.start_image_size`` in steps of 16 px that reaches the full
    size after RAMP_FRACTION of the epochs (the last epochs train at the size evaluated)."""
    start, final = cfg.start_image_size, cfg.image_size
    epochs = epochs or cfg.epochs
    ramp = round(RAMP_FRACTION * epochs) - 1
    if not start or start >= final or epochs < 3 or epoch >= ramp:  # too short a run to ramp
        return final
    size = start + (final - start) * epoch / ramp
    return min(final, int(size // 16 * 16) or 16)


def make_loader(samples: SampleSet, cfg: TrainConfig, train: bool) -> paddle.io.DataLoader:
    """Shuffled training batches or ordered evaluation batches; with several processes, this
    rank's share (see distributed.py)."""
    dataset = ImageDataset(samples.samples, build_transform(cfg, train=train), samples.classes)
    # Dropping the last partial batch in training keeps batch-norm statistics sane.
    drop_last = train and len(dataset) > cfg.batch_size * dist.world_size()
    batching = dict(batch_size=cfg.batch_size, shuffle=train, drop_last=drop_last)
    if dist.world_size() > 1 and train:
        batching = dict(batch_sampler=paddle.io.DistributedBatchSampler(dataset, **batching))
    elif dist.world_size() > 1:
        dataset = paddle.io.Subset(dataset, list(dist.shard_indices(len(dataset))))
    return paddle.io.DataLoader(
        dataset, **batching, num_workers=cfg.num_workers,
        worker_init_fn=seed_worker if cfg.num_workers else None, use_shared_memory=cfg.num_workers > 0)


# ------------------------------------------------------------------------------- optimisation
class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warm-up to the peak, then cosine decay to zero, stepped per iteration. Written in
    closed form (rather than LinearWarmup(CosineAnnealingDecay)) so that ``total_steps`` can be set
    after the first epoch when --time-budget decides the epoch count, and is saved on resume."""

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


def build_optimizer(cfg: TrainConfig, model: paddle.nn.Layer, steps_per_epoch: int
                    ) -> Tuple[paddle.optimizer.Optimizer, WarmupCosine]:
    scheduler = WarmupCosine(cfg.lr, round(cfg.warmup_epochs * steps_per_epoch),
                             cfg.epochs * steps_per_epoch)
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


def _progress(iterable: Iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, dynamic_ncols=True, leave=False, **kw)


def train_one_epoch(model: paddle.nn.Layer, loader: paddle.io.DataLoader,
                    optimizer: paddle.optimizer.Optimizer, scheduler: WarmupCosine,
                    label_smoothing: float = 0.0, scaler: Optional[paddle.amp.GradScaler] = None,
                    progress: bool = False, desc: str = "train") -> Dict[str, float]:
    """One pass over ``loader``; returns mean loss, accuracy, images/s and the last LR. Raises
    TrainingError on a non-finite loss before the optimizer applies it."""
    set_train_mode(model)  # model.train(), but frozen batch-norm layers stay in eval mode
    total_loss, correct, seen, start = 0.0, 0, 0, time.time()
    bar = _progress(loader, progress, desc=desc, total=len(loader))
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


@paddle.no_grad()
def predict_probs(model: paddle.nn.Layer, loader: paddle.io.DataLoader, progress: bool = False,
                  desc: str = "eval", tta: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and labels (N,) over ``loader`` in eval mode, through the same
    ``Probabilities`` head prediction and export use (``tta``: flip averaging)."""
    model.eval()
    head = Probabilities(model, tta)
    probs, labels = [], []
    for images, y in _progress(loader, progress, desc=desc, total=len(loader)):
        probs.append(head(images).numpy())
        labels.append(y.numpy())
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64).reshape(-1)


def evaluate(model: paddle.nn.Layer, loader: paddle.io.DataLoader, progress: bool = False,
             tta: bool = False) -> Dict[str, float]:
    """Loss (plain cross-entropy) and accuracy on ``loader``, summed over all ranks' shards."""
    start = time.time()
    probs, labels = predict_probs(model, loader, progress, tta=tta)
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)) if len(labels) else np.zeros(0)
    correct = int((probs.argmax(1) == labels).sum()) if len(labels) else 0
    nll_sum, correct, n = dist.reduce_sums([nll.sum(), correct, len(labels)])
    if n == 0:
        return {"loss": float("nan"), "acc": float("nan"), "seconds": 0.0}
    return {"loss": float(nll_sum / n), "acc": float(correct / n), "seconds": time.time() - start}


# ------------------------------------------------------------------------------------- logging
def image_grid(batch: np.ndarray, ncol: int = 8) -> np.ndarray:
    """Normalized CHW batch -> one HWC uint8 picture (undoing the normalization)."""
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    imgs = np.clip((batch * std + mean) * 255, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    n, h, w, c = imgs.shape
    nrow = math.ceil(n / ncol)
    grid = np.full((nrow * h, min(n, ncol) * w, c), 255, np.uint8)
    for i, img in enumerate(imgs):
        r, col = divmod(i, ncol)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    return grid


class VdlLogger:
    """VisualDL LogWriter in <output>/vdl; a no-op when VisualDL cannot be imported."""

    def __init__(self, logdir: Optional[Path]) -> None:
        self.writer = None
        if logdir is None:  # ranks other than 0
            return
        try:
            from visualdl import LogWriter
            self.writer = LogWriter(logdir=str(logdir))
        except Exception as e:  # an optional extra: training must not fail for its logs
            log.warning("VisualDL logging disabled: %s", e)
            self.writer = None

    def scalars(self, values: Dict[str, float], step: int) -> None:
        if self.writer:
            for tag, value in values.items():
                self.writer.add_scalar(tag=tag, value=float(value), step=step)

    def image(self, tag: str, img: np.ndarray, step: int = 0) -> None:
        if self.writer:
            self.writer.add_image(tag=tag, img=img, step=step)

    def hparams(self, cfg: TrainConfig) -> None:
        if self.writer:
            # VisualDL's protobuf rejects bools as ints: log them as strings.
            values = {k: (v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v))
                      for k, v in cfg.to_dict().items() if v is not None}
            self.writer.add_hparams(hparams_dict=values, metrics_list=["val/acc", "val/loss"])

    def pr_curve(self, tag: str, labels: np.ndarray, probs: np.ndarray, step: int) -> None:
        if self.writer:
            # VisualDL 2.5.3 computes the curve with ``np.float``, an alias NumPy 1.24 removed;
            # lend it for this call only (visualdl 2.5 is the last release).
            lent = "float" not in vars(np)
            if lent:
                np.float = float
            try:
                self.writer.add_pr_curve(tag=tag, labels=labels, predictions=probs, step=step)
            finally:
                if lent:
                    del np.float

    def close(self) -> None:
        if self.writer:
            self.writer.close()


# ----------------------------------------------------------------------------------------- fit
def _explicit_fields(cfg: TrainConfig) -> Set[str]:
    defaults = TrainConfig()
    return {k for k, v in cfg.to_dict().items() if getattr(defaults, k) != v}


def merge_resume_config(cfg: TrainConfig, saved: TrainConfig, explicit: Optional[Set[str]]) -> TrainConfig:
    """On resume the checkpoint's experiment settings win, except what this call sets."""
    keep = RUNTIME_FIELDS | (explicit if explicit is not None else _explicit_fields(cfg))
    values = saved.to_dict()
    values.update({k: v for k, v in cfg.to_dict().items() if k in keep and v is not None})
    return TrainConfig.from_dict(values).validate()


HISTORY = "history.jsonl"


def append_history(path: Path, row: Dict[str, float]) -> None:
    """One JSON line per finished epoch (the curves plot reads it). A resumed run first drops
    rows of epochs it is about to redo, so the file never holds an epoch twice."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def read_history(path: Path, upto_epoch: Optional[int] = None) -> List[Dict[str, float]]:
    if not Path(path).is_file():
        return []
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if upto_epoch is None or r["epoch"] <= upto_epoch]


def write_skipped(output: Path, skipped: Sequence[Tuple[str, str]]) -> None:
    path = output / "skipped.txt"
    if skipped:
        # surrogateescape: a file name that is not UTF-8 (old archives have them) is written back
        # as its original bytes instead of crashing the run.
        path.write_text("".join(f"{p}\t{r}\n" for p, r in skipped), encoding="utf-8",
                        errors="surrogateescape")
        log.warning("skipped %d file(s) that do not decode; listed in %s", len(skipped), path)
        for p, r in skipped[:20]:
            log.warning("  skipped %s: %s", p, r)
        if len(skipped) > 20:
            log.warning("  ... and %d more", len(skipped) - 20)
    elif path.exists():
        path.unlink()


def fit(cfg: TrainConfig, explicit: Optional[Set[str]] = None) -> Path:
    """Train as ``cfg`` says; returns the ``best`` checkpoint folder. ``explicit`` names the
    options the user set (the CLI passes them) so a resumed run keeps the rest from the checkpoint."""
    setup_logging(logging.INFO if dist.is_main() else logging.WARNING)  # one rank's log is enough
    start_wall = time.time()
    cfg.validate()
    output = Path(cfg.output)
    resume_from: Optional[Path] = None
    pretrained_path: Optional[Path] = None
    if cfg.resume:
        resume_from = ckpt.resolve_checkpoint(output / "last" if cfg.resume == "auto" else Path(cfg.resume))
        meta = ckpt.read_meta(resume_from)
        cfg = merge_resume_config(cfg, TrainConfig.from_dict(meta["config"], strict=False), explicit)
    else:  # a resumed run already holds them in its checkpoint's config
        given = explicit if explicit is not None else _explicit_fields(cfg)
        if "epochs" in given and "time_budget" not in given:
            cfg = dataclasses.replace(cfg, time_budget=0.0)  # an epoch count typed by the user wins
        cfg = apply_pretrained_defaults(cfg, given)
        pretrained_path = pretrained_source(cfg) if cfg.pretrained else None
    device = setup_device(cfg.device, cfg.num_threads)
    seed_everything(cfg.seed)
    main = dist.is_main()  # only rank 0 writes logs and checkpoints
    if main:
        output.mkdir(parents=True, exist_ok=True)

    data = load_data(cfg)
    if main:
        write_skipped(output, data.skipped)
    log.info("data: %s, %d train %s, %d val, classes %s", data.train.layout, len(data.train.samples),
             data.train.counts(), len(data.val.samples), data.classes)
    loader_size = train_size(cfg, 0)  # the epoch loop switches sizes (and on resume)
    train_loader = make_loader(data.train, _sized(cfg, 0), True)
    val_loader = make_loader(data.val, cfg, False)

    model = create_model(cfg.model, num_classes=len(data.classes), **cfg.model_options())
    if pretrained_path is not None:
        load_pretrained(model, pretrained_path)
    optimizer, scheduler = build_optimizer(cfg, model, len(train_loader))
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if cfg.amp and device == "gpu" else None
    start_epoch, best_acc = 0, -1.0
    if resume_from is not None:
        # meta was read (and checked) above; the weights go straight into the model built here,
        # instead of through a second model that load_model would build and throw away.
        saved_classes = list(meta["classes"])
        if saved_classes != data.classes:
            raise ckpt.CheckpointError(f"{resume_from}: classes {saved_classes} differ from the data's {data.classes}")
        if meta["model"] != cfg.model:
            raise ckpt.CheckpointError(f"{resume_from}: holds a {meta['model']} model, not {cfg.model} "
                                       "(drop --model to continue it)")
        ckpt.load_weights_into(model, ckpt.read_weights(resume_from / ckpt.WEIGHTS), str(resume_from))
        ckpt.load_train_state(resume_from, model, optimizer, scheduler)
        scheduler.total_steps = cfg.epochs * len(train_loader)  # --epochs may have changed
        start_epoch, best_acc = int(meta["epoch"]), float(meta["best_metric"])
        if main:
            kept = read_history(output / HISTORY, upto_epoch=start_epoch)
            (output / HISTORY).write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        log.info("resumed from %s at epoch %d (best val acc %.4f)", resume_from, start_epoch, best_acc)
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    log.info("model %s %s: %.2fM parameters, device %s", cfg.model, cfg.model_options(), n_params / 1e6, device)

    net = dist.wrap(model, find_unused=cfg.freeze_epochs > 0)  # DataParallel with several processes
    if dist.world_size() > 1:
        log.info("data-parallel over %d processes: %d train batches per process and epoch",
                 dist.world_size(), len(train_loader))
    vdl = VdlLogger(output / "vdl" if main else None)
    if start_epoch == 0 and main:
        (output / HISTORY).unlink(missing_ok=True)
        vdl.hparams(cfg)
        if cfg.log_images:
            images, _ = next(iter(train_loader))
            vdl.image("train/augmented", image_grid(images.numpy()[:32]))
    epoch, eval_s = start_epoch, 0.0
    try:
        while epoch < cfg.epochs:
            random.seed(cfg.seed * 1000 + epoch)  # forked workers derive their streams from this
            t0 = time.time()
            apply_freeze_schedule(model, scheduler, cfg, epoch)
            if train_size(cfg, epoch) != loader_size:  # progressive resizing: the next size
                loader_size = train_size(cfg, epoch)
                train_loader = make_loader(data.train, _sized(cfg, epoch), True)
            if isinstance(train_loader.batch_sampler, paddle.io.DistributedBatchSampler):
                train_loader.batch_sampler.set_epoch(epoch)  # a new shuffle, the same on every rank
            tr = train_one_epoch(net, train_loader, optimizer, scheduler, cfg.label_smoothing,
                                 scaler, cfg.progress, desc=f"epoch {epoch + 1}/{cfg.epochs}")
            va = (evaluate(model, val_loader, cfg.progress, cfg.tta)
                  if evaluates(cfg, epoch, cfg.epochs) else None)
            if va is not None:
                eval_s = va["seconds"]
            epoch += 1
            if cfg.time_budget > 0 and start_epoch == 0 and epoch < cfg.epochs:
                # Re-estimated after every epoch from the newest (largest) epoch's speed, so a
                # slower or faster machine than the first epoch suggested still ends in time.
                other_s = time.time() - t0 - tr["seconds"] - (va["seconds"] if va else 0.0)
                epochs = epochs_for_budget(cfg, cfg.time_budget * 60, time.time() - start_wall,
                                           tr["seconds"], other_s, done=epoch,
                                           size=loader_size, eval_s=eval_s)
                # every rank must run the same number of epochs: take the ranks' mean
                epochs = int(round(dist.reduce_sums([epochs])[0] / dist.world_size()))
                if epochs != cfg.epochs or epoch == 1:
                    log.info("time budget %.1f min: %d epochs (%.1f min used)", cfg.time_budget,
                             epochs, (time.time() - start_wall) / 60)
                cfg.epochs = epochs
                scheduler.total_steps = cfg.epochs * len(train_loader)
                if va is None and epoch >= cfg.epochs:  # cut short here: the last epoch is evaluated
                    va = evaluate(model, val_loader, cfg.progress, cfg.tta)
            logged = {"train/loss": tr["loss"], "train/acc": tr["acc"], "train/lr": tr["lr"],
                      "train/images_per_s": tr["images_per_s"]}
            metrics = {"train_loss": tr["loss"], "train_acc": tr["acc"]}
            improved = False
            if va is not None:
                logged.update({"val/loss": va["loss"], "val/acc": va["acc"]})
                metrics.update({"val_loss": va["loss"], "val_acc": va["acc"]})
                improved = va["acc"] > best_acc
                best_acc = max(best_acc, va["acc"])
            vdl.scalars(logged, epoch)
            metrics["epoch_seconds"] = time.time() - t0
            if main:
                append_history(output / HISTORY, {"epoch": epoch, "lr": tr["lr"], "size": loader_size,
                                                  "images_per_s": tr["images_per_s"], **metrics})
                # best before last: a kill between the two leaves last at the previous epoch, so
                # the resumed run redoes this one and best never misses an epoch last records.
                if improved:
                    ckpt.save_checkpoint(output / "best", model, cfg, data.classes, epoch, best_acc, metrics)
                ckpt.save_checkpoint(output / "last", model, cfg, data.classes, epoch, best_acc,
                                     metrics, optimizer, scheduler)
            val_text = (f"val loss {va['loss']:.4f} acc {va['acc']:.4f}{' *' if improved else ''}"
                        if va is not None else "(no evaluation)")
            log.info("epoch %d/%d  train loss %.4f acc %.4f  %s  lr %.2e  %.0f img/s  %.0fs", epoch,
                     cfg.epochs, tr["loss"], tr["acc"], val_text, tr["lr"], tr["images_per_s"],
                     time.time() - t0)
    finally:
        vdl.close()
    log.info("done in %.1f min; best val acc %.4f; checkpoints in %s", (time.time() - start_wall) / 60,
             best_acc, output)
    return output / "best"


# Training time grows with input size a little slower than the pixel count (fixed per-step costs):
# Two default runs on 2 cores (data loading included) trained an epoch in 53-55 s at 64 px and
# 127-140 s at 128 px: about size^1.3-1.4 (the model step alone scales closer to size^1.75). With
# 1.75, then 1.5, both runs ended ~4 minutes before their budget.
SIZE_COST_EXPONENT = 1.3


def _sized(cfg: TrainConfig, epoch: int) -> TrainConfig:
    """``cfg`` with the training size of ``epoch`` (progressive resizing)."""
    return dataclasses.replace(cfg, image_size=train_size(cfg, epoch))


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
