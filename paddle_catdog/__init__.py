"""paddle_catdog: a small PaddlePaddle image classifier (plain CNN and ResNet-18/34/50).

The layers, each importing only from the ones below it::

    cli                                   entry points (run_train.py, catdog-*), the one error path
    train/  predict/  evaluate  explain   what a user asks for
    data/  models/  checkpoint  weights  metrics  runlog
    config  transforms  runtime  files  distributed  plots  cpu  torchfile  static_graph

Import the parts you need, e.g. ``from paddle_catdog.config import TrainConfig`` and
``from paddle_catdog.train import fit``.
"""
import os
import warnings

from . import cpu

__version__ = "0.2.0"

# Where the package starts, before any module of it imports Paddle or OpenCV: quiet Paddle's C++
# info logs and OpenCV's multi-line decode warnings (we report each bad file once, with its
# reason), and Paddle's import-time note about ccache, which only matters for building custom
# operators. setdefault: a user who sets them keeps their value.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
warnings.filterwarnings("ignore", message=".*ccache.*")
warnings.filterwarnings("ignore", message=".*always track global mean and variance.*")
# MKL's AVX2 kernels on AMD (and other non-Intel) x86 CPUs: ~2x faster training (see cpu.py).
cpu.apply_mkl_fast_path()
