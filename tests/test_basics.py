"""Notebook 01's helpers and what its text claims: activation derivatives against finite
differences, pooling against small shifts (on generated images and on the notebook's photo), the
fully connected network against permuted pixels, the brief training loop, plain against residual
deep stacks, the notebook's figures; and, on real photos (CATDOG_DATA), each result the notebook
states at its default parameters (MLP near chance while the CNN learns, permuting pixels costs the
CNN and not the MLP, the residual stack keeps balanced gradients and trains faster)."""
import ast
import json
import time

import cv2
import numpy as np
import paddle
import pytest
from matplotlib.figure import Figure

from conftest import ROOT, make_kaggle_flat, real_data, requires_real_data
from paddle_catdog import basics, basics_brief, basics_figures, plots
from paddle_catdog.config import TrainConfig
from paddle_catdog.data.split import load_data
from paddle_catdog.runtime import count_params, seed_everything

KINKS = (-3.0, 0.0, 3.0, 6.0)  # where relu, relu6, hardsigmoid, hardswish have no derivative
NOTEBOOK = ROOT / "notebooks" / "01_cnn_basics.ipynb"


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


def test_hardswish_is_quadratic_between_minus_three_and_three():
    """The notebook's wording: x(x + 3)/6 on [-3, 3], 0 below, x above (not piecewise linear)."""
    x, y, dy = basics.activation_curves(["hardswish"], lo=-6, hi=6, n=121)["hardswish"]
    inside = np.abs(x) <= 3
    np.testing.assert_allclose(y[inside], x[inside] * (x[inside] + 3) / 6, atol=1e-5)
    assert np.allclose(y[x < -3], 0) and np.allclose(y[x > 3], x[x > 3])
    assert np.ptp(dy[(x > -2.9) & (x < 2.9)]) > 1.5  # the slope changes inside: not linear there


def smooth_image(seed: int, size: int = 48) -> np.ndarray:
    """Random blobs: edges in every direction at every position, like a photo's texture."""
    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def check_pooling_absorbs_shifts(gray: np.ndarray) -> None:
    """What notebook 01 section 4.1 states: at every shift, no pooling > 2x2 > 4x4 max pooling in
    relative change, and without pooling a larger shift changes the features more."""
    changes = basics.shift_change(gray, shifts=(1, 2, 3, 4), pool_sizes=(1, 2, 4))
    unpooled, pooled2, pooled4 = (np.array(changes[k]) for k in (1, 2, 4))
    assert np.all(pooled2 < unpooled) and np.all(pooled4 < pooled2), changes
    assert np.all(np.diff(unpooled) > 0), changes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooling_absorbs_small_shifts(seed):
    check_pooling_absorbs_shifts(smooth_image(seed))
    assert basics.shift_change(smooth_image(seed), shifts=(0,))[1] == [0.0]


@pytest.mark.parametrize("image_size", [128, 32])  # the notebook's default and the tests' size
def test_pooling_absorbs_small_shifts_on_the_notebooks_photo(image_size):
    skdata = pytest.importorskip("skimage.data", reason="pip install -e '.[notebooks]'")
    from paddle_catdog.transforms import build_transform, image_grid
    x = build_transform(TrainConfig(image_size=image_size), train=False, decode=False)(skdata.chelsea())
    check_pooling_absorbs_shifts(basics.to_gray(image_grid(x[None], ncol=1)))


def test_edge_features_pool_the_three_edge_maps():
    img = smooth_image(0, size=20)
    assert basics.edge_features(img).shape == (3, 20, 20)
    pooled = basics.edge_features(img, 4)
    assert pooled.shape == (3, 5, 5)
    assert pooled[0, 0, 0] == basics.edge_features(img)[0, :4, :4].max()


