"""The keyed tile: a 32×32 grid of ±1 chips, repeated over the whole frame.

160 of the 1024 chips are *sync* chips (known signs): the detector finds the tile's scale and
offset by correlating with them. The rest carry the 172 coded bits, 5 chips each, spread over
the tile by a keyed permutation and multiplied by a keyed ±1 carrier so that no bit pattern
draws a visible structure.

The same tile in every frame makes the mark indifferent to frame rate changes and trimming, and
the tiling makes a crop a mere shift of the grid. The chip's size follows the frame (a 128th of
its short side, at least ``MIN_CHIP`` pixels), so a scaled copy carries the same pattern in the
same proportion, and only a crop (or a small original) changes it: the detector searches that
range.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from clipproof.watermark.payload import CODED_BITS

TILE = 32                      # chips per tile side
SYNC_CHIPS = 160
CHIPS_PER_SHORT_SIDE = 128     # chip = short side / 128 (4 tiles across), but at least MIN_CHIP
MIN_CHIP = 3.0                 # pixels: finer chips do not survive a 0.5× downscale and H.264
# A picture with a shorter side holds too few chips for the mark to be read back even from the
# marked file itself (none of 16 clips marked at 48x48 was found; smooth ones are at 56 px):
# such clips are not marked, so that no manifest names a soft binding nothing can resolve.
MIN_MARKED_SIDE = 56
KEY = b"clipproof watermark v1"


@lru_cache(maxsize=1)
def layout() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sync chip indices, data chip indices, carrier signs (TILE*TILE,), bit of each data chip)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(KEY).digest()[:8], "little"))
    order = rng.permutation(TILE * TILE)
    carrier = rng.choice(np.array([-1.0, 1.0], np.float32), TILE * TILE)
    data = order[SYNC_CHIPS:]
    return order[:SYNC_CHIPS], data, carrier, np.arange(data.size) % CODED_BITS


def sync_template() -> np.ndarray:
    sync, _, carrier, _ = layout()
    out = np.zeros(TILE * TILE, np.float32)
    out[sync] = carrier[sync]
    return out.reshape(TILE, TILE)


def tile(bits: np.ndarray) -> np.ndarray:
    """Coded bits → the TILE×TILE chip values (±1)."""
    sync, data, carrier, bit_of = layout()
    out = np.empty(TILE * TILE, np.float32)
    out[sync] = carrier[sync]
    out[data] = carrier[data] * (2.0 * bits[bit_of] - 1.0)
    return out.reshape(TILE, TILE)


def too_small(width: int, height: int) -> str | None:
    """Why a picture of this size is not marked, or None where it is."""
    if min(width, height) >= MIN_MARKED_SIDE:
        return None
    return (f"{width}x{height} pictures are too small to carry a watermark that can be found again "
            f"(it needs a short side of {MIN_MARKED_SIDE} pixels at least)")


def chip_size(height: int, width: int) -> float:
    return max(MIN_CHIP, min(height, width) / CHIPS_PER_SHORT_SIDE)


def render(chips: np.ndarray, height: int, width: int, chip: float) -> np.ndarray:
    """The tile repeated over a height×width frame, chips ``chip`` pixels wide, bilinear between
    chip centres (no hard block edges to see).

    Bilinear interpolation is separable: rows @ chips @ columns.T, with each pixel's row of
    ``rows`` holding the weights of its two nearest chip centres (wrapping around the tile)."""
    return _interpolation(height, chip) @ chips.astype(np.float32) @ _interpolation(width, chip).T


@lru_cache(maxsize=8)
def _interpolation(n: int, chip: float) -> np.ndarray:
    """(n, TILE): bilinear weights of each pixel's two nearest chip centres along one axis."""
    u = (np.arange(n, dtype=np.float64) + 0.5) / chip - 0.5
    i0 = np.floor(u).astype(np.int64)
    frac = (u - i0).astype(np.float32)
    out = np.zeros((n, TILE), np.float32)
    np.add.at(out, (np.arange(n), i0 % TILE), 1 - frac)
    np.add.at(out, (np.arange(n), (i0 + 1) % TILE), frac)
    return out
