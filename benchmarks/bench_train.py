#!/usr/bin/env python
"""Training speed (images/s) per model and input size, and the settings that change it.

Every option takes a comma-separated list and every combination runs in its own process (thread
counts and oneDNN state cannot be undone inside one). Batches are random tensors already in memory,
so the figure is the model step alone (forward, loss, backward, AdamW) through the project's own
``train_one_epoch`` and ``build_optimizer``; bench_data.py measures the loader separately.

    python benchmarks/bench_train.py                                   # default recipe, 2 models x 2 sizes
    python benchmarks/bench_train.py --models resnet18 --sizes 64 --threads default,1,2
    python benchmarks/bench_train.py --models resnet18 --sizes 64 --onednn off,on
    python benchmarks/bench_train.py --models resnet18 --sizes 64 --layout NCHW,NHWC
    python benchmarks/bench_train.py --models resnet18 --sizes 64 --static off,on
    python benchmarks/bench_train.py --models resnet18 --sizes 64 --batch 32,64,128
    python benchmarks/bench_train.py --models resnet18 --sizes 64 --profile /tmp/ops.txt   # per operator
    python benchmarks/bench_train.py --quick                           # smoke test
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from typing import Dict

from _common import cpu_count, emit, int_list, str_list

SETTINGS = ("model", "image_size", "batch", "threads", "onednn", "layout", "static")


def profiled(fn, path: str):
    """Run ``fn`` under paddle.profiler (CPU) and write its per-operator summary to ``path``."""
    import contextlib
    import io

    import paddle.profiler as profiler
    prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU])
    prof.start()
    result = fn()
    prof.stop()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        prof.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=True, thread_sep=False,
                     time_unit="ms")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.getvalue())
    return result


def run_one(setting: Dict[str, object], steps: int, warmup: int, width: int, quick: bool,
            profile: str = "") -> None:
    """Measure one setting in this process and print its figure."""
    import paddle
    from paddle_catdog.config import TrainConfig
    from paddle_catdog.runtime import seed_everything
    from paddle_catdog.train.loop import train_one_epoch
    from paddle_catdog.train.optim import build_optimizer
    from paddle_catdog.models import create_model

    paddle.set_device("cpu")
    if setting["threads"] != "default":  # "default": whatever Paddle does untouched
        paddle.base.core.set_num_threads(int(setting["threads"]))
    paddle.set_flags({"FLAGS_use_mkldnn": setting["onednn"] == "on"})
    seed_everything(0)
    cfg = TrainConfig(model=str(setting["model"]), image_size=int(setting["image_size"]),
                      batch_size=int(setting["batch"]), width=width)
    options = cfg.model_options()
    if setting["layout"] == "NHWC":
        if cfg.model == "cnn":
            raise ValueError("NHWC is implemented for the ResNets only")
        options["data_format"] = "NHWC"
    model = create_model(cfg.model, num_classes=2, **options)
    optimizer, scheduler = build_optimizer(cfg, model, steps_per_epoch=warmup + steps)
    if setting["static"] == "on":
        model = paddle.jit.to_static(model, full_graph=True)
    size = cfg.image_size
    images = paddle.randn([cfg.batch_size, 3, size, size])
    labels = paddle.randint(0, 2, [cfg.batch_size])
    train_one_epoch(model, [(images, labels)] * warmup, optimizer, scheduler, cfg.label_smoothing)
    timed = lambda: train_one_epoch(model, [(images, labels)] * steps, optimizer, scheduler,  # noqa: E731
                                    cfg.label_smoothing)
    result = profiled(timed, profile) if profile else timed()
    emit("train", **setting, width=cfg.width if cfg.model != "cnn" else None, steps=steps,
         images_per_s=round(result["images_per_s"], 2), quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=str_list, default="resnet18,cnn", help="model names")
    parser.add_argument("--sizes", type=int_list, default="64,128", help="input sizes in pixels")
    parser.add_argument("--batch", type=int_list, default="64", help="batch sizes")
    parser.add_argument("--threads", type=str_list, default=str(cpu_count()),
                        help="math threads via paddle.base.core.set_num_threads; 'default' leaves "
                             "Paddle's own setting")
    parser.add_argument("--onednn", type=str_list, default="off", help="FLAGS_use_mkldnn: off, on")
    parser.add_argument("--layout", type=str_list, default="NCHW", help="NCHW, NHWC (ResNets)")
    parser.add_argument("--static", type=str_list, default="off", help="paddle.jit.to_static: off, on")
    parser.add_argument("--width", type=int, default=32, help="ResNet width (TrainConfig's default)")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per setting")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--profile", default="", metavar="FILE",
                        help="run the timed steps under paddle.profiler and write the per-operator "
                             "summary to FILE (one setting; its images/s include the profiler's cost)")
    parser.add_argument("--quick", action="store_true", help="32 px, batch 8, 2 steps: a smoke test")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one setting as JSON
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.batch, args.steps, args.warmup = [32], [8], 2, 1
    if args.one:
        run_one(json.loads(args.one), args.steps, args.warmup, args.width, args.quick, args.profile)
        return
    values = [args.models, args.sizes, args.batch, args.threads, args.onednn, args.layout, args.static]
    failed = False
    for combo in itertools.product(*values):
        setting = dict(zip(SETTINGS, combo))
        cmd = [sys.executable, __file__, "--one", json.dumps(setting), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--width", str(args.width), "--profile", args.profile
               ] + (["--quick"] if args.quick else [])
        r = subprocess.run(cmd, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            failed = True
            # the last "XxxError: message" line says why (Paddle appends operator context below it)
            lines = [ln.strip() for ln in r.stderr.splitlines() if "Error:" in ln] or ["failed"]
            reason = lines[-1]
            emit("train", **setting, error=reason, quick=args.quick)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
