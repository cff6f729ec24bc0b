"""A content fingerprint kept beside each stored manifest: difference hashes of frames.

A watermark says which manifest a clip claims; the fingerprint checks that the clip shows what
the signed original showed, so a mark copied onto other footage (a forgery pointing at someone
else's manifest) is reported as a mismatch. Hashes are taken on the centre of the frame, small
and grey, so re-encoding, scaling and a modest crop keep them close.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from clipproof.watermark.embedding import luma

HASH_BITS = 64
MATCH_BITS = 14            # median Hamming distance (of 64) at or below which frames agree
CENTRE = 0.6               # the central fraction of each side that is hashed


def frame_hash(luma: np.ndarray) -> int:
    """dHash of one grey frame (H, W): 8×8 signs of horizontal gradients on a 9×8 thumbnail."""
    h, w = luma.shape
    dy, dx = int(h * (1 - CENTRE) / 2), int(w * (1 - CENTRE) / 2)
    centre = np.ascontiguousarray(luma[dy:h - dy, dx:w - dx], np.float32)
    small = np.asarray(Image.fromarray(centre, mode="F").resize((9, 8), Image.Resampling.BOX))
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def fingerprint(frames: np.ndarray, step: int = 1) -> list[int]:
    """Hashes of every ``step``-th grey frame (N, H, W) or RGB frame (N, H, W, 3)."""
    frames = frames[::step]
    return [frame_hash(f) for f in (luma(frames) if frames.ndim == 4 else frames)]


def distance(probe: list[int], stored: list[int]) -> int | None:
    """Median over the probe's frames of the Hamming distance to the nearest stored frame."""
    if not probe or not stored:
        return None
    ref = np.array(stored, np.uint64)
    nearest = [int(min(bin(int(x)).count("1") for x in (ref ^ np.uint64(p)))) for p in probe]
    return int(np.median(nearest))