def test_kernels_as_images_scale_each_kernel_to_zero_one():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.1, (4, 3, 5, 5)).astype(np.float32)
    w[1] *= 100  # a large kernel is drawn as visibly as a small one
    images = basics.kernels_as_images(w)
    assert images.shape == (4, 5, 5, 3)
    assert np.allclose(images.min(axis=(1, 2, 3)), 0) and np.allclose(images.max(axis=(1, 2, 3)), 1)
    np.testing.assert_allclose(images[1], basics.kernels_as_images(w[1:2] / 100)[0], atol=1e-6)
    assert np.all(basics.kernels_as_images(np.ones((2, 3, 3, 3))) == 0)  # flat kernels: no division by 0
    model = basics_brief.MLP(4)  # no conv layer: the first 4-D parameter is what is drawn
    conv = paddle.nn.Conv2D(3, 6, 3)
    np.testing.assert_array_equal(basics.first_conv_weight(conv), conv.weight.numpy())
    np.testing.assert_array_equal(basics.first_conv_filters(conv), basics.kernels_as_images(conv.weight.numpy()))
    with pytest.raises(StopIteration):
        basics.first_conv_weight(model)


def test_neighbour_correlation_tells_noise_from_smooth_patterns():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((64, 3, 3, 3))
    assert abs(basics.neighbour_correlation(noise)) < 0.1
    ramp = np.linspace(-1, 1, 3)[None, None, None, :] * rng.standard_normal((64, 3, 1, 1))
    ramps = np.broadcast_to(ramp, (64, 3, 3, 3))  # soft edges: dark on the left, light on the right
    blobs = rng.standard_normal((64, 3, 1, 1)) + 0.1 * rng.standard_normal((64, 3, 3, 3))  # colour patches
    assert basics.neighbour_correlation(ramps + 0.01 * noise) > 0.4
    assert basics.neighbour_correlation(blobs) > 0.9
    checker = np.indices((3, 3)).sum(axis=0) % 2 * 2.0 - 1
    assert basics.neighbour_correlation(np.broadcast_to(checker, (4, 3, 3, 3))) == pytest.approx(-1)


def test_permuted_pixels_lose_nothing_for_the_mlp():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    p = basics_brief.permute_pixels(x, seed=3)
    assert np.array_equal(p, basics_brief.permute_pixels(x, seed=3)) and not np.array_equal(p, x)
    assert np.array_equal(np.sort(p.reshape(4, 3, -1)), np.sort(x.reshape(4, 3, -1)))
    # the same pixel order in every image: an MLP with its first-layer rows reordered the same
    # way computes exactly what the original one computes on the original images
    order = basics_brief.permute_pixels(np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6), seed=3).ravel()
    mlp, moved = basics_brief.MLP(6, hidden=5), basics_brief.MLP(6, hidden=5)
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
    mlp = basics_brief.MLP(8, hidden=16)
    assert count_params(mlp) == 3 * 64 * 16 + 16 + 16 * 2 + 2
    history = basics_brief.train_briefly(mlp, train, val, epochs=3, batch_size=16)
    assert len(history["loss"]) == 3 * 4 and len(history["train_acc"]) == len(history["val_acc"]) == 3
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    assert history["train_acc"][-1] >= 0.9 and history["val_acc"][-1] >= 0.8
    assert basics_brief.accuracy(mlp, *val) == history["val_acc"][-1]  # eval mode: deterministic


def test_train_epoch_steps_the_schedule_once_per_batch():
    model = basics_brief.MLP(4, hidden=4)
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(0.01, T_max=6)
    opt = paddle.optimizer.Adam(learning_rate=schedule, parameters=model.parameters())
    x, y = bright_vs_dark(24, 4, seed=0)
    losses = basics_brief.train_epoch(model, x, y, opt, 8, np.random.default_rng(0), schedule)
    assert len(losses) == 3 and schedule.last_epoch == 3
    basics_brief.train_epoch(model, x, y, opt, 8, np.random.default_rng(0), schedule)
    assert schedule.last_epoch == 6 and schedule() == pytest.approx(0.0, abs=1e-9)  # the cosine's end


def test_epoch_means_average_each_epochs_batches():
    np.testing.assert_allclose(basics_brief.epoch_means([1, 3, 2, 2, 0, 1], 3), [2, 2, 0.5])
    with pytest.raises(ValueError):
        basics_brief.epoch_means([1, 2, 3], 2)


