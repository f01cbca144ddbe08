"""What a command sets for its whole process before Paddle and OpenCV load (``quiet_process``).
Standard library only, so calling it first really comes before Paddle: the launchers
(``launch.py``, ``launch_predict.py``) and the AI Studio app call it; importing the library does
not (``paddle_catdog/__init__.py``)."""
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
