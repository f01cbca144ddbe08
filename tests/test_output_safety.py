"""Issue 12: a run's output stays safe. A full disk ends training with one ``error:`` line and
leaves the previous checkpoint loadable; a second run on a folder in use stops at once.

The full disk is made two ways: a real small tmpfs mounted in a private mount namespace
(``unshare``; skipped where that is not allowed), and ENOSPC injected into one exact write.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest
from safetensors import SafetensorError

from conftest import make_kaggle_flat
from paddle_catdog import checkpoint as ckpt
from paddle_catdog import files
from paddle_catdog.cli import evaluate_main, train_main
from paddle_catdog.runlog import HISTORY, read_history
from paddle_catdog.train import recipe as fitting
from paddle_catdog.train import recorder

ENOSPC_TEXT = "No space left on device"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    make_kaggle_flat(tmp_path / "data" / "train", 16, size=32, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 4, size=32, seed=2, start=1000)
    return tmp_path / "data"


def train_args(data: Path, out: Path, epochs: int = 2) -> List[str]:
    return ["--data-dir", str(data), "--output", str(out), "--model", "cnn", "--image-size", "32",
            "--epochs", str(epochs), "--batch-size", "8", "--num-workers", "0", "--no-progress",
            "--no-log-images"]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def epoch_of(folder: Path) -> int:
    return ckpt.load_model(folder)[3]["epoch"]  # loads the whole model: the checkpoint is usable


# ------------------------------------------------------------------------- full disk, injected
def disk_full(kind: str) -> Exception:
    """What a full disk raises: Python's OSError, or safetensors' own error (its real text)."""
    if kind == "oserror":
        return OSError(errno.ENOSPC, ENOSPC_TEXT)
    return SafetensorError(f"Error while serializing: I/O error: {ENOSPC_TEXT} (os error 28)")


@pytest.mark.parametrize("kind", ["oserror", "safetensors"])
@pytest.mark.parametrize("folder,nth,outcome", [
    ("last", 2, "the previous checkpoint there is kept"),   # epoch 2's last
    ("best", 1, "no checkpoint was written there"),         # the first best (epoch 2: the first evaluated)
])
def test_full_disk_while_writing_a_checkpoint(data, tmp_path, capsys, monkeypatch, quiet_log,
                                              kind, folder, nth, outcome):
    """Half the weights reach the disk, then the write fails: one line naming the folder, the
    temporary folder gone, the previous checkpoint loadable, and --resume carries on."""
    real_save_file, calls = ckpt.save_file, []

    def save_file(tensors, path, **kwargs):
        real_save_file(tensors, path, **kwargs)
        calls.append(Path(path).parent.name)
        if calls.count(folder + ".tmp") == nth:
            Path(path).write_bytes(Path(path).read_bytes()[: Path(path).stat().st_size // 2])
            raise disk_full(kind)
    monkeypatch.setattr(ckpt, "save_file", save_file)
    out = tmp_path / "out"
    assert train_main(train_args(data, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"no space left on device writing {out / folder}; {outcome}" in line
    assert not list(out.glob("*.tmp")) and not list(out.glob("*.old"))
    if folder == "last":
        assert epoch_of(out / "last") == 1 and epoch_of(out / "best") >= 1
        monkeypatch.setattr(ckpt, "save_file", real_save_file)  # space freed: continue the run
        assert train_main(train_args(data, out) + ["--resume"]) == 0
        assert epoch_of(out / "last") == 2
        assert [r["epoch"] for r in read_history(out / HISTORY)] == [1, 2]
    else:
        assert not (out / "best").exists() and epoch_of(out / "last") == 1


def test_full_disk_while_appending_history(data, tmp_path, capsys, monkeypatch, quiet_log):
    """Epoch 2's history row fails half-written: one line naming history.jsonl, the half row cut
    off (a resumed run would choke on it), the checkpoints at epoch 1, and --resume finishes."""
    real_append = recorder.append_history

    def append_history(path, row):
        if row["epoch"] == 2:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row)[:10])
            raise OSError(errno.ENOSPC, ENOSPC_TEXT)
        real_append(path, row)
    monkeypatch.setattr(recorder, "append_history", append_history)
    out = tmp_path / "out"
    assert train_main(train_args(data, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"no space left on device writing {out / HISTORY}" in line
    assert [r["epoch"] for r in read_history(out / HISTORY)] == [1]
    assert epoch_of(out / "last") == 1
    monkeypatch.setattr(recorder, "append_history", real_append)
    assert train_main(train_args(data, out) + ["--resume"]) == 0
    assert [r["epoch"] for r in read_history(out / HISTORY)] == [1, 2]


def test_visualdl_failing_to_flush_does_not_hide_the_checkpoint_error(data, tmp_path, capsys,
                                                                     monkeypatch, quiet_log):
    """VisualDL flushes when the run closes it, after the error that ends the run; its own full
    disk must not replace that error (its logs are optional: a warning)."""
    real_save_file = ckpt.save_file

    def save_file(tensors, path, **kwargs):
        if Path(path).parent.name == "last.tmp":
            raise disk_full("oserror")
        real_save_file(tensors, path, **kwargs)

    def close(self):
        raise OSError(errno.ENOSPC, ENOSPC_TEXT)
    monkeypatch.setattr(ckpt, "save_file", save_file)
    monkeypatch.setattr(recorder.VdlLogger, "close", close)
    out = tmp_path / "out"
    assert train_main(train_args(data, out, epochs=1)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"no space left on device writing {out / 'last'}; no checkpoint was written" in line


# ---------------------------------------------------------------------- full disk, a real one
# Runs in a private mount namespace with a small tmpfs at argv[1] as --output. After epoch 1's
# checkpoints it fills the tmpfs, so epoch 2's writes meet a real ENOSPC from the kernel; then it
# reports what is left as one JSON line on stdout (the tmpfs vanishes with the namespace).
FULL_DISK_DRIVER = textwrap.dedent(r"""
    import json, os, sys
    from pathlib import Path
    from paddle_catdog import checkpoint
    from paddle_catdog.launch import train_main

    out = Path(sys.argv[1])
    real_save = checkpoint.save_checkpoint

    def save_checkpoint(folder, *a, **k):
        done = real_save(folder, *a, **k)
        if Path(folder).name == "last" and not (out / "filler").exists():
            with open(out / "filler", "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
        return done

    checkpoint.save_checkpoint = save_checkpoint
    code = train_main(sys.argv[2:])
    (out / "filler").unlink()
    print(json.dumps({"code": code, "entries": sorted(os.listdir(out)),
                      "epoch": checkpoint.load_model(out / "last")[3]["epoch"]}))
""")


def mount_tmpfs_command(mountpoint: Path, size: str) -> List[str]:
    return ["unshare", "--mount", "--map-root-user", "sh", "-c",
            f'mount -t tmpfs -o size={size} tmpfs "{mountpoint}" && exec "$@"', "sh"]


def can_mount_tmpfs(tmp_path: Path) -> bool:
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    return subprocess.run(mount_tmpfs_command(probe, "1m") + ["true"],
                          capture_output=True).returncode == 0


def test_a_really_full_disk_ends_in_one_line(data, tmp_path):
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a small tmpfs here (needs Linux and unshare with user/mount "
                    "namespaces); the injected ENOSPC tests cover the same paths")
    out = tmp_path / "disk"
    out.mkdir()
    driver = tmp_path / "full_disk_driver.py"
    driver.write_text(FULL_DISK_DRIVER)
    r = subprocess.run(mount_tmpfs_command(out, "64m") + [sys.executable, str(driver), str(out),
                                                           *train_args(data, out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert report["code"] == 2 and len(errors) == 1, r.stderr
    assert "no space left on device" in errors[0] and str(out) in errors[0], r.stderr
    assert "Traceback" not in r.stderr and "Exception" not in r.stderr, r.stderr
    assert report["epoch"] == 1  # loaded, in the namespace, after the failure
    assert not [e for e in report["entries"] if e.endswith((".tmp", ".old"))], report
    assert not out.joinpath("last").exists()  # it was all on the tmpfs


# ---------------------------------------------------------------------------------- the lock
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from paddle_catdog.files import output_lock
    with output_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()  # until the test closes stdin
""")


