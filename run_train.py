#!/usr/bin/env python
"""Train a classifier: ``python run_train.py --data-dir PATH [options]``; ``--help`` lists them."""
import sys

from paddle_catdog.launch import train_main

if __name__ == "__main__":
    sys.exit(train_main())
