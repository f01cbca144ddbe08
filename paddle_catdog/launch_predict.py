"""The way in for prediction (``run_predict.py``, ``catdog-predict``): ``launch.py`` for one command.
It loads the prediction path alone (``entry.predict_main``), not the trainer, evaluation's figures
(matplotlib) or the demo, so a prediction starts about a second sooner (benchmarks/README.md,
whole-process figures)."""
from .process import quiet_process

quiet_process()  # before Paddle loads, as launch.py does

from .entry import predict_main  # noqa: E402

__all__ = ["predict_main"]
