"""Issue 6: messy image folders, CLI errors, killed runs, diverging losses, untrusted weights.

Every image here is generated (never the shared photos). One messy folder is built once per module
and used by a training run and a prediction run; kills are real SIGKILLs of a training subprocess,
sent by the subprocess to itself at an exact point so they land deterministically.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
import paddle
import pytest

from conftest import ROOT, make_class_folders, make_kaggle_flat, png_bomb, stripes, tiny_config, write_image
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.data import split
from paddle_catdog.runlog import HISTORY, read_history
from paddle_catdog.train import recipe as fitting
from paddle_catdog.train import loop
from paddle_catdog.train.optim import build_optimizer
from paddle_catdog.cli import train_main
from paddle_catdog.config import TrainConfig
from paddle_catdog.models import create_model
from paddle_catdog.cli import predict_main
from paddle_catdog.predict.predictor import Predictor

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ------------------------------------------------------------------------------ a messy folder
def _pillow_cmyk_jpeg(path: Path) -> None:
    """OpenCV cannot write CMYK JPEGs; Pillow (a test-only dependency) can."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(path, "JPEG")  # red


def make_messy_folder(root: Path) -> Dict[Path, Optional[str]]:
    """root/cat and root/dog with good images and every kind of bad file. Returns each image
    path the project should look at -> None (usable) or a fragment of the reason it is skipped."""
    rng = np.random.default_rng(3)
    make_class_folders(root, 8, size=32, ext=".png")
    make_class_folders(root, 4, size=32, seed=1, ext=".jpg")
    expected: Dict[Path, Optional[str]] = {p: None for p in root.rglob("*.*")}
    good_jpg = (root / "cat" / "img_0.jpg").read_bytes()

    def add(path: Path, reason: Optional[str], data: Optional[bytes] = None,
            img: Optional[np.ndarray] = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if img is not None:
            write_image(path, img)
        elif data is not None:
            path.write_bytes(data)
        expected[path] = reason

    for cls, label in (("cat", 0), ("dog", 1)):
        d = root / cls
        pic = stripes(label, 32, rng)
        # unusable
        add(d / "empty.jpg", "empty file", b"")
        add(d / "notes.jpg", "not a decodable image", b"this is a text file, not a jpeg\n")
        add(d / f"cut_{cls}.jpg", "truncated JPEG", good_jpg[: len(good_jpg) // 2])
        png = cv2.imencode(".png", pic)[1].tobytes()
        add(d / "cut.png", "not a decodable image", png[: len(png) // 2])
        add(d / "cassé_猫.jpg", "not a decodable image", b"\x00garbage\xff" * 10)
        # usable, each converted to 3-channel 8-bit RGB by transforms.Decode
        add(d / "alpha.png", None, img=np.dstack([pic, np.full((32, 32), 128, np.uint8)]))
        add(d / "gray.jpg", None, img=cv2.cvtColor(pic, cv2.COLOR_BGR2GRAY))
        add(d / "deep16.png", None, img=pic.astype(np.uint16) * 257)
        add(d / "one_pixel.png", None, img=pic[:1, :1])
        add(d / "one_pixel.webp", None, img=pic[:1, :1])
        add(d / "UPPER.JPG", None, img=pic)
        add(d / "UPPER.PNG", None, img=pic)
        add(d / "photo.jpeg", None, img=pic)
        add(d / "photo.bmp", None, img=pic)
        add(d / "photo.webp", None, img=pic)
        add(d / "chat_été_猫.png", None, img=pic)
        if sys.platform.startswith("linux"):  # names that are not UTF-8, as old zip files have
            add(d / os.fsdecode(b"latin1_caf\xe9.png"), None, img=pic)
            add(d / os.fsdecode(b"latin1_\xe9chec.jpg"), "not a decodable image", b"junk")
        # a directory named like an image is a folder: searched like any other, not a file
        add(d / "album.jpg" / "inside.png", None, img=pic)
    _pillow_cmyk_jpeg(root / "cat" / "cmyk.jpg")
    expected[root / "cat" / "cmyk.jpg"] = None
    # One huge image: a solid colour compresses to ~1 MB but decodes to 10,000 x 10,000 x 3.
    huge = np.empty((10000, 10000, 3), np.uint8)
    huge[:] = (30, 60, 200)
    huge_path = root / "dog" / "huge.png"
    huge_path.write_bytes(cv2.imencode(".png", huge, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes())
    expected[huge_path] = None
    del huge
    # A decompression bomb: 100 KB declaring 30,000 x 30,000 (2.7 GB decoded), refused from its header.
    bomb = root / "cat" / "bomb.png"
    bomb.write_bytes(png_bomb(30000, 30000))
    expected[bomb] = "image too large: 30000 x 30000"
    # Unreadable: permissions (root reads anyway, so then it is simply a good image) ...
    locked = write_image(root / "cat" / "locked.png", stripes(0, 32, rng))
    locked.chmod(0)
    expected[locked] = None if IS_ROOT else "Permission denied"
    # ... and a read error the kernel gives to everyone: /proc/self/mem at offset 0 is unmapped.
    if Path("/proc/self/mem").exists():
        (root / "dog" / "io_error.jpg").symlink_to("/proc/self/mem")
        expected[root / "dog" / "io_error.jpg"] = "cannot read"
    return expected


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    expected = make_messy_folder(root / "data")
    yield root, expected
    for p in (root / "data").rglob("locked.png"):
        p.chmod(0o644)  # let pytest clean up


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_training_skips_each_bad_file_once_and_uses_the_rest(messy, monkeypatch):
    """Once, with loader workers: the decode check that skips the bad files runs before any loader
    (the same in the main process), and the 10,000 x 10,000 PNG costs seconds per pass."""
    workers = 2
    root, expected = messy
    bad = {str(p): r for p, r in expected.items() if r is not None}
    usable = {str(p) for p, r in expected.items() if r is None}
    seen = {}

    def spy_load_data(cfg, check=True):  # keep what fit trained on
        seen["data"] = load_data(cfg, check)
        return seen["data"]
    load_data = split.load_data
    monkeypatch.setattr(fitting, "load_data", spy_load_data)
    handler = _Lines()
    logging.getLogger("paddle_catdog").addHandler(handler)
    out = root / f"out{workers}"
    try:
        best = fitting.fit(tiny_config(root / "data", out, num_workers=workers, batch_size=8,
                                      val_split=0.2, log_images=False))
    finally:
        logging.getLogger("paddle_catdog").removeHandler(handler)

    data = seen["data"]
    used = [p for p, _ in data.train.samples + data.val.samples]
    assert sorted(used) == sorted(usable)  # every usable file, once
    text = (out / "skipped.txt").read_text(encoding="utf-8", errors="surrogateescape")
    rows = [line.split("\t") for line in text.splitlines()]
    assert sorted(p for p, _ in rows) == sorted(bad)  # every unusable file, once
    for path, reason in rows:
        assert bad[path] in reason, (path, reason)
        logged = [line for line in handler.lines if path in line]
        assert len(logged) == 1 and reason in logged[0], (path, logged)
    assert any(f"skipped {len(bad)} file(s)" in line for line in handler.lines)
    assert ckpt.load_model(best)[0] is not None


def test_predict_names_each_bad_file_and_predicts_the_rest(messy):
    root, expected = messy
    weights = root / "out2" / "best"
    if not (weights / ckpt.META).is_file():  # run alone: make a checkpoint without training
        _save_untrained(weights, "cnn", ["cat", "dog"])
    env = dict(os.environ)
    # decoded as the OS does file names, so names that are not UTF-8 compare equal
    r = subprocess.run([sys.executable, str(ROOT / "run_predict.py"), "--weights", str(weights),
                        "--img", str(root / "data")], env=env, capture_output=True,
                       encoding="utf-8", errors="surrogateescape", timeout=300)
    assert r.returncode == 2
    predicted = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert sorted(predicted) == sorted(str(p) for p, why in expected.items() if why is None)
    errors = r.stderr.splitlines()  # nothing else on stderr: no OpenCV chatter, no traceback
    bad = {str(p): why for p, why in expected.items() if why is not None}
    assert len(errors) == len(bad), r.stderr
    for line in errors:
        assert line.startswith("error: ")
        path = next(p for p in bad if line.startswith(f"error: {p}: "))
        assert bad[path] in line, line


def test_skip_reasons_are_the_same_in_training_and_prediction(tmp_path):
    """One rule for "usable": the pre-training check and prediction's Decode agree."""
    from paddle_catdog.data.check import check_image
    from paddle_catdog.transforms import Decode, ImageDecodeError
    jpg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    cases = {"empty.jpg": b"", "cut.jpg": jpg[:-2], "text.jpg": b"hello",
             "tiny.png": cv2.imencode(".png", np.zeros((1, 3, 3), np.uint8))[1].tobytes()}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        reason = check_image(str(tmp_path / name))
        try:
            Decode()(data)
            decode_reason = None
        except ImageDecodeError as e:
            decode_reason = str(e)
        assert reason == decode_reason, name
    assert check_image(str(tmp_path / "tiny.png")) is None
    assert "truncated" in check_image(str(tmp_path / "cut.jpg"))


# --------------------------------------------------------------------------------- CLI errors
def _save_untrained(folder: Path, model: str, classes: List[str], **cfg_values) -> Path:
    cfg = TrainConfig(model=model, image_size=32, width=8, epochs=3, **cfg_values)
    net = create_model(model, num_classes=len(classes), **cfg.model_options())
    optimizer, scheduler = build_optimizer(cfg, net, steps_per_epoch=5)
    return ckpt.save_checkpoint(folder, net, cfg, classes, epoch=1, best_metric=0.5,
                                optimizer=optimizer, scheduler=scheduler)


@pytest.fixture
def checkpoints(tmp_path):
    """Good, mismatched and corrupt checkpoint folders, all for cnn on cat/dog unless named."""
    c = tmp_path / "ckpt"
    good = _save_untrained(c / "good", "cnn", ["cat", "dog"])
    _save_untrained(c / "resnet", "resnet18", ["cat", "dog"])
    _save_untrained(c / "three", "cnn", ["cat", "dog", "fox"])
    weights = (good / ckpt.WEIGHTS).read_bytes()

    def variant(name: str, file: str, data: bytes) -> None:
        shutil.copytree(good, c / name)
        (c / name / file).write_bytes(data)
    variant("garbage_weights", ckpt.WEIGHTS, os.urandom(300))
    variant("truncated_weights", ckpt.WEIGHTS, weights[: len(weights) // 2])
    variant("resnet_weights", ckpt.WEIGHTS, (c / "resnet" / ckpt.WEIGHTS).read_bytes())
    variant("three_class_weights", ckpt.WEIGHTS, (c / "three" / ckpt.WEIGHTS).read_bytes())
    variant("garbage_meta", ckpt.META, b"\x89\x00{not json")
    variant("list_meta", ckpt.META, b"[1, 2]")
    meta = json.loads((good / ckpt.META).read_text())
    meta["config"]["image_size"] = "big"
    variant("bad_config_meta", ckpt.META, json.dumps(meta).encode())
    return c


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_train_cli_data_errors(tmp_path, capsys, quiet_log):
    (tmp_path / "empty").mkdir()
    make_class_folders(tmp_path / "one", 3, classes=("cat",), size=16)
    for folder, message in (("empty", "no images"), ("one", "at least 2 classes")):
        code = train_main(["--data-dir", str(tmp_path / folder), "--output", str(tmp_path / "o"),
                           "--no-progress"])
        assert code == 2 and message in _one_error_line(capsys)


@pytest.mark.parametrize("name,extra,message", [
    ("resnet", ["--model", "cnn"], "resnet18"),
    ("three", [], "classes"),
    ("garbage_weights", [], "corrupt weights"),
    ("truncated_weights", [], "corrupt weights"),
    ("garbage_meta", [], "corrupt"),
    ("list_meta", [], "not a JSON object"),
    ("bad_config_meta", [], "image_size"),
])
def test_resume_from_wrong_or_corrupt_checkpoint(checkpoints, kaggle_root, tmp_path, capsys, quiet_log,
                                                 name, extra, message):
    code = train_main(["--data-dir", str(kaggle_root), "--output", str(tmp_path / "o"),
                       "--resume", str(checkpoints / name), "--no-progress", "--num-workers", "0",
                       *extra])
    assert code == 2
    assert message in _one_error_line(capsys)


@pytest.mark.parametrize("name,message", [
    ("resnet_weights", "do not fit"),
    ("three_class_weights", "another model or class count"),
    ("garbage_weights", "corrupt weights"),
    ("truncated_weights", "corrupt weights"),
    ("garbage_meta", "corrupt"),
    ("list_meta", "not a JSON object"),
    ("bad_config_meta", "image_size"),
])
def test_predict_with_wrong_or_corrupt_checkpoint(checkpoints, tmp_path, capsys, name, message):
    image = write_image(tmp_path / "x.png", stripes(0, 32, np.random.default_rng(0)))
    assert predict_main(["--weights", str(checkpoints / "good"), "--img", str(image)]) == 0
    capsys.readouterr()
    assert predict_main(["--weights", str(checkpoints / name), "--img", str(image)]) == 2
    line = _one_error_line(capsys)
    assert message in line and name in line  # names the checkpoint


# --------------------------------------------------------------------------------- killed runs
# Runs training in a subprocess that SIGKILLs itself at one exact point, chosen by KILL_AT:
#   evaluate@N        before the N-th evaluation (an epoch trained, its checkpoints not written)
#   weights:F@N       while writing F's N-th model.safetensors: half of it is on disk
#   swap:F@N          inside F's N-th rename swap: F moved to F.old, F.tmp not yet moved in
KILL_DRIVER = r"""
import os, signal, sys
from pathlib import Path
from paddle_catdog import checkpoint
from paddle_catdog.launch import train_main
from paddle_catdog.train import recipe as fit

point, _, nth = os.environ["KILL_AT"].partition("@")
kind, _, folder = point.partition(":")
calls = []

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def counted(name):
    calls.append(name)
    return calls.count(name) == int(nth)

if kind == "evaluate":
    real_score = fit.score
    def score(*a, **k):
        if counted("evaluate"):
            kill()
        return real_score(*a, **k)
    fit.score = score
elif kind == "weights":
    real_save_file = checkpoint.save_file
    def save_file(tensors, path, **k):
        real_save_file(tensors, path, **k)
        if Path(path).parent.name == folder + ".tmp" and counted("weights"):
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            kill()
    checkpoint.save_file = save_file
elif kind == "swap":
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        if Path(dst).name == folder + ".old" and counted("swap"):
            kill()
    os.replace = replace
sys.exit(train_main(sys.argv[1:]))
"""


def _epoch(folder: Path) -> int:
    return json.loads((folder / ckpt.META).read_text())["epoch"]


def test_killed_training_resumes_to_the_right_end(tmp_path):
    make_kaggle_flat(tmp_path / "data" / "train", 16, size=32, seed=1)
    make_kaggle_flat(tmp_path / "data" / "val", 4, size=32, seed=2, start=1000)
    out = tmp_path / "out"
    driver = tmp_path / "kill_driver.py"
    driver.write_text(KILL_DRIVER)
    args = ["--data-dir", str(tmp_path / "data"), "--output", str(out), "--model", "cnn",
            "--image-size", "32", "--epochs", "3", "--batch-size", "8", "--num-workers", "0",
            "--no-progress", "--no-log-images", "--eval-from", "0"]

    def run(kill_at: Optional[str], *extra: str):
        env = dict(os.environ, KILL_AT=kill_at or "none@0")
        return subprocess.run([sys.executable, str(driver), *args, *extra], env=env,
                              capture_output=True, text=True, timeout=300)

    # 1. killed while writing the very first checkpoint (best, epoch 1): nothing to resume, and
    #    --resume says so in one line; a fresh start is the way on.
    r = run("weights:best@1")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (out / "best").exists() and not (out / "last").exists()
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.resolve_checkpoint(out / "last")
    # 2. fresh start, killed after training epoch 2 but before its checkpoints
    r = run("evaluate@2")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert _epoch(out / "last") == 1 and _epoch(out / "best") == 1
    # 3. resumed, killed inside the rename swap of epoch 2's last checkpoint
    r = run("swap:last@1", "--resume")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (out / "last").exists() and _epoch(out / "last.old") == 1
    # 4. resumed (the swap is undone: epoch 1), killed half-way through writing epoch 3's weights
    r = run("weights:last@2", "--resume")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert "resumed from" in r.stderr and "at epoch 1" in r.stderr
    assert _epoch(out / "last") == 2 and (out / "last.tmp").exists()
    # 5. resumed at epoch 2, runs to the end
    r = run(None, "--resume")
    assert r.returncode == 0, r.stderr
    assert "at epoch 2" in r.stderr
    assert _epoch(out / "last") == 3
    assert [row["epoch"] for row in read_history(out / HISTORY)] == [1, 2, 3]
    assert not list(out.glob("*.tmp")) and not list(out.glob("*.old"))
    model, cfg, classes, meta = ckpt.load_model(out / "best")
    assert classes == ["cat", "dog"] and 1 <= meta["epoch"] <= 3
    probs = Predictor(str(out / "best"), device="cpu").predict_paths(
        [str(tmp_path / "data" / "val" / "cat.1000.jpg")])
    assert next(probs)[1].shape == (2,)


# ------------------------------------------------------------------------------- NaN / inf loss
def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
        kaggle_root, tmp_path, capsys, monkeypatch, quiet_log):
    """80 training images, batch 16: steps 1-5 are epoch 1; the loss turns NaN on step 7 (each step
    computes two cross-entropies: the smoothed objective, then the plain loss it reports)."""
    real = loop.F.cross_entropy
    calls = []

    def cross_entropy(*a, **k):
        calls.append(1)
        loss = real(*a, **k)
        return loss * float("nan") if len(calls) == 2 * 7 - 1 else loss  # step 7's objective
    monkeypatch.setattr(loop.F, "cross_entropy", cross_entropy)
    out = tmp_path / "o"
    code = train_main(["--data-dir", str(kaggle_root), "--output", str(out), "--model", "cnn",
                       "--image-size", "32", "--epochs", "3", "--batch-size", "16", "--eval-from", "0",
                       "--num-workers", "0", "--no-progress", "--no-log-images"])
    assert code == 2
    line = _one_error_line(capsys)
    assert "loss became nan" in line and "last good checkpoint" in line
    assert len(calls) == 2 * 7  # stopped at once: step 7 computed its two losses (objective, loss), no step after
    assert _epoch(out / "last") == 1 and not (out / "last.tmp").exists()
    weights = ckpt.read_weights(out / "last" / ckpt.WEIGHTS)
    assert all(np.isfinite(w).all() for w in weights.values())
    ckpt.load_model(out / "best")


def test_huge_learning_rate_diverges_with_a_clear_error(kaggle_root, tmp_path, capsys, quiet_log):
    code = train_main(["--data-dir", str(kaggle_root), "--output", str(tmp_path / "o"),
                       "--model", "cnn", "--image-size", "32", "--epochs", "2", "--lr", "1e30",
                       "--warmup-epochs", "0", "--batch-size", "16", "--num-workers", "0",
                       "--no-progress", "--no-log-images"])
    assert code == 2
    assert "training diverged" in _one_error_line(capsys)


# --------------------------------------------------------------------------- untrusted weights
class _Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_prediction_never_unpickles(tmp_path, monkeypatch, capsys):
    folder = _save_untrained(tmp_path / "shared", "cnn", ["cat", "dog"])
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"optimizer": _Payload(marker)})
    pickle.loads(payload)  # the payload is real: unpickling it runs code
    assert marker.exists()
    marker.unlink()
    (folder / ckpt.TRAIN_STATE).write_bytes(payload)
    (folder / "model.pdparams").write_bytes(payload)

    def refuse(*a, **k):
        raise AssertionError("prediction unpickled something")
    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                         (paddle, "load")):
        monkeypatch.setattr(module, name, refuse)
    image = write_image(tmp_path / "x.png", stripes(0, 32, np.random.default_rng(0)))
    predictor = Predictor(str(folder), device="cpu")
    (_, probs, error), = predictor.predict_paths([str(image)])
    assert error is None and probs.shape == (2,)
    assert predict_main(["--weights", str(folder), "--img", str(image)]) == 0
    assert not marker.exists()
