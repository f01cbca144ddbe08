"""Zips of photos: ``unpack`` (members that would land outside the folder are refused, macOS
junk is left out), ``holds_dataset`` (whether a zip's member names form a layout ``layouts``
reads, judged without unpacking) and ``unpack_once`` (into a hidden temporary folder renamed into
place, with a marker written last, so a second call, or one after an interrupted unpack, knows
whether the work is done). The download and the AI Studio step of ``locate`` use them."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Dict, List, Sequence, Set

from .layouts import IMAGE_EXTENSIONS, KAGGLE_NAME, LIST_NAMES, DataError

log = logging.getLogger("paddle_catdog")

MARKER = ".catdog_unpacked"  # written last inside the unpacked folder: "<zip name>\t<zip size>"


def is_junk(name: str) -> bool:
    """Members a zip made on a Mac carries beside the photos: ``__MACOSX/`` and ``._name``
    resource forks, which end in .jpg too and would count as images (and as a class folder)."""
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("._"))


def unpack(archive: Path, dest: Path) -> List[Path]:
    """Extract ``archive`` into ``dest`` (refusing members that would land outside it, leaving
    out ``is_junk`` ones); returns the top-level entries it created."""
    dest = dest.resolve()
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            if not (dest / name).resolve().is_relative_to(dest):
                raise DataError(f"{archive}: member {name!r} points outside {dest}; not unpacking")
        members = [n for n in z.namelist() if not is_junk(n)]
        z.extractall(dest, members)
        tops = sorted({Path(n).parts[0] for n in members if Path(n).parts})
    return [dest / t for t in tops]


def holds_dataset(archive: Path) -> bool:
    """True when the member names show at least two classes in one place: ``x/cat.1.jpg`` and
    ``x/dog.1.jpg``, or ``x/Cat/1.jpg`` and ``x/Dog/1.jpg``, or a ``train_list.txt``. A zip of
    unlabelled test images (Kaggle's test1.zip: ``test1/1.jpg``) is not one."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if not is_junk(n)]
    except (zipfile.BadZipFile, OSError):
        return False
    if any(PurePosixPath(n).name in LIST_NAMES for n in names):
        return True
    classes: Dict[PurePosixPath, Set[str]] = {}
    for name in names:
        path = PurePosixPath(name)
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        match = KAGGLE_NAME.match(path.name)
        if match:  # x/cat.1.jpg: class cat in x
            classes.setdefault(path.parent, set()).add(match.group(1).lower())
        else:  # x/Cat/1.jpg: class Cat in x
            classes.setdefault(path.parent.parent, set()).add(path.parent.name)
    return any(len(labels) >= 2 for labels in classes.values())


def _stamp(archive: Path) -> str:
    return f"{archive.name}\t{archive.stat().st_size}\n"


def unpacked_already(archive: Path, dest: Path) -> bool:
    """True when ``dest`` holds a complete unpack of this ``archive`` (same name and size)."""
    marker = dest / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8") == _stamp(archive)


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (created if missing). Tried, not asked with
    ``os.access``: as root that says yes on a read-only mount."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=folder))
        return True
    except OSError:
        return False


def unpack_once(archive: Path, targets: Sequence[Path]) -> Path:
    """Unpack ``archive`` into the first writable of ``targets`` unless one of them already holds
    it; returns that folder. Logs one line when it unpacks."""
    for dest in targets:
        if unpacked_already(archive, dest):
            return dest
    dest = next((d for d in targets if writable(d.parent)), None)
    if dest is None:
        raise DataError(f"cannot unpack {archive}: none of {', '.join(map(str, targets))} is writable")
    log.info("unpacking %s into %s (once: later runs use the folder)", archive, dest)
    part = dest.with_name(f".{dest.name}.part")  # hidden: never mistaken for a data folder
    shutil.rmtree(part, ignore_errors=True)  # what an interrupted unpack left
    try:
        unpack(archive, part)
        (part / MARKER).write_text(_stamp(archive), encoding="utf-8")
        shutil.rmtree(dest, ignore_errors=True)  # an unpack of an older version of the zip
        os.replace(part, dest)
    except (zipfile.BadZipFile, OSError) as e:
        shutil.rmtree(part, ignore_errors=True)
        raise DataError(f"cannot unpack {archive} into {dest}: {e} (a damaged zip or a full disk?); "
                        "or unzip it yourself and pass --data-dir") from e
    return dest
