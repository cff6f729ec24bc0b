"""Count a file's container structure before any parser sees it.

The C2PA reader and FFmpeg walk every box of an MP4 (every chunk of a PNG or AVI, every block
of a GIF); a small file holding a million empty boxes costs them minutes, with the C2PA lock
held. Headers alone are read here (a seek per box), and counting stops at the limit, so a
flood costs milliseconds to refuse. Anything this walk cannot follow is left to the parsers,
which have their own errors for it: this module only refuses what is too many, and says where
a file ends inside its own outermost structure (``Cut``: a download or a recording that stopped).
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable

from clipproof.errors import InvalidMediaError
from clipproof.limits import MAX_BOXES

# ISO BMFF boxes whose payload is boxes (``meta`` is a full box: version and flags come first).
_BMFF_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex",
                    b"moof", b"traf", b"mfra", b"meta", b"iprp", b"ipco", b"sinf", b"schi"}
_BMFF_FIRST = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"sidx"}


class _TooMany(Exception):
    pass


@dataclass(frozen=True)
class Cut:
    """Where a file ends inside one of its outermost boxes or chunks, which declares more bytes
    than are there: a download or a recording that stopped (or a size field that lies)."""

    entry: str          # "'mdat' box", "'LIST movi' chunk"
    offset: int         # where that entry starts
    declared: int | None    # its declared size, header included (None: a GIF's blocks declare none)
    size: int           # the file's size
    no_index: bool = False      # an MP4 whose 'moov' (the frames' index) does not start before the cut

    def __str__(self) -> str:
        of = f"of {self.declared:,} bytes" if self.declared is not None else "before that ends"
        said = f"it ends at byte {self.size:,}, {self.size - self.offset:,} bytes into its {self.entry} {of}"
        return said + (", before any 'moov' box (the index of its frames)" if self.no_index else "")


def check_structure(path: str | os.PathLike, limit: int = MAX_BOXES, *, content: bytes | None = None) -> Cut | None:
    """Raise InvalidMediaError when ``path`` holds more boxes, chunks or blocks than ``limit``;
    return where the file ends inside one of its outermost entries (None where it does not, or
    where the format is not walked here). ``content``: the file's bytes, when the caller has
    read them already (a seek and a read per box are then no system calls)."""
    with io.BytesIO(content) if content is not None else open(path, "rb") as f:
        head = f.read(16)
        walk, unit = _walker(head)
        if walk is None:
            return None
        counter = _Counter(limit)
        try:
            return walk(f, len(content) if content is not None else os.fstat(f.fileno()).st_size, counter)
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
    if head[:4] == _EBML_ID:
        return _matroska, "elements"
    return None, ""


# An entry reader: the header at ``pos`` (inside a parent ending at ``end``) read from ``f``, as
# (where the next sibling starts, the (start, end) of its children or None, its name); None where
# the structure stops making sense (a lying size: the parsers will say so).
_Entry = Callable[[BinaryIO, int, int], "tuple[int, tuple[int, int] | None, str] | None"]


def _nested(f: BinaryIO, start: int, end: int, count: _Counter, entry: _Entry) -> tuple[list[str], tuple[str, int, int] | None]:
    """Count every entry of a tree of length-prefixed entries, depth first (no recursion: a
    file decides the depth). Returns the outermost entries' names up to the file's end, and
    (name, offset, declared size) of the outermost one that runs past it, if one does."""
    stack = [(start, end)]
    outermost: list[str] = []
    cut = None
    top = True                  # the first entries walked are the outermost ones
    while stack:
        pos, end = stack.pop()
        while pos + 8 <= end:
            step = entry(f, pos, end)
            if step is None:
                break
            count()
            following, children, name = step
            if top:
                if following > end:
                    cut = (name, pos, following - pos)
                elif len(outermost) < _NAMES_KEPT:
                    outermost.append(name)
            pos = following
            if children is not None:
                stack.append(children)
        top = False
    return outermost, cut


# Outermost names kept to say what a file holds before a cut (a real MP4 has a handful; a
# fragmented one thousands of moof/mdat pairs after its moov).
_NAMES_KEPT = 64


def _bmff(f: BinaryIO, size: int, count: _Counter) -> Cut | None:
    outermost, cut = _nested(f, 0, size, count, _bmff_box)
    if cut is None:
        return None
    name, offset, declared = cut
    # A video's index is its 'moov' box (a HEIF or AVIF still has 'meta' instead).
    indexed = {"moov", "meta"} & {*outermost, name}
    return Cut(f"'{name}' box", offset, declared, size, no_index=not indexed)


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
    return pos + box_size, children, _name(kind)


# Matroska and WebM: an EBML header element, then one Segment element holding everything else.
_EBML_ID, _SEGMENT_ID = b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"


def _matroska(f: BinaryIO, size: int, count: _Counter) -> Cut | None:
    """The Segment's declared end against the file's (its clusters are not walked: FFmpeg's
    Matroska demuxer reads them one at a time as it plays; a live recording's Segment has an
    unknown size, and nothing can be said of it)."""
    f.seek(4)
    header_size = _vint(f)
    if header_size is None:
        return None
    f.seek(header_size[0], os.SEEK_CUR)
    offset = f.tell()
    count()
    if f.read(4) != _SEGMENT_ID:
        return None
    segment = _vint(f)
    if segment is None or segment[1]:
        return None
    declared = f.tell() - offset + segment[0]
    return Cut("'Segment' element", offset, declared, size) if offset + declared > size else None


def _vint(f: BinaryIO) -> tuple[int, bool] | None:
    """An EBML variable-length size at the file's position: (value, whether it says "unknown")."""
    first = f.read(1)
    if not first or not first[0]:
        return None
    length = 9 - first[0].bit_length()
    rest = f.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = first[0] & (0xFF >> length)
    for byte in rest:
        value = value << 8 | byte
    return value, value == (1 << (7 * length)) - 1


