#!/usr/bin/env python
"""Classify images: ``python run_predict.py --img PATH [--img PATH ...] [--weights CKPT] [--json]``."""
import sys

from paddle_catdog.launch_predict import predict_main

if __name__ == "__main__":
    sys.exit(predict_main())
