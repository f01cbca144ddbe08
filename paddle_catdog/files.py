"""Files that survive a kill: a folder written beside its destination and swapped in by renames,
and a streamed SHA-256. Checkpoints, exports and the download use them. Also what keeps a run's
output safe: a write that fails (a full disk) becomes one line naming the file
(``write_failure``), and a lock file lets one training run at a time own an output folder
(``output_lock``)."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Iterator, Optional

try:
    import fcntl  # POSIX; Windows has no flock, and there the output folder goes unlocked
except ImportError:
    fcntl = None

CHUNK = 1 << 20
LOCK = ".lock"
# errno values of a full disk or quota; EDQUOT is missing on Windows
DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


class OutputError(OSError):
    """Writing a run's output failed or its folder is taken; the message is one line for the user."""


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


def replace_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: into ``<name>.tmp``, then renamed over it, so a full
    disk or a crash midway leaves the previous contents."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    try:
        write_durably(tmp, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


@contextlib.contextmanager
def output_lock(folder: Path, hint: str = "wait for it or use another --output") -> Iterator[None]:
    """Own ``folder`` while the block runs: a second training run on it stops at once instead of
    interleaving its checkpoints and history with the first's. ``<folder>/.lock`` is ``flock``ed
    and holds the owner's pid and start time for the second run's message. The OS drops a flock
    when its process ends, however it ends, so a killed run never leaves a stale lock (the file
    stays; unlocked it means nothing). Without ``fcntl`` (Windows) the folder is not locked."""
    path = Path(folder) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _take_lock(fd):
            raise OutputError(f"{folder}/ is in use by another training run ({lock_holder(path)}); "
                              f"{hint}")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M')}\n".encode())
        except OSError as e:
            raise write_failure(path, e) from e
        yield
    finally:
        # Unlock explicitly: forked children (data loader workers) share this open file, and a
        # worker outliving the run would otherwise keep the folder locked.
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _take_lock(fd: int) -> bool:
    """False when another process holds the lock. A filesystem without flock support (some
    network mounts) or a system without fcntl counts as taken: better unlocked than unusable."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return False
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise
    return True


def lock_holder(path: Path) -> str:
    """``pid 123, started 2026-11-29 01:02`` from a lock file (the holder may be mid-write)."""
    try:
        pid, _, started = Path(path).read_text(encoding="utf-8").strip().partition(" ")
    except (OSError, ValueError):
        pid, started = "", ""
    return f"pid {pid or 'unknown'}" + (f", started {started}" if started else "")