def _png(f: BinaryIO, size: int, count: _Counter) -> Cut | None:
    pos = 8
    while pos + 12 <= size:
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        count()
        if kind == b"IEND":
            break
        if pos + 12 + length > size:
            return Cut(f"'{_name(kind)}' chunk", pos, 12 + length, size)
        pos += 12 + length
    return None


def _riff(f: BinaryIO, size: int, count: _Counter) -> Cut | None:
    _, cut = _nested(f, 12, size, count, _riff_chunk)
    if cut is not None:
        name, offset, declared = cut
        return Cut(f"'{name}' chunk", offset, declared, size)
    # Cut where a chunk ends (an AVI's closing 'idx1' gone): the RIFF header still says how long.
    f.seek(4)
    head = f.read(4)
    declared = 8 + struct.unpack("<I", head)[0] if len(head) == 4 else 0
    return Cut("'RIFF' chunk", 0, declared, size) if declared > size else None


def _riff_chunk(f: BinaryIO, pos: int, end: int):
    f.seek(pos)
    kind, length = struct.unpack("<4sI", f.read(8))
    name = _name(kind)
    children = None
    if kind in (b"LIST", b"RIFF"):
        children = (pos + 12, min(pos + 8 + length, end))
        name += " " + _name(f.read(4))
    return pos + 8 + length + (length & 1), children, name


def _name(code: bytes) -> str:
    """A four-character code as a message may quote it: the file decides these bytes, so any that
    are not printable ASCII (a terminal's escape sequences) are given in hex."""
    return code.decode("ascii") if all(32 <= b < 127 for b in code) else "0x" + code.hex()


def _gif(f: BinaryIO, size: int, count: _Counter) -> Cut | None:
    f.seek(10)
    flags = f.read(1)
    if not flags:
        return None
    pos = 13 + (3 << ((flags[0] & 7) + 1) if flags[0] & 0x80 else 0)
    while pos < size:
        f.seek(pos)
        block = f.read(1)
        start = pos
        if block == b"\x21":                   # extension: label, then sub-blocks
            pos = _gif_sub_blocks(f, pos + 2)
        elif block == b"\x2c":                 # image: descriptor, local table, LZW size, sub-blocks
            f.seek(pos + 9)
            packed = f.read(1)
            if not packed:
                return Cut("image block", start, None, size)
            table = 3 << ((packed[0] & 7) + 1) if packed[0] & 0x80 else 0
            pos = _gif_sub_blocks(f, pos + 10 + table + 1)
        else:
            return None                        # the trailer, or something the parsers will judge
        if pos < 0:
            return Cut("image block" if block == b"\x2c" else "extension block", start, None, size)
        count()
    return None


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
