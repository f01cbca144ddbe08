#!/usr/bin/env python
"""Accuracy and speed of a trained checkpoint per prediction engine and precision, in one run.

Runs every labelled image of ``--data`` (its val/ when present) through the dygraph model, Paddle
Inference in fp32, and Paddle Inference in bf16 (oneDNN's bfloat16 kernels; only on a CPU with
native bfloat16, AMX or AVX512-BF16), and prints per engine: accuracy, images/s end to end
(decode included), and how far its probabilities and answers are from the dygraph model's.
This is the check behind ``--precision auto`` choosing bf16: it may cost at most 0.5 points.

    python benchmarks/bench_precision.py --weights output/best --data ../shared/data/dogs-vs-cats
"""
from __future__ import annotations

import argparse
import time

from _common import cpu_count, emit

import numpy as np

from paddle_catdog.evaluate import eval_samples
from paddle_catdog.predict.inference import InferencePredictor, fast_bf16
from paddle_catdog.predict.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a training checkpoint folder")
    parser.add_argument("--data", required=True, help="labelled images: a data root (its val/ is used) or a folder")
    parser.add_argument("--batch", type=int, default=32, help="images per forward pass")
    parser.add_argument("--limit", type=int, default=0, help="use only this many images (0: all)")
    args = parser.parse_args()
    engines = [("dygraph", "fp32"), ("inference", "fp32")] + ([("inference", "bf16")] if fast_bf16() else [])
    reference = None
    for engine, precision in engines:
        if engine == "dygraph":
            predictor = Predictor(args.weights, "cpu")
            # the images evaluate.py would score, in the checkpoint's class order
            samples = eval_samples(predictor.cfg, predictor.classes, args.data).samples
            samples = samples[:args.limit] if args.limit else samples
            paths = [p for p, _ in samples]
            labels = np.array([y for _, y in samples])
        else:
            predictor = InferencePredictor(args.weights, "cpu", num_threads=cpu_count(), precision=precision)
        start = time.perf_counter()
        probs = np.stack([pr for _, pr, err in predictor.predict_paths(paths, args.batch) if err is None])
        seconds = time.perf_counter() - start
        if len(probs) != len(paths):
            raise SystemExit(f"{len(paths) - len(probs)} image(s) failed to decode")
        answers = probs.argmax(1)
        row = {"engine": engine, "precision": precision, "images": len(paths),
               "accuracy": round(float((answers == labels).mean()), 4),
               "images_per_s": round(len(paths) / seconds, 1)}
        if reference is None:
            reference = (probs, answers, row["accuracy"])
        else:
            row.update(max_prob_diff=round(float(np.abs(probs - reference[0]).max()), 5),
                       answers_changed=int((answers != reference[1]).sum()),
                       accuracy_change_points=round(100 * (row["accuracy"] - reference[2]), 2))
        emit("precision", **row)


if __name__ == "__main__":
    main()