def test_a_second_run_on_a_folder_in_use_stops_at_once(data, tmp_path, capsys, monkeypatch,
                                                       quiet_log):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        scanned = []
        real_load_data = fitting.load_data
        monkeypatch.setattr(fitting, "load_data", lambda cfg: scanned.append(1) or real_load_data(cfg))
        assert train_main(train_args(data, out, epochs=1)) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"{out}/ is in use by another training run (pid {holder.pid}, started " in line
        assert "use another --output" in line
        assert not scanned  # stopped before looking at the data
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert train_main(train_args(data, out, epochs=1)) == 0  # the holder is gone: free again
    assert epoch_of(out / "last") == 1


def test_the_lock_file_does_not_get_in_the_way(data, tmp_path, capsys, quiet_log):
    """The .lock a run leaves behind means nothing once it ended: a failed run frees the folder,
    and --resume auto and evaluation work on it."""
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    assert train_main(train_args(tmp_path / "empty", out)) == 2  # a data error inside the lock
    assert train_main(train_args(data, out, epochs=1)) == 0
    assert (out / files.LOCK).read_text().split()[0] == str(os.getpid())
    assert train_main(train_args(data, out, epochs=2) + ["--resume", "auto"]) == 0
    assert epoch_of(out / "last") == 2
    capsys.readouterr()
    assert evaluate_main(["--weights", str(out / "best"), "--data-dir", str(data / "val")]) == 0
    assert ckpt.find_default_weights(str(out)) == out / "best"


def test_a_write_failing_while_a_resume_trims_the_history_keeps_every_row(tmp_path):
    """The rewrite of history.jsonl on --resume fails midway (here: a file-size limit makes the
    kernel refuse the write, as a full disk would): every row is still there, none half-written."""
    from paddle_catdog.runlog import append_history
    path = tmp_path / HISTORY
    for epoch in (1, 2, 3):
        append_history(path, {"epoch": epoch, "train_loss": 1.0 / epoch})
    limited = textwrap.dedent("""
        import resource, signal, sys
        from paddle_catdog.runlog import keep_history
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (20, 20))
        try:
            keep_history(sys.argv[1], upto_epoch=2)
        except OSError as e:
            sys.exit(f"failed: {e}")
    """)
    r = subprocess.run([sys.executable, "-c", limited, str(path)], capture_output=True, text=True, timeout=120)
    assert "failed:" in r.stderr, r.stderr
    assert [row["epoch"] for row in read_history(path)] == [1, 2, 3]  # not emptied, not half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == [HISTORY]
