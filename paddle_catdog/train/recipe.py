"""``fit(cfg)``: the training recipe, start to end.

It finds the data, decodes the training photos once into memory where they fit (data/cache.py),
builds the model from the factory (optionally from pretrained weights), and trains with AdamW under
a warm-up + cosine schedule. Under a time budget the plan (epoch count, final size, schedule) is
fixed once from the first steps' measured speed (budget.py, probe.py). It grows the input size as
it goes, evaluates the last epochs, and leaves VisualDL logs, ``history.jsonl``
and the ``last`` and ``best`` checkpoints in ``cfg.output``. It runs on the GPU when Paddle has
CUDA and sees one, and data-parallel under ``python -m paddle.distributed.launch``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import paddle

from .. import checkpoint as ckpt
from .. import cpu
from .. import distributed as dist
from ..config import TrainConfig
from ..data.cache import decode_once
from ..data.loader import make_loader
from ..data.split import Data, load_data
from ..files import OutputError, output_lock
from ..metrics import score
from ..models import create_model
from ..transforms import eval_size
from ..runtime import count_params, seed_everything, setup_device, setup_logging
from .budget import TimeBudget
from .loop import sync_interval, train_one_epoch
from .probe import FirstSteps
from .optim import WarmupCosine, build_optimizer
from .prepare import resume_folder
from .pretrained import apply_freeze_schedule, load_pretrained, pretrained_source
from .recorder import EpochRecorder, clear_run, prior_run, write_skipped
from .transfer import linear_probe

log = logging.getLogger("paddle_catdog")


def fit(cfg: TrainConfig) -> Path:
    """Train exactly as ``cfg`` says; returns the ``best`` checkpoint folder. Presets (the
    fine-tuning defaults of ``--pretrained``, a resumed run's recorded settings) are applied
    before, by ``prepare_config`` (prepare.py); ``cfg.resume`` here only says where the weights,
    optimizer and schedule continue from. The run owns ``cfg.output`` from start to end
    (``files.output_lock``, taken by rank 0): a second run on the same folder stops at once instead
    of mixing its checkpoints in."""
    cfg.validate()  # a wrong option fails before the output folder is made
    main = dist.is_main()
    if main:
        Path(cfg.output).mkdir(parents=True, exist_ok=True)
    with output_lock(Path(cfg.output)) if main else contextlib.nullcontext():
        if main and not cfg.resume:
            start_afresh(Path(cfg.output), cfg.overwrite)
        return _fit(cfg, main)


def start_afresh(output: Path, overwrite: bool) -> None:
    """A fresh run in ``output``: one that holds an earlier run's checkpoints or history is refused
    (its ``last/`` would stay beside the new run's logs, and --resume would continue the old run),
    unless ``overwrite`` deletes them. What a run that never finished an epoch left goes."""
    earlier = prior_run(output)
    if earlier and not overwrite:
        raise OutputError(f"{output}/ holds a run already ({earlier}): continue it with --resume, "
                          "start over with --overwrite (deletes it), or choose another --output")
    if earlier:
        log.info("--overwrite: deleting the earlier run in %s (%s)", output, earlier)
    clear_run(output)


def _fit(cfg: TrainConfig, main: bool) -> Path:
    """``fit``'s work, inside the output lock; only rank 0 (``main``) writes logs and checkpoints."""
    setup_logging(logging.INFO if main else logging.WARNING)  # one rank's log is enough
    start = time.time()
    resume_from = resume_folder(cfg) if cfg.resume else None
    pretrained = pretrained_source(cfg) if cfg.pretrained and not cfg.resume else None  # fails fast
    device = setup_device(cfg.device, cfg.num_threads)
    log.info("device %s; cpu: %s", device, cpu.describe())  # what MKL was told (cpu.py)
    seed_everything(cfg.seed)
    output = Path(cfg.output)
    data = load_data(cfg)
    cfg = dataclasses.replace(cfg, data_dir=data.data_dir)  # recorded, so evaluate finds the same photos
    if main:
        write_skipped(output, data.skipped)
    log.info("data: %s, %d train %s, %d val, classes %s", data.train.layout, len(data.train.samples),
             data.train.counts(), len(data.val.samples), data.classes)

    model = build_model(cfg, data.classes, pretrained)
    if cfg.linear_probe:  # the transfer recipe: features once, then the classifier (transfer.py)
        if resume_from is not None:
            raise ValueError("--resume: a --linear-probe run has no epochs to continue; run it again")
        recorder = EpochRecorder(output, cfg, data.classes, main)
        try:
            linear_probe(cfg, data, model, recorder, device, start)
        finally:
            recorder.close()
        return output / "best"
    loaders = Loaders(data, cfg)
    steps = len(loaders.train(cfg.image_size))  # the same at every size
    budget = TimeBudget(cfg, steps, start, resumed=resume_from is not None)
    optimizer, scheduler = build_optimizer(cfg, model, steps, budget.plan.epochs)
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if cfg.amp and device == "gpu" else None
    epoch, best_acc = (resume(resume_from, cfg, data.classes, model, optimizer, scheduler, scaler)
                       if resume_from else (0, -1.0))
    scheduler.set_total_steps(budget.plan.total_steps)  # --epochs may have changed
    if budget.decided:
        for line in budget.plan.describe():
            log.info("%s", line)
    recorder = EpochRecorder(output, cfg, data.classes, main, epoch, best_acc)
    if epoch == 0 and main and cfg.log_images:
        recorder.augmented_images(loaders.train(budget.plan.size(0)).dataset)
    net = dist.wrap(model, find_unused=cfg.freeze_epochs > 0)  # DataParallel with several processes
    try:
        while epoch < budget.plan.epochs:
            random.seed(cfg.seed * 1000 + epoch)  # forked workers derive their streams from this
            t0 = time.time()
            apply_freeze_schedule(model, scheduler, cfg, epoch)
            size, loader = budget.plan.size(epoch), loaders.train(budget.plan.size(epoch), epoch)
            planner = (None if budget.decided else
                       FirstSteps(model, budget, scheduler, len(loader), len(data.val.samples)))
            desc = f"epoch {epoch + 1}/{budget.plan.epochs}" if budget.decided else f"epoch {epoch + 1} (planning)"
            train = train_one_epoch(net, loader, optimizer, scheduler, cfg.label_smoothing, scaler,
                                    cfg.progress, desc=desc, sync_every=sync_interval(device), on_step=planner)
            val = loaders.score(model, budget, epoch) if budget.plan.evaluates(epoch) else None
            epoch += 1
            if budget.check(epoch, time.time() - t0):
                log.info("the pace changed: %d epochs now, to end within %.1f min (%.1f min used)",
                         budget.plan.epochs, cfg.time_budget, (time.time() - start) / 60)
                scheduler.set_total_steps(budget.plan.total_steps)
                if epoch >= budget.plan.epochs and (val is None or not val["full"]):
                    val = loaders.score(model, budget, epoch - 1)  # the last epoch: the full evaluation
            recorder.record(epoch, budget.planned(), size, train, val, time.time() - t0, model,
                            optimizer, scheduler, scaler)
    finally:
        recorder.close()
    log.info("done in %.1f min; best val acc %.4f; checkpoints in %s", (time.time() - start) / 60,
             recorder.best_acc, output)
    return output / "best"


class Loaders:
    """The training loader of the current size (rebuilt when progressive resizing moves on) and
    the validation loader of the planned evaluation size, with scoring on it."""

    def __init__(self, data: Data, cfg: TrainConfig) -> None:
        self.data, self.cfg = data, cfg
        self.images = decode_once(data.train.samples, cfg)  # None: decode every epoch
        self._size, self._train = 0, None
        self._val_size, self._val = 0, None

    def train(self, size: int, epoch: int = 0) -> paddle.io.DataLoader:
        if size != self._size:
            self._size = size
            self._train = make_loader(self.data.train, dataclasses.replace(self.cfg, image_size=size), True,
                                      self.images)
            if dist.world_size() > 1:
                log.info("data-parallel over %d processes: %d train batches per process and epoch",
                         dist.world_size(), len(self._train))
        if isinstance(self._train.batch_sampler, paddle.io.DistributedBatchSampler):
            self._train.batch_sampler.set_epoch(epoch)  # a new shuffle, the same on every rank
        return self._train

    def score(self, model: paddle.nn.Layer, budget: TimeBudget, epoch: int) -> Dict[str, float]:
        """Loss and accuracy on the validation set at the planned evaluation size; with --tta's
        flip only in the plan's full evaluation (the last epoch's), plain before (half the cost)."""
        planned = budget.planned()
        if eval_size(planned) != self._val_size:
            self._val_size = eval_size(planned)
            self._val = make_loader(self.data.val, planned, train=False)
        dist.sync_state(model)  # every rank scores with the statistics the checkpoint holds
        full = budget.plan.full_evaluation(epoch)
        return {**score(model, self._val, self.cfg.progress, self.cfg.tta and full), "full": full}


def build_model(cfg: TrainConfig, classes: Sequence[str], pretrained: Optional[Path]) -> paddle.nn.Layer:
    """The model the factory builds for ``cfg``, from ``pretrained`` weights when given."""
    model = create_model(cfg.model, num_classes=len(classes), **cfg.model_options())
    if pretrained is not None:
        load_pretrained(model, pretrained)
    log.info("model %s %s: %.2fM parameters, device %s", cfg.model, cfg.model_options(),
             count_params(model) / 1e6, paddle.get_device())
    return model


def resume(folder: Path, cfg: TrainConfig, classes: Sequence[str], model: paddle.nn.Layer,
           optimizer: paddle.optimizer.Optimizer, scheduler: WarmupCosine,
           scaler: Optional[paddle.amp.GradScaler] = None) -> Tuple[int, float]:
    """Load the checkpoint's weights, optimizer, schedule and loss scale into this run's (its
    classes and model must be this run's); returns (epochs done, best validation accuracy)."""
    meta = ckpt.read_meta(folder)
    if list(meta["classes"]) != list(classes):
        raise ckpt.CheckpointError(f"{folder}: classes {meta['classes']} differ from the data's {list(classes)}")
    if meta["model"] != cfg.model:
        raise ckpt.CheckpointError(f"{folder}: holds a {meta['model']} model, not {cfg.model} "
                                   "(drop --model to continue it)")
    ckpt.load_weights_into(model, ckpt.read_weights(folder / ckpt.WEIGHTS), str(folder))
    ckpt.load_train_state(folder, model, optimizer, scheduler, scaler)
    epoch, best = int(meta["epoch"]), float(meta["best_metric"])
    log.info("resumed from %s at epoch %d (best val acc %.4f)", folder, epoch, best)
    return epoch, best
