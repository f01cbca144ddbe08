"""--pretrained (local files, the offline message) and --freeze-epochs, without any download."""
import json
import socket
import time

import numpy as np
import paddle
import pytest
from safetensors.numpy import save_file

from conftest import make_kaggle_flat, tiny_config
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.train import pretrained as pt
from paddle_catdog.cli import train_main
from paddle_catdog.config import TrainConfig
from paddle_catdog.train import fit, prepare_config
from paddle_catdog.train.loop import train_one_epoch
from paddle_catdog.train.optim import build_optimizer
from paddle_catdog.models import create_model


def _vision_weights(tmp_path, fmt: str, num_classes: int = 1000):
    """A paddle.vision ResNet-18 with random weights (and moved BN statistics) saved as ``fmt``."""
    import paddle.vision.models as pvm
    paddle.seed(3)
    theirs = pvm.resnet18(num_classes=num_classes)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    rng = np.random.default_rng(0)
    for k in state:  # non-default running statistics, so a missed buffer would show
        if k.endswith(("_mean", "_variance")):
            state[k] = (rng.random(state[k].shape) + 0.5).astype(np.float32)
    theirs.set_state_dict(state)
    path = tmp_path / f"r18.{fmt}"
    if fmt == "pdparams":
        paddle.save(theirs.state_dict(), str(path))
    elif fmt == "safetensors":
        save_file(state, str(path))
    else:
        np.savez(path, **state)
    theirs.eval()
    return theirs, path


@pytest.mark.parametrize("fmt", ["pdparams", "safetensors", "npz"])
def test_local_weights_give_paddle_vision_outputs(tmp_path, fmt):
    theirs, path = _vision_weights(tmp_path, fmt, num_classes=2)
    ours = create_model("resnet18", num_classes=2, width=64)
    assert pt.load_pretrained(ours, pt.pretrained_source(TrainConfig(pretrained=str(path)))) == []
    ours.eval()
    x = paddle.randn([2, 3, 64, 64])
    np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=1e-5, atol=1e-5)


