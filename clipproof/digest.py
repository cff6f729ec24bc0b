"""Streaming file digests: a video is never read into memory to be hashed."""
from __future__ import annotations

import hashlib
import os

# 1 MiB reads: large enough that hashlib (OpenSSL) runs near its peak and releases the GIL,
# small enough to keep memory flat.
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()
