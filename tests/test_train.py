"""Training end to end on generated images: learning, checkpoints, resume, and the CLIs."""
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import make_kaggle_flat, run_cli, run_script, tiny_config
from paddle_catdog.cli import predict_main, train_main
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.config import TrainConfig
from paddle_catdog.train import fit, prepare_config
from paddle_catdog.predict.inference import InferencePredictor
from paddle_catdog.predict.predictor import Predictor


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run shared by the tests below: learnable stripes, 10 epochs of the plain CNN."""
    root = tmp_path_factory.mktemp("stripes")
    make_kaggle_flat(root / "data" / "train", 160, seed=1)
    make_kaggle_flat(root / "data" / "val", 30, seed=2, start=1000)
    cfg = tiny_config(root / "data", root / "out", epochs=10, lr=5e-3)
    best = fit(cfg)
    return root, best


def test_learns_generated_images(trained):
    """Learning is tested by learning: the stripes' orientation is the class."""
    root, best = trained
    meta = json.loads((best / ckpt.META).read_text())
    assert meta["best_metric"] >= 0.95, meta["metrics"]
    # and the saved model really is that good: predict the val folder from the checkpoint alone
    predictor = Predictor(str(best), device="cpu")
    paths = sorted(str(p) for p in (root / "data" / "val").glob("*.jpg"))
    results = list(predictor.predict_paths(paths, batch_size=8))
    right = sum(predictor.classes[int(p.argmax())] == Path(path).name.split(".")[0]
                for path, p, _ in results)
    assert right / len(paths) >= 0.95


def test_checkpoints_describe_themselves(trained):
    root, best = trained
    last = root / "out" / "last"
    for folder in (best, last):
        meta = json.loads((folder / ckpt.META).read_text())
        assert meta["classes"] == ["cat", "dog"] and meta["model"] == "cnn"
        assert TrainConfig.from_dict(meta["config"]).image_size == 32
    assert json.loads((last / ckpt.META).read_text())["epoch"] == 10
    assert (last / ckpt.TRAIN_STATE).is_file() and not (best / ckpt.TRAIN_STATE).exists()
    # weights are plain safetensors: readable without pickle
    with open(best / ckpt.WEIGHTS, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    assert "fc.weight" in header
    assert list((root / "out" / "vdl").iterdir()), "VisualDL wrote no logs"


def test_visualdl_logged_scalars_and_images(trained):
    root, _ = trained
    from visualdl import LogReader
    tags = set()
    for f in (root / "out" / "vdl").glob("vdlrecords.*.log"):
        reader = LogReader(file_path=str(f))
        for kind, names in reader.get_tags().items():
            tags |= {f"{kind}:{n}" for n in names}
    assert {"scalar:train/loss", "scalar:val/acc", "scalar:train/lr"} <= tags, tags
    assert any(t.startswith("image:") for t in tags), tags


def test_predict_cli_lines_json_and_errors(trained, tmp_path):
    root, best = trained
    val = root / "data" / "val"
    good = str(val / "cat.1000.jpg")
    r = run_script("run_predict.py", "--weights", str(best), "--img", good)
    assert r.returncode == 0, r.stderr
    path, label, prob = r.stdout.strip().split("\t")
    # the line is this photo's answer: the same engine in-process gives the same label and probability
    (_, probs, _), = InferencePredictor(str(best)).predict_paths([good])
    assert path == good and label == ["cat", "dog"][int(probs.argmax())]
    assert float(prob) == pytest.approx(float(probs.max()), abs=1e-4)

    # the rest in-process (one subprocess above is the end-to-end path)
    code, out, err = run_cli(predict_main, "--weights", str(best), "--img", good, "--json")
    obj = json.loads(out)
    assert code == 0 and set(obj) == {"path", "label", "probability", "probabilities"}
    assert abs(sum(obj["probabilities"].values()) - 1) < 1e-4

    # a folder with a bad file: the good ones are still predicted, exit code 2, one-line error
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("cat.1000.jpg", "dog.1001.jpg"):
        (folder / name).write_bytes((val / name).read_bytes())
    (folder / "broken.jpg").write_text("not an image")
    code, out, err = run_cli(predict_main, "--weights", str(best), "--img", str(folder), "--img", "missing.jpg")
    assert code == 2
    assert len(out.strip().splitlines()) == 2
    errors = err.strip().splitlines()
    assert any("broken.jpg" in e for e in errors) and any("missing.jpg" in e for e in errors)
    assert "Traceback" not in err

    code, out, err = run_cli(predict_main, "--weights", str(tmp_path / "nothing"), "--img", good)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


def test_resume_continues_epoch_optimizer_and_schedule(tmp_path, kaggle_root):
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=1)
    fit(cfg)
    last = tmp_path / "out" / "last"
    first = paddle.load(str(last / ckpt.TRAIN_STATE))
    assert json.loads((last / ckpt.META).read_text())["epoch"] == 1

    fit(prepare_config(epochs=2, resume="auto", output=str(tmp_path / "out"), progress=False, num_workers=0))
    meta = json.loads((last / ckpt.META).read_text())
    second = paddle.load(str(last / ckpt.TRAIN_STATE))
    assert meta["epoch"] == 2 and meta["config"]["epochs"] == 2
    steps_per_epoch = first["scheduler"]["last_epoch"]
    assert steps_per_epoch > 0
    assert second["scheduler"]["last_epoch"] == 2 * steps_per_epoch  # the schedule went on
    assert second["scheduler"]["total_steps"] == 2 * steps_per_epoch
    from paddle_catdog.runlog import HISTORY, read_history
    assert [r["epoch"] for r in read_history(tmp_path / "out" / HISTORY)] == [1, 2]
    # AdamW's step counters continued from the first run instead of starting again
    beta_keys = [k for k in second["optimizer"] if k.startswith("fc.weight_") and "beta1_pow_acc" in k]
    assert beta_keys
    b1 = float(np.asarray(first["optimizer"][beta_keys[0]]).reshape(-1)[0])
    b2 = float(np.asarray(second["optimizer"][beta_keys[0]]).reshape(-1)[0])
    assert b2 == pytest.approx(b1 * 0.9 ** steps_per_epoch, rel=1e-3)


