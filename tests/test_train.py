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


def test_progressive_resizing_schedule_and_budget():
    from paddle_catdog.train.budget import epochs_for_budget, train_size
    cfg = TrainConfig(image_size=128, start_image_size=64, epochs=20)
    sizes = [train_size(cfg, e) for e in range(20)]
    assert sizes[0] == 64 and sizes[-1] == 128
    assert sizes == sorted(sizes) and all(s % 16 == 0 for s in sizes)
    assert sizes.count(128) >= 2  # the last epochs train at the evaluated size
    assert all(train_size(TrainConfig(image_size=96, start_image_size=0), e) == 96 for e in range(15))
    assert train_size(TrainConfig(image_size=128, epochs=1), 0) == 128  # one epoch: no ramp
    # budget: epochs grow in cost, so fewer fit than at a constant first-epoch cost
    fixed = epochs_for_budget(TrainConfig(image_size=64, start_image_size=0), 1000, 0, train_s=40, other_s=10)
    ramped = epochs_for_budget(cfg, 1000, 0, train_s=40, other_s=10)
    assert fixed == 1 + int(970 // 50)
    assert 2 <= ramped < fixed
    from paddle_catdog.train.budget import SIZE_COST_EXPONENT as k
    cost = lambda n: sum(40 * (train_size(cfg, e, n) / 64) ** k + 10 for e in range(1, n))
    assert cost(ramped) <= 970 < cost(ramped + 1)  # the most epochs that fit


def test_budget_is_re_estimated_from_the_newest_epoch_and_skips_early_evaluations():
    from paddle_catdog.train.budget import SIZE_COST_EXPONENT as k, epochs_for_budget, evaluates, train_size
    cfg = TrainConfig(image_size=128, start_image_size=64, eval_from=0.6)
    # the first epoch and the last 40% are evaluated, nothing in between
    assert [e for e in range(10) if evaluates(cfg, e, 10)] == [0, 5, 6, 7, 8, 9]
    assert all(evaluates(TrainConfig(eval_from=0.0), e, 10) for e in range(10))
    assert [e for e in range(3) if evaluates(TrainConfig(eval_from=1.0), e, 3)] == [0, 2]
    # after 5 epochs, the 5th at 96 px took 60 s: later epochs cost 60 * (size/96)^k + 5, plus 20
    # when evaluated
    done, budget = 5, 900

    def cost(n):
        return sum(60 * (train_size(cfg, e, n) / 96) ** k + 5 + (20 if evaluates(cfg, e, n) else 0)
                   for e in range(done, n))
    n = epochs_for_budget(cfg, budget, 0, train_s=60, other_s=5, done=done, size=96, eval_s=20)
    assert n > done and cost(n) <= 0.97 * budget < cost(n + 1)
    slower = epochs_for_budget(cfg, budget, 0, train_s=90, other_s=5, done=done, size=96, eval_s=20)
    assert done <= slower < n  # a slower machine than measured before: fewer epochs
    # no time left: stop now, never fewer epochs than are done
    assert epochs_for_budget(cfg, budget, budget, train_s=60, other_s=5, done=done) == done


def test_budget_cut_short_still_evaluates_the_last_epoch(tmp_path, kaggle_root, monkeypatch):
    from paddle_catdog.train import budget
    # the budget first plans 4 epochs, then after epoch 2 finds no time left
    monkeypatch.setattr(budget, "epochs_for_budget", lambda cfg, *a, done=1, **k: 4 if done == 1 else done)
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=None, time_budget=5.0, eval_from=1.0)
    fit(cfg)
    rows = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all("val_acc" in r for r in rows)  # epoch 2 was planned without evaluation
    assert "val_acc" in json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())["metrics"]


def test_progressive_resizing_trains(tmp_path, kaggle_root):
    cfg = tiny_config(kaggle_root, tmp_path / "out", epochs=3, image_size=48, start_image_size=32,
                      eval_from=1.0)
    best = fit(cfg)
    assert json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())["epoch"] == 3
    rows = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and [r["size"] for r in rows] == [32, 32, 48]
    assert ["val_acc" in r for r in rows] == [True, False, True]  # --eval-from 1: first and last only
    assert json.loads((best / ckpt.META).read_text())["epoch"] in (1, 3)
    assert Predictor(str(best), device="cpu").transform(
        (kaggle_root / "val" / "cat.1000.jpg").read_bytes()).shape == (3, 48, 48)


def test_size_plan_keeps_the_size_on_a_fast_cpu_and_shrinks_it_on_a_slow_one():
    from paddle_catdog.train.budget import final_sizes, plan_final_size
    cfg = TrainConfig(image_size=128, start_image_size=64, min_epochs=14)
    assert final_sizes(cfg) == [128, 112, 96, 80]
    budget = 28 * 60

    def plan(train_s_at_64, config=cfg):  # epoch 1 (64 px) trained this long; 20 s evaluation
        return plan_final_size(config, budget, elapsed_s=train_s_at_64 + 25, train_s=train_s_at_64,
                               other_s=5, done=1, size=64, eval_s=20)
    fast, slow, slower = plan(45), plan(70), plan(100)
    assert fast[0] == 128 and fast[1] >= 14       # the tuning host's speed: the full size
    assert 80 < slow[0] < 128 and slow[1] >= 14   # 1.6x slower: smaller photos, still 14 epochs
    assert slower[0] == 80 and slower[1] < 14     # too slow even at 80 px: the smallest size
    # the largest size at which 14 epochs fit: one step larger they do not
    assert plan(70, TrainConfig(image_size=slow[0] + 16, start_image_size=64, min_epochs=14))[0] == slow[0]
    assert plan(70, TrainConfig(image_size=slow[0] + 16, start_image_size=64, min_epochs=0))[1] < 14
    assert plan(100, TrainConfig(image_size=128, start_image_size=64, min_epochs=0))[0] == 128  # 0: off


def test_size_plan_trains_evaluates_and_saves_the_size_it_chose(tmp_path, kaggle_root, monkeypatch):
    from paddle_catdog.train import budget
    monkeypatch.setattr(budget, "SMALLEST_FINAL_SIZE", 16)
    # after epoch 1: only 1 epoch would fit at 48 px, 2 at 32 px (min_epochs=2) -> final size 32
    monkeypatch.setattr(budget, "epochs_for_budget",
                        lambda cfg, *a, done=1, **k: done if done > 1 else (2 if cfg.image_size <= 32 else 1))
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
    monkeypatch.setattr(budget, "epochs_for_budget", lambda cfg, *a, done=1, **k: 4)
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


def test_the_size_plan_counts_evaluation_at_the_size_it_chose():
    """After epoch 1 the plan picks a smaller final size where --min-epochs would not fit at
    --image-size, and its epoch count must cost evaluation at that size, as plan_final_size did
    (it used to count the evaluation time measured at the larger size, planning fewer epochs)."""
    import time
    from paddle_catdog.train.budget import TimeBudget, plan_final_size
    cfg = TrainConfig(image_size=128, start_image_size=64, min_epochs=14, time_budget=28.0, eval_from=0.0)
    measured = dict(train_s=100.0, val_s=60.0, epoch_s=170.0)
    budget = TimeBudget(cfg, start=time.time() - 200.0)
    budget.replan(1, {"seconds": measured["train_s"]}, {"seconds": measured["val_s"]}, measured["epoch_s"])
    final, epochs = plan_final_size(cfg, 28 * 60, 200.0, 100.0, other_s=10.0, done=1, size=64, eval_s=60.0)
    assert final < 128 and budget.planned().image_size == final
    assert budget.epochs == epochs
