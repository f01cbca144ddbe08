"""Two runs of the same seeded recipe on one host write the same history.jsonl, to the last digit,
but for the two wall-clock fields (seconds, images/s). The source of the difference was the
augmented-image grid: it took one batch from a loader whose abandoned iterator kept augmenting in
its prefetch thread, drawing from `random` alongside the first epoch."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, make_kaggle_flat

CLOCK = ("epoch_seconds", "images_per_s")


@pytest.mark.parametrize("workers", ["0"])  # where it differed; workers draw their own streams
def test_two_runs_of_a_seeded_recipe_write_the_same_history(tmp_path, workers):
    make_kaggle_flat(tmp_path / "data" / "train", 24, size=40, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 8, size=40, seed=2, start=1000)
    histories = []
    for run in ("a", "b"):
        out = tmp_path / run
        r = subprocess.run([sys.executable, str(ROOT / "run_train.py"), "--data-dir", str(tmp_path / "data"),
                            "--output", str(out), "--model", "resnet18", "--width", "8", "--image-size", "32",
                            "--epochs", "2", "--batch-size", "8", "--num-workers", workers, "--no-progress",
                            "--eval-from", "0"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        histories.append([{k: v for k, v in row.items() if k not in CLOCK} for row in rows])
    assert len(histories[0]) == 2 and "val_loss" in histories[0][0]
    assert histories[0] == histories[1]
