"""Finding images in the layouts users have.

Layouts (``find_samples`` detects which one a path holds):
  * Kaggle flat names:   ``train/cat.12.jpg``, ``train/dog.7.jpg``  -> classes from the prefixes
  * a folder per class:  ``root/<class>/**/<image>``                -> classes = sorted folder names
  * a list file:         ``relative/path.jpg 0`` per line (AI Studio, PaddleClas), with class
                         names from ``label_list.txt``/``labels.txt`` beside it when present
A root holding ``train/`` and ``val/`` (or ``train_list.txt`` and ``val_list.txt``) uses them.
"""
from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
KAGGLE_NAME = re.compile(r"^([A-Za-z][A-Za-z_-]*)\.\d+\.[A-Za-z]+$")
LIST_NAMES = ("train_list.txt", "val_list.txt")
LABEL_FILES = ("label_list.txt", "labels.txt", "label_names.txt")

Sample = Tuple[str, int]


class DataError(ValueError):
    """A data folder or list that cannot be used; the message is meant for the user."""


@dataclass
class SampleSet:
    """Image paths with integer labels and the class names they index."""

    samples: List[Sample]
    classes: List[str]
    layout: str = ""

    def counts(self) -> Dict[str, int]:
        out = {c: 0 for c in self.classes}
        for _, label in self.samples:
            out[self.classes[label]] += 1
        return out


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def _list_images(folder: Path, recursive: bool) -> List[Path]:
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in pattern if is_image_file(p))


# Listings made inside ``one_scan()``: finding the data folder, telling its layout and reading
# it would otherwise list every folder two or three times (slow on AI Studio's large mounts).
_SCANS: ContextVar[Optional[Dict[Tuple[str, bool], List[Path]]]] = ContextVar("scans", default=None)


@contextlib.contextmanager
def one_scan() -> Iterator[None]:
    """Within the block each folder is listed once (a run's data loading); outside, every call
    lists afresh, so a folder that changed between two runs is seen as it is."""
    token = _SCANS.set({})
    try:
        yield
    finally:
        _SCANS.reset(token)


def _image_files(folder: Path, recursive: bool) -> List[Path]:
    memo, key = _SCANS.get(), (str(folder), recursive)
    if memo is None:
        return _list_images(folder, recursive)
    if key not in memo:
        memo[key] = _list_images(folder, recursive)
    return list(memo[key])


def _read_text(path: Path) -> str:
    """A list or label file as text; one that is not UTF-8 (a binary file, an old encoding) is a
    DataError naming it, not a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}); "
                        "list files hold '<path> <label>' lines") from e


def _read_label_names(folder: Path) -> Optional[List[str]]:
    for name in LABEL_FILES:
        path = folder / name
        if path.is_file():
            names = []
            for line in _read_text(path).splitlines():
                parts = line.strip().split(maxsplit=1)
                if parts:  # "0 cat" or "cat"
                    names.append(parts[-1])
            return names
    return None


def read_list_file(path: Path, classes: Optional[List[str]] = None) -> SampleSet:
    """``relative/path.jpg 0`` per line; paths are relative to the list file's folder."""
    root = path.parent
    samples, labels = [], set()
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{n}: expected '<path> <integer label>', got {line!r}")
        label = int(parts[1])
        if label < 0:
            raise DataError(f"{path}:{n}: negative label {label}")
        samples.append((str(root / parts[0]), label))
        labels.add(label)
    if classes is None:
        classes = _read_label_names(root) or [str(i) for i in range(max(labels, default=-1) + 1)]
    if labels and max(labels) >= len(classes):
        raise DataError(f"{path}: label {max(labels)} but only {len(classes)} class names")
    return SampleSet(samples, classes, layout="list file")


def find_samples(path: str, classes: Optional[List[str]] = None) -> SampleSet:
    """Detect the layout under ``path`` and list its images. ``classes`` fixes the class order
    (the validation set must use the training set's)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data path not found: {path}")
    if p.is_file():
        return read_list_file(p, classes)
    files = _image_files(p, recursive=False)
    kaggle = [f for f in files if KAGGLE_NAME.match(f.name)]
    if files and len(kaggle) == len(files):
        found = sorted({KAGGLE_NAME.match(f.name).group(1).lower() for f in kaggle})
        classes = classes or found
        index = {c: i for i, c in enumerate(classes)}
        samples = [(str(f), index[KAGGLE_NAME.match(f.name).group(1).lower()]) for f in kaggle
                   if KAGGLE_NAME.match(f.name).group(1).lower() in index]
        return SampleSet(samples, list(classes), layout="kaggle flat names")
    subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    with_images = [d for d in subdirs if _image_files(d, recursive=True)]
    if with_images:
        classes = classes or [d.name for d in with_images]
        samples = []
        for label, name in enumerate(classes):
            if (p / name).is_dir():
                samples += [(str(f), label) for f in _image_files(p / name, recursive=True)]
        return SampleSet(samples, list(classes), layout="one folder per class")
    if files:
        raise DataError(f"{path}: images found but no classes: name them like cat.1.jpg / dog.1.jpg "
                        "or put each class in its own subfolder")
    raise DataError(f"no images found in {path} (looked for {', '.join(IMAGE_EXTENSIONS)})")


def resolve_splits(data_dir: str, val_dir: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """Where train and val come from: explicit ``val_dir``, else ``train/``+``val/`` (or list
    files) inside ``data_dir``, else ``None`` for val (the caller splits)."""
    root = Path(data_dir)
    if val_dir:
        return data_dir, val_dir
    if (root / "train").is_dir() and (root / "val").is_dir():
        return str(root / "train"), str(root / "val")
    if all((root / n).is_file() for n in LIST_NAMES):
        return str(root / LIST_NAMES[0]), str(root / LIST_NAMES[1])
    if (root / "train").is_dir():
        return str(root / "train"), None
    if (root / LIST_NAMES[0]).is_file():
        return str(root / LIST_NAMES[0]), None
    return data_dir, None
