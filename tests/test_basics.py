"""Notebook 01's teaching helpers (paddle_catdog/basics.py) and their pictures: activation
derivatives against finite differences, pooling against small shifts, the fully connected network
against permuted pixels, the brief training loop, and plain against residual deep stacks."""
import cv2
import numpy as np
import paddle
import pytest
from matplotlib.figure import Figure

from conftest import make_kaggle_flat
from paddle_catdog import basics, plots
from paddle_catdog.config import TrainConfig
from paddle_catdog.data.split import load_data
from paddle_catdog.runtime import count_params

KINKS = (-3.0, 0.0, 3.0, 6.0)  # where relu, relu6, hardsigmoid, hardswish have no derivative


def test_at_least_ten_activations_with_derivatives_matching_finite_differences():
    curves = basics.activation_curves(lo=-7, hi=7, n=141)
    assert len(curves) >= 10 and list(curves) == list(basics.ACTIVATION_FUNCTIONS)
    h = 1e-3
    for name, (x, y, dy) in curves.items():
        away = np.min(np.abs(x[:, None] - np.array(KINKS)[None]), axis=1) > 2 * h
        x64 = x.astype(np.float64)
        f = lambda v: basics.ACTIVATION_FUNCTIONS[name](paddle.to_tensor(v)).numpy()  # noqa: E731
        numeric = (f(x64 + h) - f(x64 - h)) / (2 * h)
        np.testing.assert_allclose(dy[away], numeric[away], atol=2e-3, err_msg=name)
        np.testing.assert_allclose(y, f(x64), atol=1e-5, err_msg=name)
    x, y, dy = curves["prelu (slope 0.25 at start)"]
    assert np.allclose(dy[x < 0], 0.25) and np.allclose(dy[x > 0], 1.0)


def smooth_image(seed: int, size: int = 48) -> np.ndarray:
    """Random blobs: edges in every direction at every position, like a photo's texture."""
    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooling_absorbs_small_shifts(seed):
    changes = basics.shift_change(smooth_image(seed), shifts=(1, 2, 3, 4), pool_sizes=(1, 2, 4))
    unpooled, pooled2, pooled4 = (np.array(changes[k]) for k in (1, 2, 4))
    assert np.all(pooled2 < unpooled) and np.all(pooled4 < pooled2)
    assert np.all(np.diff(unpooled) > 0)  # a larger shift changes the map more
    assert basics.shift_change(smooth_image(seed), shifts=(0,))[1] == [0.0]


def test_edge_features_pool_the_three_edge_maps():
    img = smooth_image(0, size=20)
    assert basics.edge_features(img).shape == (3, 20, 20)
    pooled = basics.edge_features(img, 4)
    assert pooled.shape == (3, 5, 5)
    assert pooled[0, 0, 0] == basics.edge_features(img)[0, :4, :4].max()


def test_permuted_pixels_lose_nothing_for_the_mlp():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    p = basics.permute_pixels(x, seed=3)
    assert np.array_equal(p, basics.permute_pixels(x, seed=3)) and not np.array_equal(p, x)
    assert np.array_equal(np.sort(p.reshape(4, 3, -1)), np.sort(x.reshape(4, 3, -1)))
    # the same pixel order in every image: an MLP with its first-layer rows reordered the same
    # way computes exactly what the original one computes on the original images
    order = basics.permute_pixels(np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6), seed=3).ravel()
    mlp, moved = basics.MLP(6, hidden=5), basics.MLP(6, hidden=5)
    moved.set_state_dict(mlp.state_dict())
    rows = (np.arange(3)[:, None] * 36 + order[None].astype(int)).ravel()  # flattened (C, H*W)
    moved.fc1.weight.set_value(mlp.fc1.weight.numpy()[rows])
    np.testing.assert_allclose(moved(paddle.to_tensor(p)).numpy(), mlp(paddle.to_tensor(x)).numpy(),
                               atol=1e-5)


