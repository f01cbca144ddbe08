"""An image's declared width and height, read from its header without decoding it.

OpenCV allocates the full decoded image (up to about 1 G pixels) before it can say anything, so
an 800 KB PNG declaring 30,000 x 30,000 pixels costs gigabytes. ``declared_size`` reads the few
header bytes that state the size, so ``transforms.bytes_problem`` can refuse such an image first.
It knows the formats photos come in (JPEG, PNG, GIF, BMP, WebP, TIFF, PNM); for any other format
it returns None and the decode goes ahead under OpenCV's own limit.
"""
from __future__ import annotations

import re
import struct
from typing import Callable, Dict, Optional, Tuple

Size = Tuple[int, int]  # (width, height)

# JPEG start-of-frame markers carry the size; C4 (Huffman tables), C8 (reserved) and CC
# (arithmetic coding) share the range but are not frames.
_SOF = {m for m in range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
_PNM = re.compile(rb"\AP[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")


def _jpeg(data: bytes) -> Optional[Size]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _png(data: bytes) -> Optional[Size]:
    return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None


def _gif(data: bytes) -> Optional[Size]:
    return struct.unpack("<HH", data[6:10])


def _bmp(data: bytes) -> Optional[Size]:
    header = struct.unpack("<I", data[14:18])[0]
    if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means rows stored top-down


def _webp(data: bytes) -> Optional[Size]:
    kind = data[12:16]
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    return None


def _tiff(data: bytes) -> Optional[Size]:
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    found: Dict[int, int] = {}
    for k in range(count):
        entry = data[offset + 2 + 12 * k: offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10 if kind == 3 else 12])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm(data: bytes) -> Optional[Size]:
    match = _PNM.match(data[:512])
    return (int(match.group(1)), int(match.group(2))) if match else None


_READERS: Tuple[Tuple[Callable[[bytes], bool], Callable[[bytes], Optional[Size]]], ...] = (
    (lambda d: d[:2] == b"\xff\xd8", _jpeg),
    (lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", _png),
    (lambda d: d[:6] in (b"GIF87a", b"GIF89a"), _gif),
    (lambda d: d[:2] == b"BM", _bmp),
    (lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp),
    (lambda d: d[:4] in (b"II*\x00", b"MM\x00*"), _tiff),
    (lambda d: d[:1] == b"P" and d[1:2] in b"123456", _pnm),
)


def declared_size(data: bytes) -> Optional[Size]:
    """(width, height) as the header of ``data`` states it; None for an unknown format or a
    header too short or damaged to read (the decode then judges the file)."""
    for matches, read in _READERS:
        if matches(data):
            try:
                return read(data)
            except (struct.error, IndexError, ValueError):
                return None
    return None
