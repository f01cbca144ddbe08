"""Checkpoint folders that describe themselves and survive a kill.

A checkpoint is a folder::

    model.safetensors   weights (safetensors: plain tensors, loading it cannot run code)
    meta.json           config, class names, epoch, best metric, last metrics
    train_state.pdopt   optimizer and LR-scheduler state (a Paddle pickle; read only by --resume)

Prediction and export read only the first two, so a checkpoint from a stranger never gets
unpickled there. Writes go to a temporary folder that is then swapped in by renames
(``files.atomic_folder``), so a kill at any moment leaves either the previous or the new checkpoint
complete: readers then read ``<folder>.old`` (``resolve_checkpoint``), and only the run that
owns the folder puts it back (``recover_checkpoint``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import paddle
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .config import TrainConfig
from .files import atomic_folder, old_name, restore_interrupted, write_durably, write_failure
from .models import create_model

WEIGHTS = "model.safetensors"
META = "meta.json"
TRAIN_STATE = "train_state.pdopt"
FORMAT_VERSION = 1
DEFAULT_OUTPUT = "output"  # training's --output default, where prediction looks


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not fit; the message is for the user."""


def state_to_numpy(model: paddle.nn.Layer) -> Dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v.numpy()) for k, v in model.state_dict().items()}


def save_checkpoint(folder: Path, model: paddle.nn.Layer, cfg: TrainConfig, classes: List[str],
                    epoch: int, best_metric: float, metrics: Optional[Dict[str, float]] = None,
                    optimizer: Optional[paddle.optimizer.Optimizer] = None,
                    scheduler: Optional[paddle.optimizer.lr.LRScheduler] = None,
                    scaler: Optional[paddle.amp.GradScaler] = None) -> Path:
    """Write a complete checkpoint folder atomically (``files.atomic_folder``). A failed write (a
    full disk) leaves the previous checkpoint as it was and raises ``files.OutputError``, one line
    that names the folder and says so."""
    folder = Path(folder)
    outcome = ("the previous checkpoint there is kept" if _complete(folder)
               else "no checkpoint was written there")
    try:
        with atomic_folder(folder) as tmp:
            save_file(state_to_numpy(model), str(tmp / WEIGHTS), metadata={"format": "paddle_catdog"})
            meta = {"format_version": FORMAT_VERSION, "model": cfg.model, "classes": list(classes),
                    "epoch": int(epoch), "best_metric": float(best_metric), "metrics": metrics or {},
                    "config": cfg.to_dict()}
            write_durably(tmp / META, json.dumps(meta, indent=2).encode())
            if optimizer is not None:
                _save_train_state(tmp / TRAIN_STATE, model, optimizer, scheduler, scaler)
    except (OSError, SafetensorError) as e:  # safetensors reports a full disk as its own error
        raise write_failure(folder, e, outcome) from e
    return folder


def _save_train_state(path: Path, model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer,
                      scheduler: Optional[paddle.optimizer.lr.LRScheduler],
                      scaler: Optional[paddle.amp.GradScaler] = None) -> None:
    # the GradScaler's loss scale and its good/bad step counts (mixed precision on a GPU): a
    # resumed run goes on from them instead of re-learning the scale from 2^15
    state = {"optimizer": _rename_optimizer_state(optimizer.state_dict(), _param_names(model)),
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "scaler": scaler.state_dict() if scaler is not None else None}
    paddle.save(state, str(path))
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _complete(folder: Path) -> bool:
    return (folder / META).is_file() and (folder / WEIGHTS).is_file()


def resolve_checkpoint(folder: Path) -> Path:
    """The complete checkpoint folder to read for ``folder``: ``folder`` itself, or ``<folder>.old``
    while a swap is (or was left) between its renames; raise CheckpointError when there is none.
    Reading never changes a file: only the training run that owns the folder restores a swap
    (``recover_checkpoint``), so a reader cannot break the trainer's next rename."""
    folder = Path(folder)
    if not _complete(folder) and _complete(old_name(folder)):
        return old_name(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint not found: {folder}")
    for name in (META, WEIGHTS):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} is not a checkpoint folder (no {name})")
    return folder


def recover_checkpoint(folder: Path) -> Path:
    """For the run that owns ``folder`` (``--resume``): put ``<folder>.old`` back when a swap was
    killed between its renames, then ``resolve_checkpoint``."""
    folder = Path(folder)
    if _complete(old_name(folder)):
        restore_interrupted(folder, complete=_complete(folder))
    return resolve_checkpoint(folder)


def read_meta(folder: Path) -> Dict[str, Any]:
    folder = resolve_checkpoint(folder)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder / META}: corrupt ({e})") from e
    expected = {"model": str, "classes": list, "config": dict, "epoch": int, "best_metric": (int, float)}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{folder / META}: corrupt (not a JSON object)")
    for key, kind in expected.items():
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{folder / META}: missing or invalid {key!r}")
    try:  # the config rebuilds the model and the transform: check it here, once, for every caller
        TrainConfig.from_dict(meta["config"], strict=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / META}: invalid config ({e})") from e
    return meta


