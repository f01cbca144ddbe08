"""Photos as people have them (issue 12): phone photos stored sideways with an EXIF Orientation
tag decode upright, and images declaring a huge size are refused from their header, before any
decode, with memory staying bounded. Every image is generated here."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, png_bomb, write_image
from paddle_catdog.cli import predict_main
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.config import TrainConfig
from paddle_catdog.data.check import check_image
from paddle_catdog.imagesize import declared_size
from paddle_catdog.models import create_model
from paddle_catdog.transforms import Decode, ImageDecodeError, build_transform


def upright_photo() -> np.ndarray:
    """A 200 x 133 landscape RGB photo whose orientation is unmistakable: a red block top left,
    a blue bar along the bottom, on a horizontal grey ramp."""
    img = np.tile(np.linspace(40, 200, 200, dtype=np.uint8)[None, :, None], (133, 1, 3))
    img[:40, :60] = (255, 0, 0)
    img[-20:, :] = (0, 0, 255)
    return img


# How each EXIF orientation stores the upright picture (the inverse of what a viewer applies).
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                 # mirrored left-right
    3: lambda a: a[::-1, ::-1],              # rotated 180
    4: lambda a: a[::-1],                    # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),       # transposed
    6: lambda a: np.rot90(a, 1),             # a viewer turns it 90 degrees clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # transverse
    8: lambda a: np.rot90(a, -1),            # a viewer turns it 90 degrees counter-clockwise
}


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``rgb`` with an EXIF APP1 segment holding only the Orientation tag (0x0112)."""
    jpg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpg[2:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_upright(orientation, tmp_path):
    upright = upright_photo()
    stored = np.ascontiguousarray(STORED[orientation](upright))
    data = jpeg_with_orientation(stored, orientation)
    assert (orientation < 5) == (stored.shape == upright.shape)  # 5-8 are stored 133 wide, 200 high
    decoded = Decode()(data)
    assert decoded.shape == upright.shape  # 200 wide, 133 high, like a photo viewer shows it
    assert np.abs(decoded.astype(int) - upright).mean() < 2, "not upright"
    # the one decode path: the decode check and the eval/predict transform see the same picture
    path = tmp_path / f"phone_{orientation}.jpg"
    path.write_bytes(data)
    assert check_image(str(path)) is None
    cfg = TrainConfig(image_size=64)
    reference = build_transform(cfg, train=False)(jpeg_with_orientation(upright, 1))
    assert np.abs(build_transform(cfg, train=False)(data) - reference).mean() < 0.05


@pytest.mark.parametrize("ext,params", [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                                        (".png", []), (".bmp", []), (".webp", []),
                                        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless
                                        (".tiff", []), (".ppm", []), (".pgm", [])])
def test_declared_size_is_the_decoded_size(ext, params):
    img = np.random.default_rng(0).integers(0, 255, (23, 37, 3), np.uint8)
    if ext == ".pgm":
        img = img[:, :, 0]
    data = cv2.imencode(ext, img, params)[1].tobytes()
    assert declared_size(data) == (37, 23)
    exif = jpeg_with_orientation(img if img.ndim == 3 else np.dstack([img] * 3), 6)
    assert declared_size(exif) == (37, 23)  # stored size; the APP1 segment before the frame is skipped
    assert declared_size(b"\xff\xd8\xff") is None and declared_size(b"not an image") is None


def test_a_bomb_is_refused_before_decoding_with_its_declared_size(tmp_path):
    data = png_bomb(30000, 30000)
    assert len(data) < 1_000_000
    reason = "image too large: 30000 x 30000"
    with pytest.raises(ImageDecodeError, match=reason):
        Decode()(data)
    (tmp_path / "bomb.png").write_bytes(data)
    assert reason in check_image(str(tmp_path / "bomb.png"))
    # the limit is an option: a small limit refuses an ordinary photo, a large one lets it through
    small = cv2.imencode(".png", np.zeros((100, 120, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageDecodeError, match="image too large: 120 x 100"):
        Decode(max_pixels=10_000)(small)
    assert Decode(max_pixels=12_000)(small).shape == (100, 120, 3)
    assert reason in check_image(str(tmp_path / "bomb.png"), max_pixels=30000 * 30000 - 1)


MEASURE = """
import resource, sys
from paddle_catdog.launch import predict_main
code = predict_main(sys.argv[1:])
print("peak_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
sys.exit(code)
"""


def _predict_peak(*args: str):
    r = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    lines = r.stderr.splitlines()
    peak = int(next(line for line in lines if line.startswith("peak_mb")).split()[1])
    return r, [line for line in lines if not line.startswith("peak_mb")], peak


def test_predicting_a_bomb_is_one_error_line_at_bounded_memory(tmp_path):
    weights = tmp_path / "ckpt"
    cfg = TrainConfig(model="cnn", image_size=32)
    ckpt.save_checkpoint(weights, create_model("cnn", 2, **cfg.model_options()), cfg, ["cat", "dog"],
                         epoch=0, best_metric=0.0)
    photo = write_image(tmp_path / "photo.png", np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "bomb.png").write_bytes(png_bomb(30000, 30000))
    common = ["--weights", str(weights), "--engine", "dygraph"]
    baseline, errors, base_peak = _predict_peak(*common, "--img", str(photo))
    assert baseline.returncode == 0 and not errors, baseline.stderr
    r, errors, peak = _predict_peak(*common, "--img", str(tmp_path / "bomb.png"), "--img", str(photo))
    assert r.returncode == 2
    assert errors == [f"error: {tmp_path / 'bomb.png'}: image too large: 30000 x 30000 "
                      "(more than 100,000,000 pixels; --max-image-pixels)"], r.stderr
    assert r.stdout.splitlines()[0].startswith(str(photo))  # the other photo is still predicted
    # Decoding it would take 2.7 GB; refused from the header, the peak stays that of a normal run.
    print(f"peak memory: {peak} MB with the bomb, {base_peak} MB without")
    assert peak < base_peak + 200, (peak, base_peak)


def test_prediction_keeps_the_checkpoints_pixel_limit(tmp_path, capsys):
    """A run trained with --max-image-pixels 5000 predicts with that limit unless the prediction
    command is given another (it used to apply the command's default, 100 M, always)."""
    weights = tmp_path / "ckpt"
    cfg = TrainConfig(model="cnn", image_size=32, max_image_pixels=5000)
    ckpt.save_checkpoint(weights, create_model("cnn", 2, **cfg.model_options()), cfg, ["cat", "dog"],
                         epoch=0, best_metric=0.0)
    photo = write_image(tmp_path / "photo.png", np.zeros((100, 100, 3), np.uint8))  # 10,000 pixels
    common = ["--weights", str(weights), "--engine", "dygraph", "--img", str(photo)]
    assert predict_main(common) == 2
    assert "image too large: 100 x 100 (more than 5,000 pixels" in capsys.readouterr().err
    assert predict_main(common + ["--max-image-pixels", "20000"]) == 0
    assert capsys.readouterr().out.startswith(str(photo))
