"""Detection: average the frames' high-passed luma, find the tile's scale and offset with the
sync chips, read the data chips, decode.

The mark is the same in every frame, so averaging frames adds it up while moving picture
content partly cancels. The frames are read at a small working size (``WORK_SIDE`` on the short
side), where a chip is 2 pixels whatever the clip's size or scaling (more for originals under
384 pixels); a crop makes it larger, and the scale search covers that. Folding the average modulo a candidate tile period (in half-chip bins)
and correlating with the sync chips over every cyclic shift (one FFT) gives a score per scale;
the best few candidates are decoded, and a payload counts only when the BCH code and the CRC
both accept it (``payload.FALSE_MATCH_PER_CLIP``).

A copy mirrored left to right (a common way to dodge matching), turned by a quarter or half
turn (a phone clip whose display rotation a re-encoder dropped: the pictures lie as stored), or
both, folds to the tile turned the same way. So each fold is correlated with the sync chips in
several orientations (``SCAN_STAGES`` says which; one product and inverse FFT each, in float32:
the folds, most of the cost, are shared), and for each chip size the best orientation competes
for the same number of decoding attempts: the false-match odds do not change.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from clipproof.findings import merge_spans
from clipproof.watermark import payload as code
from clipproof.watermark.blas import one_blas_thread
from clipproof.watermark.filters import gaussian_filter
from clipproof.watermark.framing import content_box
from clipproof.watermark.pattern import CHIPS_PER_SHORT_SIDE, MIN_CHIP, SYNC_CHIPS, TILE, layout, sync_template

WORK_SIDE = 256           # short side of the working frames (never upscaled)
FRAMES = 24               # frames read from the start of a 1080p clip; more for smaller ones
MAX_FRAMES = 48           # (the same decoding budget in pixels, up to this many: ``frames_for``)
HIGH_PASS_SIGMA = 1.5     # pixels at the working size
WHITEN_SIGMA = 2.0
CHASE_MIN_SCORE = 5.5      # sync peak (standard deviations) above which Chase decoding is tried
SCAN_STEP = 1.003          # ratio of neighbouring chip sizes scanned; then the best REFINED
                           # sizes are tried half a step either side
REFINED = 6
SCAN_CHUNK = 32            # chip sizes whose folds are correlated at once
MIN_WORK_CHIP = 1.0        # pixels: finer chips are gone
SPECTRUM_CLIP = 3.0        # a fold's spectral magnitudes are clipped at this many times their median
BINS = 2 * TILE           # half-chip bins


class Orientation(NamedTuple):
    """How a copy's pictures lie against the marked original's: mirrored left to right (or
    not), then turned ``quarter_turns`` quarter turns clockwise. These two make all eight ways
    a rectangle can be laid on itself (a flip top to bottom is a mirror and a half turn)."""

    mirrored: bool = False
    quarter_turns: int = 0

    def apply(self, a: np.ndarray) -> np.ndarray:
        """``a`` (…, H, W), laid as a copy in this orientation shows it."""
        return np.rot90(a[..., ::-1] if self.mirrored else a, -self.quarter_turns, axes=(-2, -1))

    def undo(self, a: np.ndarray) -> np.ndarray:
        """``a`` (…, H, W) as seen in a copy in this orientation, laid back as the original was."""
        a = np.rot90(a, self.quarter_turns, axes=(-2, -1))
        return a[..., ::-1] if self.mirrored else a

    @property
    def text(self) -> str:
        """How a report says it ("" for the original's orientation)."""
        turn = {1: "turned 90° clockwise", 2: "turned 180°", 3: "turned 90° counter-clockwise"}.get(self.quarter_turns, "")
        if self.mirrored and self.quarter_turns == 2:
            return "flipped top to bottom"
        return " and ".join(t for t in ("mirrored left to right" if self.mirrored else "", turn) if t)


UPRIGHT = Orientation()
ORIENTATIONS = tuple(Orientation(m, t) for m in (False, True) for t in range(4))


class _Stage(NamedTuple):
    low: float                             # chip sizes searched, relative to a 128th of the short side
    high: float
    orientations: tuple[Orientation, ...]  # in a clip whose short side is SMALL_CLIP or more
    small_originals: bool = False          # also the ratios of a small original and its crops


# First no crop or a mild one of a large original, in every orientation; then an 80 % crop of an
# original down to 192 pixels, or a feed's crop, upright or mirrored. An original under 384
# pixels has chips larger than a 128th of its side (``pattern.MIN_CHIP``), so that even its
# whole picture lies in the second stage: there a clip under 384 pixels is searched in every
# orientation too. (Every orientation in the second stage for every clip would cost an unmarked
# one 25 ms more: a copy both turned and cropped hard is not searched for.)
SCAN_STAGES = (_Stage(0.95, 1.3, ORIENTATIONS), _Stage(1.3, 2.6, (UPRIGHT, Orientation(mirrored=True)), True))
SMALLEST_CROP = 0.8        # of a small original's short side, that the last stage covers as well
SMALL_CLIP = MIN_CHIP * CHIPS_PER_SHORT_SIDE
assert len(SCAN_STAGES) == code.STAGES


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
    mirrored: bool = False           # the copy is mirrored left to right against the original,
    quarter_turns: int = 0           # then turned this many quarter turns clockwise (``Orientation``)

    @property
    def orientation(self) -> Orientation:
        return Orientation(self.mirrored, self.quarter_turns)

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
    return search(path, frames=frames)[0]


def search(path: str | os.PathLike, *, frames: int | None = None) -> tuple[Detection, np.ndarray]:
    """``detect``, and the grey frames the answer came from (a fingerprint is taken on them).

    The whole frame is searched first. Where nothing decodes there and the picture sits inside
    letterbox or pillarbox bars (``framing``), it is read again so that the picture's own short
    side is the working size, and searched alone: a clip re-uploaded inside a frame of another
    shape. That second search doubles the clip's odds of a false match (``false_match_odds``)."""
    from clipproof.media import read_luma
    luma, short_side = read_luma(path, frames or frames_for, max_short_side=WORK_SIDE)
    found = detect_frames(luma, native_short_side=short_side)
    box = None if found.found else content_box(luma)
    if box is None:
        return found, _as_marked(found, luma)
    top, bottom, left, right = box
    h, w = luma.shape[1:]
    inner = min(bottom - top, right - left)
    again, _ = read_luma(path, frames or frames_for, max_short_side=math.ceil(WORK_SIDE * min(h, w) / inner))
    k = again.shape[1] / h
    picture = np.ascontiguousarray(again[:, round(top * k):round(bottom * k), round(left * k):round(right * k)])
    inside = detect_frames(picture, native_short_side=round(short_side * inner / min(h, w)))
    twice = {"false_match_odds": 2 * found.false_match_odds}
    return (replace(inside, **twice), _as_marked(inside, picture)) if inside.found else (replace(found, **twice), luma)


def _as_marked(found: Detection, luma: np.ndarray) -> np.ndarray:
    """The frames laid the way the mark was embedded (a mirrored or turned copy turned back), so
    that its fingerprint is compared with the original's as the original was."""
    return np.ascontiguousarray(found.orientation.undo(luma))


def detect_frames(luma: np.ndarray, native_short_side: int | None = None) -> Detection:
    """Look for the watermark in luma frames (N, H, W) float; ``native_short_side`` (the clip's
    own short side, when the frames were scaled down) only converts the chip size reported.

    Scales near the embedded one (no crop, or a mild one) are searched first, and the rest only
    when nothing decodes there. In each stage the best ``HARD_ATTEMPTS`` alignments get a plain
    decode and the best ``code.MAX_ATTEMPTS`` a Chase decode."""
    with one_blas_thread():
        return _detect(luma, native_short_side)


class _Candidate(NamedTuple):
    """One alignment of the tile: the sync correlation's peak (standard deviations) for a chip
    size (working pixels), and which way round the picture is."""

    score: float
    chip: float
    orientation: Orientation


def _detect(luma: np.ndarray, native_short_side: int | None) -> Detection:
    residual = _residual(luma)
    short_side = native_short_side or min(residual.shape)
    native = short_side / min(residual.shape)
    best = _Candidate(0.0, 0.0, UPRIGHT)
    for stage in SCAN_STAGES:
        windows = [(stage.low, stage.high)]
        if short_side < SMALL_CLIP:
            stage = stage._replace(orientations=ORIENTATIONS)
            if stage.small_originals:
                # The original itself, or an 80 % crop of it, where its chips are MIN_CHIP: past
                # the stage's ratios under 192 pixels (a 128-pixel clip's were never looked for).
                windows = merge_spans(windows + [(SMALL_CLIP / short_side / SCAN_STEP,
                                              SMALL_CLIP / short_side / SMALLEST_CROP * SCAN_STEP)])
        candidates = sorted((c for low, high in windows for c in _scan(residual, stage._replace(low=low, high=high))),
                            key=lambda c: -c.score)
        best = max(best, candidates[0])
        for i, c in enumerate(_distinct(candidates, code.HARD_ATTEMPTS)):
            soft = _read_bits(clean_fold(residual, c.chip, c.orientation))
            # Chase decoding (2^10 words) only where the sync says a mark is likely there.
            decoded = code.decode(soft, chase=i < code.MAX_ATTEMPTS and c.score >= CHASE_MIN_SCORE)
            if decoded is not None:
                payload, errors = decoded
                return Detection(True, payload.hex(), errors, round(c.score, 2), round(c.chip * native, 2), len(luma),
                                 mirrored=c.orientation.mirrored, quarter_turns=c.orientation.quarter_turns)
    return Detection(False, None, None, round(best.score, 2), round(best.chip * native, 2), len(luma))


@dataclass(frozen=True)
class _Residual:
    """A residual (H, W) with the running sums of its columns, which every fold reads: taken
    once, where a search folds it for hundreds of chip sizes."""

    values: np.ndarray
    column_sums: np.ndarray        # (W + 1, H) float32: row i holds columns 0..i-1 summed

    @classmethod
    def of(cls, values: np.ndarray) -> _Residual:
        h, w = values.shape
        sums = np.zeros((h, w + 1), np.float32)
        np.cumsum(values, axis=1, out=sums[:, 1:])       # along rows, as the array lies: fast
        return cls(values, np.ascontiguousarray(sums.T))

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape


def _residual(luma: np.ndarray) -> _Residual:
    """The frames' mean whitened detail (``whitened_detail``)."""
    total = np.zeros(luma.shape[1:], np.float64)
    for frame in luma:
        total += whitened_detail(frame)
    total /= len(luma)
    return _Residual.of(total - total.mean())


def whitened_detail(frame: np.ndarray) -> np.ndarray:
    """One grey frame's high-pass divided by its local strength: edges and texture, which the
    picture fills with energy, count no more than flat areas."""
    detail = frame - gaussian_filter(frame, HIGH_PASS_SIGMA)
    local = np.sqrt(gaussian_filter(detail * detail, WHITEN_SIGMA)) + 1.0
    return np.clip(detail / local, -3.0, 3.0)


def chip_values(residual: np.ndarray, chip: float, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The residual folded onto the tile: one value per chip (TILE×TILE), tile offset ``shift``
    in half-chip bins."""
    return _chips(_fold(_Residual.of(residual), chip), shift)


def _chips(folded: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """A fold's half-chip bins summed into chips, the tile starting at ``shift``."""
    return np.roll(folded, (-shift[0], -shift[1]), axis=(0, 1)).reshape(TILE, 2, TILE, 2).sum((1, 3))


def _fold(residual: _Residual, chip: float) -> np.ndarray:
    """The residual summed into BINS×BINS half-chip bins modulo the tile (mean per bin)."""
    return _folds(residual, np.array([chip]))[0]


def _folds(residual: _Residual, chips: np.ndarray) -> np.ndarray:
    """``_fold`` for several chip sizes, (K, BINS, BINS). A half-chip bin holds a run of
    neighbouring columns, so a bin's sum is a difference of two running sums: each size reads the
    columns' running sums at its runs' edges and wraps its bins onto the tile. The rows of what is
    left (a seventh of the pixels) are then summed into their bins for all sizes at once, as one
    batched product with each size's one-hot row-to-bin matrix: per size, numpy's small calls
    (``reduceat``, a transpose, a second wrap) had cost three times the adding. In float32, as
    the products of earlier versions were."""
    h, w = residual.shape
    col_bins, row_bins = _bins(w, chips), _bins(h, chips)                     # (K, W), (K, H)
    folded_columns = np.empty((len(chips), BINS, h), np.float32)
    for j, bins in enumerate(col_bins):
        starts = np.flatnonzero(np.diff(bins, prepend=-1))
        edges = np.append(starts, w)
        folded_columns[j] = _wrap(np.diff(residual.column_sums[edges], axis=0), bins[starts])   # (BINS, H)
    k, y = np.indices(row_bins.shape)
    rows = np.zeros((len(chips), h, BINS), np.float32)
    rows[k, y, row_bins % BINS] = 1.0
    sums = np.matmul(folded_columns, rows).transpose(0, 2, 1)                 # (K, BINS rows, BINS columns)
    counts = _pixels_per_bin(row_bins)[:, :, None] * _pixels_per_bin(col_bins)[:, None, :]
    return sums / np.maximum(counts, 1)


def _bins(n: int, chips: np.ndarray) -> np.ndarray:
    """(K, n): the half-chip bin of pixels 0..n-1 for each chip size, counted on past BINS
    before wrapping. A bin a chip under two pixels leaves empty has no pixel."""
    return np.floor(np.arange(n) * 2 / chips[:, None]).astype(np.int64)


def _wrap(run_sums: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(BINS, …): the runs' sums (first axis) added up per bin of the tile (``bins``: each
    run's bin, increasing)."""
    if len(bins) == bins[-1] + 1:
        # Every bin has its run, in order (chips of two pixels or more): whole laps of the tile
        # add up as they lie, then the last part lap; no scattering into a padded copy.
        laps = len(bins) // BINS
        out = (run_sums[:laps * BINS].reshape(laps, BINS, *run_sums.shape[1:]).sum(axis=0) if laps
               else np.zeros((BINS, *run_sums.shape[1:]), run_sums.dtype))
        out[:len(bins) - laps * BINS] += run_sums[laps * BINS:]
        return out
    laps = bins[-1] // BINS + 1
    unwrapped = np.zeros((laps * BINS, *run_sums.shape[1:]), run_sums.dtype)
    unwrapped[bins] = run_sums
    return unwrapped.reshape(laps, BINS, *run_sums.shape[1:]).sum(axis=0)


def _pixels_per_bin(bins: np.ndarray) -> np.ndarray:
    """(K, BINS): the pixels in each bin of the tile, for each chip size's ``bins`` (K, n)."""
    k = np.arange(len(bins))[:, None]
    return np.bincount((k * BINS + bins % BINS).ravel(), minlength=len(bins) * BINS).reshape(len(bins), BINS)


def clean_fold(residual: _Residual, chip: float, orientation: Orientation = UPRIGHT) -> np.ndarray:
    """``_fold`` with its strongest spectral lines clipped (``_fold_spectra``): what the
    detector reads the bits from; laid back as the original was where the copy is turned
    (``orientation``), up to a shift, which ``_read_bits`` finds."""
    return orientation.undo(np.fft.irfft2(_fold_spectra(residual, np.array([chip]))[0], s=(BINS, BINS)))


def _fold_spectra(residual: _Residual, chips: np.ndarray) -> np.ndarray:
    """The folds' spectra, each magnitude clipped at ``SPECTRUM_CLIP`` times its fold's median.

    A picture that repeats with the tile's period folds as coherently as the mark: an ordered
    dither or a block grid, fixed to the pixels of a small source that was scaled up by a ratio
    that makes its period divide the tile's (256 to 1080 lines, chips of exactly 2 working
    pixels). Folded, it outweighed the mark 4 to 1 on one wild-dev AnimateDiff GIF and moved the
    sync peak half a chip. Its energy sits in a few spectral lines, the random chips' spreads
    over all of them: clipping the lines leaves the mark."""
    spectra = np.fft.rfft2(_folds(residual, chips).astype(np.float32))   # float32: twice as fast
    magnitude = np.abs(spectra)
    limit = SPECTRUM_CLIP * np.median(magnitude.reshape(len(chips), -1), axis=1)[:, None, None]
    return spectra * np.minimum(1.0, limit / (magnitude + 1e-12))


@lru_cache(maxsize=4)
def _sync_spectra(orientations: tuple[Orientation, ...] = (UPRIGHT,)) -> np.ndarray:
    """The sync chips' spectrum in each of ``orientations`` (conjugated: a product with a
    fold's is their correlation), (O, BINS, BINS // 2 + 1). Correlating a fold with the turned
    chips is correlating the fold turned back with the chips."""
    template = np.kron(sync_template(), np.ones((2, 2), np.float32))
    return np.conj(np.fft.rfft2(np.stack([o.apply(template) for o in orientations])))


@lru_cache(maxsize=4)
def _sync_power(orientations: tuple[Orientation, ...]) -> np.ndarray:
    """(BINS * (BINS // 2 + 1), O): each orientation's spectral power, the columns a half
    spectrum holds once (0 and BINS / 2) counted once and the others twice (Parseval)."""
    weights = np.full(BINS // 2 + 1, 2.0, np.float32)
    weights[[0, -1]] = 1.0
    return (np.abs(_sync_spectra(orientations)) ** 2 * weights).reshape(len(orientations), -1).T


def _scan(residual: _Residual, stage: _Stage) -> list[_Candidate]:
    """The best alignment for every candidate chip size.

    The embedder ties the chip to the frame (``pattern.chip_size``: a 128th of the short side,
    more for originals under 384 pixels), and scaling keeps that ratio: only a crop or a small
    original changes it, so the scan covers the stage's ratios (of a 128th). A chip size off by
    0.5 % drifts a chip across 200 chips, hence the fine step."""
    nominal = min(residual.shape) / CHIPS_PER_SHORT_SIDE
    steps = np.arange(int(np.ceil(np.log(stage.high / stage.low) / np.log(SCAN_STEP))))
    chips = nominal * stage.low * SCAN_STEP ** steps
    chips = chips[chips >= MIN_WORK_CHIP]
    if not len(chips):
        return [_Candidate(0.0, nominal, UPRIGHT)]
    out = _sync_scores(residual, chips, stage.orientations)
    # The best few, refined between the scan's steps.
    best = [c.chip for c in _distinct(sorted(out, key=lambda c: -c.score), REFINED)]
    refined = np.array([c * f for c in best for f in (SCAN_STEP ** -0.5, SCAN_STEP ** 0.5)])
    return out + _sync_scores(residual, refined, stage.orientations)


def _sync_scores(residual: _Residual, chips: np.ndarray, orientations: tuple[Orientation, ...]) -> list[_Candidate]:
    """The best of the orientations' alignments for each chip size, ``SCAN_CHUNK`` sizes a time."""
    out = []
    for start in range(0, len(chips), SCAN_CHUNK):
        part = chips[start:start + SCAN_CHUNK]
        scores = _peaks(_fold_spectra(residual, part), orientations)                   # (K, O)
        turn = scores.argmax(axis=1)
        out += [_Candidate(float(scores[j, t]), float(chip), orientations[t]) for j, (chip, t) in enumerate(zip(part, turn))]
    return out


def _peaks(spectra: np.ndarray, orientations: tuple[Orientation, ...]) -> np.ndarray:
    """(K, O): the peak of each fold's cyclic correlation with the sync chips in each
    orientation, in standard deviations over the shifts. The mean and the spread come from the
    spectra (Parseval), at a fraction of a pass over the correlations."""
    n = BINS * BINS
    products = spectra[:, None] * _sync_spectra(orientations)
    peak = np.fft.irfft2(products, s=(BINS, BINS)).reshape(*products.shape[:2], n).max(-1)
    mean = products[..., 0, 0].real / n
    power = (spectra.real ** 2 + spectra.imag ** 2).reshape(len(spectra), -1) @ _sync_power(orientations)
    return (peak - mean) / (np.sqrt(np.maximum(power / n / n - mean ** 2, 0.0)) + 1e-12)


def _distinct(candidates: list[_Candidate], n: int) -> list[_Candidate]:
    """The best ``n`` candidates whose chip sizes are not neighbours of a better one."""
    kept: list[_Candidate] = []
    for c in candidates:
        if all(abs(c.chip / k.chip - 1) > 0.02 for k in kept):
            kept.append(c)
        if len(kept) == n:
            break
    return kept


def _read_bits(folded: np.ndarray) -> np.ndarray:
    """Soft bits from the data chips, at the tile offset where the sync chips correlate best."""
    corr = np.fft.irfft2(np.fft.rfft2(folded) * _sync_spectra()[0], s=(BINS, BINS))
    _, data, carrier, bit_of = layout()
    chips = _chips(folded, np.unravel_index(np.argmax(corr), corr.shape)).ravel()
    soft = np.bincount(bit_of, weights=chips[data] * carrier[data], minlength=code.CODED_BITS)
    return soft / (np.std(soft) + 1e-12)


assert SYNC_CHIPS < TILE * TILE
