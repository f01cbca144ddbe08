#!/usr/bin/env python
"""What the transfer recipe's design rests on, for EfficientNet-Lite0 at 224 px, in one run:

- the feature pass (pooled features of one view): dygraph against Paddle Inference fp32 (and bf16
  where the CPU has it natively), per view;
- a dygraph training step (forward, backward, AdamW) per photo: the whole network, and only its
  last block + head on cached inputs of that block (what fine-tuning "the last blocks" would cost).

    python benchmarks/bench_transfer.py            # about 2 minutes on 2 cores
    python benchmarks/bench_transfer.py --quick    # smoke test: tiny inputs
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import cpu_count, emit, seconds_per_call

import numpy as np
import paddle
import paddle.nn.functional as F

from paddle_catdog.models import PooledFeatures, create_model
from paddle_catdog.static_graph import StaticRunner, fast_bf16


def feature_pass(model, size: int, batch: int, iters: int, quick: bool) -> None:
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    features = PooledFeatures(model)
    with paddle.no_grad():
        s = seconds_per_call(lambda: features(paddle.to_tensor(x)), iters)
    emit("transfer_features", engine="dygraph", size=size, batch=batch, quick=quick, ms_per_view=round(1000 * s / batch, 2))
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ["fp32"] + (["bf16"] if fast_bf16() else []):
            runner = StaticRunner.from_layer(features, Path(tmp) / precision / "features", size,
                                             precision=precision, num_threads=cpu_count())
            s = seconds_per_call(lambda: runner.run(x), iters)
            emit("transfer_features", engine=f"inference-{precision}", size=size, batch=batch, quick=quick,
                 ms_per_view=round(1000 * s / batch, 2))


def train_step_cost(model, size: int, batch: int, iters: int, quick: bool) -> None:
    """ms per photo of forward + backward + AdamW in dygraph: all layers, and the last block and
    head on the input that block would get from a cache."""
    rng = np.random.default_rng(0)
    x = paddle.to_tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = paddle.to_tensor(rng.integers(0, 2, batch).astype(np.int64))
    model.train()
    with paddle.no_grad():
        cached = x
        cached = model.act(model.bn0(model.conv_stem(cached)))
        for block in model.blocks[:-1]:
            cached = block(cached)
    last = [model.blocks[-1], model.conv_head, model.bn1, model.fc]

    def head_forward(inp):
        return model.forward_head(model.act(model.bn1(model.conv_head(model.blocks[-1](inp)))))
    for name, forward, inp, params in [
            ("whole network", model, x, model.parameters()),
            ("last block + head, cached input", head_forward, cached, [p for layer in last for p in layer.parameters()])]:
        opt = paddle.optimizer.AdamW(learning_rate=1e-4, parameters=params)

        def step():
            loss = F.cross_entropy(forward(inp), y)
            loss.backward()
            opt.step()
            opt.clear_grad()
        s = seconds_per_call(step, iters)
        emit("transfer_train_step", part=name, size=size, batch=batch, quick=quick, ms_per_photo=round(1000 * s / batch, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny inputs, 1 iteration (smoke test)")
    args = parser.parse_args()
    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(cpu_count())
    size, batch, iters = (32, 4, 1) if args.quick else (224, 32, 3)
    model = create_model("efficientnet_lite0")
    model.eval()
    feature_pass(model, size, batch, iters, args.quick)
    train_step_cost(model, size, batch, iters, args.quick)


if __name__ == "__main__":
    main()