def test_brief_arrays_limit_check_and_decode_once(tmp_path, capsys):
    make_kaggle_flat(tmp_path / "train", 6, size=24)
    make_kaggle_flat(tmp_path / "val", 5, size=24, seed=1, start=100)
    (tmp_path / "train" / "cat.99.jpg").write_bytes(b"not a jpeg")
    cfg = TrainConfig(data_dir=str(tmp_path), image_size=16, max_per_class=7)
    (xt, yt), (xv, yv) = basics_brief.brief_arrays(load_data(cfg, check=False), cfg, val_per_class=3)
    out = capsys.readouterr().out
    assert out.count("skipped") == 1 and "cat.99.jpg" in out
    assert xt.shape == (12, 3, 16, 16) and xt.dtype == np.float32 and sorted(yt.tolist()) == [0] * 6 + [1] * 6
    assert xv.shape == (6, 3, 16, 16) and sorted(yv.tolist()) == [0, 0, 0, 1, 1, 1]


def test_compare_mlp_cnn_trains_both_networks_on_both_inputs_from_one_seed():
    train, val = bright_vs_dark(32, 8, seed=0), bright_vs_dark(16, 8, seed=1)
    runs = basics_brief.compare_mlp_cnn(train, val, epochs=2)
    assert set(runs) == {(n, p) for n in ("MLP", "CNN") for p in ("photos", "permuted")}
    assert isinstance(runs["MLP", "photos"].model, basics_brief.MLP)
    assert count_params(runs["CNN", "photos"].model) == count_params(runs["CNN", "permuted"].model)
    assert all(len(r.history["val_acc"]) == 2 for r in runs.values())
    again = basics_brief.compare_mlp_cnn(train, val, epochs=2, permuted=False)
    assert set(again) == {("MLP", "photos"), ("CNN", "photos")}
    for key in again:  # the same seed gives the same run: the notebook's numbers are reproducible
        np.testing.assert_allclose(again[key].history["loss"], runs[key].history["loss"], rtol=1e-5)


def test_deep_stack_plain_and_residual_share_their_parameters():
    plain, residual = basics_brief.deep_stack(5, width=8), basics_brief.deep_stack(5, width=8, residual=True)
    assert count_params(plain) == count_params(residual)
    assert sum(isinstance(m, basics_brief.ConvBNReLU) for m in residual.sublayers()) == 5
    out = residual(paddle.randn([2, 3, 16, 16]))
    assert out.shape == [2, 2]


def test_residual_connections_keep_deep_gradients_balanced():
    """Measured on random input at initialisation, depth 30 (seeds 0-5 were checked: the plain
    stack's largest/smallest per-layer gradient norm was 58-96, the residual one's 2-9)."""
    for seed in range(3):
        spreads = {}
        for residual in (False, True):
            paddle.seed(seed)
            rng = np.random.default_rng(seed)
            x, y = rng.standard_normal((8, 3, 16, 16)).astype(np.float32), rng.integers(0, 2, 8)
            norms = basics_brief.layer_grad_norms(basics_brief.deep_stack(30, width=8, residual=residual), x, y)
            assert norms.shape == (30,) and np.all(norms > 0)
            spreads[residual] = norms.max() / norms.min()
            if not residual:  # with batch norm the plain stack's gradients grow toward the input
                assert norms[0] / norms[-1] > 20
        assert spreads[False] > 5 * spreads[True] and spreads[True] < 15, (seed, spreads)


def test_layer_grad_norms_leave_no_gradient_behind():
    stack = basics_brief.deep_stack(3, width=4)
    basics_brief.layer_grad_norms(stack, *bright_vs_dark(4, 8, seed=0))
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in stack.parameters())


def test_compare_depth_measures_then_trains_both_stacks():
    train, val = bright_vs_dark(64, 16, seed=0), bright_vs_dark(8, 16, seed=1)  # 2 batches of 32
    stacks = basics_brief.compare_depth(train, val, depth=3, epochs=2, width=4, grad_batch=8)
    assert list(stacks) == ["plain", "residual"]
    for norms, history in stacks.values():
        assert norms.shape == (3,) and np.all(norms > 0)
        assert len(history["loss"]) == 2 * 2 and len(history["val_acc"]) == 2


