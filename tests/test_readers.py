"""Readers never write: loading, predicting, exporting on the fly and evaluating leave every file
of a training run as they found it, even in the middle of the trainer's checkpoint swap."""
import os
from pathlib import Path

from conftest import make_kaggle_flat
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.config import TrainConfig
from paddle_catdog.evaluate import evaluate_checkpoint
from paddle_catdog.models import create_model
from paddle_catdog.predict.inference import InferencePredictor
from paddle_catdog.predict.predictor import Predictor


def _snapshot(folder: Path):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file()}


def test_readers_leave_an_interrupted_swap_for_the_trainer(tmp_path):
    data = tmp_path / "data"
    make_kaggle_flat(data / "val", 4, size=32)
    out = tmp_path / "out"
    cfg = TrainConfig(model="cnn", image_size=32, data_dir=str(data))
    ckpt.save_checkpoint(out / "best", create_model("cnn", 2, **cfg.model_options()), cfg, ["cat", "dog"],
                         epoch=3, best_metric=0.5)
    os.replace(out / "best", out / "best.old")  # killed between the swap's two renames
    before = _snapshot(out)

    assert ckpt.read_meta(out / "best")["epoch"] == 3  # read from best.old
    ckpt.load_model(out / "best")
    photo = str(data / "val" / "cat.0.jpg")
    assert next(Predictor(str(out / "best"), device="cpu").predict_paths([photo]))[1].shape == (2,)
    assert next(InferencePredictor(str(out / "best"), device="cpu").predict_paths([photo]))[1].shape == (2,)
    report = evaluate_checkpoint(str(out / "best"), data_dir=str(data / "val"), device="cpu", vdl=False)
    assert report["n"] == 8

    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing existing changed
    assert not (out / "best").exists()  # the swap is the trainer's to finish
    new = {k.split("/")[0] for k in set(after) - set(before)}
    assert new == {"best.inference", "best.eval"}  # caches and reports go beside, never inside
    # the run that owns the folder puts it back
    assert ckpt.recover_checkpoint(out / "best") == out / "best" and not (out / "best.old").exists()
