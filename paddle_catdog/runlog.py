"""What a run leaves to look at: ``history.jsonl`` (one JSON line per finished epoch; the curves
plot reads it) and the VisualDL logs in ``<output>/vdl``. Training writes both, evaluation adds
its PR curve."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .config import TrainConfig
from .files import replace_file

log = logging.getLogger("paddle_catdog")

HISTORY = "history.jsonl"


def append_history(path: Path, row: Dict[str, float]) -> None:
    """One JSON line per finished epoch. A resumed run first drops rows of epochs it is about to
    redo (``keep_history``), so the file never holds an epoch twice."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def keep_history(path: Path, upto_epoch: int) -> None:
    """Drop the rows after ``upto_epoch`` (a resumed run redoes those epochs); all rows stay
    when the rewrite fails (a full disk)."""
    kept = read_history(path, upto_epoch)
    replace_file(Path(path), "".join(json.dumps(r) + "\n" for r in kept).encode("utf-8"))


def read_history(path: Path, upto_epoch: Optional[int] = None) -> List[Dict[str, float]]:
    if not Path(path).is_file():
        return []
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if upto_epoch is None or r["epoch"] <= upto_epoch]


class VdlLogger:
    """VisualDL LogWriter in <output>/vdl; a no-op when VisualDL cannot be imported."""

    def __init__(self, logdir: Optional[Path]) -> None:
        self.writer = None
        if logdir is None:  # ranks other than 0
            return
        try:
            from visualdl import LogWriter
            self.writer = LogWriter(logdir=str(logdir))
        except Exception as e:  # an optional extra: training must not fail for its logs
            log.warning("VisualDL logging disabled: %s", e)
            self.writer = None

    def scalars(self, values: Dict[str, float], step: int) -> None:
        if self.writer:
            for tag, value in values.items():
                self.writer.add_scalar(tag=tag, value=float(value), step=step)

    def image(self, tag: str, img: np.ndarray, step: int = 0) -> None:
        if self.writer:
            self.writer.add_image(tag=tag, img=img, step=step)

    def hparams(self, cfg: TrainConfig) -> None:
        if self.writer:
            # VisualDL's protobuf rejects bools as ints: log them as strings.
            values = {k: (v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v))
                      for k, v in cfg.to_dict().items() if v is not None}
            self.writer.add_hparams(hparams_dict=values, metrics_list=["val/acc", "val/loss"])

    def pr_curve(self, tag: str, labels: np.ndarray, probs: np.ndarray, step: int) -> None:
        if self.writer:
            # VisualDL 2.5.3 computes the curve with ``np.float``, an alias NumPy 1.24 removed;
            # lend it for this call only (visualdl 2.5 is the last release).
            lent = "float" not in vars(np)
            if lent:
                np.float = float
            try:
                self.writer.add_pr_curve(tag=tag, labels=labels, predictions=probs, step=step)
            finally:
                if lent:
                    del np.float

    def close(self) -> None:
        if self.writer:
            self.writer.close()
