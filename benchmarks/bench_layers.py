#!/usr/bin/env python
"""What the CPU-shaped layers (paddle_catdog/models/layers.py) buy, and what a cheaper stem
would, measured in one invocation:

- ``conv``: forward and backward of each distinct convolution of ResNet-18 (width 32) at 64 and
  128 px input, batch 64, as Paddle's ``F.conv2d`` and as one batched GEMM (``gemm_conv2d``), in
  ms; ``gemm_over_native`` below 1 means the GEMM is faster. The layer takes the GEMM where the
  output map has at most 4 positions (or 16 at stride 1).
- ``stem``: ResNet's stem (7x7 stride-2 convolution, 3x3 max pooling) against a 4x4 stride-4
  "patchify" convolution to the same quarter-size map, forward and weight gradient. (A ResNet-18
  with the patchify stem trained 1.3-1.6x faster but scored lower at the same budget: the
  ablation in docs/en/recipe.md; the stem was dropped.)
- ``slices``: a 3x3 stride-1 convolution as nine shifted slices of the padded input, stacked
  into columns for one GEMM over the batch (no ``F.unfold``), against ``F.conv2d``, forward and
  backward, on the maps of ResNet-18's stages. Tried for the larger maps, where the unfold GEMM
  loses; it lost more (benchmarks/README.md), and is not in the package.
- ``fold``: a convolution over the batch folded into the rows of fewer, taller images (``k``
  images stacked with zero rows between them, one ``F.conv2d`` call, the separator rows' outputs
  dropped), so that Paddle's per-image im2col and GEMM run on bigger matrices. Tried in session 10
  for the 8x8-32x32 maps; 1.9-5.9x slower (benchmarks/README.md), and not in the package.
- ``net``: training images/s of ResNet-18 (the project's ``train_one_epoch``: forward, loss,
  backward, AdamW) with the GEMM path on and off; rounds alternate.

    python benchmarks/bench_layers.py                  # ~4 min
    python benchmarks/bench_layers.py --only net --rounds 3
    python benchmarks/bench_layers.py --quick          # smoke test: figures mean nothing
"""
from __future__ import annotations

import argparse
import statistics
import time

import paddle
import paddle.nn.functional as F

from _common import cpu_count, emit, int_list, str_list

from paddle_catdog.config import TrainConfig
from paddle_catdog.models import create_model, layers
from paddle_catdog.models.layers import gemm_conv2d, output_size
from paddle_catdog.runtime import seed_everything, setup_device
from paddle_catdog.train.loop import train_one_epoch
from paddle_catdog.train.optim import build_optimizer


