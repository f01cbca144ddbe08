"""``prepare_config(**options)``: the config a run trains, settled before ``fit`` starts.

What a user gives (keyword arguments in Python; the options typed on the command line, which the
CLI passes the same way) is all that distinguishes a setting from its default, so this is where
the presets apply, once, for Python and the command line alike:

- a fresh run with ``pretrained`` gets that preset for every option not given (pretrained.py);
- a resumed run (``resume``) gets its checkpoint's settings, the plan it recorded (epochs, final
  image size) included, except this invocation's runtime options and what was given.

``fit(cfg)`` then trains exactly ``cfg``: ``fit(prepare_config(data_dir="photos",
pretrained="efficientnet_lite0"))``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import checkpoint as ckpt
from ..config import TrainConfig, merge_resume
from .pretrained import apply_pretrained_defaults


def resume_folder(cfg: TrainConfig) -> Path:
    """The checkpoint folder ``cfg.resume`` names ('auto': ``<output>/last``), an interrupted swap
    put back first (the resumed run owns the folder)."""
    return ckpt.recover_checkpoint(Path(cfg.output) / "last" if cfg.resume == "auto" else Path(cfg.resume))


def prepare_config(**options) -> TrainConfig:
    """The validated config of a run given ``options`` (``TrainConfig`` field names); see the
    module docstring. An unknown option raises ValueError naming it."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)}")
    cfg = TrainConfig(**options)
    if cfg.resume:
        saved = TrainConfig.from_dict(ckpt.read_meta(resume_folder(cfg))["config"], strict=False)
        return merge_resume(cfg, saved, set(options))
    return apply_pretrained_defaults(cfg, set(options)).validate()
