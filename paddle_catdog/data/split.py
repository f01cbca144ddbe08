"""Which images train and which validate: a ``val/`` folder when there is one, else a seeded
stratified split of the training folder; ``load_data`` puts it together for a run."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..config import TrainConfig
from .check import drop_unreadable
from .layouts import DataError, Sample, SampleSet, find_samples, one_scan, resolve_splits
from .locate import find_data_dir, too_few_classes


def stratified_split(samples: Sequence[Sample], fraction: float, seed: int) -> Tuple[List[Sample], List[Sample]]:
    """Hold out ``fraction`` of each class, chosen by a seeded shuffle (same seed, same split)."""
    by_class: Dict[int, List[Sample]] = {}
    for s in samples:
        by_class.setdefault(s[1], []).append(s)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        items = sorted(by_class[label])
        rng.shuffle(items)
        k = int(round(len(items) * fraction))
        if fraction > 0 and len(items) > 1:
            k = min(max(k, 1), len(items) - 1)
        val += items[:k]
        train += items[k:]
    return train, val


def limit_per_class(samples: Sequence[Sample], n: int, seed: int) -> List[Sample]:
    """At most ``n`` samples per class, chosen by a seeded shuffle."""
    if n <= 0:
        return list(samples)
    rng = random.Random(seed)
    out: List[Sample] = []
    by_class: Dict[int, List[Sample]] = {}
    for s in samples:
        by_class.setdefault(s[1], []).append(s)
    for label in sorted(by_class):
        items = sorted(by_class[label])
        rng.shuffle(items)
        out += items[:n]
    return out


@dataclass
class Data:
    train: SampleSet
    val: SampleSet
    classes: List[str]
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (path, reason)
    data_dir: str = ""  # the folder found (absolute), which checkpoints record for evaluation


def load_data(cfg: TrainConfig, check: bool = True) -> Data:
    """Find train and val images in ``cfg.data_dir`` (or where ``find_data_dir`` finds them),
    split if there is no val folder, and drop files that do not decode (``Data.skipped``).
    Each folder is listed once (``one_scan``)."""
    with one_scan():
        return _load_data(cfg, check)


def _load_data(cfg: TrainConfig, check: bool) -> Data:
    data_dir = str(find_data_dir(cfg.data_dir))
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
        train_samples, bad_train = drop_unreadable(train_samples, progress=cfg.progress,
                                                   max_pixels=cfg.max_image_pixels)
        val_samples, bad_val = drop_unreadable(val_samples, progress=cfg.progress, max_pixels=cfg.max_image_pixels)
        skipped = bad_train + bad_val
    train_set = SampleSet(train_samples, classes, train.layout)
    val_set = SampleSet(val_samples, classes, train.layout)
    present = [c for c, n in train_set.counts().items() if n > 0]
    if len(present) < 2:
        raise DataError(too_few_classes(data_dir, present))
    if not val_set.samples:
        raise DataError(f"{data_dir}: no validation images (add a val/ folder or raise --val-split)")
    return Data(train_set, val_set, classes, skipped, str(Path(data_dir).resolve()))
