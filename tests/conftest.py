"""Shared test helpers: generated images (never the shared photos) and the real-data path."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run one of the repository's top-level scripts (run_train.py, ...) as a user would."""
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def run_cli(main: Callable[[List[str]], int], *args: str) -> Tuple[int, str, str]:
    """A command's main function run in-process, as its console script runs it: (exit code,
    stdout, stderr). argparse's exits count as exit codes. Cheaper than a subprocess that imports
    Paddle again; keep one real subprocess per command for the end-to-end path."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def load_tool(name: str) -> ModuleType:
    """A development tool from tools/ (not part of the installed package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stripes(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable picture: class 0 horizontal stripes, class 1 vertical, class 2 a checkerboard;
    colours, phase and period are random so only the orientation carries the class. BGR uint8."""
    period = int(rng.integers(4, 9))
    phase = int(rng.integers(0, period))
    idx = (np.arange(size) + phase) // (period // 2) % 2
    if label == 0:
        mask = np.repeat(idx[:, None], size, axis=1)
    elif label == 1:
        mask = np.repeat(idx[None, :], size, axis=0)
    else:
        mask = (idx[:, None] + idx[None, :]) % 2
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    while np.abs(a.astype(int) - b.astype(int)).sum() < 150:  # keep the stripes visible
        b = rng.integers(0, 256, 3)
    img = np.where(mask[..., None] == 1, a, b).astype(np.uint8)
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def write_image(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def make_kaggle_flat(folder: Path, n_per_class: int, size: int = 40, seed: int = 0,
                     classes=("cat", "dog"), start: int = 0) -> List[Path]:
    rng = np.random.default_rng(seed)
    out = []
    for label, name in enumerate(classes):
        for i in range(start, start + n_per_class):
            out.append(write_image(folder / f"{name}.{i}.jpg", stripes(label, size, rng)))
    return out


def make_class_folders(folder: Path, n_per_class: int, classes=("cat", "dog"), size: int = 40,
                       seed: int = 0, ext: str = ".png") -> Dict[str, List[Path]]:
    rng = np.random.default_rng(seed)
    out: Dict[str, List[Path]] = {}
    for label, name in enumerate(classes):
        out[name] = [write_image(folder / name / f"img_{i}{ext}", stripes(label % 3, size, rng))
                     for i in range(n_per_class)]
    return out


@pytest.fixture
def kaggle_root(tmp_path: Path) -> Path:
    """root/train (Kaggle names, 40 per class) and root/val (12 per class)."""
    make_kaggle_flat(tmp_path / "data" / "train", 40, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 12, seed=2, start=1000)
    return tmp_path / "data"


@pytest.fixture
def quiet_log(monkeypatch):
    """The commands' log lines (their own stderr handler, runtime.command_logging) go to a buffer,
    so that capsys sees only what the CLI prints for an error."""
    from paddle_catdog import runtime
    monkeypatch.setattr(runtime, "_stderr_handler", lambda: logging.StreamHandler(io.StringIO()))


def real_data() -> Optional[Path]:
    value = os.environ.get("CATDOG_DATA")
    return Path(value) if value and Path(value).is_dir() else None


requires_real_data = pytest.mark.skipif(
    real_data() is None,
    reason="CATDOG_DATA is not set to the Dogs-vs-Cats folder (e.g. ../shared/data/dogs-vs-cats)")


def tiny_config(data_dir: Path, output: Path, **overrides):
    """A config that trains in seconds on the generated images."""
    from paddle_catdog.config import TrainConfig
    values = dict(data_dir=str(data_dir), output=str(output), model="cnn", image_size=32,
                  epochs=1, batch_size=16, num_workers=0, progress=False, log_images=True,
                  lr=3e-3, warmup_epochs=0.5, rotate_degrees=0, crop_scale_min=0.6)
    values.update(overrides)
    return TrainConfig(**values)


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid black 1-bit PNG declaring ``width`` x ``height`` pixels: about 100 KB on disk,
    while OpenCV decodes it to ``width * height * 3`` bytes (2.7 GB for the default)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    body = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    body += packer.compress(row * (height % 1000)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))

