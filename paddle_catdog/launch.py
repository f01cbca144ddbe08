"""The way in for the commands (``run_train.py``, the ``catdog-*`` console scripts, ``python -m
paddle_catdog``). A command owns its process, so this module first sets what a command line wants
process-wide, before Paddle and OpenCV load (``process.quiet_process``), then hands over to ``cli``.
Prediction has a launcher of its own that loads nothing else (``launch_predict.py``). Importing the
library (``paddle_catdog.config``, ``.train``, ...) changes none of this: only MKL's variable, at
package start (``paddle_catdog/__init__.py``)."""
from .process import quiet_process

quiet_process()  # before cli imports Paddle: GLOG_minloglevel is read when Paddle loads

from .cli import data_main, demo_main, evaluate_main, export_main, main, predict_main, train_main  # noqa: E402

__all__ = ["main", "train_main", "predict_main", "evaluate_main", "export_main", "data_main", "demo_main",
           "quiet_process"]
