"""prepare_config settles a run's config once (presets, resume) for Python and the command line
alike; fit(cfg) then trains exactly cfg. One default per setting."""
import dataclasses

import pytest

from conftest import tiny_config
from paddle_catdog.checkpoint import read_meta
from paddle_catdog.config import TrainConfig
from paddle_catdog.models import create_model
from paddle_catdog.train import fit, prepare_config
from paddle_catdog.train.pretrained import PRETRAINED_DEFAULTS
from paddle_catdog.transforms import RandomResizedCrop


def test_python_gets_the_fine_tuning_preset_like_the_command_line():
    cfg = prepare_config(pretrained="imagenet", model="resnet50", lr=0.01)
    assert cfg.width == 64 and cfg.image_size == 224 and cfg.freeze_epochs == 1  # the preset
    assert cfg.lr == 0.01 and cfg.model == "resnet50"  # what was given wins
    assert all(getattr(cfg, k) == v for k, v in PRETRAINED_DEFAULTS.items() if k != "lr")
    assert prepare_config() == TrainConfig()  # no preset, nothing changes


def test_fit_trains_exactly_its_config_and_refuses_one_that_cannot_work(tmp_path):
    """fit(TrainConfig(pretrained="imagenet")) used to download the weights, then fail the
    width-32 shape check; now it stops at once and says what to do."""
    with pytest.raises(ValueError, match="width 64.*prepare_config"):
        fit(TrainConfig(pretrained="imagenet", output=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="--model efficientnet_lite0"):
        fit(TrainConfig(pretrained="efficientnet_lite0", output=str(tmp_path / "out")))


def test_resuming_from_python_keeps_the_recorded_plan(tmp_path, kaggle_root):
    fit(tiny_config(kaggle_root, tmp_path / "out", epochs=1, image_size=32, lr=1e-3))
    cfg = prepare_config(resume="auto", output=str(tmp_path / "out"), epochs=2, num_workers=0)
    assert cfg.image_size == 32 and cfg.lr == 1e-3 and cfg.model == "cnn"  # the checkpoint's
    assert cfg.epochs == 2 and cfg.num_workers == 0  # what was given
    fit(cfg)
    assert read_meta(tmp_path / "out" / "last")["config"]["image_size"] == 32


def test_unknown_options_are_named():
    with pytest.raises(ValueError, match="unknown option.*bogus"):
        prepare_config(bogus=1, epochs=2)


def test_one_default_per_setting():
    """The config's dropout and crop scale are the ones the models and transforms use alone."""
    cfg = TrainConfig()
    for name in ("cnn", "resnet18", "efficientnet_lite0"):
        dropout = create_model(name).dropout  # None: no dropout layer at all
        assert (dropout.p if dropout is not None else 0.0) == cfg.dropout, name
    assert RandomResizedCrop(32).scale == (cfg.crop_scale_min, 1.0)
    assert dataclasses.replace(cfg, model="cnn").model_options()["dropout"] == cfg.dropout


def test_a_fresh_run_in_a_used_output_is_refused_unless_overwrite(tmp_path, kaggle_root):
    """It used to delete history.jsonl but keep the old last/ and vdl/, so --resume after a Ctrl-C
    in its first epoch continued the old run without its history."""
    out = tmp_path / "out"
    fit(tiny_config(kaggle_root, out, epochs=1, log_images=False))
    with pytest.raises(OSError, match=r"holds a run already \(last, best, history.jsonl\).*--resume.*--overwrite"):
        fit(tiny_config(kaggle_root, out, epochs=1))
    assert read_meta(out / "last")["epoch"] == 1  # untouched
    (out / "vdl" / "marker").write_text("old")
    fit(tiny_config(kaggle_root, out, epochs=2, overwrite=True, log_images=False))
    assert read_meta(out / "last")["epoch"] == 2 and not (out / "vdl" / "marker").exists()
    rows = (out / "history.jsonl").read_text().splitlines()
    assert len(rows) == 2


def test_logs_of_a_run_that_never_finished_an_epoch_do_not_block(tmp_path, kaggle_root):
    out = tmp_path / "out"
    (out / "vdl").mkdir(parents=True)
    (out / "vdl" / "events").write_text("x")
    fit(tiny_config(kaggle_root, out, epochs=1, log_images=False))
    assert read_meta(out / "last")["epoch"] == 1 and not (out / "vdl" / "events").exists()
