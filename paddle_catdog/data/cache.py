"""Training photos decoded once: ``decode_once`` keeps every training photo in memory as uint8
RGB, its short side at most ``cache_side(cfg)``, so each epoch augments from arrays instead of
decoding JPEGs again (on 2 cores, decoding 8,000 photos of 200 x 200 costs ~5 s an epoch and
competes with the training math).

The memory is bounded: ``--cache-mb`` (default 2,048). The first photos decoded give the mean size,
from which the whole set's is projected; a set projected (or found) to exceed the bound is not
cached, and the loader decodes every epoch as before. 8,000 Kaggle photos at 128 px training size
take ~790 MB (docs/en/recipe.md).
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..config import TrainConfig
from ..transforms import Decode, read_bytes
from .layouts import Sample

log = logging.getLogger("paddle_catdog")

PROBE = 64  # photos decoded before projecting the whole set's size
CHUNK = 512  # then decoded this many at a time, the projection checked after each


def cache_side(cfg: TrainConfig) -> int:
    """The short side photos are kept at: the smallest random crop (``crop_scale_min`` of the area)
    of a photo of this side still has ``cfg.image_size`` pixels a side, so training crops are
    never upscaled more than from the original."""
    return math.ceil(cfg.image_size / math.sqrt(cfg.crop_scale_min))


def shrink(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` with its short side at most ``side`` (area interpolation), else unchanged."""
    h, w = img.shape[:2]
    if min(h, w) <= side:
        return img
    scale = side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def decode_once(samples: Sequence[Sample], cfg: TrainConfig, workers: int = 2,
                max_mb: Optional[float] = None) -> Optional[List[np.ndarray]]:
    """Every sample's photo decoded (as ``transforms.Decode`` does) and shrunk to ``cache_side``,
    in sample order; None when the set would take more than ``max_mb`` (default
    ``cfg.cache_mb``) megabytes, or the bound is 0."""
    limit = (cfg.cache_mb if max_mb is None else max_mb) * 2 ** 20
    if limit <= 0 or not samples:
        return None
    decode, side = Decode(cfg.max_image_pixels), cache_side(cfg)
    load = lambda sample: shrink(decode(read_bytes(sample[0])), side)  # noqa: E731
    images: List[np.ndarray] = []
    used = 0
    bar = tqdm(total=len(samples), desc="decoding photos once", leave=False, disable=not cfg.progress)
    with bar, ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV releases the GIL
        # in chunks, so that a set over the bound stops after its first photos
        while len(images) < len(samples):
            begin = len(images)
            chunk = list(pool.map(load, samples[begin:begin + (CHUNK if begin else PROBE)]))
            images += chunk
            used += sum(img.nbytes for img in chunk)
            bar.update(len(chunk))
            projected = used / len(images) * len(samples)
            if projected > limit:
                log.info("decoded cache: %d photos would take ~%.0f MB, more than --cache-mb %d: "
                         "decoding every epoch instead", len(samples), projected / 2 ** 20, limit / 2 ** 20)
                return None
    log.info("decoded cache: %d photos in %.0f MB (short side <= %d px)", len(images), used / 2 ** 20, side)
    return images