def test_imagenet_head_is_skipped_and_backbone_matches(tmp_path):
    import paddle.vision.models as pvm
    theirs, path = _vision_weights(tmp_path, "pdparams", num_classes=1000)
    ours = create_model("resnet18", num_classes=2, width=64)
    fresh_fc = ours.fc.weight.numpy().copy()
    assert sorted(pt.load_pretrained(ours, path)) == ["fc.bias", "fc.weight"]
    np.testing.assert_array_equal(ours.fc.weight.numpy(), fresh_fc)
    backbone = pvm.resnet18(num_classes=0)  # paddle.vision without a head: pooled features
    backbone.set_state_dict({k: v for k, v in theirs.state_dict().items() if not k.startswith("fc")})
    ours.eval(), backbone.eval()
    x = paddle.randn([1, 3, 64, 64])
    np.testing.assert_allclose(ours.avgpool(ours.forward_features(x)).numpy(), backbone(x).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_wrong_width_is_one_clear_error(tmp_path):
    _, path = _vision_weights(tmp_path, "safetensors")
    with pytest.raises(ckpt.CheckpointError, match="shape"):
        pt.load_pretrained(create_model("resnet18", num_classes=2, width=32), path)
    with pytest.raises(pt.PretrainedError, match="--width 64"):
        pt.apply_pretrained_defaults(TrainConfig(model="resnet18", pretrained="imagenet", width=32), {"width"})
    with pytest.raises(pt.PretrainedError, match="resnet18"):
        pt.apply_pretrained_defaults(TrainConfig(model="cnn", pretrained="imagenet"), {"model"})


def test_pretrained_defaults_yield_to_explicit_options():
    cfg = pt.apply_pretrained_defaults(TrainConfig(pretrained="imagenet", lr=0.01), {"lr"})
    assert cfg.width == 64 and cfg.freeze_epochs == pt.PRETRAINED_DEFAULTS["freeze_epochs"]
    assert cfg.lr == 0.01 and cfg.image_size == 224
    assert pt.apply_pretrained_defaults(TrainConfig(), set()) == TrainConfig()


def test_imagenet_fine_tunes_resnet18_unless_model_is_typed():
    # the from-scratch default network has no published weights: --pretrained imagenet alone
    # fine-tunes resnet18, a typed --model resnet34 is kept, a typed resnet10 is refused
    untyped = TrainConfig(model="resnet10", pretrained="imagenet")
    assert pt.apply_pretrained_defaults(untyped, set()).model == "resnet18"
    typed = TrainConfig(model="resnet34", pretrained="imagenet")
    assert pt.apply_pretrained_defaults(typed, {"model"}).model == "resnet34"
    with pytest.raises(pt.PretrainedError, match="not 'resnet10'"):
        pt.apply_pretrained_defaults(untyped, {"model"})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


def test_imagenet_offline_fails_at_once_with_one_line(tmp_path, monkeypatch, capsys, kaggle_root):
    from paddle.utils import download
    url = f"http://127.0.0.1:{_closed_port()}/models/resnet18.pdparams"
    monkeypatch.setitem(pt.IMAGENET_WEIGHTS, "resnet18", (url, "0" * 32))
    monkeypatch.setattr(download, "WEIGHTS_HOME", str(tmp_path / "cache"))
    start = time.time()
    code = train_main(["--data-dir", str(kaggle_root), "--output", str(tmp_path / "out"),
                       "--model", "resnet18", "--pretrained", "imagenet", "--no-progress"])
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert code == 2 and time.time() - start < 5
    assert len(err) == 1 and url in err[0] and "--pretrained PATH" in err[0], err


def test_missing_local_file_is_one_line(tmp_path, capsys, kaggle_root):
    code = train_main(["--data-dir", str(kaggle_root), "--output", str(tmp_path / "out"),
                       "--pretrained", str(tmp_path / "nope.pdparams"), "--no-progress"])
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert code == 2 and len(err) == 1 and "nope.pdparams" in err[0]


def _state(model, head: bool):
    return {k: v.numpy().copy() for k, v in model.state_dict().items() if k.startswith("fc") == head}


def test_freeze_keeps_backbone_and_its_bn_statistics(tmp_path):
    paddle.seed(0)
    cfg = TrainConfig(model="resnet18", width=8, freeze_epochs=1, lr=1e-2, warmup_epochs=0,
                      epochs=2, finetune_lr_scale=0.5)
    model = create_model("resnet18", num_classes=2, width=8)
    x = paddle.randn([8, 3, 32, 32])
    y = paddle.to_tensor(np.array([0, 1] * 4, np.int64))
    loader = [(x, y), (x, y)]
    optimizer, scheduler = build_optimizer(cfg, model, len(loader))
    backbone, head = _state(model, False), _state(model, True)

    assert pt.apply_freeze_schedule(model, scheduler, cfg, epoch=0)
    train_one_epoch(model, loader, optimizer, scheduler)
    for k, v in _state(model, False).items():  # parameters and running mean/variance
        np.testing.assert_array_equal(v, backbone[k], err_msg=f"{k} changed while frozen")
    assert any(not np.array_equal(v, head[k]) for k, v in _state(model, True).items())

    assert not pt.apply_freeze_schedule(model, scheduler, cfg, epoch=1)
    assert abs(scheduler.base_lr - 0.5e-2) < 1e-12
    train_one_epoch(model, loader, optimizer, scheduler)
    after = _state(model, False)
    assert not np.array_equal(after["conv1.weight"], backbone["conv1.weight"])
    assert not np.array_equal(after["bn1._mean"], backbone["bn1._mean"])


def test_local_pretrained_trains_end_to_end(tmp_path):
    make_kaggle_flat(tmp_path / "data" / "train", 16, size=32, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 4, size=32, seed=2, start=100)
    _, path = _vision_weights(tmp_path, "pdparams")
    given = tiny_config(tmp_path / "data", tmp_path / "out", model="resnet18", epochs=2,
                        pretrained=str(path), log_images=False)
    # as if typed: the rest are fine-tuning defaults
    fit(prepare_config(**{k: getattr(given, k) for k in ("data_dir", "output", "model", "epochs", "pretrained",
                                                          "log_images", "image_size", "batch_size",
                                                          "num_workers", "progress")}))
    meta = json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())
    assert meta["epoch"] == 2 and np.isfinite(meta["metrics"]["val_loss"])
    saved = TrainConfig.from_dict(meta["config"])
    assert saved.width == 64 and saved.freeze_epochs == 1 and saved.pretrained == str(path)
    model, _, classes, _ = ckpt.load_model(tmp_path / "out" / "last")
    assert classes == ["cat", "dog"] and model.fc.weight.shape == [512, 2]
    # epoch 2 trained the whole network: the backbone has moved from the pretrained weights
    start = pt.read_weights_file(path)
    assert not np.array_equal(model.state_dict()["layer4.1.conv2.weight"].numpy(),
                              start["layer4.1.conv2.weight"])
