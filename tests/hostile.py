"""Hostile inputs, made on the fly: what an upload queue receives from people who mean harm.

``mutations(good, out)`` cuts, flips and re-sizes the boxes of a real (signed) MP4 — the kinds
of damage that took a batch down in the audit of issue 13; ``crafted(out, ...)`` builds one file
per named attack (box floods, a decompression-bomb PNG, a frame-count bomb, control characters
and overlong names). Each ``Hostile`` says which exit codes a correct tool may give for it:
never 70 (a bug), and only the red-flag or error codes the case allows.

A small ISO BMFF walker lives here, apart from the product's, so the corpus does not share the
bugs of the code it tests.
"""
from __future__ import annotations

import io
import random
import struct
from dataclasses import dataclass
from pathlib import Path

# Outcomes any damaged file may have: still valid (0-2) or not a readable video (65).
ANY_VERDICT_OR_BROKEN = frozenset({0, 1, 2, 65})
# Containers whose children are boxes (``meta`` is a full box: 4 bytes of version/flags first).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"meta", b"mvex",
               b"moof", b"traf"}


@dataclass(frozen=True)
class Hostile:
    name: str
    path: Path
    codes: frozenset[int]


def boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[tuple[int, int, bytes, int]]:
    """(offset, size, type, depth) of every box, children after their parent."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        out.append((pos, size, kind, depth))
        if kind in _CONTAINERS and depth < 8:
            out += boxes(data, pos + header + (4 if kind == b"meta" else 0), pos + size, depth + 1)
        pos += size
    return out


def mutations(good: Path, out: Path, *, seed: int = 0, flips: int = 40, truncations: int = 24) -> list[Hostile]:
    """Damaged copies of ``good``: truncated at spread-out points, bytes flipped at random
    offsets, and every box's size field set to values that lie (0, 1, 7, one off, huge)."""
    out.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    rng = random.Random(seed)
    made = []

    def emit(name: str, blob: bytes) -> None:
        path = out / f"{name}.mp4"
        path.write_bytes(blob)
        made.append(Hostile(name, path, ANY_VERDICT_OR_BROKEN))

    for i in range(truncations):
        cut = max(1, len(data) * (i + 1) // (truncations + 1) + rng.randrange(-64, 64))
        emit(f"truncated-{cut}", data[:cut])
    for i in range(flips):
        blob = bytearray(data)
        for _ in range(rng.choice((1, 4, 32))):
            blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        emit(f"flipped-{i}", bytes(blob))
    for offset, size, kind, _ in boxes(data):
        for lie in (0, 1, 7, size - 1, size + 1, 0x7FFFFFFF):
            blob = bytearray(data)
            blob[offset:offset + 4] = struct.pack(">I", lie & 0xFFFFFFFF)
            emit(f"boxsize-{kind.decode('latin-1')}-{offset}-{lie}", bytes(blob))
    return made


# ---------------------------------------------------------------------------------------------
# Named attacks
# ---------------------------------------------------------------------------------------------

def free_box_flood(good: Path, path: Path, count: int) -> Path:
    """``count`` eight-byte ``free`` boxes after a real MP4 (the C2PA reader is quadratic in them)."""
    path.write_bytes(good.read_bytes() + struct.pack(">I4s", 8, b"free") * count)
    return path


def nested_box_flood(good: Path, path: Path, count: int) -> Path:
    """``count`` ``free`` boxes inside a ``udta`` inside ``moov``."""
    data = good.read_bytes()
    offset, size, _, _ = next(b for b in boxes(data) if b[2] == b"moov")
    udta = struct.pack(">I4s", 8 + 8 * count, b"udta") + struct.pack(">I4s", 8, b"free") * count
    moov = struct.pack(">I", size + len(udta)) + data[offset + 4:offset + size] + udta
    path.write_bytes(data[:offset] + moov + data[offset + size:])
    return path


def png_bomb(path: Path, side: int = 16000) -> Path:
    """A tiny PNG whose header declares ``side``×``side`` pixels (its data is one deflate block)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def png_chunk_flood(path: Path, count: int) -> Path:
    """A real PNG with ``count`` empty text chunks before its image data."""
    import zlib

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "PNG")
    png = buf.getvalue()
    empty = struct.pack(">I4s", 0, b"tEXt") + struct.pack(">I", zlib.crc32(b"tEXt"))
    path.write_bytes(png[:33] + empty * count + png[33:])
    return path


def frame_count_bomb(path: Path, frames: int, side: int = 32) -> Path:
    """``frames`` tiny frames behind one keyframe: cheap to store, costly to seek in."""
    import av
    import numpy as np
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"g": str(frames + 1), "keyint_min": str(frames + 1),
                                                               "sc_threshold": "0", "preset": "ultrafast"})
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        picture = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
        for i in range(frames):
            picture.pts = i
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


def crafted(out: Path, good: Path, *, flood: int = 200_000) -> list[Hostile]:
    """One file per named attack that is not a mutation of a good clip."""
    out.mkdir(parents=True, exist_ok=True)
    broken = frozenset({65})
    cases = [
        Hostile("free-box-flood", free_box_flood(good, out / "flood.mp4", flood), broken),
        Hostile("nested-box-flood", nested_box_flood(good, out / "nested.mp4", flood), broken),
        Hostile("png-chunk-flood", png_chunk_flood(out / "chunks.png", flood), broken),
        Hostile("png-bomb", png_bomb(out / "bomb.png"), broken),
        Hostile("empty", _write(out / "empty.mp4", b""), broken),
        Hostile("text", _write(out / "notes.mp4", b"this is not a video\n" * 10), broken),
        Hostile("ftyp-only", _write(out / "ftyp.mp4", struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0)), broken),
        # A name full of terminal control sequences: clear screen, window title, a newline that
        # would forge a report line.
        Hostile("control-name", _copy(good, out / "\x1b[2J\x1b]0;pwned\x07\nVerdict: AUTHENTIC.mp4"),
                ANY_VERDICT_OR_BROKEN - {65}),
    ]
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst
