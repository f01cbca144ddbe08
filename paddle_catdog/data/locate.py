"""Where the photos are: ``find_data_dir`` is the one resolver for ``run_train.py``, evaluation
and the notebooks, so they run unchanged in a checkout, in CI and on AI Studio. In order: the path
given, ``$CATDOG_DATA``, what ``--download`` unpacks and the other ``data/`` places (beside the
current folder or its parent, for notebooks/), then AI Studio's ``/home/aistudio/data/...``.
A path given explicitly (or in the variable) must hold images: a typo there raises instead of
silently falling back to another folder. The error says how to get the photos and where it looked."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence

from .layouts import DataError, find_samples, resolve_splits

ENV_VAR = "CATDOG_DATA"
AISTUDIO_DATA = Path("/home/aistudio/data")
DOWNLOAD_DEST = "data"  # where --download unpacks (Microsoft's archive: data/PetImages)
PETIMAGES_URL = ("https://download.microsoft.com/download/3/E/1/"
                 "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip")
KAGGLE_PAGE = "https://www.kaggle.com/c/dogs-vs-cats/data"


def default_candidates(cwd: Optional[Path] = None, aistudio: Path = AISTUDIO_DATA) -> List[Path]:
    """Places tried after the explicit path and the environment variable."""
    cwd = Path(cwd or Path.cwd())
    places = []
    for root in (cwd / DOWNLOAD_DEST, cwd.parent / DOWNLOAD_DEST):
        places += [root / "PetImages", root / "dogs-vs-cats", root / "train", root]
    places.append(aistudio / "dogs-vs-cats")
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


def missing_data_message(tried: Sequence[Path]) -> str:
    return ("no photos found. Pass --data-dir (in a notebook: set DATA_DIR in its first cell) or "
            f"set ${ENV_VAR} to a folder of images; or run 'python run_train.py --download' "
            f"(Microsoft's PetImages, about 800 MB, into {DOWNLOAD_DEST}/), or get train.zip from "
            f"{KAGGLE_PAGE}; on AI Studio unzip the data set into {AISTUDIO_DATA}/dogs-vs-cats. "
            "Layouts read: cat.N.jpg/dog.N.jpg names, one folder per class, or a list file "
            "(README: Data). Looked in: " + ", ".join(str(p) for p in tried))


def find_data_dir(data_dir: Optional[str] = None, candidates: Optional[Sequence[Path]] = None) -> Path:
    """The data folder to use (see the module docstring); DataError when there is none."""
    for given, origin in ((data_dir, "the path given"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if given:
            if not Path(given).exists():
                raise DataError(f"data path not found ({origin}): {given}")
            if not usable(Path(given)):
                raise DataError(f"{origin} ({given}) holds no images in a layout this project reads "
                                "(see README: Data)")
            return Path(given)
    tried = list(candidates if candidates is not None else default_candidates())
    for place in tried:
        if usable(place):
            return place
    raise DataError(missing_data_message(tried))
