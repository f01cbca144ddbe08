"""The data-parallel path: two CPU processes (gloo) under paddle.distributed.launch."""
import json
import os
import subprocess
import sys

import paddle
import pytest

from conftest import ROOT, make_kaggle_flat
from paddle_catdog import checkpoint as ckpt
from paddle_catdog import distributed as dist
from paddle_catdog.data.loader import make_loader
from paddle_catdog.data.split import load_data
from paddle_catdog.metrics import score

pytestmark = pytest.mark.skipif(not paddle.distributed.is_available(),
                                reason="this Paddle build has no paddle.distributed (gloo) support")


def launch(log_dir, *args):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(log_dir), str(ROOT / "run_train.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def _score_alone(folder):
    """Loss and accuracy of the checkpoint in ``folder`` on its run's val images, in this process."""
    model, cfg, classes, _ = ckpt.load_model(folder)
    data = load_data(cfg)
    assert len(data.val.samples) == 30
    return score(model, make_loader(data.val, cfg, train=False), tta=cfg.tta)


def test_single_process_helpers_are_no_ops():
    assert dist.world_size() == 1 and dist.is_main()
    model = paddle.nn.Linear(2, 2)
    assert dist.wrap(model) is model
    assert list(dist.shard_indices(3)) == [0, 1, 2]
    assert dist.reduce_sums([1.5, 2]).tolist() == [1.5, 2.0]


def test_two_cpu_processes_train_and_resume(tmp_path):
    make_kaggle_flat(tmp_path / "data" / "train", 24, size=32, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 15, size=32, seed=2, start=100)
    common = ["--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--model", "cnn",
              "--image-size", "32", "--batch-size", "8", "--num-workers", "0", "--no-progress",
              "--no-log-images", "--device", "cpu", "--num-threads", "1"]
    run = launch(tmp_path / "log1", *common, "--epochs", "1")
    logs = {r: (tmp_path / "log1" / f"workerlog.{r}").read_text() for r in (0, 1)}
    assert run.returncode == 0, run.stdout[-2000:] + logs[0][-2000:] + logs[1][-2000:]
    # 48 train images over 2 processes in batches of 8: 3 batches each
    assert "data-parallel over 2 processes: 3 train batches" in logs[0], logs[0][-2000:]
    assert "epoch 1/1" in logs[0] and "epoch 1/1" not in logs[1]  # rank 0 logs, rank 1 stays quiet
    meta = json.loads((tmp_path / "out" / "last" / ckpt.META).read_text())
    assert meta["epoch"] == 1
    # The validation loss and accuracy logged by the two ranks (each scored its half of the 30
    # val images, then all-reduced) are those of one process scoring all 30 with the saved model:
    # the same photos, each counted once, and the same weights and batch-norm statistics.
    single = _score_alone(tmp_path / "out" / "last")
    assert meta["metrics"]["val_acc"] == pytest.approx(single["acc"], abs=1e-6)
    assert meta["metrics"]["val_loss"] == pytest.approx(single["loss"], rel=1e-4)

    run = launch(tmp_path / "log2", *common, "--epochs", "2", "--resume")
    log0 = (tmp_path / "log2" / "workerlog.0").read_text()
    assert run.returncode == 0, run.stdout[-2000:] + log0[-2000:]
    assert "resumed from" in log0 and "epoch 2/2" in log0
    history = [json.loads(l) for l in (tmp_path / "out" / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
