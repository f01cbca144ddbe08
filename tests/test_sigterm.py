"""SIGTERM (how kill, Slurm and Kubernetes stop a job) ends a training run like Ctrl-C: promptly,
with the last checkpoint whole, every data loader worker gone, and --resume working at once."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, make_kaggle_flat


def _processes_mentioning(text: str):
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def test_sigterm_stops_cleanly_and_the_run_resumes(tmp_path):
    make_kaggle_flat(tmp_path / "data" / "train", 40, size=32, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 8, size=32, seed=2, start=1000)
    out = tmp_path / "out-sigterm"
    args = [sys.executable, str(ROOT / "run_train.py"), "--data-dir", str(tmp_path / "data"),
            "--output", str(out), "--model", "cnn", "--image-size", "32", "--epochs", "200",
            "--batch-size", "8", "--num-workers", "2", "--no-progress", "--no-log-images"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (out / "last" / "meta.json").exists():  # at least one epoch done, workers running
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    assert _processes_mentioning(str(out))[1:], "the loader workers are running"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr and "Aborted" not in stderr and "Traceback" not in stderr
    for _ in range(50):  # every worker ends with the run
        if not _processes_mentioning(str(out)):
            break
        time.sleep(0.2)
    assert not _processes_mentioning(str(out)), "orphaned workers"
    done = json.loads((out / "last" / "meta.json").read_text())["epoch"]
    resumed = subprocess.run(args[:-10] + ["--resume", "--epochs", str(done + 1), "--num-workers", "0",
                                           "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "last" / "meta.json").read_text())["epoch"] == done + 1
