"""A network of one's own in the one model factory (``register_model``): ``fit`` trains it by name
(notebook 02 trains its hand-written ``SimpleCNN`` with the hand-written loop and with ``fit``),
its checkpoints predict in the same process, and the factory's names stay unambiguous."""
import json
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from paddle import nn

from conftest import make_kaggle_flat, tiny_config
from paddle_catdog import checkpoint as ckpt
from paddle_catdog import models
from paddle_catdog.models import BUILTIN_MODELS, create_model, register_model
from paddle_catdog.predict.predictor import Predictor
from paddle_catdog.train import fit


class TinyNet(nn.Layer):
    """A learner's network: one convolution, global average pooling, a linear classifier."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1)
        return self.fc(paddle.flatten(x, 1))


BUILT = []  # every TinyNet the factory built, with its weights at construction


def tiny_net(num_classes=2, **options):  # the config's options (width, dropout, ...) do not apply
    net = TinyNet(num_classes)
    BUILT.append((net, {k: v.numpy().copy() for k, v in net.state_dict().items()}))
    return net


@pytest.fixture(autouse=True)
def own_factory(monkeypatch):
    """Each test registers into a copy of the factory's table, so no name outlives it (other
    tests list every model of ``MODELS``)."""
    monkeypatch.setattr(models, "MODELS", dict(models.MODELS))
    BUILT.clear()


def test_fit_trains_a_registered_network_and_its_checkpoint_predicts(tmp_path):
    make_kaggle_flat(tmp_path / "data" / "train", 24, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 8, seed=2, start=1000)
    register_model("tiny_net", tiny_net)
    best = fit(tiny_config(tmp_path / "data", tmp_path / "out", model="tiny_net", epochs=1))

    trained, initial = BUILT[0]  # fit built the network through the factory
    assert isinstance(trained, TinyNet)
    meta = json.loads((best / ckpt.META).read_text())
    assert meta["model"] == "tiny_net" and meta["epoch"] == 1
    assert np.isfinite(meta["metrics"]["train_loss"]) and 0 <= meta["metrics"]["val_acc"] <= 1
    saved = ckpt.read_weights(best / ckpt.WEIGHTS)
    assert sorted(saved) == sorted(initial), "the checkpoint holds TinyNet's parameters"
    assert not np.allclose(saved["conv.weight"], initial["conv.weight"]), "fit changed the weights"
    np.testing.assert_allclose(saved["conv.weight"], trained.conv.weight.numpy())

    # the checkpoint predicts in this process: Predictor rebuilds TinyNet by name from the folder
    predictor = Predictor(str(best), device="cpu")
    assert isinstance(predictor.model, TinyNet) and predictor.classes == ["cat", "dog"]
    paths = sorted(str(p) for p in (tmp_path / "data" / "val").glob("*.jpg"))[:4]
    results = list(predictor.predict_paths(paths, batch_size=4))
    assert [error for _, _, error in results] == [None] * 4
    probs = np.stack([p for _, p, _ in results])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    batch = paddle.to_tensor(np.stack([predictor.preprocess(p) for p in paths]))
    trained.eval()
    with paddle.no_grad():  # the trained network itself gives the same answer (tta: with the flip)
        own = (F.softmax(trained(batch), axis=1) + F.softmax(trained(paddle.flip(batch, axis=[3])), axis=1)) / 2
    np.testing.assert_allclose(probs, own.numpy(), atol=1e-5)


def test_a_new_process_must_register_the_name_again(tmp_path):
    """The builder's code is not in the checkpoint: without the registration (a fresh process,
    e.g. notebook 03's kernel) loading says what is missing instead of failing somewhere deeper."""
    register_model("tiny_net", tiny_net)
    cfg = tiny_config(tmp_path, tmp_path / "out", model="tiny_net")
    ckpt.save_checkpoint(tmp_path / "best", create_model("tiny_net", 2, **cfg.model_options()), cfg,
                         ["cat", "dog"], 1, 0.5)
    assert isinstance(ckpt.load_model(tmp_path / "best")[0], TinyNet)
    del models.MODELS["tiny_net"]  # what a fresh process knows
    with pytest.raises(ckpt.CheckpointError, match=r"unknown model 'tiny_net'.*register_model"):
        ckpt.load_model(tmp_path / "best")


def test_an_unknown_name_lists_the_valid_ones(kaggle_root, tmp_path):
    register_model("tiny_net", tiny_net)
    with pytest.raises(ValueError) as e:
        create_model("tiny_nte")
    for name in [*BUILTIN_MODELS, "tiny_net"]:
        assert name in str(e.value)
    assert "register_model" in str(e.value)
    with pytest.raises(ValueError, match="unknown model 'vgg16'; valid models: cnn, resnet10, resnet18"):
        fit(tiny_config(kaggle_root, tmp_path / "out", model="vgg16"))
    assert not (tmp_path / "out" / "best").exists()


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_a_built_in_name_cannot_be_registered(name):
    before = models.MODELS[name]
    with pytest.raises(ValueError, match="built-in model"):
        register_model(name, tiny_net)
    assert models.MODELS[name] is before  # built-in checkpoints still load the built-in network
    assert not isinstance(create_model(name, 2), TinyNet)


def test_registration_checks_the_builder_and_the_name():
    with pytest.raises(TypeError, match=r"\*\*options"):
        register_model("tiny_net", TinyNet)  # the config's options (width=...) would not fit it
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        register_model("my net", tiny_net)
    assert "tiny_net" not in models.MODELS


def test_registering_a_name_again_replaces_the_builder():
    """Re-running the notebook cell that defines and registers the class uses the new class."""
    register_model("tiny_net", lambda num_classes=2, **options: nn.Linear(4, num_classes))
    register_model("tiny_net", tiny_net)
    assert isinstance(create_model("tiny_net", 3, width=32, dropout=0.1), TinyNet)
    assert create_model("tiny_net", 3).fc.weight.shape == [8, 3]
