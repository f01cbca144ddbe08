"""Where the photos are: ``find_data_dir`` is the one resolver for ``run_train.py``, evaluation
and the notebooks, so they run unchanged in a checkout, in CI and on AI Studio. In order: the path
given, ``$CATDOG_DATA``, what ``--download`` unpacks (``data/PetImages``) and the other ``data/``
places (beside the current folder or its parent, for notebooks/), then AI Studio's
``/home/aistudio/data/...``: its ``data<ID>/`` folders and their subfolders, then the zips in them.
A folder counts only when it holds images of at least two classes, so ``data/`` holding just
``PetImages/`` is not taken for a one-class data set named PetImages.

AI Studio attaches a data set as a zip (``data<ID>/train.zip``). The first zip whose member names
form a layout we read is unpacked once into ``<zip stem>_unzipped/`` beside it (those mounts are
writable; else under ``/home/aistudio/work/data<ID>/``, else ``data/data<ID>/`` here), with a
marker that later runs find; the folder inside it that holds the classes is used.

A path given explicitly (or in the variable) must hold images: a typo there raises instead of
silently falling back to another folder. The error says how to get the photos and where it looked."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Sequence

from .archive import holds_dataset, unpack_once
from .layouts import DataError, find_samples, resolve_splits

ENV_VAR = "CATDOG_DATA"
AISTUDIO_DATA = Path("/home/aistudio/data")
DOWNLOAD_DEST = "data"  # where --download unpacks (Microsoft's archive: data/PetImages)
DATASET_ID = re.compile(r"data\d+")  # how AI Studio names an attached data set's folder
UNZIPPED = "_unzipped"  # an AI Studio zip is unpacked into "<zip stem>_unzipped"
PETIMAGES_URL = ("https://download.microsoft.com/download/3/E/1/"
                 "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip")
KAGGLE_PAGE = "https://www.kaggle.com/c/dogs-vs-cats/data"


def _subfolders(path: Path) -> List[Path]:
    """Folders in ``path``, leaving out hidden ones and our own unpacks (those are reached
    through their zip, which checks the unpack is complete and of this version of the zip)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and UNZIPPED not in p.name)


def default_candidates(cwd: Optional[Path] = None, aistudio: Path = AISTUDIO_DATA) -> List[Path]:
    """Places tried after the explicit path and the environment variable; a ``.zip`` among them
    is unpacked by ``find_data_dir`` when it holds a data set."""
    cwd = Path(cwd or Path.cwd())
    places = []
    for root in (cwd / DOWNLOAD_DEST, cwd.parent / DOWNLOAD_DEST):
        # data/ before data/train: when data/ holds train/ and val/, both are used (load_data
        # reads data/train through data/ anyway when there is no val/)
        places += [root / "PetImages", root / "dogs-vs-cats", root, root / "train"]
    places.append(aistudio / "dogs-vs-cats")
    # AI Studio mounts each attached data set as /home/aistudio/data/data<ID>/: folders someone
    # unzipped there first (no work), then the zips
    sets = _subfolders(aistudio)
    for folder in sets:
        places += [folder] + _subfolders(folder)
    for folder in sets:
        places += sorted(folder.glob("*.zip"))
    # the root itself only when no data set is attached: else its data<ID>/ folders would be
    # read as classes named data1, data2
    return places + ([] if any(DATASET_ID.fullmatch(p.name) for p in sets) else [aistudio])


def too_few_classes(where: str, present: Sequence[str]) -> str:
    """The one wording for a data set with fewer than two classes (the same as load_data's)."""
    return (f"{where}: need images of at least 2 classes to train, found {len(present)} "
            f"({', '.join(present) or 'none'})")


def classes_with_images(path: Path) -> List[str]:
    """The classes of the training images under ``path`` that have at least one image;
    DataError when ``path`` holds no layout ``find_samples`` reads."""
    train, _ = resolve_splits(str(path))
    return [name for name, n in find_samples(train).counts().items() if n > 0]


def usable(path: Path) -> bool:
    """True when ``path`` holds training images of at least two classes in a layout
    ``find_samples`` reads."""
    if not path.exists():
        return False
    try:
        return len(classes_with_images(path)) >= 2
    except (DataError, OSError):
        return False


def check_given(path: Path, origin: str) -> None:
    """Raise DataError saying why ``path`` (given by ``origin``) cannot be trained on, if so."""
    if not path.exists():
        raise DataError(f"data path not found ({origin}): {path}")
    if path.suffix.lower() == ".zip" and path.is_file():
        raise DataError(f"{origin} ({path}) is a zip: unzip it and pass the folder (without a path, "
                        f"a zip under {AISTUDIO_DATA}/data<ID>/ is unpacked for you)")
    try:
        present = classes_with_images(path)
    except (DataError, OSError) as e:
        raise DataError(f"{origin} ({path}) holds no images in a layout this project reads: {e} "
                        "(see docs/en/data.md)") from e
    if len(present) < 2:
        inner = path / present[0] if present else None
        hint = f"; did you mean {inner}?" if inner is not None and usable(inner) else ""
        raise DataError(too_few_classes(f"{origin} ({path})", present) + hint)


def from_zip(archive: Path) -> Optional[Path]:
    """The data folder inside an AI Studio zip, unpacked once (see the module docstring); None
    when the zip holds no data set."""
    if not holds_dataset(archive):
        return None
    name = archive.stem + UNZIPPED
    home = archive.parent.parent.parent  # /home/aistudio for /home/aistudio/data/data<ID>/x.zip
    targets = [archive.parent / name, home / "work" / archive.parent.name / name,
               Path.cwd() / DOWNLOAD_DEST / archive.parent.name / name]
    root = unpack_once(archive, targets)
    # the top first, so a zip holding train/ and val/ keeps its split; then PetImages/ and the like
    return next((p for p in [root] + _subfolders(root) if usable(p)), None)


def missing_data_message(tried: Sequence[Path]) -> str:
    return ("no photos found. Pass --data-dir (in a notebook: set DATA_DIR in its first cell) or "
            f"set ${ENV_VAR} to a folder of images; or run 'python run_train.py --download' "
            f"(Microsoft's PetImages, about 800 MB, into {DOWNLOAD_DEST}/), or get train.zip from "
            f"{KAGGLE_PAGE}; on AI Studio attach a cats-vs-dogs data set (its zip under "
            f"{AISTUDIO_DATA}/data<ID>/ is unpacked beside it). "
            "Layouts read: cat.N.jpg/dog.N.jpg names, one folder per class, or a list file "
            "(docs/en/data.md); at least 2 classes. Looked in: " + ", ".join(str(p) for p in tried))


def find_data_dir(data_dir: Optional[str] = None, candidates: Optional[Sequence[Path]] = None) -> Path:
    """The data folder to use (see the module docstring); DataError when there is none."""
    for given, origin in ((data_dir, "the path given"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if given:
            check_given(Path(given), origin)
            return Path(given)
    tried = list(candidates if candidates is not None else default_candidates())
    for place in tried:
        if place.suffix.lower() == ".zip" and place.is_file():
            found = from_zip(place)
            if found is not None:
                return found
        elif usable(place):
            return place
    raise DataError(missing_data_message(tried))
