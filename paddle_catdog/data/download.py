"""Getting the photos on a fresh machine: ``python -m paddle_catdog.data download``.

Fetches Microsoft's Kaggle Cats-and-Dogs archive (``PetImages/Cat``, ``PetImages/Dog``; the
download the Keras "image classification from scratch" example uses) with a progress bar,
resumes a partial download with an HTTP Range request, checks the archive (size, optional
SHA-256, every member's CRC), unpacks it and removes the files that do not decode (the archive
holds a few empty or broken JPEGs), listing them in ``removed.txt``.
"""
from __future__ import annotations

import argparse
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

from tqdm import tqdm

from ..files import CHUNK, sha256_of
from .archive import unpack
from .check import drop_unreadable
from .layouts import DataError, find_samples
from .locate import DOWNLOAD_DEST, KAGGLE_PAGE, PETIMAGES_URL

log = logging.getLogger("paddle_catdog")

TIMEOUT = 30.0  # seconds without an answer before a connection counts as dead


def manual_hint(dest: str) -> str:
    return (f"offline? download {PETIMAGES_URL} (or train.zip from {KAGGLE_PAGE}) elsewhere and "
            f"unpack it into {dest}/ (docs/en/data.md)")


def _total_size(response, offset: int) -> Optional[int]:
    """The full size of the file from a 200 or 206 response's headers, when the server says."""
    content_range = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    if response.status == 206 and "/" in content_range and not content_range.endswith("*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return int(length) + (offset if response.status == 206 else 0) if length else None


def download_file(url: str, path: Path, progress: bool = True, timeout: float = TIMEOUT) -> Path:
    """Download ``url`` to ``path``, appending to ``<path>.part`` when an earlier attempt left
    one (HTTP Range; a server that ignores it sends everything again and the part is restarted).
    The part is renamed to ``path`` only once its size matches what the server announced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to send: the part is already complete
            os.replace(part, path)
            return path
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}; {manual_hint(str(path.parent))}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"cannot download {url} ({reason}); {manual_hint(str(path.parent))}") from e
    with response:
        if offset and response.status != 206:
            log.info("server ignored the resume request: downloading %s from the start", url)
            offset = 0
        elif offset:
            log.info("resuming %s at %.1f MB", url, offset / 1e6)
        total = _total_size(response, offset)
        _copy_stream(response, part, offset, total, progress, url)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DataError(f"{url}: got {size} of {total} bytes (connection dropped?); run the "
                        "same command again to resume")
    os.replace(part, path)
    return path


def _copy_stream(response, part: Path, offset: int, total: Optional[int], progress: bool, url: str) -> None:
    with open(part, "ab" if offset else "wb") as f, \
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, disable=not progress,
                 desc=Path(part.name).stem, leave=False) as bar:
        while True:
            try:
                chunk = response.read(CHUNK)
            except OSError as e:  # timeouts and resets mid-stream: keep the part for a resume
                raise DataError(f"{url}: download interrupted ({e}); run the same command again "
                                "to resume") from e
            if not chunk:
                break
            f.write(chunk)
            bar.update(len(chunk))


def check_archive(path: Path, sha256: Optional[str] = None) -> None:
    """Raise DataError unless ``path`` is a complete zip whose members all pass their CRC (and
    whose SHA-256 matches, when given)."""
    if sha256 and sha256_of(path).lower() != sha256.lower():
        raise DataError(f"{path}: SHA-256 differs from {sha256} (corrupt or another file); delete it "
                        "and download again")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a complete zip archive ({e}); delete it and download again") from e
    if bad is not None:
        raise DataError(f"{path}: member {bad} is corrupt; delete the archive and download again")


def remove_undecodable(root: Path, remove: bool = True, progress: bool = True) -> List[Tuple[str, str]]:
    """Decode-check every image under ``root`` (check.drop_unreadable); delete the bad ones
    unless ``remove`` is False, and list them in ``<root>/removed.txt`` either way."""
    samples = find_samples(str(root))
    _, bad = drop_unreadable(samples.samples, progress=progress)
    for path, _ in bad:
        if remove:
            Path(path).unlink(missing_ok=True)
    listing = root / "removed.txt"
    listing.write_text("".join(f"{p}\t{r}\n" for p, r in bad), encoding="utf-8")
    if bad:
        log.warning("%s %d file(s) that do not decode; listed in %s", "removed" if remove else "found",
                    len(bad), listing)
    return bad


def prepare(url: str = PETIMAGES_URL, dest: str = DOWNLOAD_DEST, sha256: Optional[str] = None,
            remove_bad: bool = True, progress: bool = True, keep_archive: bool = False) -> Path:
    """Download (or resume), check, unpack and clean; returns the image folder to train on."""
    dest_path = Path(dest)
    archive = dest_path / Path(urllib.parse.urlparse(url).path).name
    done = dest_path / f".{archive.name}.done"  # written last: holds the image folder
    if done.is_file() and Path(done.read_text(encoding="utf-8").strip()).is_dir():
        root = Path(done.read_text(encoding="utf-8").strip())
        log.info("%s already prepared in %s", archive.name, root)
        return root
    if archive.exists():
        log.info("found %s", archive)
    else:
        log.info("downloading %s to %s", url, archive)
        download_file(url, archive, progress)
    check_archive(archive, sha256)
    tops = [t for t in unpack(archive, dest_path) if t.is_dir()]
    # PetImages unpacks to one folder (plus a licence file); a flat Kaggle zip to train/.
    root = tops[0] if len(tops) == 1 else dest_path
    remove_undecodable(root, remove_bad, progress)
    if not keep_archive:
        archive.unlink()
    done.write_text(str(root), encoding="utf-8")
    log.info("images ready in %s: %s", root, find_samples(str(root)).counts())
    return root


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catdog-data",
                                     description="Get the cats-vs-dogs photos on a fresh machine.")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="download, check and unpack Microsoft's PetImages archive")
    d.add_argument("--url", default=PETIMAGES_URL, help="archive URL (default: %(default)s)")
    d.add_argument("--dest", default=DOWNLOAD_DEST, help="folder to unpack into (default: %(default)s)")
    d.add_argument("--sha256", default=None, help="expected SHA-256 of the archive (optional)")
    d.add_argument("--keep-bad", action="store_true", help="list undecodable files but keep them")
    d.add_argument("--keep-archive", action="store_true", help="keep the zip after unpacking")
    d.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser
