"""The detector inside ``verify``: cover the video with segments, score each, combine.

Segments of ``frames`` frames tile the clip end to end when ``MAX_SEGMENTS`` of them cover it (a
10-second clip at 12 fps: 8 segments, every second scored; fewer for large frames, whose decoding
is most of the cost: ``DECODE_BUDGET_PIXELS``), and are spread evenly with gaps over a longer one,
one in each equal part of it, starting at a keyframe where the part has one (decoding then starts
where the segment does, and the frames between segments that nothing refers to are not decoded);
the report says how many seconds of how many were scored. Frames are decoded at the model's input
size (centre crop, aspect kept) in one pass over the file (``media.iter_windows`` seeks only
where the index shows it saves decoding), and the
model scores each batch of segments in a second thread while the next ones decode. Each
segment gets a calibrated P(synthetic); the clip's is its most synthetic segment's, so a
synthetic insert in a long real clip is not averaged away (the report names its time range),
discounted for the number of segments (``Calibration.clip_logit``: of 24 real segments one
scores high far more often than a single one does).

The model runs on ONNX Runtime when the weights folder holds a matching ``model.onnx`` (torch
is then never imported: the whole ``verify`` process is a second, not four), else on torch.
"""
from __future__ import annotations

import bisect
import math
import os
import threading
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from clipproof.detector import ood
from clipproof.detector.weights import (ONNX_QUANTIZED_KEY, TRAINING_FILE, load_model, onnx_session, read_info,
                                        segment_crops)
from clipproof.errors import UsageError, loading_weights
from clipproof.findings import DetectorFindings, Segment, merge_spans

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS / "st-attention-npr"
MAX_SEGMENTS = 24
# Decoding is most of a verify with the detector, and its cost grows with the frame's pixels:
# the segments' frames together stay within this many pixels (8 segments of 16 frames of 1080p,
# 18 of 720p, all 24 of 540p), but a clip gets at least MIN_SEGMENTS. Tiling a 10 s 1080p30
# clip (19 segments) decoded all 300 frames: 2.6-2.9 s of a whole verify on 2 cores.
DECODE_BUDGET_PIXELS = 8 * 16 * 1920 * 1080
MIN_SEGMENTS = 4
# Clips the model was trained on were cut at the source's own frame rate; a segment spans
# frames/fps seconds at most of this rate so that motion per frame matches training.
SEGMENT_FPS = 12.0
BACKENDS = ("auto", "onnx", "torch")
ROWS = 8                   # model rows (crops of a segment) per inference call: bounds its memory


