"""``run_predict.py`` / ``catdog-predict``: classify images and print one line (or JSON object)
per image; a bad file is one ``error:`` line and the exit code 2, the others are still printed."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..checkpoint import DEFAULT_OUTPUT, find_default_weights
from ..runtime import setup_device
from ..transforms import MAX_IMAGE_PIXELS
from .inference import PRECISIONS
from .load import ENGINES, expand_inputs, load_predictor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_predict.py", description="Classify images with a trained checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--img", action="append", required=True, metavar="PATH",
                        help="an image file or a folder of images; repeat for more")
    parser.add_argument("--weights", default=None,
                        help="training checkpoint or exported model folder (default: the newest "
                             f"best/ under {DEFAULT_OUTPUT}/)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line: path, label, probability, probabilities")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="where to run")
    parser.add_argument("--engine", default="inference", choices=ENGINES,
                        help="inference: Paddle Inference (oneDNN on CPU) on the exported model, "
                             "exported on the fly from a checkpoint and cached beside it in "
                             "<checkpoint>.inference/; onnxruntime: ONNX Runtime on model.onnx "
                             "(pip install -e \".[onnx]\"); dygraph: the plain training-time model")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="Paddle Inference arithmetic on CPU: auto is bf16 where the CPU has "
                             "native bfloat16 (AMX, AVX512-BF16; faster, see benchmarks/README.md), "
                             "else fp32; fp32 matches the dygraph model to 1e-4")
    parser.add_argument("--max-image-pixels", type=int, default=None,
                        help="refuse an image whose header declares more pixels than this, before "
                             "decoding it (a 1 MB decompression bomb can declare 30,000 x 30,000); "
                             f"default: the checkpoint's own setting ({MAX_IMAGE_PIXELS:,} unless "
                             "its training run said otherwise)")
    return parser


def predict(args: argparse.Namespace) -> int:
    """Print a line per image; returns 2 when any input failed (each got its ``error:`` line).
    A setting or checkpoint that cannot work raises (the CLI prints it as one line)."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        raise ValueError(f"--max-image-pixels must be at least 1 (got {args.max_image_pixels})")
    weights = Path(args.weights) if args.weights else find_default_weights()
    setup_device(args.device)  # the command owns its process: one math thread per core
    predictor = load_predictor(str(weights), args.engine, args.device, args.precision)
    if args.max_image_pixels is not None:  # else the checkpoint's limit stays
        predictor.limit_image_pixels(args.max_image_pixels)
    paths, errors = expand_inputs(args.img)
    for path, reason in errors:
        print(f"error: {path}: {reason}", file=sys.stderr)
    failed = bool(errors)
    for path, probs, error in predictor.predict_paths(paths, args.batch_size):
        if error is not None:
            print(f"error: {path}: {error}", file=sys.stderr)
            failed = True
            continue
        r = predictor.result(path, probs)
        if args.json:
            print(json.dumps(r, ensure_ascii=False), flush=True)
        else:
            print(f"{path}\t{r['label']}\t{r['probability']:.4f}", flush=True)
    return 2 if failed else 0
