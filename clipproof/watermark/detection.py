"""Detection: average the frames' high-passed luma, find the tile's scale and offset with the
sync chips, read the data chips, decode.

The mark is the same in every frame, so averaging frames adds it up while moving picture
content partly cancels. The frames are read at a small working size (``WORK_SIDE`` on the short
side): a chip is then 1.5–8 pixels whatever the clip's size, scaling or crop, and the scale
search covers that range. Folding the average modulo a candidate tile period (in half-chip bins)
and correlating with the sync chips over every cyclic shift (one FFT) gives a score per scale;
the best few candidates are decoded, and a payload counts only when the BCH code and the CRC
both accept it (``payload.FALSE_MATCH_PER_CLIP``).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from clipproof.watermark import payload as code
from clipproof.watermark.pattern import SYNC_CHIPS, TILE, layout, sync_template

WORK_SIDE = 256           # short side of the working frames (never upscaled)
FRAMES = 32               # frames read from the start of the clip
HIGH_PASS_SIGMA = 1.5     # pixels at the working size
WHITEN_SIGMA = 2.0
CHIP_RANGE = (1.4, 9.0)   # chip sizes searched, in working pixels
PERIOD_CANDIDATES = 4     # tile periods from the autocorrelation, each refined by a fine scan
REFINE_STEP, REFINE_STEPS = 0.002, 6
BINS = 2 * TILE           # half-chip bins


@dataclass(frozen=True)
class Detection:
    """What the watermark detector found in one clip."""

    found: bool                      # a payload decoded and its CRC matched
    payload: str | None              # 16 hex digits
    bit_errors: int | None           # bits the code corrected (of 188)
    sync_score: float                # the sync correlation's peak, in standard deviations
    chip_px: float                   # the chip size found, in the clip's own pixels
    frames: int                      # frames read
    false_match_odds: float = code.FALSE_MATCH_PER_CLIP

    @property
    def bit_accuracy(self) -> float | None:
        return None if self.bit_errors is None else 1.0 - self.bit_errors / (code.MESSAGE_BYTES * 8 + 92)

    def to_dict(self) -> dict:
        return {**asdict(self), "bit_accuracy": self.bit_accuracy, "algorithm": code.ALGORITHM}


def detect(path: str | os.PathLike, *, frames: int = FRAMES) -> Detection:
    """Look for the watermark in the video at ``path`` (raises the media errors of ``read_luma``)."""
    from clipproof.media import read_luma
    luma, short_side = read_luma(path, frames, max_short_side=WORK_SIDE)
    return detect_frames(luma, native_short_side=short_side)


def detect_frames(luma: np.ndarray, native_short_side: int | None = None) -> Detection:
    """Look for the watermark in luma frames (N, H, W) float; ``native_short_side`` (the clip's
    own short side, when the frames were scaled down) only converts the chip size reported."""
    residual = _residual(luma)
    candidates = sorted(_scan(residual), key=lambda c: -c[0])
    best = candidates[0]
    native = (native_short_side or min(residual.shape)) / min(residual.shape)
    for score, chip, shift in _distinct(candidates, code.MAX_ATTEMPTS):
        decoded = code.decode(_read_bits(_fold(residual, chip), shift))
        if decoded is not None:
            payload, errors = decoded
            return Detection(True, payload.hex(), errors, round(score, 2), round(chip * native, 2), len(luma))
    return Detection(False, None, None, round(best[0], 2), round(best[1] * native, 2), len(luma))


def _residual(luma: np.ndarray) -> np.ndarray:
    """The frames' mean whitened high-pass: each frame's detail divided by its local strength
    (edges and texture, which the picture fills with energy, count no more than flat areas)."""
    total = np.zeros(luma.shape[1:], np.float64)
    for frame in luma:
        detail = frame - ndimage.gaussian_filter(frame, HIGH_PASS_SIGMA)
        local = np.sqrt(ndimage.gaussian_filter(detail * detail, WHITEN_SIGMA)) + 1.0
        total += np.clip(detail / local, -3.0, 3.0)
    total /= len(luma)
    return total - total.mean()


def _fold(residual: np.ndarray, chip: float) -> np.ndarray:
    """The residual summed into BINS×BINS half-chip bins modulo the tile (mean per bin)."""
    h, w = residual.shape
    iy = (np.floor(np.arange(h) * 2 / chip).astype(np.int64) % BINS)
    ix = (np.floor(np.arange(w) * 2 / chip).astype(np.int64) % BINS)
    index = (iy[:, None] * BINS + ix[None, :]).ravel()
    sums = np.bincount(index, weights=residual.ravel(), minlength=BINS * BINS)
    counts = np.bincount(index, minlength=BINS * BINS)
    return (sums / np.maximum(counts, 1)).reshape(BINS, BINS)


def _sync_spectrum() -> np.ndarray:
    return np.conj(np.fft.rfft2(np.kron(sync_template(), np.ones((2, 2), np.float32))))


def _scan(residual: np.ndarray) -> list[tuple[float, float, tuple[int, int]]]:
    """(sync score, chip size, best shift) for candidate chip sizes: the tile periods the
    residual's autocorrelation suggests, each refined by a fine scan (a chip size off by 0.5 %
    drifts a chip across 200 chips, so coarse steps would miss the alignment)."""
    spectrum = _sync_spectrum()
    out = []
    for period in _periods(residual):
        for step in np.arange(-REFINE_STEPS, REFINE_STEPS + 1):
            chip = period / TILE * (1 + REFINE_STEP * step)
            corr = np.fft.irfft2(np.fft.rfft2(_fold(residual, chip)) * spectrum, s=(BINS, BINS))
            peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
            score = float((corr[peak] - corr.mean()) / (corr.std() + 1e-12))
            out.append((score, chip, (int(peak[0]), int(peak[1]))))
    if not out:
        out.append((0.0, CHIP_RANGE[0], (0, 0)))
    return out


def _periods(residual: np.ndarray, n: int = PERIOD_CANDIDATES) -> list[float]:
    """Tile periods (pixels) where the residual repeats: a comb over the autocorrelation along
    both axes (peaks at L, 2L, 3L… for a tiled mark), best ``n`` after a parabolic refinement."""
    h, w = residual.shape
    power = np.abs(np.fft.rfft2(residual, s=(2 * h, 2 * w))) ** 2     # zero-padded: no wrap-around
    ac = np.fft.irfft2(power, s=(2 * h, 2 * w))
    ac /= ac[0, 0] + 1e-12
    # Unbiased: a lag l overlaps (n - l) samples.
    row = ac[0, :w] / np.maximum(w - np.arange(w), 1) * w
    col = ac[:h, 0] / np.maximum(h - np.arange(h), 1) * h
    lo, hi = CHIP_RANGE[0] * TILE, min(CHIP_RANGE[1] * TILE, 0.8 * max(h, w))
    periods = np.arange(lo, max(lo, hi), 0.1)
    comb = np.zeros_like(periods)
    for k in range(1, 8):
        for profile, limit in ((row, 0.8 * w), (col, 0.8 * h)):
            lag = periods * k
            usable = lag < limit
            comb[usable] += np.interp(lag[usable], np.arange(profile.size), profile)
    picks: list[float] = []
    for i in np.argsort(-comb):
        if all(abs(periods[i] / p - 1) > 0.04 for p in picks):
            picks.append(float(periods[i]))
        if len(picks) == n:
            break
    return picks


def _distinct(candidates, n: int):
    """The best ``n`` candidates whose chip sizes are not neighbours of a better one."""
    kept: list = []
    for c in candidates:
        if all(abs(c[1] / k[1] - 1) > 0.02 for k in kept):
            kept.append(c)
        if len(kept) == n:
            break
    return kept


def _read_bits(folded: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Soft bits from the data chips at the tile offset ``shift`` (in half-chip bins)."""
    _, data, carrier, bit_of = layout()
    chips = np.roll(folded, (-shift[0], -shift[1]), axis=(0, 1)).reshape(TILE, 2, TILE, 2).sum((1, 3)).ravel()
    soft = np.bincount(bit_of, weights=chips[data] * carrier[data], minlength=code.CODED_BITS)
    return soft / (np.std(soft) + 1e-12)


assert SYNC_CHIPS < TILE * TILE
