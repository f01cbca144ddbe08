"""Decode-checking images before a run, so a bad file is skipped once, visibly, with its reason
(never silently replaced by another sample)."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..transforms import MAX_IMAGE_PIXELS, bytes_problem, imdecode, read_bytes
from .layouts import Sample


def check_image(path: str, max_pixels: int = MAX_IMAGE_PIXELS) -> Optional[str]:
    """None if ``path`` decodes as an image, else the reason it does not (an image declaring
    more than ``max_pixels`` is refused from its header, never decoded)."""
    try:
        data = read_bytes(path)
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    problem = bytes_problem(data, max_pixels)
    if problem:
        return problem
    # The reduced decode reads the whole stream (so truncation and garbage are caught) at a
    # fraction of the cost of a full decode; a failure is confirmed with a full decode (the
    # reduced one fails on images under 4 pixels a side, which are usable).
    buf = np.frombuffer(data, np.uint8)
    img = imdecode(buf, cv2.IMREAD_REDUCED_COLOR_4)
    if img is None:
        img = imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        return "not a decodable image"
    if min(img.shape[:2]) < 1:
        return "image has no pixels"
    return None


def drop_unreadable(samples: Sequence[Sample], workers: int = 4, progress: bool = False,
                    max_pixels: int = MAX_IMAGE_PIXELS) -> Tuple[List[Sample], List[Tuple[str, str]]]:
    """Decode-check every file before training (threads: OpenCV releases the GIL) and return
    the usable samples and the (path, reason) of each skipped one."""
    paths = [s[0] for s in samples]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(functools.partial(check_image, max_pixels=max_pixels), paths, chunksize=32)
        if progress:
            results = tqdm(results, total=len(paths), desc="checking images", leave=False)
        reasons = list(results)
    good = [s for s, r in zip(samples, reasons) if r is None]
    bad = [(s[0], r) for s, r in zip(samples, reasons) if r is not None]
    return good, bad
