"""Detection: average the frames' high-passed luma, find the tile's scale and offset with the
sync chips, read the data chips, decode.

The mark is the same in every frame, so averaging frames adds it up while moving picture
content partly cancels. The frames are read at a small working size (``WORK_SIDE`` on the short
side), where a chip is 2 pixels whatever the clip's size or scaling (more for originals under
384 pixels); a crop makes it larger, and the scale search covers that. Folding the average modulo a candidate tile period (in half-chip bins)
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
from clipproof.watermark.blas import one_blas_thread
from clipproof.watermark.pattern import CHIPS_PER_SHORT_SIDE, SYNC_CHIPS, TILE, layout, sync_template

WORK_SIDE = 256           # short side of the working frames (never upscaled)
FRAMES = 24               # frames read from the start of a 1080p clip; more for smaller ones
MAX_FRAMES = 48           # (the same decoding budget in pixels, up to this many: ``frames_for``)
HIGH_PASS_SIGMA = 1.5     # pixels at the working size
WHITEN_SIGMA = 2.0
# Chip sizes searched, relative to a 128th of the short side: first no crop or a mild one of a
# large original, then an 80 % crop of an original down to 192 pixels.
SCAN_STAGES = ((0.95, 1.3), (1.3, 2.6))
assert len(SCAN_STAGES) == code.STAGES
CHASE_MIN_SCORE = 5.5      # sync peak (standard deviations) above which Chase decoding is tried
SCAN_STEP = 1.003          # then the best REFINED sizes half a step either side
REFINED = 6
MIN_WORK_CHIP = 1.0        # pixels: finer chips are gone
SPECTRUM_CLIP = 3.0        # a fold's spectral magnitudes are clipped at this many times their median
BINS = 2 * TILE           # half-chip bins


@dataclass(frozen=True)
class Detection:
    """What the watermark detector found in one clip."""

    found: bool                      # a payload decoded and its CRC matched
    payload: str | None              # 16 hex digits
    bit_errors: int | None           # bits the code corrected (of payload.CODED_BITS)
    sync_score: float                # the sync correlation's peak, in standard deviations
    chip_px: float                   # the chip size found, in the clip's own pixels
    frames: int                      # frames read
    false_match_odds: float = code.FALSE_MATCH_PER_CLIP

    @property
    def bit_accuracy(self) -> float | None:
        return None if self.bit_errors is None else 1.0 - self.bit_errors / code.CODED_BITS

    def to_dict(self) -> dict:
        return {**asdict(self), "bit_accuracy": self.bit_accuracy, "algorithm": code.ALGORITHM}


def frames_for(width: int, height: int) -> int:
    """Frames to read: FRAMES for 1080p, more for smaller clips at about the same decoding cost
    (more frames average more of a moving picture away), at most MAX_FRAMES."""
    return int(min(MAX_FRAMES, max(FRAMES, FRAMES * 1920 * 1080 // max(1, width * height))))


def detect(path: str | os.PathLike, *, frames: int | None = None) -> Detection:
    """Look for the watermark in the video at ``path`` (raises the media errors of ``read_luma``)."""
    from clipproof.media import read_luma
    luma, short_side = read_luma(path, frames or frames_for, max_short_side=WORK_SIDE)
    return detect_frames(luma, native_short_side=short_side)


def detect_frames(luma: np.ndarray, native_short_side: int | None = None) -> Detection:
    """Look for the watermark in luma frames (N, H, W) float; ``native_short_side`` (the clip's
    own short side, when the frames were scaled down) only converts the chip size reported.

    Scales near the embedded one (no crop, or a mild one) are searched first, and the rest only
    when nothing decodes there. In each stage the best ``HARD_ATTEMPTS`` alignments get a plain
    decode and the best ``code.MAX_ATTEMPTS`` a Chase decode."""
    with one_blas_thread():
        return _detect(luma, native_short_side)


def _detect(luma: np.ndarray, native_short_side: int | None) -> Detection:
    residual = _residual(luma)
    native = (native_short_side or min(residual.shape)) / min(residual.shape)
    best = (0.0, 0.0, (0, 0))
    for stage in SCAN_STAGES:
        candidates = sorted(_scan(residual, stage), key=lambda c: -c[0])
        best = max(best, candidates[0])
        for i, (score, chip, shift) in enumerate(_distinct(candidates, code.HARD_ATTEMPTS)):
            soft = _read_bits(clean_fold(residual, chip), shift)
            # Chase decoding (2^10 words) only where the sync says a mark is likely there.
            decoded = code.decode(soft, chase=i < code.MAX_ATTEMPTS and score >= CHASE_MIN_SCORE)
            if decoded is not None:
                payload, errors = decoded
                return Detection(True, payload.hex(), errors, round(score, 2), round(chip * native, 2), len(luma))
    return Detection(False, None, None, round(best[0], 2), round(best[1] * native, 2), len(luma))


def _residual(luma: np.ndarray) -> np.ndarray:
    """The frames' mean whitened detail (``whitened_detail``)."""
    total = np.zeros(luma.shape[1:], np.float64)
    for frame in luma:
        total += whitened_detail(frame)
    total /= len(luma)
    return total - total.mean()


def whitened_detail(frame: np.ndarray) -> np.ndarray:
    """One grey frame's high-pass divided by its local strength: edges and texture, which the
    picture fills with energy, count no more than flat areas."""
    detail = frame - ndimage.gaussian_filter(frame, HIGH_PASS_SIGMA)
    local = np.sqrt(ndimage.gaussian_filter(detail * detail, WHITEN_SIGMA)) + 1.0
    return np.clip(detail / local, -3.0, 3.0)


