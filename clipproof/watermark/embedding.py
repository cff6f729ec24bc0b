"""Embedding: the payload's tile added to every frame's luma, weighted by local texture.

Adding the same value to R, G and B changes luma (Y = .299R + .587G + .114B) by that value and
leaves the chroma planes alone. The weight follows how busy the picture is around each pixel
(flat sky gets less, texture more) and is normalised so the mark's RMS is ``strength`` luma
levels: 1.8 keeps luma PSNR near 43 dB against the frames it is added to (bench.watermark).
Where the picture's fine detail outweighs the mark all the same (a moving camera over fine
texture; a textured scene at 256 px), the strength is raised, up to 1.4 times (2.5 levels: still
above 40 dB).
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from clipproof.watermark import payload as code
from clipproof.watermark.blas import one_blas_thread
from clipproof.watermark.detection import WORK_SIDE, chip_values, whitened_detail
from clipproof.watermark.filters import uniform_filter
from clipproof.watermark.pattern import chip_size, layout, render, tile
from clipproof.watermark.payload import CODED_BITS

STRENGTH = 1.8          # RMS of the mark, in 8-bit luma levels
MASK_RANGE = (0.5, 1.8)  # how far texture may lower or raise the local strength
MAX_BOOST = 2.0          # informed embedding: most added to a chip's amplitude (base 1) …
MAX_RELIEF = 0.6         # … and most taken from it where the picture already helps
MIN_AMPLITUDE = 0.3
HOST_SMOOTHING = 0.7     # weight of the previous frames' reading of the picture
MAX_STRENGTHENING = 1.4  # most the strength is raised where the picture outweighs the mark
KEPT_READING = 0.6       # of a bit's plain reading, what must be left where the picture opposes …
WEAK_BITS = 6            # … on all but this many bits (the code corrects 12)


class Embedder:
    """Marks frames with one payload: ``embedder(frame)`` → the marked frame.

    Informed embedding: the detector reads each bit as the sum of its chips, mark and picture
    together, and at embedding time the picture is known. So each frame is first read as the
    detector reads it (working size, whitened detail, folded onto the tile); bits the picture
    pushes the wrong way get more of the mark, bits it already helps get less, at the same total
    strength (after Malvar & Florêncio's improved spread spectrum). The picture's reading is
    smoothed over frames so the mark does not flicker.
    """

    def __init__(self, payload: bytes, *, strength: float = STRENGTH, informed: bool = True):
        self.chips = tile(code.encode(payload))
        self.strength = strength
        self.informed = informed
        self._size: tuple[int, int] | None = None
        self._host: np.ndarray | None = None
        self._gain: np.ndarray | None = None
        self._unit: tuple[tuple[int, int], float] | None = None
        # The factor the last frame's strength was raised by (``MAX_STRENGTHENING``; 1 where
        # the picture lets the mark through at ``strength``).
        self.strengthening = 1.0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return self._mark(frame)

    def _mark(self, frame: np.ndarray) -> np.ndarray:
        h, w, _ = frame.shape
        chip = chip_size(h, w)
        weight = _texture_weight(frame) * self.strength
        amplitude = np.ones_like(self.chips)
        if self.informed:
            amplitude, self.strengthening = self._amplitudes(frame, weight, chip)
            weight = weight * self.strengthening
        mark = np.rint(self._pattern(self.chips * amplitude, h, w, chip) * weight).astype(np.int16)
        out = frame.astype(np.int16)
        out += mark[..., None]
        return np.clip(out, 0, 255, out=out).astype(np.uint8)

    def _pattern(self, chips: np.ndarray, h: int, w: int, chip: float) -> np.ndarray:
        """Chips rendered over the frame, scaled so the plain tile has unit RMS."""
        if self._unit is None or self._unit[0] != (h, w):
            self._unit = ((h, w), 1.0 / float(np.sqrt(np.mean(render(self.chips, h, w, chip) ** 2))))
        return render(chips, h, w, chip) * self._unit[1]

    def _amplitudes(self, frame: np.ndarray, weight: np.ndarray, chip: float) -> tuple[np.ndarray, float]:
        """Per-chip amplitudes (mean square 1) that leave each bit's reading, and the sync
        reading, as strong as the mark alone would make them wherever the picture opposes; and
        the factor the strength is raised by where that is not enough."""
        h, w, _ = frame.shape
        grey = _grey_small(frame, WORK_SIDE)
        work_chip = chip * grey.shape[0] / h
        host = chip_values(whitened_detail(grey), work_chip).ravel() * self.chips.ravel()  # > 0: the picture helps
        if self._size != (h, w):
            # The mark's own reading per chip, measured once per frame size on this frame.
            marked = np.clip(frame.astype(np.float32) + (self._pattern(self.chips, h, w, chip) * weight)[..., None], 0, 255)
            gain = chip_values(whitened_detail(_grey_small(marked, WORK_SIDE)), work_chip).ravel() * self.chips.ravel() - host
            self._gain = float(max(np.median(gain), 1e-3))
            self._size, self._host = (h, w), host
        self._host = HOST_SMOOTHING * self._host + (1 - HOST_SMOOTHING) * host
        sync, data, _, bit_of = layout()
        amplitude = np.ones(self.chips.size, np.float32)
        # Each bit: what the picture adds to its chips' sum, in units of one chip's mark.
        opposition = -np.bincount(bit_of, weights=self._host[data], minlength=CODED_BITS) / self._gain
        per_bit = np.bincount(bit_of, minlength=CODED_BITS)
        amplitude[data] += np.clip(opposition / per_bit, -MAX_RELIEF, MAX_BOOST)[bit_of]
        amplitude[sync] += np.clip(-self._host[sync].sum() / self._gain / sync.size, 0.0, MAX_BOOST)
        amplitude = np.maximum(amplitude, MIN_AMPLITUDE)
        amplitude /= np.sqrt(np.mean(amplitude * amplitude))
        # Where the picture's detail outweighs the mark even so (fine texture, a moving camera),
        # the whole mark is made stronger, up to MAX_STRENGTHENING: what each bit reads is its
        # chips' mark times the strength plus the picture's part, and all but WEAK_BITS bits
        # should keep KEPT_READING of what the mark alone gives.
        mark = np.bincount(bit_of, weights=amplitude[data], minlength=CODED_BITS) * self._gain
        picture = np.bincount(bit_of, weights=self._host[data], minlength=CODED_BITS)
        needed = (KEPT_READING * per_bit * self._gain - picture) / mark
        stronger = float(np.clip(np.sort(needed)[-WEAK_BITS], 1.0, MAX_STRENGTHENING))
        return amplitude.reshape(self.chips.shape), stronger


def embed_frames(frames: Iterable[np.ndarray], payload: bytes, *, strength: float = STRENGTH) -> Iterator[np.ndarray]:
    """Yield each (H, W, 3) uint8 RGB frame with the watermark carrying ``payload`` (8 bytes).
    Frames stream through: a long clip need not fit in memory."""
    return map(Embedder(payload, strength=strength), frames)


LUMA = np.array([0.299, 0.587, 0.114], np.float32)     # BT.601, as H.264's Y plane


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (…, 3) → float32 luma (…)."""
    return np.asarray(rgb, np.float32) @ LUMA


def _grey_small(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Luma at the detector's working size (area average, as its scaler does)."""
    from PIL import Image
    h, w, _ = frame.shape
    scale = min(1.0, short_side / min(h, w))
    grey = luma(frame)
    if scale == 1.0:
        return grey
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(grey, mode="F").resize(size, Image.Resampling.BOX))


def _texture_weight(frame: np.ndarray) -> np.ndarray:
    """Per-pixel weight (mean 1 over the frame) from local luma contrast, on a 4× smaller copy."""
    h, w, _ = frame.shape
    small = luma(frame[::4, ::4])
    detail = np.abs(small - uniform_filter(small, 3))
    activity = uniform_filter(detail, 5) + 1.0
    weight = np.clip(activity / activity.mean(), *MASK_RANGE)
    weight /= np.sqrt(np.mean(weight * weight))
    return np.repeat(np.repeat(weight, 4, 0), 4, 1)[:h, :w]
