"""Cutting clips: T frames at a stride (or a frame rate), resized and cropped to H×W, several
non-overlapping windows per source, deterministic for a seed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from clipproof.datasets.sources import Source
from clipproof.errors import InvalidMediaError, UsageError
from clipproof.records import stable_seed

# Frame rate given to clips animated from stills when the spec sets none.
STILL_FPS = 24.0


@dataclass(frozen=True)
class ClipSpec:
    frames: int = 16
    width: int = 64
    height: int = 64
    fps: float | None = None      # resample to about this rate (by a whole-frame stride)
    stride: int = 1               # used when fps is None: keep every stride-th frame
    windows: int = 3              # clips per source video (fewer when the video is short)
    crf: int = 18                 # H.264 CRF of every stored clip
    # Crop width x height at the source's own resolution (a random place per window) instead of
    # scaling the whole frame down: generation traces live in single pixels.
    native: bool = False
    # Native crops per window, each stored as its own clip: a short source (a generator's
    # 16-frame sample) has one window, and one crop of it is too little of it to learn from.
    crops: int = 1

    def __post_init__(self):
        if self.frames < 1 or self.windows < 1 or self.stride < 1 or self.crops < 1:
            raise UsageError("frames, windows, stride and crops must be at least 1")
        if self.crops > 1 and not self.native:
            raise UsageError("crops > 1 needs native = true (whole frames have one crop)")
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise UsageError(f"clip size must be even and at least 16x16, got {self.width}x{self.height}")
        if self.fps is not None and self.fps <= 0:
            raise UsageError(f"fps must be positive, got {self.fps}")
        if not 0 <= self.crf <= 51:
            raise UsageError(f"CRF must be in 0..51, got {self.crf}")


@dataclass(frozen=True)
class Window:
    index: int                 # window number, times crops, plus the crop's number
    start_s: float
    fps: float
    frames: np.ndarray     # uint8 (T, H, W, 3)


def window_starts(total: int, span: int, windows: int, rng: np.random.Generator) -> list[int]:
    """Start frames of up to ``windows`` non-overlapping spans of ``span`` frames in ``total``:
    one per equal segment of the video, at a random offset inside it."""
    count = min(windows, total // span)
    if count == 0:
        return []
    segment = total // count
    return [i * segment + int(rng.integers(0, segment - span + 1)) for i in range(count)]


def cut_windows(source: Source, spec: ClipSpec, seed: int) -> Iterator[Window]:
    """The clips of one source. Raises InvalidMediaError when the source cannot be read,
    including midway (the caller skips the whole source)."""
    if source.kind == "still":
        yield from _still_windows(source, spec, seed)
        return
    from clipproof.media import probe, read_frames

    info = probe(source.path)
    if not info.fps or info.frames < 1:
        raise InvalidMediaError("no frame rate or frame count in its headers", path=source.path)
    stride = max(1, round(info.fps / spec.fps)) if spec.fps else spec.stride
    span = spec.frames * stride
    rng = np.random.default_rng(stable_seed(seed, source.name))
    starts = window_starts(info.frames, span, spec.windows, rng)
    if not starts:
        raise InvalidMediaError(f"{info.frames} frames, shorter than one clip ({span})", path=source.path)
    for i, start in enumerate(starts):
        # From half a frame before the start (timestamps are rounded, frame indices are not),
        # a few frames of slack at the end, then count frames rather than trust timestamps.
        place = ({"native_crops": [tuple(rng.uniform(0.0, 1.0, 2)) for _ in range(spec.crops)]} if spec.native
                 else {"crop": True})
        frames, _ = read_frames(source.path, size=(spec.width, spec.height), start_s=max(0.0, (start - 0.5) / info.fps),
                                end_s=(start + span + 2.5) / info.fps, **place)
        found = len(frames[:span][::stride])
        if found < spec.frames:
            raise InvalidMediaError(
                f"{source.path}: only {found} of {spec.frames} frames found from {start / info.fps:.2f} s "
                f"(dropped frames, broken timestamps, or data truncated or corrupt)")
        for k in range(spec.crops):
            cut = (frames[:, k] if spec.native else frames)[:span][::stride]
            yield Window(i * spec.crops + k, round(start / info.fps, 3), round(info.fps / stride, 3), cut)


def _still_windows(source: Source, spec: ClipSpec, seed: int) -> Iterator[Window]:
    from clipproof.datasets.stills import camera_move, load_photo

    try:
        photo = load_photo(source.path)
    except OSError as e:
        raise InvalidMediaError(f"not a readable image ({e})", path=source.path) from e
    for i in range(spec.windows):      # each window is its own camera move: crops do not apply
        rng = np.random.default_rng(stable_seed(seed, source.name, i))
        yield Window(i, 0.0, spec.fps or STILL_FPS, camera_move(photo, spec.frames, spec.width, spec.height, rng))
