"""paddle_catdog: a small PaddlePaddle image classifier (plain CNN, ResNet-10/18/34/50).

The layers, each importing only from the ones below it::

    launch  launch_predict  cli  entry    entry points (run_train.py, catdog-*), the one error path
    train/  predict/  evaluate  explain   what a user asks for
    data/  models/  checkpoint  weights  metrics  runlog
    config  transforms  runtime  files  distributed  plots  cpu  torchfile  static_graph  process

Import the parts you need, e.g. ``from paddle_catdog.config import TrainConfig`` and
``from paddle_catdog.train import fit``.
"""
from . import cpu

__version__ = "0.2.0"

# The one thing importing the package does to the process, because it must happen before Paddle
# first loads MKL: MKL's AVX2 kernels on AMD (and other non-Intel) x86 CPUs with AVX2 and FMA,
# ~2x faster training there (cpu.py; CATDOG_MKL_FAST_PATH=0 turns it off). Logging, warnings and
# matplotlib's backend are the commands' business (launch.py).
cpu.apply_mkl_fast_path()