class Detector:
    """Loaded weights + calibration; ``score`` is thread-safe (inference only, no state).

    ``backend``: ``"auto"`` (ONNX Runtime when the folder has a matching export, else torch),
    ``"onnx"`` or ``"torch"``. ``whole_clip``: segments tile a clip end to end up to
    ``MAX_SEGMENTS`` whatever its frame size (``decode_budget`` None), for a desk that wants
    every stretch of one clip scored and can wait for it."""

    def __init__(self, folder: str | os.PathLike, backend: str = "auto", *, whole_clip: bool = False):
        if backend not in BACKENDS:
            raise UsageError(f"unknown detector backend {backend!r} (one of {', '.join(BACKENDS)})")
        self.folder = Path(folder)
        self.config, self.calibration = read_info(self.folder)
        self.frames = int(self.config["frames"])
        self.size = tuple(self.config["size"])
        # "native": the model sees crops at the clip's own resolution, ``crops`` per segment spread
        # over the frame; "resize" (the first models): the whole frame scaled down to ``size``.
        self.input = self.config.get("input", "resize")
        self.crops = segment_crops(self.config)
        self.name = f"{self.config['model']}@{self.folder.name}"
        self._session = onnx_session(self.folder) if backend in ("auto", "onnx") else None
        self.quantized = self._session is not None and ONNX_QUANTIZED_KEY in self._session.get_modelmeta().custom_metadata_map
        if backend == "onnx" and self._session is None:
            raise UsageError("no ONNX export matching these weights (python -m tools.export_onnx)", path=self.folder)
        self.ood = ood.load(self.folder, ood.INT8_OOD_FILE if self.quantized else ood.OOD_FILE)
        self.model = None
        if self._session is None:
            with loading_weights(self.folder, "detector"):
                self.model = load_model(self.folder, self.config["model"])
        self.backend = "onnx" if self._session is not None else "torch"
        self.decode_budget: int | None = None if whole_clip else DECODE_BUDGET_PIXELS
        self._lock = threading.Lock()   # one inference at a time keeps memory flat

    def logits(self, clips: np.ndarray) -> np.ndarray:
        """Uncalibrated logits of clips (S, T, 3, H, W) float32 in [-1, 1]."""
        return self.run(clips)[0]

    def run(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits (S,), embeddings (S, D) or None when an older ONNX export has none), ``ROWS``
        rows at a time: a 10-second clip is ~80 rows of 16 frames, and the backbone's activations
        for all of them at once took ~900 MB."""
        return _joined([self._run(clips[i:i + ROWS]) for i in range(0, len(clips), ROWS)])

    def _run(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with self._lock:
            if self._session is not None:
                outputs = self._session.run(None, {self._session.get_inputs()[0].name: clips})
                return outputs[0].astype(np.float64), (outputs[1] if len(outputs) > 1 else None)
            import torch
            with torch.inference_mode():
                out = self.model(torch.from_numpy(clips))
                return out["logits"].double().numpy(), out["embedding"].double().numpy()

    def segments(self, media, keyframes: Sequence[float] = ()) -> list[tuple[float, float]]:
        """The [start, end) seconds of each segment: end to end from the start when up to
        ``MAX_SEGMENTS`` cover the clip, otherwise one in each of that many equal parts of it,
        centred, or at the keyframe nearest the centre when the part holds one (``keyframes``:
        sorted seconds, as ``media.keyframe_times`` lists them). A segment that starts between
        keyframes is decoded from the keyframe before it: with a keyframe every second (a phone's
        camera), reading a minute of 720p took 2.6 s of CPU centred and 1.2 s at the keyframes."""
        duration, span = self._timing(media)
        if not duration:
            return [(0.0, round(span, 3))]
        if not self.spread(media):
            count = max(1, math.ceil(duration / span - 1e-6))
            starts = [min(i * span, max(0.0, duration - span)) for i in range(count)]
        else:
            edges = np.linspace(0.0, duration, self.most_segments(media) + 1)
            starts = [_start_in(float(lo), float(hi), span, duration, keyframes) for lo, hi in zip(edges[:-1], edges[1:])]
        return [(round(start, 3), round(start + span, 3)) for start in starts]

    def spread(self, media) -> bool:
        """Whether ``media`` is too long for ``most_segments`` to cover it end to end (its
        segments then leave gaps, and keyframes decide where they start)."""
        duration, span = self._timing(media)
        return duration / span - 1e-6 > self.most_segments(media)

    def most_segments(self, media) -> int:
        """How many segments ``media`` gets at most: ``MAX_SEGMENTS``, fewer where their frames
        would decode more than ``decode_budget`` pixels, never fewer than ``MIN_SEGMENTS``."""
        pixels = (media.width or 0) * (media.height or 0) * self.frames
        if not pixels or self.decode_budget is None:
            return MAX_SEGMENTS
        return max(MIN_SEGMENTS, min(MAX_SEGMENTS, self.decode_budget // pixels))

    def _timing(self, media) -> tuple[float, float]:
        """(the clip's duration, a segment's), in seconds."""
        duration = media.duration_s or (media.frames / media.fps if media.fps else 0.0)
        return duration, self.frames / (media.fps or SEGMENT_FPS)

    def read_segments(self, path: str | os.PathLike, media, segments: list[tuple[float, float]]) -> np.ndarray:
        """The frames of ``segments`` (from ``segments(media)``) as the model's input, (S × crops,
        T, 3, H, W) float32 in [-1, 1], a segment's crops next to each other."""
        rows = dict(self._segment_rows(path, media, segments))
        return np.concatenate([rows[i] for i in range(len(segments))])

    def _segment_rows(self, path, media, segments, partial: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """(segment index, its model rows (crops, T, 3, H, W)), each segment as it is decoded
        (``partial``: segments past where the stream stops decoding are left out)."""
        from clipproof.media import iter_windows

        # Half a frame of slack: a segment's last frame may sit a rounding error past its end.
        slack = 0.5 / max(media.fps, 1.0)
        place = {"native_crops": crop_centres(self.crops)} if self.input == "native" else {"crop": True}
        for i, (frames, _) in iter_windows(path, [(a, b + slack) for a, b in segments], size=self.size,
                                           max_frames=self.frames, partial=partial, **place):
            clip = _pad(frames, self.frames)
            # native (T, K, H, W, 3) -> (K, T, H, W, 3), a row a crop; resize (T, H, W, 3): one row
            rows = clip.transpose(1, 0, 2, 3, 4) if self.input == "native" else clip[None]
            yield i, np.ascontiguousarray(rows.transpose(0, 1, 4, 2, 3), dtype=np.float32) / np.float32(127.5) - np.float32(1.0)

    def _read_and_run(self, path, media, segments) -> tuple[list[int], np.ndarray, np.ndarray | None]:
        """``run(read_segments(...))`` with the model scoring each ``ROWS`` rows in a second
        thread while the next segments decode: (the segments that decoded, in order; their
        rows' logits and embeddings). Segments past where the stream stops decoding (a file cut
        short) are left out."""
        from concurrent.futures import ThreadPoolExecutor

        order: list[int] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipproof-detector") as pool:
            futures, pending = [], []
            for i, rows in self._segment_rows(path, media, segments, partial=True):
                order.append(i)
                pending.append(rows)
                if sum(map(len, pending)) >= ROWS:
                    futures.append(pool.submit(self._run, np.concatenate(pending)))
                    pending = []
            if pending:
                futures.append(pool.submit(self._run, np.concatenate(pending)))
            logits, embeddings = _joined([f.result() for f in futures])
        # Rows came in decoding (time) order: put them back in the segments' order.
        back = np.argsort(np.repeat(np.array(order), self.crops), kind="stable")
        return sorted(order), logits[back], (embeddings[back] if embeddings is not None else None)

    def score(self, path: str | os.PathLike, media) -> DetectorFindings:
        from clipproof.media import keyframe_times
        planned = self.segments(media, keyframe_times(path) if self.spread(media) else ())
        decoded, logits, embeddings = self._read_and_run(path, media, planned)
        segments = [planned[i] for i in decoded]
        # A segment's crops vote by their mean logit: one crop of sky must not hide a face.
        segment_logits = logits.reshape(len(segments), self.crops).mean(axis=1)
        p = self.calibration.probability(segment_logits)
        distance = None
        if self.ood is not None and embeddings is not None:
            distance = round(float(np.median(self.ood.distances(embeddings))), 3)
        duration = self._timing(media)[0]
        covered = sum(min(b, duration) - a for a, b in merge_spans(segments)) if duration else 0.0
        cal = self.calibration
        return DetectorFindings(
            model=self.config["model"], version=self.config.get("version", ""),
            p_synthetic=_digits(cal.clip_probability(segment_logits)),
            thresholds={"low": round(cal.low, 4), "high": round(cal.high, 4)},
            # A clip shorter than a segment is padded with its last frame: the segment ends where it does.
            segments=[Segment(a, min(b, duration) if duration else b, _digits(q)) for (a, b), q in zip(segments, p)],
            frames_used=len(segments) * self.frames, seconds_scored=round(covered, 3), duration_s=round(duration, 3),
            trained_on=self.config.get("trained_on", ""), calls_real=cal.calls_real, calls_real_note=cal.calls_real_note,
            ood_distance=distance, ood_threshold=round(self.ood.threshold, 3) if distance is not None else None,
            shortfalls=self.shortfalls(media) + _undecoded(planned, decoded))

    def shortfalls(self, media) -> list[str]:
        """What ``media`` lacks for this detector's input, said as how it was scored anyway."""
        out = []
        frames = media.frames or round((media.duration_s or 0.0) * (media.fps or 0.0))
        if 0 < frames < self.frames:
            out.append(f"the clip has {frames} frame{'s' if frames != 1 else ''}, fewer than the {self.frames} "
                       f"of a segment: its last frame was repeated to fill one")
        w, h = self.size
        if self.input == "native" and media.width and media.height and (media.width < w or media.height < h):
            out.append(f"its frames ({media.width}x{media.height}) are smaller than the detector's {w}x{h} crops: "
                       f"they were scaled up to fit, so their pixels were not seen as they are")
        return out


def _undecoded(planned: list[tuple[float, float]], decoded: list[int]) -> list[str]:
    """The shortfall of segments whose frames did not decode (a file cut short or damaged in
    places), with the stretches they span."""
    missing = sorted(set(range(len(planned))) - set(decoded))
    if not missing:
        return []
    spans = ", ".join(f"{a:g}–{b:g} s" for a, b in merge_spans(planned[i] for i in missing))
    return [f"the frames of {len(missing)} of its {len(planned)} segments ({spans}) do not decode"]


def _joined(parts: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray | None]:
    """The (logits, embeddings) of successive model calls, end to end."""
    logits = np.concatenate([p[0] for p in parts])
    embeddings = None if any(p[1] is None for p in parts) else np.concatenate([p[1] for p in parts])
    return logits, embeddings


def _start_in(lo: float, hi: float, span: float, duration: float, keyframes: Sequence[float]) -> float:
    """Where a segment ``span`` seconds long starts in the part [lo, hi) of a clip: at the
    keyframe nearest the part's centre that leaves the segment inside the part, else at the one
    nearest the centre that starts in the part (the segment runs on into the next part, not past
    the clip's end), else centred, decoded from the keyframe before it. (Parts of 1.25 s, a
    keyframe every 0.97 s: 2 of 8 segments found none inside their part, and decoded 16 frames
    more each.)"""
    centred = max(0.0, min((lo + hi - span) / 2, duration - span))
    first = bisect.bisect_left(keyframes, lo)
    for last in (hi - span, min(hi, duration - span)):
        starts = keyframes[first:bisect.bisect_right(keyframes, last)]
        if len(starts):
            return min(starts, key=lambda k: abs(k - centred))
    return centred


def _digits(p: float) -> float:
    """A probability kept to 6 significant digits, also near 0 and 1 (0.9999987 stays that)."""
    p = float(p)
    return float(f"{p:.6g}") if p < 0.5 else 1.0 - float(f"{1.0 - p:.6g}")


def crop_centres(count: int) -> list[tuple[float, float]]:
    """``count`` crop centres spread over a frame: a centred grid (1: the middle; 4: 2×2; 9: 3×3;
    other counts fill the smallest grid that holds them, row by row)."""
    side = math.ceil(math.sqrt(count))
    grid = [((i + 0.5) / side, (j + 0.5) / side) for j in range(side) for i in range(side)]
    return grid[:count]


def _pad(frames: np.ndarray, n: int) -> np.ndarray:
    """Short videos: repeat the last frame up to ``n`` (a still image gives one frame)."""
    if len(frames) >= n:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


def load_detector(weights: str | os.PathLike | None = None, backend: str = "auto", *,
                  whole_clip: bool = False) -> Detector | None:
    """The bundled detector (None when this checkout has no bundled weights), or ``weights``."""
    if weights is None:
        if not (DEFAULT_WEIGHTS / TRAINING_FILE).is_file():
            return None
        weights = DEFAULT_WEIGHTS
    return Detector(weights, backend, whole_clip=whole_clip)
