"""Serving images to Paddle: ``ImageDataset`` ((path, label) -> (CHW float32, int64) through the
one transform) and ``make_loader`` (shuffled training or ordered evaluation batches, sharded
across data-parallel processes)."""
from __future__ import annotations

import random
from typing import Callable, List, Optional, Sequence

import numpy as np
import paddle

from .. import distributed as dist
from ..config import TrainConfig
from ..transforms import ImageDecodeError, build_transform, read_bytes
from .layouts import Sample, SampleSet


class ImageDataset(paddle.io.Dataset):
    """(path, label) pairs -> (CHW float32 image, int64 label) through ``transform``.

    With ``images`` (the photos decoded once, in sample order: ``data.cache``) the transform
    starts from those arrays and must not decode. Files were decode-checked before training; one
    that fails here anyway (changed on disk) raises with its path rather than being silently
    replaced by another sample."""

    def __init__(self, samples: Sequence[Sample], transform: Callable, classes: Sequence[str],
                 images: Optional[List[np.ndarray]] = None) -> None:
        super().__init__()
        self.samples = list(samples)
        self.transform = transform
        self.classes = list(classes)
        self.images = images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int):
        path, label = self.samples[idx]
        if self.images is not None:
            return self.transform(self.images[idx]), np.int64(label)
        try:
            image = self.transform(read_bytes(path))
        except (OSError, ImageDecodeError) as e:
            raise ImageDecodeError(f"{path}: {e}") from e
        return image, np.int64(label)


def seed_worker(worker_id: int) -> None:
    """Give each loader worker its own augmentation stream. Workers are forked from the main
    process each epoch; the main process reseeds ``random`` per epoch, so streams differ across
    epochs and workers yet repeat for the same seed."""
    base = random.getrandbits(32)
    random.seed(base + worker_id)
    np.random.seed((base + worker_id) % (2 ** 32))


def make_loader(samples: SampleSet, cfg: TrainConfig, train: bool,
                images: Optional[List[np.ndarray]] = None) -> paddle.io.DataLoader:
    """Shuffled training batches or ordered evaluation batches; with several processes, this
    rank's share (see distributed.py). ``images``: the training photos decoded once
    (``data.cache.decode_once``), which the training transform then starts from."""
    transform = build_transform(cfg, train=train, decode=images is None)
    dataset = ImageDataset(samples.samples, transform, samples.classes, images)
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