def test_train_cli_help_and_errors(tmp_path, kaggle_root):
    code, out, _ = run_cli(train_main, "--help")
    assert code == 0
    for option in ("--data-dir", "--val-dir", "--model", "--epochs", "--batch-size", "--lr",
                   "--image-size", "--num-workers", "--output", "--resume", "--device", "--seed"):
        assert option in out
    assert "default: 42" in out
    cases = [
        (["--data-dir", str(tmp_path / "missing")], "not found"),
        (["--data-dir", str(kaggle_root), "--epochs", "0"], "--epochs"),
        (["--data-dir", str(kaggle_root), "--lr", "-1"], "--lr"),
        (["--data-dir", str(kaggle_root), "--batch-size", "0"], "--batch-size"),
        (["--data-dir", str(kaggle_root), "--model", "vgg", "--output", str(tmp_path / "o")], "resnet18"),
        (["--data-dir", str(kaggle_root), "--resume", str(tmp_path / "nockpt")], "checkpoint"),
    ]
    for args, message in cases:  # in-process: each subprocess would import Paddle again
        code, _, err = run_cli(train_main, *args, "--no-progress", "--num-workers", "0")
        assert code == 2, (args, err)
        last_line = err.strip().splitlines()[-1]
        assert last_line.startswith("error:") and message in last_line, (args, err)
        assert "Traceback" not in err


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({"bogus": 1})


def test_atomic_checkpoint_recovers_interrupted_swap(tmp_path):
    from paddle_catdog.models import create_model
    model = create_model("cnn", channels=(4,))
    cfg = TrainConfig(model="cnn")
    folder = tmp_path / "last"
    ckpt.save_checkpoint(folder, model, cfg, ["a", "b"], epoch=1, best_metric=0.5)
    # simulate a kill between "folder -> .old" and ".tmp -> folder"
    os.replace(folder, tmp_path / "last.old")
    (tmp_path / "last.tmp").mkdir()
    resolved = ckpt.resolve_checkpoint(folder)
    assert json.loads((resolved / ckpt.META).read_text())["epoch"] == 1


def test_bad_checkpoints_are_clear_errors(tmp_path, trained):
    _, best = trained
    from paddle_catdog.models import create_model
    other = tmp_path / "other"
    import shutil
    shutil.copytree(best, other)
    (other / ckpt.WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_model(other)
    model = create_model("resnet18", width=8)
    weights = ckpt.read_weights(best / ckpt.WEIGHTS)
    with pytest.raises(ckpt.CheckpointError, match="do not fit"):
        ckpt.load_weights_into(model, weights, "x")
    three = create_model("cnn", num_classes=3, **TrainConfig(model="cnn").model_options())
    with pytest.raises(ckpt.CheckpointError, match="shape"):
        ckpt.load_weights_into(three, weights, "x")


def test_budget_cut_short_still_evaluates_the_last_epoch_in_full(tmp_path, kaggle_root, monkeypatch):
    from paddle_catdog.train import budget
    # the plan says 4 epochs; after epoch 2 the check finds the rest would overrun and no epoch fits
    monkeypatch.setattr(budget, "choose_plan", lambda cfg, steps, *a: budget.plan_for(cfg, steps, 4))
    monkeypatch.setattr(budget, "run_cost", lambda *a: 1e9)
    monkeypatch.setattr(budget, "fitting_epochs", lambda cfg, steps, final, speed, left, val, done: done // steps)
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=None, time_budget=5.0, eval_from=1.0)
    fit(cfg)
    rows = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert "val_acc" not in rows[0] and rows[1]["val_full"] is True  # epoch 2 was planned without one
    meta = json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())
    assert meta["config"]["epochs"] == 2 and "val_acc" in meta["metrics"]