def read_weights(path: Path) -> Dict[str, np.ndarray]:
    """Load a safetensors file (never a pickle)."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt weights ({e})") from e


def load_weights_into(model: paddle.nn.Layer, weights: Dict[str, np.ndarray], source: str,
                      skip_mismatched: Tuple[str, ...] = ()) -> List[str]:
    """Copy ``weights`` into ``model`` after checking every key and shape; keys starting with a
    prefix in ``skip_mismatched`` may differ (a new classifier head). Returns skipped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights and not k.startswith(skip_mismatched)]
    unexpected = [k for k in weights if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not fit this model ("
                              f"{len(missing)} missing, {len(unexpected)} unexpected keys, e.g. "
                              f"{(missing + unexpected)[0]})")
    skipped = []
    for k in own:
        if k in weights and tuple(own[k].shape) != tuple(weights[k].shape):
            if k.startswith(skip_mismatched):
                skipped.append(k)
                continue
            raise CheckpointError(f"{source}: {k} has shape {tuple(weights[k].shape)}, the model "
                                  f"expects {tuple(own[k].shape)} (another model or class count?)")
    # keys kept fresh are given their own values (Paddle warns about every key left out)
    model.set_state_dict({k: paddle.to_tensor(weights[k]) if k in weights and k not in skipped else own[k]
                          for k in own})
    return skipped + [k for k in own if k not in weights]


def load_config(folder: Path) -> Tuple[TrainConfig, List[str], Dict[str, Any]]:
    """(config, class names, meta) of a checkpoint folder, without its weights."""
    meta = read_meta(folder)
    return TrainConfig.from_dict(meta["config"], strict=False), list(meta["classes"]), meta


def load_model(folder: Path) -> Tuple[paddle.nn.Layer, TrainConfig, List[str], Dict[str, Any]]:
    """Rebuild the model from the checkpoint folder alone; returns (model in eval mode, config,
    class names, meta)."""
    folder = resolve_checkpoint(Path(folder))
    cfg, classes, meta = load_config(folder)  # read_meta checked that the config parses
    try:
        model = create_model(meta["model"], num_classes=len(classes), **cfg.model_options())
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{folder}: cannot rebuild the model ({e})") from e
    load_weights_into(model, read_weights(folder / WEIGHTS), str(folder / WEIGHTS))
    model.eval()
    return model, cfg, classes, meta


def _param_names(model: paddle.nn.Layer) -> Dict[str, str]:
    """Paddle's unique parameter name (``conv2d_12.w_0``) -> structured name (``layer1.0.conv1.weight``)."""
    return {p.name: n for n, p in model.named_parameters()}


def _rename_optimizer_state(state: Dict[str, Any], names: Dict[str, str]) -> Dict[str, Any]:
    """Optimizer state is keyed by Paddle's unique parameter names, which depend on how many
    layers the process built before (a resumed notebook run gets other names). Key it by the
    structured names instead, which are the same for the same architecture. Works both ways."""
    def rename(key: str) -> str:
        best = max((old for old in names if key.startswith(old + "_")), key=len, default=None)
        return names[best] + key[len(best):] if best else key
    out: Dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, dict):  # master_weights: {param name: tensor}
            out[key] = {names.get(k, k): v for k, v in value.items()}
        else:
            out[rename(key)] = value
    return out


def load_train_state(folder: Path, model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer,
                     scheduler: Optional[paddle.optimizer.lr.LRScheduler],
                     scaler: Optional[paddle.amp.GradScaler] = None) -> None:
    """Restore optimizer, scheduler and GradScaler state for --resume (a pickle: only our own runs)."""
    path = Path(folder) / TRAIN_STATE
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {TRAIN_STATE}, cannot resume the optimizer")
    try:
        state = paddle.load(str(path))
    except Exception as e:  # paddle raises many types for a damaged pickle
        raise CheckpointError(f"{path}: corrupt ({e})") from e
    to_unique = {n: unique for unique, n in _param_names(model).items()}
    optimizer.set_state_dict(_rename_optimizer_state(state["optimizer"], to_unique))
    if scheduler is not None and state.get("scheduler"):
        scheduler.set_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])


def find_default_weights(output: str = DEFAULT_OUTPUT) -> Path:
    """The newest ``best`` checkpoint under ``output`` (``output/best`` or ``output/*/best``)."""
    root = Path(output)
    found = [p.parent for p in list(root.glob(f"best/{META}")) + list(root.glob(f"*/best/{META}"))]
    if not found:
        raise CheckpointError(f"no checkpoint found under {root}/: train first "
                                   "(python run_train.py --data-dir ...) or pass --weights")
    return max(found, key=lambda p: (p / META).stat().st_mtime)
