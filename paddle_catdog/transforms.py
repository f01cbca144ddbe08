"""Image preprocessing: small OpenCV operators chained by ``Compose``.

``build_transform(cfg, train)`` is the single source of truth: training uses ``train=True``;
evaluation during training, prediction and the exported model's preprocessing all use
``train=False``. Every op takes and returns a numpy array (HWC uint8 RGB until ``Normalize``).
"""
from __future__ import annotations

import math
import random
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .imagesize import declared_size

# ImageNet statistics: what Paddle's published ResNet weights were trained with (see --pretrained).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Input scalings by name (--normalize): (mean, std) in [0, 1] units. 'centered' is (x - 127) / 128,
# what TensorFlow's EfficientNet-Lite was trained with.
NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "centered": ((127 / 255,) * 3, (128 / 255,) * 3),
}
# Images declaring more pixels than this are refused before decoding (--max-image-pixels): a
# 100 M pixel photo decodes to 300 MB, far beyond any camera's 50 M; a decompression bomb declares
# 1 G pixels (3 GB) in a file of under 1 MB.
MAX_IMAGE_PIXELS = 100_000_000
# The random resized crop keeps at least this share of the area (TrainConfig.crop_scale_min's
# default; milder than ImageNet's 0.08: short runs learn faster from whole animals).
CROP_SCALE_MIN = 0.5
# IMREAD_COLOR turns the stored pixels upright as the EXIF Orientation tag says (a photo viewer
# shows phone photos that way; IMREAD_UNCHANGED ignores the tag); ANYDEPTH keeps 16-bit samples
# for to_rgb_uint8 to scale.
DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH


class ImageDecodeError(ValueError):
    """A file that is not an image OpenCV can decode (empty, truncated, text, ...)."""


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def bytes_problem(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Optional[str]:
    """Why ``data`` cannot be a usable image, judged from the bytes alone (before any decode);
    None when it may be. Shared by Decode and the pre-training check so both give the same reasons."""
    if not data:
        return "empty file"
    # Every complete JPEG holds the end-of-image marker FF D9. OpenCV 5 rejects a file cut short,
    # but OpenCV 4 decodes it with the missing part grey; reject it either way so the rule does
    # not depend on the OpenCV version. (An EXIF thumbnail's marker can hide a cut: the decode
    # then judges.) Never rejects a complete file.
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data:
        return "truncated JPEG (no end-of-image marker)"
    size = declared_size(data)
    if size and size[0] * size[1] > max_pixels:
        return f"image too large: {size[0]} x {size[1]} (more than {max_pixels:,} pixels; --max-image-pixels)"
    return None


def imdecode(buf: np.ndarray, flags: int) -> Optional[np.ndarray]:
    """``cv2.imdecode`` that returns None for every failure: OpenCV raises instead for some
    inputs (e.g. a reduced decode of a PNG smaller than 4 pixels, which asks resize for 0 x 0)."""
    try:
        return cv2.imdecode(buf, flags)
    except cv2.error:
        return None


class Decode:
    """Bytes -> HWC uint8 RGB, upright as the EXIF orientation says. ``cv2.imdecode`` on bytes
    (not ``cv2.imread``) so non-ASCII paths work on every OS. Grayscale becomes 3 channels, alpha
    is dropped, 16-bit is scaled to 8-bit. Images declaring more than ``max_pixels`` are refused
    from their header, before decoding."""

    def __init__(self, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.max_pixels = max_pixels

    def __call__(self, data: Union[bytes, np.ndarray]) -> np.ndarray:
        raw = bytes(data) if isinstance(data, (bytes, bytearray)) else np.asarray(data, np.uint8).tobytes()
        problem = bytes_problem(raw, self.max_pixels)
        if problem:
            raise ImageDecodeError(problem)
        img = imdecode(np.frombuffer(raw, np.uint8), DECODE_FLAGS)
        if img is None:
            raise ImageDecodeError("not a decodable image")
        return to_rgb_uint8(img)


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded array (BGR/BGRA/gray, 8- or 16-bit) -> contiguous HWC uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # the same pixels as img[:, :, ::-1], 4-10x faster


class CenterCropResize:
    """The central square of side ``ratio`` x the short side, resized to ``size`` x ``size``:
    the same view as resizing the short side to ``size / ratio`` and center-cropping ``size``
    (what most ImageNet recipes do; 224 from 256 is ratio 0.875), with the crop taken first so
    the resize reads and writes fewer pixels (0.43 -> 0.3 ms for a 200 x 200 photo to 128)."""

    def __init__(self, size: int, ratio: float = 0.875) -> None:
        self.size, self.ratio = size, ratio

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        side = max(1, round(min(h, w) * self.ratio))
        img = CenterCrop(side)(img)
        interp = cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR
        return cv2.resize(img, (self.size, self.size), interpolation=interp)


class CenterCrop:
    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        top, left = max(0, (h - self.size) // 2), max(0, (w - self.size) // 2)
        return img[top:top + self.size, left:left + self.size]


class RandomResizedCrop:
    """Crop a random area fraction ``scale`` and aspect ratio ``ratio``, resize to ``size``
    (the Inception crop that torchvision and PaddleClas use)."""

    def __init__(self, size: int, scale: Tuple[float, float] = (CROP_SCALE_MIN, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = size, scale, ratio

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        area = h * w
        for _ in range(10):
            target = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = random.randint(0, h - ch), random.randint(0, w - cw)
                img = img[top:top + ch, left:left + cw]
                break
        else:  # fall back to a center crop of the whole image
            side = min(h, w)
            img = CenterCrop(side)(img)
        interp = cv2.INTER_AREA if img.shape[0] > self.size else cv2.INTER_LINEAR
        return cv2.resize(img, (self.size, self.size), interpolation=interp)


class HFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img[:, ::-1]) if random.random() < self.p else img


class RandomRotate:
    """Rotate by up to ``degrees`` either way, reflecting the border (no black corners)."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.degrees <= 0:
            return img
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), random.uniform(-self.degrees, self.degrees), 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


class ColorJitter:
    """Random brightness and contrast: out = (img - mean) * c + mean * b."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2) -> None:
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, img: np.ndarray) -> np.ndarray:
        b = 1 + random.uniform(-self.brightness, self.brightness)
        c = 1 + random.uniform(-self.contrast, self.contrast)
        mean = float(img.mean())
        out = (img.astype(np.float32) - mean) * c + mean * b
        return np.clip(out, 0, 255).astype(np.uint8)


class Normalize:
    """uint8 HWC RGB -> float32 CHW, scaled to [0, 1] then standardized per channel."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1) * 255.0
        self.inv_std = 1.0 / (np.asarray(std, np.float32).reshape(3, 1, 1) * 255.0)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        # One float32 buffer, filled and standardized in place: the same numbers as
        # (img.transpose(2, 0, 1).astype(float32) - mean) * inv_std without its three temporaries,
        # 4-5x faster (about a tenth of a photo's preprocessing at prediction time).
        chw = np.empty((img.shape[2], img.shape[0], img.shape[1]), np.float32)
        chw[...] = img.transpose(2, 0, 1)
        chw -= self.mean
        chw *= self.inv_std
        return chw


class Compose:
    def __init__(self, ops: List[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.ops = ops

    def __call__(self, x):
        for op in self.ops:
            x = op(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(type(op).__name__ for op in self.ops) + "])"


def eval_size(cfg) -> int:
    """The input size of evaluation, prediction and the exported model."""
    return cfg.eval_image_size or cfg.image_size


def build_transform(cfg, train: bool, decode: bool = True) -> Compose:
    """The one preprocessing path. ``cfg`` needs ``image_size`` and, for training, the
    augmentation fields of ``TrainConfig``. With ``decode=False`` the chain starts from an
    RGB array (used by notebooks on arrays already in memory)."""
    size = cfg.image_size if train else eval_size(cfg)
    if train:
        ops = [RandomResizedCrop(size, scale=(cfg.crop_scale_min, 1.0)), HFlip(0.5),
               RandomRotate(cfg.rotate_degrees), ColorJitter(cfg.jitter, cfg.jitter)]
    else:
        ops = [CenterCropResize(size, cfg.eval_crop_ratio)]
    decoder = [Decode(cfg.max_image_pixels)] if decode else []
    return Compose(decoder + ops + [Normalize(*NORMALIZATIONS[cfg.normalize])])


def image_grid(batch: np.ndarray, ncol: int = 8, normalize: str = "imagenet") -> np.ndarray:
    """Normalized CHW batch -> one HWC uint8 picture, undoing ``Normalize`` (as ``normalize``
    names it): what the model sees."""
    mean, std = (np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in NORMALIZATIONS[normalize])
    imgs = np.clip((batch * std + mean) * 255, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    n, h, w, c = imgs.shape
    nrow = math.ceil(n / ncol)
    grid = np.full((nrow * h, min(n, ncol) * w, c), 255, np.uint8)
    for i, img in enumerate(imgs):
        r, col = divmod(i, ncol)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    return grid
