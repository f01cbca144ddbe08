"""Files that survive a kill: a folder written beside its destination and swapped in by renames,
and a streamed SHA-256. Checkpoints, exports and the download use them. Also a write that fails
(a full disk) becomes one line naming the file (``write_failure``)."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

CHUNK = 1 << 20
# errno values of a full disk or quota; EDQUOT is missing on Windows
DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


class OutputError(OSError):
    """Writing a run's output failed; the message is one line for the user."""


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC or a quota, also when a library reports it only in its own message (safetensors
    says ``I/O error: No space left on device (os error 28)``)."""
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return True
    text = str(error)
    return any(os.strerror(code) in text or f"os error {code})" in text for code in DISK_FULL)


def write_failure(path: Path, error: BaseException, outcome: str = "") -> OutputError:
    """The one-line error for a failed write of ``path``; ``outcome`` says what is left (e.g. that
    the previous checkpoint is kept). Raise it ``from error``, so the cause stays for debugging."""
    if is_disk_full(error):
        what = f"no space left on device writing {path}"
    else:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        what = f"cannot write {path}: {' '.join(reason.split())}"  # one line, whatever the cause
    return OutputError(what + (f"; {outcome}" if outcome else ""))


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def old_name(folder: Path) -> Path:
    """Where the previous version of ``folder`` waits during a swap."""
    return folder.with_name(folder.name + ".old")


@contextlib.contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty ``<folder>.tmp`` beside ``folder`` (what a killed write left there is
    cleared first); when the block ends without an error, swap it in: ``folder`` -> ``.old``,
    ``.tmp`` -> ``folder``, drop ``.old``. A kill between the two renames leaves ``.old`` complete
    (``restore_interrupted`` puts it back); an error leaves ``folder`` as it was. Readers never see
    half a folder. One writer per folder at a time (a training run owns its output)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        fsync_dir(tmp)
        old = old_name(folder)
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        fsync_dir(folder.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def restore_interrupted(folder: Path, complete: bool) -> None:
    """Put ``<folder>.old`` back when a swap was killed between its renames: ``complete`` says
    whether ``folder`` itself is usable."""
    old = old_name(Path(folder))
    if not complete and old.is_dir():
        if Path(folder).exists():
            shutil.rmtree(folder)
        os.replace(old, folder)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
