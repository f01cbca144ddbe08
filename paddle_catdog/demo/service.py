"""What the demo page does with an upload, without the page: ``DemoService.classify(bytes)``.

It uses the predictor ``run_predict.py`` uses (``load_predictor``: Paddle Inference, the export
made on the fly and cached) and, where the folder holds a training checkpoint, the dygraph model
for the Grad-CAM overlay. Only uploaded bytes are read, never a path a visitor names. An upload
over MAX_UPLOAD_BYTES, an empty one, one that is not an image, a truncated JPEG or one whose header
declares more pixels than the checkpoint's limit (a decompression bomb) is answered with a message,
in Chinese and English; nothing a visitor sends raises out of ``classify``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from .. import checkpoint as ckpt
from ..explain import grad_cam
from ..plots import overlay_heatmap
from ..predict.load import load_predictor
from ..transforms import ImageDecodeError, image_grid

log = logging.getLogger("paddle_catdog")

MAX_UPLOAD_BYTES = 20 * 2 ** 20  # 20 MB: a 40-megapixel phone JPEG is ~15 MB
# Class names shown in both languages (others are shown as they are named)
NAMES_ZH = {"cat": "猫", "dog": "狗"}


def bilingual(name: str) -> str:
    """``猫 cat`` for the known classes, the name itself for others."""
    return f"{NAMES_ZH[name]} {name}" if name in NAMES_ZH else name


@dataclass
class Answer:
    """The page's answer to one upload: the label and probabilities, the Grad-CAM overlay (None
    without a training checkpoint), the time taken, or an error message instead."""

    name: str
    label: Optional[str] = None
    probabilities: Dict[str, float] = field(default_factory=dict)
    overlay: Optional[np.ndarray] = None
    milliseconds: float = 0.0
    error: Optional[str] = None

    def line(self) -> str:
        """One line of the results table (Markdown)."""
        if self.error:
            return f"| {self.name} | ⚠️ {self.error} | | |"
        p = self.probabilities[self.label]
        return f"| {self.name} | **{bilingual(self.label)}** | {p:.1%} | {self.milliseconds:.0f} ms |"


class DemoService:
    """Classifies uploaded bytes with the checkpoint in ``weights``."""

    def __init__(self, weights: str, device: str = "cpu") -> None:
        self.predictor = load_predictor(weights, engine="inference", device=device)
        self.classes: List[str] = list(self.predictor.classes)
        folder = ckpt.resolve_checkpoint(Path(weights)) if (Path(weights) / ckpt.META).is_file() else None
        self.model = ckpt.load_model(folder)[0] if folder is not None else None  # for Grad-CAM only

    def classify(self, data: Optional[bytes], name: str = "upload") -> Answer:
        """The answer for one upload's bytes; a bad upload is an Answer with ``error``."""
        start = time.perf_counter()
        if not data:
            return Answer(name, error="空文件 / empty upload")
        if len(data) > MAX_UPLOAD_BYTES:
            return Answer(name, error=f"文件太大 / file too large: {len(data) / 2 ** 20:.1f} MB "
                                      f"(at most {MAX_UPLOAD_BYTES // 2 ** 20} MB)")
        try:
            x = self.predictor.transform(bytes(data))
        except ImageDecodeError as e:
            return Answer(name, error=f"无法识别的图片 / not a usable image: {e}")
        probs = self.predictor.predict_batch(x[None])[0]
        label = self.classes[int(probs.argmax())]
        answer = Answer(name, label, {c: float(p) for c, p in zip(self.classes, probs)},
                        milliseconds=1000 * (time.perf_counter() - start))
        answer.overlay = self.overlay(x)
        return answer

    def overlay(self, x: np.ndarray) -> Optional[np.ndarray]:
        """The Grad-CAM heat map over the picture the model saw (None without the dygraph model)."""
        if self.model is None:
            return None
        cam, _, _ = grad_cam(self.model, x)
        picture = image_grid(x[None], ncol=1, normalize=self.predictor.cfg.normalize)
        shown = cv2.resize(picture, (256, 256), interpolation=cv2.INTER_LINEAR)
        return overlay_heatmap(shown, cam)
