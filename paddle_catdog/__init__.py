"""paddle_catdog: a small PaddlePaddle image classifier (plain CNN and ResNet-18/34/50).

Import the parts you need, e.g. ``from paddle_catdog.config import TrainConfig`` and
``from paddle_catdog.engine import fit``; nothing heavy happens at import time here.
"""
__version__ = "0.1.0"
