"""Evaluation: metrics on hand-computed arrays, the PNGs, the VisualDL PR curve and both CLIs."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, make_kaggle_flat, run_cli, tiny_config
from paddle_catdog.cli import evaluate_main, train_main
from paddle_catdog.checkpoint import load_model
from paddle_catdog.data.split import load_data
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.evaluate import CONFUSION_PNG, CURVES_PNG, REPORT_JSON, evaluate_checkpoint
from paddle_catdog.metrics import classification_report, confusion_matrix, format_report, per_class_metrics


def test_confusion_matrix_and_metrics_by_hand():
    # true:  cat cat cat cat dog dog dog bird
    # pred:  cat cat dog cat dog cat dog dog
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    preds = np.array([0, 0, 1, 0, 1, 0, 1, 1])
    cm = confusion_matrix(labels, preds, 3)
    assert cm.tolist() == [[3, 1, 0], [1, 2, 0], [0, 1, 0]]
    rows = {r["class"]: r for r in per_class_metrics(cm, ["cat", "dog", "bird"])}
    # cat: 3 of 4 predicted cats are cats, 3 of 4 cats found
    assert rows["cat"]["precision"] == pytest.approx(3 / 4) and rows["cat"]["recall"] == pytest.approx(3 / 4)
    # dog: predicted 4 times, right twice; 2 of 3 dogs found; F1 = 2pr/(p+r)
    p, r = 2 / 4, 2 / 3
    assert rows["dog"]["precision"] == pytest.approx(p) and rows["dog"]["recall"] == pytest.approx(r)
    assert rows["dog"]["f1"] == pytest.approx(2 * p * r / (p + r))
    # bird is never predicted: zeros, not NaN
    assert rows["bird"] == {"class": "bird", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert [rows[c]["support"] for c in ("cat", "dog", "bird")] == [4, 3, 1]

    probs = np.eye(3)[preds] * 0.8 + 0.1  # arg-max is preds
    report = classification_report(labels, probs, ["cat", "dog", "bird"])
    assert report["accuracy"] == pytest.approx(5 / 8) and report["n"] == 8
    assert report["confusion_matrix"] == cm.tolist()
    text = format_report(report)
    assert "accuracy 0.6250 on 8 images" in text and "bird" in text and "0.5000" in text


def test_perfect_and_all_wrong():
    labels = np.array([0, 1, 1, 0])
    right = classification_report(labels, np.eye(2)[labels], ["cat", "dog"])
    wrong = classification_report(labels, np.eye(2)[1 - labels], ["cat", "dog"])
    assert right["accuracy"] == 1 and all(r["f1"] == 1 for r in right["per_class"])
    assert wrong["accuracy"] == 0 and all(r["f1"] == 0 for r in wrong["per_class"])


def _is_png(path) -> bool:
    img = cv2.imread(str(path))
    return img is not None and img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 1


def test_plots_write_valid_pngs(tmp_path):
    from paddle_catdog.plots import close_all, plot_confusion_matrix, plot_curves
    plot_confusion_matrix(np.array([[5, 1], [2, 7]]), ["cat", "dog"], tmp_path / "cm.png")
    history = [{"epoch": e, "lr": 1e-3 / e, "train_loss": 1 / e, "val_loss": 1.2 / e,
                "train_acc": 1 - 0.5 / e, "val_acc": 1 - 0.6 / e} for e in (1, 2, 3)]
    plot_curves(history, tmp_path / "sub" / "curves.png")
    close_all()
    assert _is_png(tmp_path / "cm.png") and _is_png(tmp_path / "sub" / "curves.png")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two epochs of the plain CNN at 32 px: a real checkpoint, history and vdl folder."""
    from paddle_catdog.train import fit
    root = tmp_path_factory.mktemp("evalrun")
    make_kaggle_flat(root / "data" / "train", 30, seed=1)
    make_kaggle_flat(root / "data" / "val", 10, seed=2, start=1000)
    best = fit(tiny_config(root / "data", root / "out", epochs=2, log_images=False))
    return root, best