def test_progressive_resizing_trains(tmp_path, kaggle_root):
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=3, image_size=48, start_image_size=32,
                      eval_from=1.0)
    best = fit(cfg)
    assert json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())["epoch"] == 3
    rows = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and [r["size"] for r in rows] == [32, 32, 48]
    assert ["val_acc" in r for r in rows] == [False, False, True]  # --eval-from 1: the last only
    assert json.loads((best / ckpt.META).read_text())["epoch"] == 3
    assert Predictor(str(best), device="cpu").transform(
        (kaggle_root / "val" / "cat.1000.jpg").read_bytes()).shape == (3, 48, 48)


def test_size_plan_trains_evaluates_and_saves_the_size_it_chose(tmp_path, kaggle_root, monkeypatch):
    from paddle_catdog.train import budget
    monkeypatch.setattr(budget, "SMALLEST_FINAL_SIZE", 16)
    # after the first steps: only 1 epoch would fit at 48 px, 2 at 32 px (min_epochs=2) -> 32 px
    monkeypatch.setattr(budget, "fitting_epochs", lambda cfg, steps, final, *a: 2 if final <= 32 else 1)
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=None, time_budget=5.0, image_size=48,
                      start_image_size=32, min_epochs=2, eval_from=1.0)
    best = fit(cfg)
    rows = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["size"]) for r in rows] == [(1, 32), (2, 32)]
    saved = json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())["config"]
    assert saved["image_size"] == 32 and saved["epochs"] == 2
    assert cfg.image_size == 48 and cfg.epochs is None  # the caller's config is not changed
    assert Predictor(str(best), device="cpu").transform(
        (kaggle_root / "val" / "cat.1000.jpg").read_bytes()).shape == (3, 32, 32)


def test_fit_leaves_the_callers_config_alone_and_an_explicit_epoch_count_wins(tmp_path, kaggle_root, monkeypatch):
    """Issue 12: fit(cfg) twice in a notebook trains the same run twice; epochs=2 from an API
    caller is 2 epochs even with a time budget (which would plan 4 here); data_dir=None stays None."""
    from paddle_catdog.train import budget
    monkeypatch.setattr(budget, "fitting_epochs", lambda *a: 4)
    monkeypatch.setenv("CATDOG_DATA", str(kaggle_root))
    cfg = dataclasses.replace(tiny_config(kaggle_root, tmp_path / "out", epochs=2, time_budget=5.0,
                                          log_images=False), data_dir=None)
    before = dataclasses.asdict(cfg)
    for run in ("a", "b"):
        fit(dataclasses.replace(cfg, output=str(tmp_path / run)) if run == "b" else cfg)
        assert dataclasses.asdict(cfg) == before
        out = tmp_path / ("out" if run == "a" else run)
        rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2], run


def test_a_wrong_option_fails_before_the_output_folder_is_made(tmp_path, kaggle_root):
    with pytest.raises(ValueError, match="--batch-size must be at least 1"):
        fit(tiny_config(kaggle_root, tmp_path / "out", batch_size=0))
    assert not (tmp_path / "out").exists()


def test_the_plan_is_fixed_in_the_first_epoch_and_the_run_follows_it(tmp_path, kaggle_root, monkeypatch, caplog):
    """Under a time budget the plan is decided after the first steps, printed, and then the
    learning rate of every epoch's end and every epoch's size are the plan's pure functions."""
    import logging
    from paddle_catdog.train import budget
    monkeypatch.setattr(budget, "fitting_epochs", lambda *a: 3)
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=None, time_budget=5.0, image_size=48,
                      start_image_size=32, min_epochs=0, eval_from=0.5, log_images=False)
    with caplog.at_level(logging.INFO, logger="paddle_catdog"):
        fit(cfg)
    assert "measured" in caplog.text and "plan: 3 epochs of 5 steps, 32 -> 48 px" in caplog.text
    saved = TrainConfig.from_dict(json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())["config"])
    plan = budget.plan_for(saved, 5)
    rows = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [r["size"] for r in rows] == [plan.size(e) for e in range(3)] == [32, 32, 48]
    for e, row in enumerate(rows):  # the loop reports the rate of the step after the epoch's last
        assert row["lr"] == pytest.approx(plan.lr((e + 1) * plan.steps_per_epoch), abs=1e-12)
    assert ["val_acc" in r for r in rows] == [plan.evaluates(e) for e in range(3)] == [False, True, True]
    assert [r.get("val_full") for r in rows] == [None, False, True]
