"""The helpers behind the notebooks: data lookup, the CNN-basics demos, feature maps, Grad-CAM."""
import numpy as np
import paddle
import pytest
from paddle import nn

from conftest import make_kaggle_flat
from paddle_catdog import basics
from paddle_catdog.data.locate import ENV_VAR, find_data_dir
from paddle_catdog.data.layouts import DataError
from paddle_catdog.explain import (default_layers, feature_maps, grad_cam, most_confident_mistakes)
from paddle_catdog.models import create_model
from paddle_catdog.runtime import count_params


def test_find_data_dir_order_and_messages(tmp_path, monkeypatch):
    first, second, empty = tmp_path / "first", tmp_path / "second", tmp_path / "empty"
    make_kaggle_flat(first / "train", 2, size=16)
    make_kaggle_flat(second, 2, size=16)
    empty.mkdir()
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert find_data_dir(None, candidates=[empty, second, first]) == second  # first usable one
    monkeypatch.setenv(ENV_VAR, str(first))
    assert find_data_dir(None, candidates=[second]) == first                # env before candidates
    assert find_data_dir(str(second), candidates=[]) == second              # explicit before env
    monkeypatch.setenv(ENV_VAR, str(empty))
    with pytest.raises(DataError, match=ENV_VAR):                           # a wrong env var is not skipped
        find_data_dir(None, candidates=[second])
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(DataError, match="no photos found.*DATA_DIR.*empty"):
        find_data_dir(None, candidates=[empty, tmp_path / "missing"])


def test_convolve_finds_the_edge():
    img = np.zeros((8, 8), np.float32)
    img[:, 4:] = 1.0  # a vertical edge between columns 3 and 4
    vertical = basics.convolve(img, basics.EDGE_KERNELS["sobel_x (vertical edges)"])
    horizontal = basics.convolve(img, basics.EDGE_KERNELS["sobel_y (horizontal edges)"])
    inner = vertical[1:-1]  # away from the zero padding
    assert np.all(inner[:, 3:5] == 4) and np.all(inner[:, :2] == 0) and np.all(inner[:, 6:-1] == 0)
    assert np.all(horizontal[1:-1] == 0)


