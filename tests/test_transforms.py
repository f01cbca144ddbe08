"""Transforms on synthetic arrays, and decoding of the image kinds users have."""
import random

import cv2
import numpy as np
import pytest

from paddle_catdog.config import TrainConfig
from paddle_catdog.transforms import (IMAGENET_MEAN, IMAGENET_STD, CenterCrop, CenterCropResize,
                                      ColorJitter, Decode, HFlip, ImageDecodeError, Normalize,
                                      RandomResizedCrop, RandomRotate, build_transform)


def encode(img: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def test_decode_converts_bgr_to_rgb():
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR order
    rgb = Decode()(encode(bgr))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == 255).all() and (rgb[..., 2] == 0).all()


def test_decode_swaps_every_pixel_exactly():
    """The channel swap (cv2.cvtColor) gives the same pixels as reversing the channel axis."""
    bgr = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb = Decode()(encode(bgr))
    assert rgb.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])


def test_decode_grayscale_rgba_and_16bit_become_rgb():
    gray = np.full((5, 7), 100, np.uint8)
    assert Decode()(encode(gray)).shape == (5, 7, 3)
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128  # blue in BGRA, half transparent
    out = Decode()(encode(rgba))
    assert out.shape == (6, 6, 3) and (out[..., 2] == 200).all()
    deep = np.full((4, 4, 3), 65535, np.uint16)
    out = Decode()(encode(deep))
    assert out.dtype == np.uint8 and (out == 255).all()


def test_decode_rejects_garbage_and_empty():
    with pytest.raises(ImageDecodeError, match="empty"):
        Decode()(b"")
    with pytest.raises(ImageDecodeError):
        Decode()(b"this is a text file, not a jpeg")


def test_non_ascii_path_reads(tmp_path):
    from paddle_catdog.transforms import read_bytes
    path = tmp_path / "猫の写真 é.jpg"
    path.write_bytes(encode(np.full((9, 9, 3), 50, np.uint8), ".jpg"))
    assert Decode()(read_bytes(str(path))).shape == (9, 9, 3)


def test_center_crop_resize_is_the_resize_short_then_crop_view():
    """The crop taken first sees the same part of the photo as resizing the short side to
    size / ratio and cropping the middle (the ImageNet recipe): on a smooth picture the two
    agree to a grey level or two, for a square, a landscape and a portrait photo, shrinking
    and enlarging."""
    for h, w, size in [(200, 200, 128), (150, 300, 64), (300, 120, 96), (40, 30, 64)]:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (h + w) * 255], -1).astype(np.uint8)
        out = CenterCropResize(size, 0.875)(img)
        assert out.shape == (size, size, 3)
        short = round(size / 0.875)
        scale = short / min(h, w)
        big = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        top, left = (big.shape[0] - size) // 2, (big.shape[1] - size) // 2
        reference = big[top:top + size, left:left + size]
        assert np.abs(out.astype(int) - reference).mean() < 2.5, (h, w, size)


def test_center_crop_resize_keeps_only_the_central_square():
    """Paint everything outside the central square (ratio x short side) red: no red may reach
    the output, and the square's own colour fills it, for landscape and portrait photos."""
    for h, w in [(200, 300), (300, 200), (160, 160)]:
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = 255
        side = round(min(h, w) * 0.875)
        top, left = (h - side) // 2, (w - side) // 2
        img[top:top + side, left:left + side] = (0, 200, 0)
        out = CenterCropResize(64, 0.875)(img)
        assert out.shape == (64, 64, 3)
        assert (out[..., 0] == 0).all() and (out[..., 1] == 200).all(), (h, w)


def test_center_crop_resize_handles_tiny_and_thin_images():
    for shape in [(1, 1, 3), (1, 500, 3), (500, 1, 3), (2, 3, 3), (7, 9)]:
        out = CenterCropResize(32, 0.875)(np.full(shape, 77, np.uint8))
        assert out.shape == (32, 32) + shape[2:] and (out == 77).all(), shape


def test_center_crop_takes_the_middle():
    img = np.arange(10 * 10).reshape(10, 10, 1).repeat(3, 2).astype(np.uint8)
    out = CenterCrop(4)(img)
    assert out.shape == (4, 4, 3) and out[0, 0, 0] == img[3, 3, 0]


def test_random_resized_crop_size_and_variety():
    random.seed(0)
    img = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    op = RandomResizedCrop(32, scale=(0.2, 1.0))
    outs = [op(img) for _ in range(5)]
    assert all(o.shape == (32, 32, 3) for o in outs)
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_hflip_mirrors():
    img = np.arange(12).reshape(2, 2, 3).astype(np.uint8)
    out = HFlip(p=1.0)(img)
    np.testing.assert_array_equal(out, img[:, ::-1])
    np.testing.assert_array_equal(HFlip(p=0.0)(img), img)


def test_rotate_tilts_a_line_by_the_drawn_angle():
    img = np.zeros((101, 101, 3), np.uint8)
    img[50, 10:91] = 255  # a horizontal line through the centre
    random.seed(1)
    angle = random.uniform(-15, 15)  # the draw RandomRotate makes after the same seed
    random.seed(1)
    out = RandomRotate(15)(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    ys, xs = np.nonzero(out[..., 0] > 128)
    slope = np.polyfit(xs, ys, 1)[0]  # image y points down: a counter-clockwise turn rises to the right
    assert abs(angle) > 1 and np.degrees(np.arctan(-slope)) == pytest.approx(angle, abs=1.0)
    assert RandomRotate(0)(img) is img


def test_jitter_scales_brightness_and_contrast_by_its_draws():
    img = np.full((10, 20, 3), 80, np.uint8)
    img[:, 10:] = 120  # two levels around a mean of 100
    random.seed(3)
    b, c = 1 + random.uniform(-0.3, 0.3), 1 + random.uniform(-0.3, 0.3)  # brightness, then contrast
    random.seed(3)
    out = ColorJitter(0.3, 0.3)(img).astype(float)
    assert out.mean() == pytest.approx(100 * b, abs=1.0)  # brightness moves the mean
    assert out[0, 15, 0] - out[0, 5, 0] == pytest.approx(40 * c, abs=1.0)  # contrast the spread


def test_normalize_values_and_layout():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255
    out = Normalize()(img)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], rtol=1e-5)
    np.testing.assert_allclose(out[1], (0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1], rtol=1e-5)


def test_build_transform_train_and_eval():
    cfg = TrainConfig(image_size=48)
    data = encode(np.random.default_rng(2).integers(0, 255, (100, 150, 3), dtype=np.uint8), ".jpg")
    ev = build_transform(cfg, train=False)
    a, b = ev(data), ev(data)
    assert a.shape == (3, 48, 48) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # evaluation is deterministic
    tr = build_transform(cfg, train=True)
    random.seed(3)
    outs = [tr(data) for _ in range(3)]
    assert all(o.shape == (3, 48, 48) for o in outs)
    assert not np.array_equal(outs[0], outs[1])  # training augments
