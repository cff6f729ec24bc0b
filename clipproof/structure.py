"""Count a file's container structure before any parser sees it.

The C2PA reader and FFmpeg walk every box of an MP4 (every chunk of a PNG or AVI, every block
of a GIF); a small file holding a million empty boxes costs them minutes, with the C2PA lock
held. Headers alone are read here (a seek per box), and counting stops at the limit, so a
flood costs milliseconds to refuse. Anything this walk cannot follow is left to the parsers,
which have their own errors for it: this module only refuses what is too many.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Callable

from clipproof.errors import InvalidMediaError
from clipproof.limits import MAX_BOXES

# ISO BMFF boxes whose payload is boxes (``meta`` is a full box: version and flags come first).
_BMFF_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex",
                    b"moof", b"traf", b"mfra", b"meta", b"iprp", b"ipco", b"sinf", b"schi"}
_BMFF_FIRST = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"sidx"}


class _TooMany(Exception):
    pass


def check_structure(path: str | os.PathLike, limit: int = MAX_BOXES) -> None:
    """Raise InvalidMediaError when ``path`` holds more boxes, chunks or blocks than ``limit``."""
    with open(path, "rb") as f:
        head = f.read(16)
        walk, unit = _walker(head)
        if walk is None:
            return
        counter = _Counter(limit)
        try:
            walk(f, os.fstat(f.fileno()).st_size, counter)
        except _TooMany:
            raise InvalidMediaError(f"more than {limit:,} {unit}: a structure no real media file has "
                                    f"(refused before parsing)", path=path) from None


class _Counter:
    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def __call__(self) -> None:
        self.count += 1
        if self.count > self.limit:
            raise _TooMany


def _walker(head: bytes) -> tuple[Callable | None, str]:
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png, "PNG chunks"
    if head[:4] == b"RIFF":
        return _riff, "RIFF chunks"
    if head[:4] == b"GIF8":
        return _gif, "GIF blocks"
    if len(head) >= 8 and head[4:8] in _BMFF_FIRST:
        return _bmff, "boxes"
    return None, ""


# An entry reader: the header at ``pos`` (inside a parent ending at ``end``) read from ``f``, as
# (where the next sibling starts, the (start, end) of its children or None); None where the
# structure stops making sense (a lying size: the parsers will say so).
_Entry = Callable[[BinaryIO, int, int], "tuple[int, tuple[int, int] | None] | None"]


def _nested(f: BinaryIO, start: int, end: int, count: _Counter, entry: _Entry) -> None:
    """Count every entry of a tree of length-prefixed entries, depth first (no recursion: a
    file decides the depth)."""
    stack = [(start, end)]
    while stack:
        pos, end = stack.pop()
        while pos + 8 <= end:
            step = entry(f, pos, end)
            if step is None:
                break
            count()
            pos, children = step
            if children is not None:
                stack.append(children)


def _bmff(f: BinaryIO, size: int, count: _Counter) -> None:
    _nested(f, 0, size, count, _bmff_box)


def _bmff_box(f: BinaryIO, pos: int, end: int):
    f.seek(pos)
    header = f.read(16)
    if len(header) < 8:
        return None
    box_size, kind = struct.unpack(">I4s", header[:8])
    header_len = 8
    if box_size == 1:
        if len(header) < 16:
            return None
        box_size, header_len = struct.unpack(">Q", header[8:16])[0], 16
    elif box_size == 0:
        box_size = end - pos
    if box_size < header_len:
        return None
    children = None
    if kind in _BMFF_CONTAINERS:
        children = (pos + header_len + (4 if kind == b"meta" else 0), min(pos + box_size, end))
    return pos + box_size, children


def _png(f: BinaryIO, size: int, count: _Counter) -> None:
    pos = 8
    while pos + 12 <= size:
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        count()
        if kind == b"IEND":
            break
        pos += 12 + length


def _riff(f: BinaryIO, size: int, count: _Counter) -> None:
    _nested(f, 12, size, count, _riff_chunk)


def _riff_chunk(f: BinaryIO, pos: int, end: int):
    f.seek(pos)
    kind, length = struct.unpack("<4sI", f.read(8))
    children = (pos + 12, min(pos + 8 + length, end)) if kind in (b"LIST", b"RIFF") else None
    return pos + 8 + length + (length & 1), children


def _gif(f: BinaryIO, size: int, count: _Counter) -> None:
    f.seek(10)
    flags = f.read(1)
    if not flags:
        return
    pos = 13 + (3 << ((flags[0] & 7) + 1) if flags[0] & 0x80 else 0)
    while pos < size:
        f.seek(pos)
        block = f.read(1)
        if block == b"\x21":                   # extension: label, then sub-blocks
            pos = _gif_sub_blocks(f, pos + 2)
        elif block == b"\x2c":                 # image: descriptor, local table, LZW size, sub-blocks
            f.seek(pos + 9)
            packed = f.read(1)
            if not packed:
                return
            table = 3 << ((packed[0] & 7) + 1) if packed[0] & 0x80 else 0
            pos = _gif_sub_blocks(f, pos + 10 + table + 1)
        else:
            return                             # the trailer, or something the parsers will judge
        if pos < 0:
            return
        count()


def _gif_sub_blocks(f: BinaryIO, pos: int) -> int:
    """The position after a chain of sub-blocks starting at ``pos`` (-1 at end of file)."""
    while True:
        f.seek(pos)
        n = f.read(1)
        if not n:
            return -1
        pos += 1 + n[0]
        if n[0] == 0:
            return pos
