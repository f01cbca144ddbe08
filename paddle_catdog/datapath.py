"""Where the photos are, for notebooks and scripts that should run unchanged in a checkout, in
CI and on AI Studio: ``find_data_dir`` tries, in order, the path given, ``$CATDOG_DATA``,
``data/`` (beside the current folder or its parent, for notebooks/), then AI Studio's
``/home/aistudio/data/...``, and says where it looked when nothing fits."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence

from .dataset import DataError, find_samples, resolve_splits

ENV_VAR = "CATDOG_DATA"
AISTUDIO_DATA = Path("/home/aistudio/data")


def default_candidates(cwd: Optional[Path] = None, aistudio: Path = AISTUDIO_DATA) -> List[Path]:
    """Places tried after the explicit path and the environment variable."""
    cwd = Path(cwd or Path.cwd())
    places = [cwd / "data", cwd.parent / "data", aistudio / "dogs-vs-cats"]
    # AI Studio mounts each attached data set as /home/aistudio/data/data<ID>/ (unzip it there)
    if aistudio.is_dir():
        places += sorted(p for p in aistudio.iterdir() if p.is_dir())
    return places + [aistudio]


def usable(path: Path) -> bool:
    """True when ``path`` holds training images in a layout ``find_samples`` reads."""
    if not path.exists():
        return False
    try:
        train, _ = resolve_splits(str(path))
        return bool(find_samples(train).samples)
    except (DataError, OSError):
        return False


def find_data_dir(data_dir: Optional[str] = None, candidates: Optional[Sequence[Path]] = None) -> Path:
    """The data folder to use. A path given explicitly, or in ``$CATDOG_DATA``, must be usable:
    a typo there raises instead of silently falling back to another folder."""
    for given, origin in ((data_dir, "the path given"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if given:
            if not usable(Path(given)):
                raise DataError(f"{origin} ({given}) holds no images in a layout this project reads "
                                "(see README: Data)")
            return Path(given)
    tried = list(candidates if candidates is not None else default_candidates())
    for place in tried:
        if usable(place):
            return place
    raise DataError(
        "no photos found. Set DATA_DIR in the notebook's first cell, or the environment variable "
        f"{ENV_VAR}, to a folder of images (e.g. the Dogs-vs-Cats train/ and val/ folders); "
        "on AI Studio unzip the data set into /home/aistudio/data/dogs-vs-cats. Looked in: "
        + ", ".join(str(p) for p in tried))