def bright_vs_dark(n: int, size: int, seed: int):
    """Class 0 darker, class 1 brighter, with noise: learnable in a few epochs by any network."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 0.5, (n, 3, size, size)) + (y[:, None, None, None] * 2 - 1) * 0.4
    return x.astype(np.float32), y.astype(np.int64)


def test_train_briefly_learns_and_records_history():
    paddle.seed(0)
    train, val = bright_vs_dark(64, 8, seed=0), bright_vs_dark(32, 8, seed=1)
    mlp = basics.MLP(8, hidden=16)
    assert count_params(mlp) == 3 * 64 * 16 + 16 + 16 * 2 + 2
    history = basics.train_briefly(mlp, train, val, epochs=3, batch_size=16)
    assert len(history["loss"]) == 3 * 4 and len(history["train_acc"]) == len(history["val_acc"]) == 3
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    assert history["train_acc"][-1] >= 0.9 and history["val_acc"][-1] >= 0.8
    assert basics.accuracy(mlp, *val) == history["val_acc"][-1]  # eval mode: deterministic


def test_brief_arrays_limit_check_and_decode_once(tmp_path, capsys):
    make_kaggle_flat(tmp_path / "train", 6, size=24)
    make_kaggle_flat(tmp_path / "val", 5, size=24, seed=1, start=100)
    (tmp_path / "train" / "cat.99.jpg").write_bytes(b"not a jpeg")
    cfg = TrainConfig(data_dir=str(tmp_path), image_size=16, max_per_class=7)
    (xt, yt), (xv, yv) = basics.brief_arrays(load_data(cfg, check=False), cfg, val_per_class=3)
    out = capsys.readouterr().out
    assert out.count("skipped") == 1 and "cat.99.jpg" in out
    assert xt.shape == (12, 3, 16, 16) and xt.dtype == np.float32 and sorted(yt.tolist()) == [0] * 6 + [1] * 6
    assert xv.shape == (6, 3, 16, 16) and sorted(yv.tolist()) == [0, 0, 0, 1, 1, 1]


def test_deep_stack_plain_and_residual_share_their_parameters():
    plain, residual = basics.deep_stack(5, width=8), basics.deep_stack(5, width=8, residual=True)
    assert count_params(plain) == count_params(residual)
    assert sum(isinstance(m, basics.ConvBNReLU) for m in residual.sublayers()) == 5
    out = residual(paddle.randn([2, 3, 16, 16]))
    assert out.shape == [2, 2]


def test_skip_connections_keep_deep_gradients_balanced():
    """Measured on random input at initialisation, depth 30 (seeds 0-5 were checked: the plain
    stack's largest/smallest per-layer gradient norm was 58-96, the residual one's 2-9)."""
    for seed in range(3):
        spreads = {}
        for residual in (False, True):
            paddle.seed(seed)
            rng = np.random.default_rng(seed)
            x, y = rng.standard_normal((8, 3, 16, 16)).astype(np.float32), rng.integers(0, 2, 8)
            norms = basics.layer_grad_norms(basics.deep_stack(30, width=8, residual=residual), x, y)
            assert norms.shape == (30,) and np.all(norms > 0)
            spreads[residual] = norms.max() / norms.min()
            if not residual:  # with batch norm the plain stack's gradients grow toward the input
                assert norms[0] / norms[-1] > 20
        assert spreads[False] > 5 * spreads[True] and spreads[True] < 15, (seed, spreads)


def test_layer_grad_norms_leave_no_gradient_behind():
    stack = basics.deep_stack(3, width=4)
    basics.layer_grad_norms(stack, *bright_vs_dark(4, 8, seed=0))
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in stack.parameters())


def test_teaching_plots_draw_and_save(tmp_path):
    shifts = (1, 2, 3)
    figs = [
        plots.plot_shift_change({1: [0.3, 0.5, 0.6], 4: [0.1, 0.2, 0.3]}, shifts, tmp_path / "shift.png"),
        plots.plot_accuracy_bars({"MLP": {"train": 0.98, "val": 0.57}, "CNN": {"train": 0.75, "val": 0.67}},
                                 tmp_path / "bars.png"),
        plots.plot_depth_comparison({"plain": np.array([1.0, 0.5, 0.1]), "residual": np.ones(3)},
                                    {"plain": [0.7] * 12, "residual": list(np.linspace(0.8, 0.4, 12))},
                                    tmp_path / "depth.png"),
        plots.plot_activations(basics.activation_curves(n=21)),
        plots.show_images([np.zeros((4, 4)), np.ones((4, 4))], value_range=(0, 1)),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[0].axes[0].lines) == 2 and len(figs[2].axes) == 2
    for name in ("shift.png", "bars.png", "depth.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
    plots.close_all()
