#!/usr/bin/env python
"""Training images/s of the same ResNet and step in Paddle (this project) and PyTorch eager, on
the CPU, measured in the same invocation, with their ratio.

The Paddle side is the project's own: ``create_model`` (ResNet-10 or -18, width 32 or 64, dropout 0.1,
zero-initialized residuals), ``build_optimizer`` (AdamW, lr 3e-3, weight decay 0.05 on >1-D
parameters) and ``train_one_epoch`` (forward, cross-entropy with label smoothing 0.1, backward,
step), in two variants: ``paddle`` as the package runs it (MKL's AVX2 path forced on non-Intel
x86, see paddle_catdog/cpu.py) and ``paddle-mkl-off`` with ``CATDOG_MKL_FAST_PATH=0`` (what
Paddle does untouched; on Intel the two are the same). The PyTorch side is the same network
(torch_twin.py), loss and AdamW step. Batches are random tensors in memory (batch 64), one math
thread per core. Every measurement runs in a fresh process; the variants alternate within each
round, so the ratios come from one invocation on one host. Needs ``pip install -r
benchmarks/requirements.txt`` (PyTorch's CPU wheel).

    python benchmarks/bench_vs_torch.py                      # both networks, width 32 and 64, 64 and 128 px, ~12 min
    python benchmarks/bench_vs_torch.py --models resnet10 --widths 32     # the default network only
    python benchmarks/bench_vs_torch.py --widths 32 --sizes 64 --rounds 3
    python benchmarks/bench_vs_torch.py --quick              # smoke test: figures mean nothing
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import cpu_count, emit, int_list, str_list

VARIANTS = ("paddle", "paddle-mkl-off", "torch")


def paddle_child(spec: dict) -> dict:
    import paddle
    from paddle_catdog.config import TrainConfig
    from paddle_catdog.models import create_model
    from paddle_catdog.runtime import seed_everything, setup_device
    from paddle_catdog.train.loop import train_one_epoch
    from paddle_catdog.train.optim import build_optimizer

    setup_device("cpu", spec["threads"])
    seed_everything(0)
    cfg = TrainConfig(model=spec["model"], width=spec["width"], batch_size=spec["batch"])
    model = create_model(spec["model"], num_classes=2, **cfg.model_options())
    optimizer, scheduler = build_optimizer(cfg, model, spec["warmup"] + spec["steps"], epochs=1)
    batch = [(paddle.randn([spec["batch"], 3, spec["size"], spec["size"]]),
              paddle.randint(0, 2, [spec["batch"]]))]
    train_one_epoch(model, batch * spec["warmup"], optimizer, scheduler, cfg.label_smoothing)
    result = train_one_epoch(model, batch * spec["steps"], optimizer, scheduler, cfg.label_smoothing)
    return {"images_per_s": result["images_per_s"], "framework": f"paddle {paddle.__version__}"}


def torch_child(spec: dict) -> dict:
    import torch
    import torch.nn.functional as F
    from torch_twin import twin

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = twin(spec["model"], num_classes=2, width=spec["width"], dropout=0.1, zero_init_residual=True)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)
    x = torch.randn(spec["batch"], 3, spec["size"], spec["size"])
    y = torch.randint(0, 2, (spec["batch"],))
    model.train()

    def step() -> float:
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)  # the same host sync per step as train_one_epoch's

    for _ in range(spec["warmup"]):
        step()
    start = time.perf_counter()
    for _ in range(spec["steps"]):
        step()
    return {"images_per_s": spec["batch"] * spec["steps"] / (time.perf_counter() - start),
            "framework": f"torch {torch.__version__}"}


def measure(variant: str, spec: dict) -> dict:
    env = dict(os.environ)
    env.pop("MKL_DEBUG_CPU_TYPE", None)  # each variant decides for itself
    if variant == "paddle-mkl-off":
        env["CATDOG_MKL_FAST_PATH"] = "0"
    kind = "torch" if variant == "torch" else "paddle"
    r = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(spec)], env=env,
                       capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        errors = [ln for ln in r.stderr.splitlines() if "Error" in ln] or [r.stderr[-200:]]
        return {"error": errors[-1]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=str_list, default="resnet10,resnet18",
                        help="resnet10 (the default network) and/or resnet18")
    parser.add_argument("--widths", type=int_list, default="32,64", help="network widths")
    parser.add_argument("--sizes", type=int_list, default="64,128", help="input sizes in pixels")
    parser.add_argument("--variants", type=str_list, default=",".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median counts")
    parser.add_argument("--quick", action="store_true", help="width 8, 32 px, batch 8: a smoke test")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.child:
        kind, spec = args.child[0], json.loads(args.child[1])
        print(json.dumps((torch_child if kind == "torch" else paddle_child)(spec)), flush=True)
        return
    if args.quick:
        args.widths, args.sizes, args.batch, args.steps, args.warmup, args.rounds = [8], [32], 8, 1, 1, 1
    rows = []
    for name, width, size in ((m, w, sz) for m in args.models for w in args.widths for sz in args.sizes):
        spec = dict(model=name, width=width, size=size, batch=args.batch, steps=args.steps,
                    warmup=args.warmup, threads=cpu_count())
        got = {v: [] for v in args.variants}
        for _ in range(args.rounds):
            for variant in args.variants:
                out = measure(variant, spec)
                emit("vs_torch", variant=variant, **spec, quick=args.quick, **out)
                if "images_per_s" in out:
                    got[variant].append(out["images_per_s"])
        rows.append((name, width, size, {v: statistics.median(x) if x else None for v, x in got.items()}))
    others = [v for v in args.variants if v != "torch"]
    print("\n| model | width | size | " + " | ".join(f"{v} img/s" for v in args.variants)
          + "".join(f" | {v} / torch" for v in others) + " |")
    print("|" + "---|" * (3 + len(args.variants) + len(others)))
    for name, width, size, med in rows:
        cells = [f"{med[v]:.1f}" if med[v] else "error" for v in args.variants]
        ratios = [f"{med[v] / med['torch']:.2f}" if med.get("torch") and med[v] else "-" for v in others]
        print(f"| {name} | {width} | {size} | " + " | ".join(cells) + "".join(f" | {r}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