def test_teaching_figures_draw_and_save(tmp_path):
    rows = [{"layer": "conv1", "field": 3}, {"layer": "pool1", "field": 4}, {"layer": "conv2", "field": 8}]
    figs = [
        basics_figures.plot_shift_change({1: [0.3, 0.5, 0.6], 4: [0.1, 0.2, 0.3]}, (1, 2, 3), tmp_path / "shift.png"),
        basics_figures.plot_depth_comparison({"plain": np.array([1.0, 0.5, 0.1]), "residual": np.ones(3)},
                                             {"plain": [0.7] * 12, "residual": list(np.linspace(0.8, 0.4, 12))},
                                             tmp_path / "depth.png"),
        basics_figures.draw_residual_block(tmp_path / "block.png"),
        basics_figures.draw_receptive_fields(np.random.default_rng(0).random((32, 32)), rows,
                                             path=tmp_path / "fields.png"),
        plots.plot_activations(basics.activation_curves(n=21)),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[0].axes[0].lines) == 2 and len(figs[1].axes) == 2
    assert len(figs[2].axes) == 2 and any("F(x) + x" in t.get_text() for t in figs[2].axes[1].texts)
    squares = [p for p in figs[3].axes[0].patches]
    assert [p.get_width() for p in squares] == [3, 4, 8]
    for name in ("shift.png", "depth.png", "block.png", "fields.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
    plots.close_all()


# ------------------------------------------------------------------ the notebook's claims on real photos
# Notebook 01's default parameters: its text states the results below for these values, and
# test_claims_use_the_notebooks_defaults keeps the two in step.
DEFAULTS = {"BRIEF_SIZE": 32, "BRIEF_PER_CLASS": 500, "BRIEF_EPOCHS": 8, "CNN_POOLING": "max",
            "CNN_ACTIVATION": "relu", "DEPTH": 24, "DEPTH_EPOCHS": 4}


def notebook_sources() -> list:
    """(cell source, tags) of notebook 01, read as JSON (no notebook extra needed)."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return [("".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in cells]


def test_claims_use_the_notebooks_defaults():
    source = next(src for src, tags in notebook_sources() if "parameters" in tags)
    params = {t.id: ast.literal_eval(node.value) for node in ast.parse(source).body
              if isinstance(node, ast.Assign) for t in node.targets}
    assert {k: params[k] for k in DEFAULTS} == DEFAULTS
    # the notebook points to where its claims are tested
    assert sum("tests/test_basics.py" in src for src, _ in notebook_sources()) >= 3


@pytest.fixture(scope="module")
def brief_photos():
    """The notebook's brief data at its defaults: 500 training photos per class, 250 validation."""
    cfg = TrainConfig(data_dir=str(real_data()), image_size=DEFAULTS["BRIEF_SIZE"],
                      max_per_class=DEFAULTS["BRIEF_PER_CLASS"])
    return basics_brief.brief_arrays(load_data(cfg, check=False), cfg,
                                     val_per_class=DEFAULTS["BRIEF_PER_CLASS"] // 2)


@pytest.fixture(scope="module")
def brief_runs(brief_photos):
    start = time.time()
    runs = basics_brief.compare_mlp_cnn(*brief_photos, DEFAULTS["BRIEF_EPOCHS"], DEFAULTS["CNN_POOLING"],
                                        DEFAULTS["CNN_ACTIVATION"])
    print(f"MLP and CNN, photos and permuted: {time.time() - start:.0f} s")
    return runs


def last(history: dict, key: str) -> float:
    return history[key][-1]


@requires_real_data
def test_mlp_memorises_and_stays_near_chance_while_the_cnn_learns(brief_runs):
    """Section 11.3: the MLP's training accuracy above 0.9 and its validation accuracy below 0.62;
    the CNN's validation accuracy at least 0.05 above the MLP's, with a smaller train-val gap."""
    mlp, cnn = brief_runs["MLP", "photos"].history, brief_runs["CNN", "photos"].history
    summary = {k: (round(last(r.history, "train_acc"), 3), round(last(r.history, "val_acc"), 3))
               for k, r in brief_runs.items()}
    assert last(mlp, "train_acc") > 0.9 and last(mlp, "val_acc") < 0.62, summary
    assert last(cnn, "val_acc") >= last(mlp, "val_acc") + 0.05, summary
    gap = {name: last(h, "train_acc") - last(h, "val_acc") for name, h in (("MLP", mlp), ("CNN", cnn))}
    assert gap["CNN"] < gap["MLP"] - 0.2, (gap, summary)


@requires_real_data
def test_permuting_pixels_costs_the_cnn_and_not_the_mlp(brief_runs):
    """Section 11.1: with the pixels permuted the MLP's validation accuracy moves by less than 0.04,
    the CNN's drops by at least 0.05."""
    drop = {name: last(brief_runs[name, "photos"].history, "val_acc")
            - last(brief_runs[name, "permuted"].history, "val_acc") for name in ("MLP", "CNN")}
    assert abs(drop["MLP"]) < 0.04 and drop["CNN"] >= 0.05, drop


@requires_real_data
def test_residual_stack_keeps_balanced_gradients_and_trains_faster(brief_photos):
    """Section 12: the plain stack's largest/smallest per-layer gradient above 10 and at least 5
    times the residual one's; the residual stack's mean training loss lower in every epoch from
    the second, by at least 0.05 in the last."""
    stacks = basics_brief.compare_depth(*brief_photos, DEFAULTS["DEPTH"], DEFAULTS["DEPTH_EPOCHS"])
    spread = {name: float(g.max() / g.min()) for name, (g, _) in stacks.items()}
    loss = {name: basics_brief.epoch_means(h["loss"], DEFAULTS["DEPTH_EPOCHS"]) for name, (_, h) in stacks.items()}
    assert spread["plain"] > 10 and spread["plain"] >= 5 * spread["residual"], spread
    assert np.all(loss["residual"][1:] < loss["plain"][1:]), loss
    assert loss["residual"][-1] <= loss["plain"][-1] - 0.05, loss


@requires_real_data
def test_brief_training_changes_the_kernels_little_but_in_smooth_patches(brief_runs):
    """Section 13 without a checkpoint: the small CNN's first-layer kernels move by less than 15%
    of their norm; the change has neighbour correlation above 0.4 (colour patches, soft edges),
    the random kernels it started from between -0.2 and 0.2 (noise)."""
    seed_everything(0)  # what compare_mlp_cnn does before building each network
    builders = basics_brief.brief_models(DEFAULTS["BRIEF_SIZE"], DEFAULTS["CNN_POOLING"], DEFAULTS["CNN_ACTIVATION"])
    before = builders["CNN"]()
    w0 = basics.first_conv_weight(before)
    w1 = basics.first_conv_weight(brief_runs["CNN", "photos"].model)
    change = np.linalg.norm(w1 - w0) / np.linalg.norm(w0)
    corr = {"before": basics.neighbour_correlation(w0), "change": basics.neighbour_correlation(w1 - w0)}
    assert 0 < change < 0.15, change
    assert abs(corr["before"]) < 0.2 and corr["change"] > 0.4, corr


@requires_real_data
def test_depth_exercise_answer(brief_photos):
    """Section 12, exercise 1: the plain stack's largest/smallest layer gradient is below 3 at 8
    layers and above 100 at 40; the residual stack's stays below 3 (at initialisation, on the
    notebook's first 32 training photos)."""
    x, y = brief_photos[0][0][:32], brief_photos[0][1][:32]
    ratio = {}
    for depth in (8, 40):
        for residual in (False, True):
            seed_everything(0)  # as compare_depth
            g = basics_brief.layer_grad_norms(basics_brief.deep_stack(depth, width=16, residual=residual), x, y)
            ratio[depth, residual] = float(g.max() / g.min())
    assert ratio[8, False] < 3 and ratio[40, False] > 100, ratio
    assert ratio[8, True] < 3 and ratio[40, True] < 3, ratio
