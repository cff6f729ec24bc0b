"""ISO-BMFF (MP4/MOV) box layout: where `ftyp`, `uuid`, `mdat`, `moov` lie, and each track's
display rotation.

The outermost boxes are listed from their 8/16-byte headers (used to aim tamper checks at a
given box); the C2PA manifest inside its `uuid` box is c2pa-python's business. The rotation is
read from the track headers because PyAV (18) has no getter for a stream's display matrix:
FFmpeg applies it to decoded frames only, and a probe decodes none.
"""
from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator


@dataclass(frozen=True)
class Box:
    type: str
    offset: int      # of the header
    size: int        # header included
    header: int = 8  # 16 where a 64-bit size follows the type

    @property
    def middle(self) -> int:
        return self.offset + self.size // 2


def top_level_boxes(path: str | os.PathLike) -> list[Box]:
    """The file's top-level boxes in order; stops at the first malformed header."""
    with open(path, "rb") as f:
        return list(_boxes(f, 0, os.fstat(f.fileno()).st_size))


def find_box(path: str | os.PathLike, kind: str) -> Box | None:
    """The first top-level box of type ``kind``; the walk stops there (a fragmented MP4 has
    thousands of top-level boxes after its ``moov``)."""
    with open(path, "rb") as f:
        return _first(f, kind, os.fstat(f.fileno()).st_size)


def _first(f: BinaryIO, kind: str, size: int) -> Box | None:
    return next((b for b in _boxes(f, 0, size) if b.type == kind), None)


def _boxes(f: BinaryIO, start: int, end: int) -> Iterator[Box]:
    """The boxes from ``start`` to ``end`` (a parent's payload), in order, until a header is cut
    short or its size does not fit."""
    offset = start
    while offset + 8 <= end:
        f.seek(offset)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:                    # a 64-bit size follows the type
            if len(head) < 16:
                return
            size, header = struct.unpack(">Q", head[8:])[0], 16
        elif size == 0:                  # runs to the end of its parent
            size = end - offset
        if size < header or offset + size > end:
            return
        yield Box(kind.decode("latin-1"), offset, size, header)
        offset += size


# Enough for any real file's tracks (a phone writes 2-5); a file that lists more is walked no
# further, as FFmpeg's own limits and `clipproof.structure` refuse floods before this runs.
_MAX_TRACKS = 64


def display_rotations(path: str | os.PathLike, *, content: bytes | None = None) -> dict[int, int]:
    """Track ID → the rotation its header asks a player to show it with, in counter-clockwise
    degrees (0, 90, 180 or 270; FFmpeg's sign, as PyAV's ``VideoFrame.rotation`` gives it).
    Phones store a portrait clip as landscape frames with a 90° or 270° rotation. Empty where
    the file has no readable ``moov``. ``content``: the file's bytes, when already read."""
    out: dict[int, int] = {}
    with io.BytesIO(content) if content is not None else open(path, "rb") as f:
        moov = _first(f, "moov", len(content) if content is not None else os.fstat(f.fileno()).st_size)
        for trak in _children(f, moov, "trak") if moov is not None else ():
            if len(out) >= _MAX_TRACKS:
                break
            tkhd = next(_children(f, trak, "tkhd"), None)
            found = _track_rotation(f, tkhd) if tkhd is not None else None
            if found is not None:
                out[found[0]] = found[1]
    return out


def _children(f: BinaryIO, parent: Box, kind: str) -> Iterator[Box]:
    """The boxes of type ``kind`` directly inside ``parent`` (a plain container box)."""
    return (b for b in _boxes(f, parent.offset + parent.header, parent.offset + parent.size) if b.type == kind)


def _track_rotation(f: BinaryIO, tkhd: Box) -> tuple[int, int] | None:
    """(track ID, rotation) from a ``tkhd`` box (ISO/IEC 14496-12 8.3.2); None if it is short."""
    f.seek(tkhd.offset + tkhd.header)
    body = f.read(min(tkhd.size - tkhd.header, 104))
    if not body:
        return None
    # Version 1 has 64-bit creation and modification times and duration.
    times = 8 if body[0] == 1 else 4
    track_id_at = 4 + 2 * times
    matrix_at = track_id_at + 4 + 4 + times + 8 + 8
    if len(body) < matrix_at + 36:
        return None
    (track_id,) = struct.unpack_from(">I", body, track_id_at)
    a, b, _, c, d = struct.unpack_from(">5i", body, matrix_at)
    return track_id, _rotation_of(a, b, c, d)


def _rotation_of(a: float, b: float, c: float, d: float) -> int:
    """The quarter turn nearest a display matrix's rotation (FFmpeg's ``av_display_rotation_get``,
    counter-clockwise degrees), as the frames are turned when read (``media._quarter_turns``)."""
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if not scale_x or not scale_y:
        return 0
    degrees = -math.degrees(math.atan2(b / scale_y, a / scale_x))
    return round(degrees / 90) % 4 * 90