def test_pooling_values_and_a_quarter_remains():
    x = np.array([[1, 2, 0, 0], [3, 4, 0, 8], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)
    assert basics.pool(x, "max").tolist() == [[4, 8], [0, 1]]
    assert basics.pool(x, "avg").tolist() == [[2.5, 2], [0, 1]]
    np.testing.assert_allclose(basics.pool(x, "l2"), [[np.sqrt(30 / 4), 4], [0, 1]], atol=2e-3)  # sqrt(eps) at 0
    chw = np.random.default_rng(0).random((3, 10, 6)).astype(np.float32)
    assert basics.pool(chw, "max").size * 4 == chw.size
    with pytest.raises(ValueError, match="max, avg, l2"):
        basics.pool(x, "median")


def test_parameter_counts_match_real_layers():
    counts = basics.conv_vs_dense_params(6, 5, 3, 4, kernel=3)
    assert counts["conv"] == count_params(nn.Conv2D(3, 4, 3, padding=1))
    assert counts["dense"] == count_params(nn.Linear(6 * 5 * 3, 6 * 5 * 4))
    # the conv count does not grow with the image; the dense one grows with its square
    assert basics.conv_vs_dense_params(60, 50, 3, 4)["conv"] == counts["conv"]
    assert basics.conv_vs_dense_params(12, 10, 3, 4)["dense"] > 15 * counts["dense"]


def test_activation_derivatives():
    curves = basics.activation_curves(["relu", "sigmoid", "tanh"], lo=-3, hi=3, n=61)
    x, y, dy = curves["relu"]
    assert np.array_equal(y, np.maximum(x, 0)) and np.array_equal(dy[x > 0], np.ones((x > 0).sum()))
    assert np.all(dy[x < 0] == 0)
    x, y, dy = curves["sigmoid"]
    np.testing.assert_allclose(dy, y * (1 - y), atol=1e-6)
    x, y, dy = curves["tanh"]
    np.testing.assert_allclose(dy, 1 - y ** 2, atol=1e-6)


def test_first_conv_filters_are_displayable():
    f = basics.first_conv_filters(create_model("resnet18", width=8))
    assert f.shape == (8, 7, 7, 3) and f.min() >= 0 and f.max() <= 1


def test_feature_maps_of_resnet_and_cnn():
    x = np.random.default_rng(0).standard_normal((3, 32, 32)).astype(np.float32)
    resnet = create_model("resnet18", width=8)
    maps = feature_maps(resnet, x)
    assert list(maps) == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    assert [m.shape for m in maps.values()] == [(8, 16, 16), (8, 8, 8), (16, 4, 4), (32, 2, 2), (64, 1, 1)]
    cnn = create_model("cnn", channels=(4, 6))
    maps = feature_maps(cnn, x)
    assert default_layers(cnn) == ["features.0", "features.1"]
    assert [m.shape for m in maps.values()] == [(4, 16, 16), (6, 8, 8)]
    with pytest.raises(ValueError, match="no layer"):
        feature_maps(cnn, x, ["layer9"])
    assert not any(layer._forward_post_hooks for layer in cnn.sublayers())  # hooks removed


class SpotNet(nn.Layer):
    """Features = the input through a fixed 1x1 conv (identity); head = average, then a linear
    layer that scores class 1 by channel 0 and class 0 by channel 1. Grad-CAM must point at the
    pixels of the channel that carries the asked class's evidence."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(2, 2, 1, bias_attr=False)
        self.conv.weight.set_value(np.eye(2, dtype=np.float32).reshape(2, 2, 1, 1))
        self.fc = nn.Linear(2, 2)
        self.fc.weight.set_value(np.array([[0, 1], [1, 0]], np.float32))  # (in, out) in Paddle
        self.fc.bias.set_value(np.zeros(2, np.float32))

    def forward_features(self, x):
        return self.conv(x)

    def forward_head(self, x):
        return self.fc(x.mean(axis=[2, 3]))


def test_grad_cam_points_at_the_evidence():
    x = np.zeros((2, 6, 6), np.float32)
    x[0, 1, 4] = 9.0   # evidence for class 1 top right
    x[1, 4, 1] = 3.0   # weaker evidence for class 0 bottom left
    cam, k, probs = grad_cam(SpotNet(), x)
    assert k == 1 and probs[1] > probs[0]
    assert cam.shape == (6, 6) and cam.max() == pytest.approx(1.0)
    assert np.unravel_index(cam.argmax(), cam.shape) == (1, 4)
    cam0, k0, _ = grad_cam(SpotNet(), x, class_index=0)
    assert k0 == 0 and np.unravel_index(cam0.argmax(), cam0.shape) == (4, 1)
    # a real model: one map at the last feature resolution, in [0, 1]
    cam, k, probs = grad_cam(create_model("resnet18", width=8), np.ones((3, 64, 64), np.float32))
    assert cam.shape == (2, 2) and 0 <= cam.min() and cam.max() <= 1 and abs(probs.sum() - 1) < 1e-5


def test_most_confident_mistakes():
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.95, 0.05], [0.6, 0.4]])
    out = most_confident_mistakes(["a", "b", "c", "d", "e"], labels, probs, k=2)
    assert out == [("d", 1, 0, 0.95), ("b", 0, 1, 0.7)]
    assert most_confident_mistakes(["a"], np.array([0]), np.array([[1.0, 0.0]])) == []


def test_overlay_heatmap():
    from paddle_catdog.plots import overlay_heatmap
    img = np.full((20, 30, 3), 128, np.uint8)
    heat = np.zeros((2, 3), np.float32)
    heat[0, 0] = 1
    out = overlay_heatmap(img, heat)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[-1, -1])  # hot corner differs from cold one
