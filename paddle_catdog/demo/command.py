"""``catdog-demo``: serve the demo page for a checkpoint on this machine only (127.0.0.1), unless
``--host`` says otherwise; no public link unless ``--share``."""
from __future__ import annotations

import argparse
import importlib

from ..checkpoint import DEFAULT_OUTPUT, find_default_weights
from .service import DemoService


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catdog-demo", description="A web page where a visitor drops photos and sees the answer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--weights", default=None, help="training checkpoint or exported model "
                        f"folder (default: the newest best/ under {DEFAULT_OUTPUT}/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 "
                        "exposes the page to your network (docs/en/deploy.md: do it deliberately)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--share", action="store_true", help="also make a temporary public "
                        "gradio.live link (off by default)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "gpu"), help="where to run")
    return parser


def load_app_module():
    """``demo.app``, which needs Gradio: the demo extra."""
    try:
        return importlib.import_module("paddle_catdog.demo.app")
    except ImportError as e:
        raise ValueError(f"the demo needs the demo extra: pip install -e \".[demo]\" ({e})") from e


def serve(args: argparse.Namespace) -> int:
    app_module = load_app_module()
    service = DemoService(str(args.weights or find_default_weights()), device=args.device)
    app_module.launch(app_module.build_app(service), args.host, args.port, args.share)
    return 0