def test_evaluate_checkpoint_writes_report_pngs_and_pr_curve(tiny_run, tmp_path):
    root, best = tiny_run
    report = evaluate_checkpoint(str(best), device="cpu")
    assert report["n"] == 20 and sum(r["support"] for r in report["per_class"]) == 20
    assert np.asarray(report["confusion_matrix"]).sum() == 20
    # the same images, transform and model as training's own evaluation: the same accuracy
    meta = json.loads((best / "meta.json").read_text())
    assert report["accuracy"] == pytest.approx(meta["best_metric"])
    out = best.with_name("best.eval")  # beside the checkpoint: the checkpoint belongs to its run
    for name in (CONFUSION_PNG, CURVES_PNG):
        assert _is_png(out / name), name
    assert json.loads((out / REPORT_JSON).read_text())["accuracy"] == report["accuracy"]
    assert sorted(p.name for p in best.iterdir()) == sorted([ckpt.META, ckpt.WEIGHTS])
    from visualdl import LogReader
    tags = set()
    for f in (root / "out" / "vdl").glob("vdlrecords.*.log"):
        for kind, names in LogReader(file_path=str(f)).get_tags().items():
            tags |= {f"{kind}:{n}" for n in names}
    assert {"pr_curve:eval/pr_cat", "pr_curve:eval/pr_dog"} <= tags, tags

    # --data-dir with a val/ inside evaluates that val/; a plain folder is evaluated whole
    other = tmp_path / "other"
    make_kaggle_flat(other, 3, seed=5)
    report = evaluate_checkpoint(str(best), data_dir=str(other), device="cpu", out_dir=str(tmp_path / "o"),
                                 vdl=False)
    assert report["n"] == 6 and _is_png(tmp_path / "o" / CONFUSION_PNG)
    # a folder holding only val/ (no train/) is scored on that val/
    make_kaggle_flat(tmp_path / "only_val" / "val", 2, seed=6)
    report = evaluate_checkpoint(str(best), data_dir=str(tmp_path / "only_val"), device="cpu",
                                 out_dir=str(tmp_path / "o"), vdl=False)
    assert report["n"] == 4 and "validation images" in report["scored"]


def test_evaluate_cli_and_eval_only(tiny_run, tmp_path):
    root, best = tiny_run
    # run as a module, the way the README says
    r = subprocess.run([sys.executable, "-m", "paddle_catdog", "evaluate", "--weights", str(best),
                        "--out-dir", str(tmp_path / "a"), "--no-vdl"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "precision" in r.stdout and "cat" in r.stdout and "dog" in r.stdout
    assert _is_png(tmp_path / "a" / CONFUSION_PNG)

    # run_train.py --eval-only in-process (the module run above is the end-to-end path)
    code, out, err = run_cli(train_main, "--eval-only", "--weights", str(best), "--out-dir", str(tmp_path / "b"),
                             "--no-vdl", "--batch-size", "7")
    assert code == 0, err
    assert "accuracy" in out and _is_png(tmp_path / "b" / CURVES_PNG)

    code, out, err = run_cli(train_main, "--eval-only", "--weights", str(tmp_path / "nothing"))
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


@pytest.fixture(scope="module")
def found_run(tmp_path_factory):
    """A run that found its data by itself ($CATDOG_DATA, no --data-dir) in a folder without val/:
    40 photos per class, of which val_split 0.1 holds out 4 per class."""
    from paddle_catdog.train import fit
    root = tmp_path_factory.mktemp("foundrun")
    make_kaggle_flat(root / "photos", 40, seed=3)
    saved = os.environ.get("CATDOG_DATA")
    os.environ["CATDOG_DATA"] = str(root / "photos")
    try:
        cfg = tiny_config(root, root / "out", epochs=1, log_images=False, val_split=0.1)
        best = fit(dataclasses.replace(cfg, data_dir=None))
    finally:
        os.environ.pop("CATDOG_DATA") if saved is None else os.environ.update(CATDOG_DATA=saved)
    return root, best


def test_a_run_that_found_its_data_records_the_folder_for_evaluate(found_run, tmp_path, monkeypatch):
    root, best = found_run
    meta = json.loads((best / "meta.json").read_text())
    assert meta["config"]["data_dir"] == str((root / "photos").resolve())
    monkeypatch.delenv("CATDOG_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # and from elsewhere: the recorded path is absolute
    code, out, err = run_cli(evaluate_main, "--weights", str(best), "--no-vdl", "--out-dir", str(tmp_path / "e"))
    assert code == 0, err
    assert "accuracy" in out and "on 8 images" in out, out


def test_evaluate_on_the_training_folder_scores_only_the_held_out_split(found_run, tmp_path):
    root, best = found_run
    cfg = load_model(best)[1]
    held_out = {p for p, _ in load_data(cfg, check=False).val.samples}
    for given in (None, str(root / "photos"), str(root / "photos") + "/"):
        report = evaluate_checkpoint(str(best), data_dir=given, device="cpu", out_dir=str(tmp_path / "o"), vdl=False)
        assert report["n"] == len(held_out) == 8, (given, report["n"])  # not all 80 photos
        assert "held out" in report["scored"] and "not scored" in report["scored"], report["scored"]
    # a copy of the folder is another folder: every photo in it is scored, and the report says so
    shutil.copytree(root / "photos", tmp_path / "copy")
    report = evaluate_checkpoint(str(best), data_dir=str(tmp_path / "copy"), device="cpu",
                                 out_dir=str(tmp_path / "o"), vdl=False)
    assert report["n"] == 80 and "every labelled image" in report["scored"]
