"""Export to Paddle's inference format and prediction through Paddle Inference: the exported model
gives the dygraph model's probabilities, the cache is reused and refreshed, the CLIs behave."""
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import ROOT, make_kaggle_flat, run_cli
from paddle_catdog.cli import export_main, predict_main
from paddle_catdog import checkpoint as ckpt
from paddle_catdog.config import TrainConfig
from paddle_catdog.predict.export import (EXPORT_META, export_cache, ensure_exported, export_checkpoint,
                                  model_files, read_export_meta)
from paddle_catdog.predict.inference import InferencePredictor, fast_bf16, resolve_precision
from paddle_catdog.models import create_model
from paddle_catdog.predict.load import load_predictor
from paddle_catdog.predict.predictor import Predictor


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _give_batch_norm_statistics(model: paddle.nn.Layer, size: int) -> None:
    """Fresh batch-norm layers are the identity; a few training-mode passes give them real
    running statistics, so the parity test also covers the conv+bn folding Paddle Inference does."""
    model.train()
    with paddle.no_grad():
        for _ in range(8):
            model(paddle.randn([4, 3, size, size]))
    model.eval()


def make_checkpoint(folder: Path, model_name: str, image_size: int, seed: int = 0, **options) -> Path:
    paddle.seed(seed)
    cfg = TrainConfig(model=model_name, image_size=image_size, **options)
    model = create_model(model_name, num_classes=2, **cfg.model_options())
    _give_batch_norm_statistics(model, image_size)
    return ckpt.save_checkpoint(folder, model, cfg, ["cat", "dog"], epoch=1, best_metric=0.5)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Eleven generated photos of another size than the input, so resize and crop run too."""
    folder = tmp_path_factory.mktemp("imgs")
    return sorted(str(p) for p in make_kaggle_flat(folder, 6, size=56, seed=3)[:11])


@pytest.mark.parametrize("model_name,size,options", [
    ("cnn", 48, {}), ("resnet18", 32, {"width": 8})])
def test_exported_model_matches_dygraph(tmp_path, images, model_name, size, options):
    best = make_checkpoint(tmp_path / "best", model_name, size, **options)
    dygraph = Predictor(str(best), device="cpu")
    exported = InferencePredictor(str(best), device="cpu", precision="fp32")
    assert exported.folder == export_cache(best) == best.with_name("best.inference")
    for batch_size in (1, 4):  # the batch size is free in the exported graph
        want = {p: pr for p, pr, _ in dygraph.predict_paths(images, batch_size)}
        got = {p: pr for p, pr, _ in exported.predict_paths(images, batch_size)}
        assert list(got) == list(want) == images
        diff = max(float(np.abs(got[p] - want[p]).max()) for p in images)
        assert diff < 1e-4, diff
    # the probabilities are not all alike, so agreeing means something
    spread = np.ptp([want[p][0] for p in images])
    assert spread > 1e-3, spread


def _cpu_flags():
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_precision_choice():
    # the oracle: the CPU's own flags, not the code under test (AMX or AVX512-BF16 compute bf16 natively)
    native = bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "gpu") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int4", "cpu")


@pytest.mark.skipif(not fast_bf16(), reason="this CPU has no native bfloat16 (AMX or AVX512-BF16)")
def test_bf16_predictor_is_close_to_fp32(tmp_path, images):
    """bf16 keeps about 3 significant digits: probabilities move by well under 0.05 and no
    confident answer changes, yet they do move (the bf16 kernels really run)."""
    best = make_checkpoint(tmp_path / "best", "resnet18", 32, width=8)
    fp32 = {p: pr for p, pr, _ in InferencePredictor(str(best), "cpu", precision="fp32").predict_paths(images, 4)}
    bf16 = InferencePredictor(str(best), "cpu")  # auto picks bf16 on this CPU
    assert bf16.precision == "bf16"
    got = {p: pr for p, pr, _ in bf16.predict_paths(images, 4)}
    diff = max(float(np.abs(got[p] - fp32[p]).max()) for p in images)
    assert 1e-6 < diff < 0.05, diff
    for p in images:
        if abs(fp32[p][0] - 0.5) > 0.05:
            assert got[p].argmax() == fp32[p].argmax(), (p, got[p], fp32[p])


def test_export_folder_is_plain_files_and_rebuilds_preprocessing(tmp_path):
    best = make_checkpoint(tmp_path / "best", "cnn", 40, eval_crop_ratio=0.8)
    out = export_checkpoint(best, tmp_path / "exported")
    graph, params = model_files(out)
    assert graph.is_file() and params.is_file()
    assert not list(out.glob("*.info")) and not list(out.glob("*.pdparams"))  # no pickles
    meta = json.loads((out / EXPORT_META).read_text())
    assert meta["classes"] == ["cat", "dog"] and meta["input"]["shape"] == [None, 3, 40, 40]
    cfg, classes, _ = read_export_meta(out)
    assert cfg == TrainConfig.from_dict(json.loads((best / ckpt.META).read_text())["config"])
    import cv2
    from paddle_catdog.transforms import build_transform
    data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (60, 90, 3), np.uint8))[1].tobytes()
    pred = InferencePredictor(str(out), device="cpu")
    np.testing.assert_array_equal(pred.transform(data), build_transform(cfg, train=False)(data))
    assert pred.transform(data).shape == (3, 40, 40)


def test_cache_is_reused_then_refreshed_when_weights_change(tmp_path, images):
    best = make_checkpoint(tmp_path / "best", "cnn", 32, seed=1)
    first = ensure_exported(best)
    stamp = (first / EXPORT_META).stat().st_mtime_ns
    assert ensure_exported(best) == first
    assert (first / EXPORT_META).stat().st_mtime_ns == stamp  # reused, not re-exported
    before = next(InferencePredictor(str(best), device="cpu", precision="fp32").predict_paths(images[:1]))[1]
    # overwrite the weights in place (a copied-in checkpoint): the cache must not be used
    make_checkpoint(tmp_path / "other", "cnn", 32, seed=2)
    (best / ckpt.WEIGHTS).write_bytes((tmp_path / "other" / ckpt.WEIGHTS).read_bytes())
    after = next(InferencePredictor(str(best), device="cpu", precision="fp32").predict_paths(images[:1]))[1]
    want = next(Predictor(str(best), device="cpu").predict_paths(images[:1]))[1]
    assert np.abs(after - want).max() < 1e-4 and np.abs(after - before).max() > 1e-4


def test_cache_with_an_older_preprocess_description_is_rewritten(tmp_path):
    best = make_checkpoint(tmp_path / "best", "cnn", 32, seed=1)
    cache = ensure_exported(best)
    meta = json.loads((cache / EXPORT_META).read_text())
    meta["preprocess"] = {"resize_short": 37, "center_crop": 32}  # what releases before 2026-11-30 wrote
    (cache / EXPORT_META).write_text(json.dumps(meta))
    assert ensure_exported(best) == cache
    assert json.loads((cache / EXPORT_META).read_text())["preprocess"]["resize"] == 32


def test_predict_paths_keeps_order_around_bad_files(tmp_path, images):
    best = make_checkpoint(tmp_path / "best", "cnn", 32)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    paths = [images[0], str(bad), *images[1:5], str(tmp_path / "gone.jpg"), images[5]]
    pred = load_predictor(str(best), "inference", "cpu", "fp32")
    out = list(pred.predict_paths(paths, batch_size=3, workers=2))
    assert [p for p, _, _ in out] == paths
    assert [e is not None for _, _, e in out] == [False, True, False, False, False, False, True, False]
    alone = {p: pr for p, pr, _ in pred.predict_paths(images[:6], batch_size=1)}
    for p, pr, e in out:
        if e is None:
            assert np.abs(pr - alone[p]).max() < 1e-4


def test_export_cli_and_engine_choices(tmp_path, images):
    best = make_checkpoint(tmp_path / "best", "cnn", 32)
    out = tmp_path / "exported"
    r = run_module("paddle_catdog", "export", "--weights", str(best), "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / EXPORT_META).is_file() and "Traceback" not in r.stderr

    results = {}  # in-process: one export subprocess above is the end-to-end path
    for engine, weights in (("dygraph", best), ("inference", best), ("inference", out)):
        code, stdout, stderr = run_cli(predict_main, "--weights", str(weights), "--engine", engine, "--json",
                                       "--precision", "fp32", "--img", images[0], "--img", images[1])
        assert code == 0, (engine, stderr)
        results[engine, weights.name] = [json.loads(line) for line in stdout.splitlines()]
    base = results["dygraph", "best"]
    for key, rows in results.items():
        assert [row["path"] for row in rows] == images[:2]
        for row, ref in zip(rows, base):
            assert row["label"] == ref["label"], key
            assert abs(row["probability"] - ref["probability"]) < 1e-4, key

    cases = [
        (["--weights", str(out), "--engine", "dygraph"], "--engine inference"),
        (["--weights", str(tmp_path / "nothing")], "not found"),
    ]
    for args, message in cases:
        code, _, stderr = run_cli(predict_main, *args, "--img", images[0])
        assert code == 2 and message in stderr, stderr
        assert stderr.startswith("error:") and "Traceback" not in stderr
    for bad in (["--engine", "onnx"], ["--precision", "int4"]):
        code, _, stderr = run_cli(predict_main, *bad, "--img", images[0])
        assert code == 2 and "invalid choice" in stderr
    code, _, stderr = run_cli(export_main, "--weights", str(tmp_path / "nothing"), "--output", str(out))
    assert code == 2 and stderr.startswith("error:") and "Traceback" not in stderr


def test_resnet_channels_last_is_the_same_network():
    """data_format='NHWC' (a training-speed option) keeps parameter names and shapes and, with
    the same weights, gives the same outputs and feature maps (NCHW outside)."""
    paddle.seed(0)
    nchw = create_model("resnet18", width=8)
    nhwc = create_model("resnet18", width=8, data_format="NHWC")
    a, b = nchw.state_dict(), nhwc.state_dict()
    assert [(k, tuple(v.shape)) for k, v in a.items()] == [(k, tuple(v.shape)) for k, v in b.items()]
    nhwc.set_state_dict(a)
    _give_batch_norm_statistics(nchw, 32)
    nhwc.set_state_dict(nchw.state_dict())
    nhwc.eval()
    x = paddle.randn([2, 3, 32, 32])
    assert nhwc.forward_features(x).shape == nchw.forward_features(x).shape == [2, 64, 1, 1]
    np.testing.assert_allclose(nhwc(x).numpy(), nchw(x).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="NHWC"):
        create_model("resnet18", data_format="nhwc")


onnx_extra = pytest.mark.skipif(
    importlib.util.find_spec("paddle2onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the onnx extra is not installed (pip install -e \".[onnx]\")")


@onnx_extra
def test_onnx_export_and_onnxruntime_match_paddle_inference(tmp_path, images):
    # the plain CNN: paddle2onnx's constant folding takes seconds per layer (EfficientNet-Lite0
    # converts too: about 27 s on the Intel host of the closing note)
    best = make_checkpoint(tmp_path / "best", "cnn", 32)
    out = tmp_path / "exported"
    code, stdout, stderr = run_cli(export_main, "--weights", str(best), "--output", str(out), "--format", "onnx")
    assert code == 0, stderr
    assert (out / "model.onnx").is_file() and "model.onnx" in stdout
    meta = json.loads((out / EXPORT_META).read_text())
    assert meta["preprocess"]["resize"] == 32 and len(meta["preprocess"]["mean"]) == 3
    paddle_fp32 = InferencePredictor(str(out), "cpu", precision="fp32")
    onnx = load_predictor(str(out), "onnxruntime")
    for batch_size in (1, 4):  # the batch size is free in the ONNX graph too
        want = {p: pr for p, pr, _ in paddle_fp32.predict_paths(images, batch_size)}
        got = {p: pr for p, pr, _ in onnx.predict_paths(images, batch_size)}
        assert list(got) == images
        assert max(float(np.abs(got[p] - want[p]).max()) for p in images) < 1e-4
    assert np.ptp([want[p][0] for p in images]) > 1e-3  # not all alike: agreeing means something
    # a training checkpoint: converted on the fly into the export cache beside it
    code, stdout, stderr = run_cli(predict_main, "--weights", str(best), "--engine", "onnxruntime", "--img", images[0])
    assert code == 0 and stdout.startswith(images[0]), stderr
    assert (best.with_name("best.inference") / "model.onnx").is_file()


def test_onnx_without_its_extra_or_its_file_is_one_clear_error(tmp_path, images, monkeypatch):
    best = make_checkpoint(tmp_path / "best", "cnn", 32)
    out = export_checkpoint(best, tmp_path / "exported")  # Paddle files only
    if importlib.util.find_spec("onnxruntime") is not None:
        code, _, stderr = run_cli(predict_main, "--weights", str(out), "--engine", "onnxruntime", "--img", images[0])
        assert code == 2 and "--format onnx" in stderr and "Traceback" not in stderr
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: (_ for _ in ()).throw(ImportError(name)) if name in ("onnxruntime", "paddle2onnx")
                        else real(name, *a))
    code, _, stderr = run_cli(predict_main, "--weights", str(best), "--engine", "onnxruntime", "--img", images[0])
    assert code == 2 and 'pip install -e ".[onnx]"' in stderr
    code, _, stderr = run_cli(export_main, "--weights", str(best), "--output", str(tmp_path / "o"), "--format", "onnx")
    assert code == 2 and 'pip install -e ".[onnx]"' in stderr and not (tmp_path / "o").exists()
