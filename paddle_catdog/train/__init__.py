"""Training: ``prepare_config(**options)`` (prepare.py) settles a run's config (presets, resume),
``fit(cfg)`` (recipe.py) runs the recipe; one epoch is ``train_one_epoch`` (loop.py);
the optimizer and schedule are in optim.py, the run's plan (epochs, sizes, learning rate,
evaluations; decided once under a time budget) in budget.py and its first measurement in probe.py, the
per-epoch logs and checkpoints in recorder.py, and ``--pretrained`` with freezing in pretrained.py."""
from .prepare import prepare_config
from .recipe import fit

__all__ = ["fit", "prepare_config"]
