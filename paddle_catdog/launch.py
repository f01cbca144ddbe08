"""The way in for the commands (``run_train.py``, ``run_predict.py``, the ``catdog-*`` console
scripts, ``python -m paddle_catdog``). A command owns its process, so this module first sets what a
command line wants process-wide, before Paddle and OpenCV load (``quiet_process``), then hands over
to ``cli``. Importing the library (``paddle_catdog.config``, ``.train``, ...) changes none of this:
only MKL's variable, at package start (``paddle_catdog/__init__.py``)."""
import os
import warnings


def quiet_process() -> None:
    """Quiet Paddle's C++ info logs (read when Paddle loads) and OpenCV's multi-line decode
    warnings (each bad file is reported once, with its reason), Paddle's import-time notes about
    ccache (only for building custom operators) and batch-norm statistics; draw figures to files
    without a display (Agg). ``setdefault``: a user who sets a variable keeps their value."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.filterwarnings("ignore", message=".*ccache.*")
    warnings.filterwarnings("ignore", message=".*always track global mean and variance.*")


quiet_process()  # before cli imports Paddle: GLOG_minloglevel is read when Paddle loads

from .cli import data_main, demo_main, evaluate_main, export_main, main, predict_main, train_main  # noqa: E402

__all__ = ["main", "train_main", "predict_main", "evaluate_main", "export_main", "data_main", "demo_main"]
