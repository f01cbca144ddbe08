"""The training photos decoded once (data/cache.py): the same pixels the decoder gives, the
memory bound and the fallback to decoding every epoch."""
import logging

import numpy as np
import pytest

from conftest import make_kaggle_flat, tiny_config, write_image
from paddle_catdog.config import TrainConfig
from paddle_catdog.data.cache import cache_side, decode_once, shrink
from paddle_catdog.data.layouts import find_samples
from paddle_catdog.data.loader import make_loader
from paddle_catdog.train import fit
from paddle_catdog.transforms import Decode, read_bytes


def photos(tmp_path, n=6, shape=(300, 200)):
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(tmp_path / f"{'cat' if i % 2 else 'dog'}.{i}.png",
                    rng.integers(0, 255, size=shape + (3,), dtype=np.uint8))
    return find_samples(str(tmp_path))


def test_photos_are_kept_as_the_decoder_gives_them_cut_to_what_the_largest_crop_needs(tmp_path):
    samples = photos(tmp_path)
    cfg = TrainConfig(image_size=64, crop_scale_min=0.5, progress=False)
    assert cache_side(cfg) == 91  # a crop of half the area of a 91 px side is 64 px a side
    images = decode_once(samples.samples, cfg)
    assert len(images) == 6 and all(img.dtype == np.uint8 for img in images)
    for (path, _), img in zip(samples.samples, images):
        decoded = Decode()(read_bytes(path))
        assert img.shape == (136, 91, 3)  # 300 x 200 (h x w): the short side at 91, aspect kept
        np.testing.assert_array_equal(img, shrink(decoded, 91))
    small = np.zeros((50, 40, 3), np.uint8)
    assert shrink(small, 91) is small  # never enlarged


def test_a_set_over_the_bound_is_not_cached_and_says_so(tmp_path, caplog):
    samples = photos(tmp_path)
    cfg = TrainConfig(image_size=64, progress=False)
    per_photo_mb = 136 * 91 * 3 / 2 ** 20
    with caplog.at_level(logging.INFO, logger="paddle_catdog"):
        assert decode_once(samples.samples, cfg, max_mb=5.5 * per_photo_mb) is None
    assert "more than --cache-mb" in caplog.text and "decoding every epoch" in caplog.text
    assert len(decode_once(samples.samples, cfg, max_mb=6.5 * per_photo_mb)) == 6
    assert decode_once(samples.samples, TrainConfig(cache_mb=0)) is None


def test_the_bound_is_projected_from_the_first_photos(tmp_path, monkeypatch):
    """A large set stops after its first PROBE photos, not after filling memory."""
    from paddle_catdog.data import cache
    samples = photos(tmp_path, n=10)
    monkeypatch.setattr(cache, "PROBE", 4)
    decoded = []
    real = cache.Decode.__call__
    monkeypatch.setattr(cache.Decode, "__call__", lambda self, data: decoded.append(1) or real(self, data))
    per_photo_mb = 136 * 91 * 3 / 2 ** 20
    assert decode_once(samples.samples, TrainConfig(image_size=64, progress=False), workers=1,
                       max_mb=8 * per_photo_mb) is None
    assert len(decoded) < 10


def test_training_batches_come_from_the_cache_without_decoding(tmp_path, monkeypatch):
    samples = photos(tmp_path)
    cfg = TrainConfig(image_size=32, batch_size=3, num_workers=0, progress=False)
    images = decode_once(samples.samples, cfg)
    loader = make_loader(samples, cfg, train=True, images=images)
    assert "Decode" not in repr(loader.dataset.transform)
    monkeypatch.setattr("paddle_catdog.data.loader.read_bytes", lambda path: pytest.fail("read " + path))
    x, y = next(iter(loader))
    assert tuple(x.shape) == (3, 3, 32, 32) and tuple(y.shape) in ((3,), (3, 1))


@pytest.mark.parametrize("cache_mb,cached", [(2048, True), (0, False)])
def test_fit_trains_from_the_cache_or_decodes(tmp_path, cache_mb, cached, caplog):
    make_kaggle_flat(tmp_path / "data" / "train", 12, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 4, seed=2, start=1000)
    cfg = tiny_config(tmp_path / "data", tmp_path / "out", epochs=1, cache_mb=cache_mb, log_images=False)
    with caplog.at_level(logging.INFO, logger="paddle_catdog"):
        fit(cfg)
    assert ("decoded cache: 24 photos" in caplog.text) == cached
    assert (tmp_path / "out" / "last").is_dir()
