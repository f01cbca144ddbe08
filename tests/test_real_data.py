"""On the real Dogs-vs-Cats photos (CATDOG_DATA): a short training run through the CLI, then
run_predict.py as a user runs it. Skipped, with the reason, where CATDOG_DATA is unset."""
import json
import shutil

import pytest

from conftest import real_data, requires_real_data
from conftest import run_script
from paddle_catdog.predict.inference import InferencePredictor

pytestmark = requires_real_data


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "out"
    r = run_script("run_train.py", "--data-dir", str(real_data()), "--model", "resnet18",
                   "--width", "16", "--image-size", "64", "--max-per-class", "150", "--epochs", "1",
                   "--batch-size", "32", "--output", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_training_run_writes_checkpoints_and_logs(real_run):
    out, r = real_run
    assert "300 train" in r.stderr and "2000 val" in r.stderr  # 150 per class, the whole val/
    meta = json.loads((out / "best" / "meta.json").read_text())
    assert meta["classes"] == ["cat", "dog"] and meta["epoch"] == 1
    # a share of the whole val/ (2,000 photos): a whole number of them right
    right = meta["metrics"]["val_acc"] * 2000
    assert abs(right - round(right)) < 1e-6 and 0 < right < 2000
    assert list((out / "vdl").glob("vdlrecords.*"))


def test_predict_real_photos(real_run, tmp_path):
    out, _ = real_run
    val = real_data() / "val"
    photos = [val / "cat.4000.jpg", val / "dog.4000.jpg"]
    r = run_script("run_predict.py", "--weights", str(out / "best"), *sum((["--img", str(p)] for p in photos), []))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2
    answers = dict((p, pr) for p, pr, _ in InferencePredictor(str(out / "best")).predict_paths([str(p) for p in photos]))
    for line, photo in zip(lines, photos):
        path, label, prob = line.split("\t")
        assert path == str(photo) and label == ["cat", "dog"][int(answers[path].argmax())]
        assert float(prob) == pytest.approx(float(answers[path].max()), abs=1e-4)

    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photos:
        shutil.copy(p, folder / p.name)
    (folder / "cat.9999.jpg").write_bytes(photos[0].read_bytes()[:100])  # truncated download
    r = run_script("run_predict.py", "--weights", str(out / "best"), "--img", str(folder), "--json")
    assert r.returncode == 2
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert sorted(row["path"].rsplit("/", 1)[-1] for row in rows) == ["cat.4000.jpg", "dog.4000.jpg"]
    assert "cat.9999.jpg" in r.stderr and "Traceback" not in r.stderr
