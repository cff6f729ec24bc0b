"""Top-level ISO-BMFF (MP4/MOV) box layout: where `ftyp`, `uuid`, `mdat`, `moov` lie.

Only the outermost boxes are listed, from their 8/16-byte headers; the C2PA manifest inside
its `uuid` box is c2pa-python's business. Used to aim tamper checks at a given box.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    type: str
    offset: int      # of the header
    size: int        # header included

    @property
    def middle(self) -> int:
        return self.offset + self.size // 2


def top_level_boxes(path: str | os.PathLike) -> list[Box]:
    """The file's top-level boxes in order; stops at the first malformed header."""
    boxes: list[Box] = []
    total = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= total:
            f.seek(offset)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:  # runs to the end of the file
                size = total - offset
            if size < 8 or offset + size > total:
                break
            boxes.append(Box(kind.decode("latin-1"), offset, size))
            offset += size
    return boxes


def find_box(path: str | os.PathLike, kind: str) -> Box | None:
    return next((b for b in top_level_boxes(path) if b.type == kind), None)