def timed(fn, repeats: int) -> float:
    """Median milliseconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def resnet18_convs(size: int, width: int):
    """(name, in channels, out channels, kernel, stride, padding, input side) of each distinct
    convolution after the stem of ResNet-18 at ``size`` px input."""
    side = size // 4
    convs = [(f"layer1 3x3 {side}", width, width, 3, 1, 1, side)]
    for stage in range(1, 4):
        cin, cout, out = width * 2 ** (stage - 1), width * 2 ** stage, side // 2 ** stage
        convs += [(f"layer{stage + 1} 3x3/2 {out * 2}->{out}", cin, cout, 3, 2, 1, out * 2),
                  (f"layer{stage + 1} 1x1/2 {out * 2}->{out}", cin, cout, 1, 2, 0, out * 2),
                  (f"layer{stage + 1} 3x3 {out}", cout, cout, 3, 1, 1, out)]
    return convs


def conv_figures(sizes, width: int, batch: int, repeats: int, quick: bool) -> None:
    for size in sizes:
        for name, cin, cout, k, stride, pad, side in resnet18_convs(size, width):
            x = paddle.randn([batch, cin, side, side])
            w = paddle.randn([cout, cin, k, k]) * 0.1
            x.stop_gradient = w.stop_gradient = False

            def native():
                F.conv2d(x, w, stride=stride, padding=pad).mean().backward()

            def gemm():
                gemm_conv2d(x, w, None, stride, pad).mean().backward()
            a, b = timed(native, repeats), timed(gemm, repeats)
            positions = output_size(side, k, stride, pad) ** 2
            emit("conv", input_size=size, conv=name, native_ms=round(a, 2), gemm_ms=round(b, 2),
                 gemm_over_native=round(b / a, 2), output_positions=positions, quick=quick)


def stem_figures(sizes, width: int, batch: int, repeats: int, quick: bool) -> None:
    for size in sizes:
        x = paddle.randn([batch, 3, size, size])
        stems = {"conv7": (paddle.randn([width, 3, 7, 7]),
                           lambda w: F.max_pool2d(F.conv2d(x, w, stride=2, padding=3), 3, 2, 1)),
                 "patch4": (paddle.randn([width, 3, 4, 4]), lambda w: F.conv2d(x, w, stride=4))}
        for name, (w, fn) in stems.items():
            w.stop_gradient = False
            ms = timed(lambda: fn(w).mean().backward(), repeats)
            emit("stem", input_size=size, stem=name, ms=round(ms, 2), quick=quick)


def slices_conv2d(x: paddle.Tensor, w: paddle.Tensor) -> paddle.Tensor:
    """``F.conv2d(x, w, padding=1)`` for a 3x3 kernel as nine shifted slices and one GEMM."""
    n, c, h, wd = x.shape
    padded = F.pad(x, [1, 1, 1, 1])
    cols = paddle.stack([padded[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=2)
    cols = cols.transpose([0, 3, 4, 1, 2]).reshape([n * h * wd, c * 9])  # (N H W, C 3 3)
    y = paddle.matmul(cols, w.reshape([w.shape[0], c * 9]), transpose_y=True)
    return y.reshape([n, h, wd, w.shape[0]]).transpose([0, 3, 1, 2])


def slices_figures(width: int, batch: int, repeats: int, quick: bool) -> None:
    for channels, side in [(width, 32), (width * 2, 16), (width * 4, 8)][:1 if quick else 3]:
        x = paddle.randn([batch, channels, side, side])
        w = paddle.randn([channels, channels, 3, 3]) * 0.05
        x.stop_gradient = w.stop_gradient = False
        diff = float((slices_conv2d(x, w) - F.conv2d(x, w, padding=1)).abs().max())
        a = timed(lambda: F.conv2d(x, w, padding=1).mean().backward(), repeats)
        b = timed(lambda: slices_conv2d(x, w).mean().backward(), repeats)
        emit("slices", channels=channels, side=side, native_ms=round(a, 2), slices_ms=round(b, 2),
             slices_over_native=round(b / a, 2), max_difference=round(diff, 6), quick=quick)


def fold_conv2d(x: paddle.Tensor, w: paddle.Tensor, k: int, stride: int, pad: int) -> paddle.Tensor:
    """``F.conv2d(x, w, stride=stride, padding=pad)`` with every ``k`` images of the batch stacked
    into one taller image, zero rows between them (``pad`` or more, so that each block starts on a
    multiple of ``stride``); the rows computed across two images are dropped."""
    n, c, h, wd = x.shape
    sep = pad + (-(h + pad)) % stride
    block = h + sep
    folded = F.pad(x, [0, 0, 0, sep]).reshape([n // k, k, c, block, wd]).transpose([0, 2, 1, 3, 4])
    y = F.conv2d(folded.reshape([n // k, c, k * block, wd]), w, stride=stride, padding=pad)
    ho = output_size(h, w.shape[2], stride, pad)
    y = y.reshape([n // k, w.shape[0], k, block // stride, y.shape[3]])[:, :, :, :ho, :]
    return y.transpose([0, 2, 1, 3, 4]).reshape([n, w.shape[0], ho, y.shape[4]])


def fold_figures(sizes, width: int, batch: int, repeats: int, quick: bool) -> None:
    for size in sizes:
        for name, cin, cout, k, stride, pad, side in resnet18_convs(size, width):
            if k != 3 or side < 8:
                continue
            x = paddle.randn([batch, cin, side, side])
            w = paddle.randn([cout, cin, k, k]) * 0.1
            x.stop_gradient = w.stop_gradient = False
            native = timed(lambda: F.conv2d(x, w, stride=stride, padding=pad).mean().backward(), repeats)
            expected = F.conv2d(x, w, stride=stride, padding=pad)
            for group in ([batch] if quick else [4, 16, batch]):
                diff = float((fold_conv2d(x, w, group, stride, pad) - expected).abs().max())
                ms = timed(lambda: fold_conv2d(x, w, group, stride, pad).mean().backward(), repeats)
                emit("fold", input_size=size, conv=name, images_per_fold=group, native_ms=round(native, 2),
                     fold_ms=round(ms, 2), fold_over_native=round(ms / native, 2),
                     max_difference=round(diff, 6), quick=quick)


def net_speed(size: int, gemm: bool, width: int, batch: int, steps: int) -> float:
    saved = layers.GEMM_MAX_POSITIONS, layers.GEMM_MAX_POSITIONS_STRIDE1
    if not gemm:
        layers.GEMM_MAX_POSITIONS = layers.GEMM_MAX_POSITIONS_STRIDE1 = 0
    try:
        seed_everything(0)
        cfg = TrainConfig(width=width, batch_size=batch)
        model = create_model("resnet18", 2, **cfg.model_options())
        optimizer, scheduler = build_optimizer(cfg, model, steps + 2, epochs=1)
        data = [(paddle.randn([batch, 3, size, size]), paddle.randint(0, 2, [batch]))]
        train_one_epoch(model, data * 2, optimizer, scheduler, cfg.label_smoothing)
        return train_one_epoch(model, data * steps, optimizer, scheduler, cfg.label_smoothing)["images_per_s"]
    finally:
        layers.GEMM_MAX_POSITIONS, layers.GEMM_MAX_POSITIONS_STRIDE1 = saved


def net_figures(sizes, width: int, batch: int, steps: int, rounds: int, quick: bool) -> None:
    for size in sizes:
        got = {False: [], True: []}
        for _ in range(rounds):
            for gemm in got:
                got[gemm].append(net_speed(size, gemm, width, batch, steps))
        native = statistics.median(got[False])
        for gemm, values in got.items():
            emit("net", input_size=size, gemm=gemm, images_per_s=round(statistics.median(values), 1),
                 runs=[round(v, 1) for v in values], over_native=round(statistics.median(values) / native, 2),
                 quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=str_list, default="conv,stem,net",
                        help="which figures: conv, stem, net, slices, fold")
    parser.add_argument("--sizes", type=int_list, default="64,128", help="input sizes in pixels")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per layer figure")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per net figure")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the net figures")
    parser.add_argument("--quick", action="store_true", help="tiny inputs: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.width, args.batch, args.repeats, args.steps, args.rounds = [32], 8, 4, 1, 1, 1
    setup_device("cpu", cpu_count())
    if "conv" in args.only:
        conv_figures(args.sizes, args.width, args.batch, args.repeats, args.quick)
    if "stem" in args.only:
        stem_figures(args.sizes, args.width, args.batch, args.repeats, args.quick)
    if "slices" in args.only:
        slices_figures(args.width, args.batch, args.repeats, args.quick)
    if "fold" in args.only:
        fold_figures(args.sizes, args.width, args.batch, args.repeats, args.quick)
    if "net" in args.only:
        net_figures(args.sizes, args.width, args.batch, args.steps, args.rounds, args.quick)


if __name__ == "__main__":
    main()
