"""Importing the library changes nothing in the process but MKL's variable: not the environment,
the warning filters, logging, nor matplotlib's backend (issue: a library you can import and trust).
The commands set those for their own process (launch.py)."""
import json
import subprocess
import sys

PROBE = r"""
import json, logging, os, sys, warnings
import cv2, matplotlib, numpy, paddle, visualdl  # third-party effects are theirs: taken before
import matplotlib.pyplot
def state():
    log = logging.getLogger("paddle_catdog")
    return {"env": dict(os.environ), "filters": [repr(f) for f in warnings.filters],
            "backend": repr(matplotlib.rcParams._get("backend")),
            "logger": [log.propagate, log.level, len(log.handlers)], "root": len(logging.getLogger().handlers)}
before = state()
import paddle_catdog.config, paddle_catdog.plots, paddle_catdog.transforms, paddle_catdog.models
import paddle_catdog.train, paddle_catdog.predict.load, paddle_catdog.evaluate, paddle_catdog.explain
import paddle_catdog.cli, paddle_catdog.weights, paddle_catdog.basics
after = state()
print(json.dumps({"before": before, "after": after}))
"""


def _run(code: str, env_extra=None) -> dict:
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("MPLBACKEND", "GLOG_minloglevel", "OPENCV_LOG_LEVEL")}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_library_changes_nothing_but_mkl():
    seen = _run(PROBE)
    before, after = seen["before"], seen["after"]
    changed = {k for k in set(before["env"]) | set(after["env"]) if before["env"].get(k) != after["env"].get(k)}
    assert changed <= {"MKL_DEBUG_CPU_TYPE"}, changed
    assert after["filters"] == before["filters"]
    assert after["backend"] == before["backend"]
    assert after["logger"] == before["logger"] and after["root"] == before["root"]


def test_the_commands_set_up_their_own_process():
    seen = _run("import json, os, warnings\nimport paddle_catdog.launch\n"
                "print(json.dumps({'env': {k: os.environ.get(k) for k in ('GLOG_minloglevel', 'MPLBACKEND')},"
                " 'quiet': any('ccache' in str(f[1].pattern if f[1] else '') for f in warnings.filters)}))")
    assert seen == {"env": {"GLOG_minloglevel": "2", "MPLBACKEND": "Agg"}, "quiet": True}


def test_predictors_leave_the_global_device_and_threads_alone(tmp_path, monkeypatch):
    """Building a predictor in a notebook must not move Paddle's global device or its CPU math
    threads (the predictor constructors used to call setup_device)."""
    import paddle
    from paddle_catdog import checkpoint as ckpt
    from paddle_catdog.config import TrainConfig
    from paddle_catdog.models import create_model
    from paddle_catdog.predict.inference import InferencePredictor
    from paddle_catdog.predict.predictor import Predictor
    cfg = TrainConfig(model="cnn", image_size=32)
    ckpt.save_checkpoint(tmp_path / "best", create_model("cnn", 2, **cfg.model_options()), cfg, ["a", "b"], 0, 0.0)
    calls = []
    monkeypatch.setattr(paddle, "set_device", lambda *a: calls.append(("set_device", a)))
    monkeypatch.setattr(paddle.base.core, "set_num_threads", lambda *a: calls.append(("set_num_threads", a)))
    import numpy as np
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert Predictor(str(tmp_path / "best"), device="cpu").predict_batch(x).shape == (1, 2)
    assert InferencePredictor(str(tmp_path / "best"), device="cpu").predict_batch(x).shape == (1, 2)
    assert calls == []