def chip_values(residual: np.ndarray, chip: float, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The residual folded onto the tile: one value per chip (TILE×TILE), tile offset ``shift``
    in half-chip bins."""
    return _chips(_fold(residual, chip), shift)


def _chips(folded: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """A fold's half-chip bins summed into chips, the tile starting at ``shift``."""
    return np.roll(folded, (-shift[0], -shift[1]), axis=(0, 1)).reshape(TILE, 2, TILE, 2).sum((1, 3))


def _fold(residual: np.ndarray, chip: float) -> np.ndarray:
    """The residual summed into BINS×BINS half-chip bins modulo the tile (mean per bin), as
    two products with one-hot bin matrices (rows, then columns: BLAS does the adding)."""
    rows, cols = _one_hot(residual.shape[0], chip), _one_hot(residual.shape[1], chip)
    sums = rows.T @ (residual.astype(np.float32, copy=False) @ cols)
    counts = np.outer(rows.sum(0), cols.sum(0))
    return sums / np.maximum(counts, 1)


def clean_fold(residual: np.ndarray, chip: float) -> np.ndarray:
    """``_fold`` with its strongest spectral lines clipped (``_fold_spectrum``): what the
    detector reads the bits from."""
    return np.fft.irfft2(_fold_spectrum(residual, chip), s=(BINS, BINS))


def _fold_spectrum(residual: np.ndarray, chip: float) -> np.ndarray:
    """The fold's spectrum, each magnitude clipped at ``SPECTRUM_CLIP`` times the median.

    A picture that repeats with the tile's period folds as coherently as the mark: an ordered
    dither or a block grid, fixed to the pixels of a small source that was scaled up by a ratio
    that makes its period divide the tile's (256 to 1080 lines, chips of exactly 2 working
    pixels). Folded, it outweighed the mark 4 to 1 on one wild-dev AnimateDiff GIF and moved the
    sync peak half a chip. Its energy sits in a few spectral lines, the random chips' spreads
    over all of them: clipping the lines leaves the mark."""
    spectrum = np.fft.rfft2(_fold(residual, chip))
    magnitude = np.abs(spectrum)
    return spectrum * np.minimum(1.0, SPECTRUM_CLIP * np.median(magnitude) / (magnitude + 1e-12))


def _one_hot(n: int, chip: float) -> np.ndarray:
    """(n, BINS): 1 where pixel i falls in half-chip bin j of the tile."""
    out = np.zeros((n, BINS), np.float32)
    out[np.arange(n), np.floor(np.arange(n) * 2 / chip).astype(np.int64) % BINS] = 1.0
    return out


def _sync_spectrum() -> np.ndarray:
    return np.conj(np.fft.rfft2(np.kron(sync_template(), np.ones((2, 2), np.float32))))


def _scan(residual: np.ndarray, ratios: tuple[float, float]) -> list[tuple[float, float, tuple[int, int]]]:
    """(sync score, chip size, best shift) for every candidate chip size.

    The embedder ties the chip to the frame (``pattern.chip_size``: a 128th of the short side,
    more for originals under 384 pixels), and scaling keeps that ratio: only a crop or a small
    original changes it, so the scan covers ``ratios`` (of a 128th). A chip size off by 0.5 %
    drifts a chip across 200 chips, hence the fine step."""
    spectrum = _sync_spectrum()
    nominal = min(residual.shape) / CHIPS_PER_SHORT_SIDE
    out = []
    ratio = ratios[0]
    while ratio < ratios[1]:
        chip = nominal * ratio
        if chip >= MIN_WORK_CHIP:
            out.append((*_sync_score(residual, chip, spectrum), chip))
        ratio *= SCAN_STEP
    # The best few, refined between the scan's steps.
    for _, _, chip in _distinct(sorted(out, key=lambda c: -c[0]), REFINED, key=lambda c: c[2]):
        out += [(*_sync_score(residual, chip * f, spectrum), chip * f) for f in (SCAN_STEP ** -0.5, SCAN_STEP ** 0.5)]
    if not out:
        return [(0.0, nominal, (0, 0))]
    return [(score, chip, shift) for score, shift, chip in out]


def _sync_score(residual: np.ndarray, chip: float, spectrum: np.ndarray) -> tuple[float, tuple[int, int]]:
    corr = np.fft.irfft2(_fold_spectrum(residual, chip) * spectrum, s=(BINS, BINS))
    peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return float((corr[peak] - corr.mean()) / (corr.std() + 1e-12)), (int(peak[0]), int(peak[1]))


def _distinct(candidates, n: int, key=lambda c: c[1]):
    """The best ``n`` candidates whose chip sizes are not neighbours of a better one."""
    kept: list = []
    for c in candidates:
        if all(abs(key(c) / key(k) - 1) > 0.02 for k in kept):
            kept.append(c)
        if len(kept) == n:
            break
    return kept


def _read_bits(folded: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Soft bits from the data chips at the tile offset ``shift`` (in half-chip bins)."""
    _, data, carrier, bit_of = layout()
    chips = _chips(folded, shift).ravel()
    soft = np.bincount(bit_of, weights=chips[data] * carrier[data], minlength=code.CODED_BITS)
    return soft / (np.std(soft) + 1e-12)


assert SYNC_CHIPS < TILE * TILE
