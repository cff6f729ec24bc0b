"""The detector inside ``verify``: sample segments of a video, score each, combine.

A video is cut into up to ``MAX_SEGMENTS`` equal segments; from each, ``frames`` frames are
decoded at the model's input size (centre crop, aspect kept) in one pass over the file
(``media.read_windows`` seeks only where the index shows it saves decoding). Each segment gets
a calibrated P(synthetic); the clip's is their mean.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

from clipproof.detector.weights import TRAINING_FILE, load_weights
from clipproof.findings import DetectorFindings, Segment

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS / "st-attention"
MAX_SEGMENTS = 4
# Clips the model was trained on were cut at the source's own frame rate; a segment spans
# frames/fps seconds at most of this rate so that motion per frame matches training.
SEGMENT_FPS = 12.0


class Detector:
    """Loaded weights + calibration; ``score`` is thread-safe (inference only, no state)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.model, self.config, self.calibration = load_weights(self.folder)
        self.frames = int(self.config["frames"])
        self.size = tuple(self.config["size"])
        self.name = f"{self.config['model']}@{self.folder.name}"
        self._lock = threading.Lock()   # torch CPU inference is thread-safe; one at a time keeps memory flat

    def segments(self, media) -> list[tuple[float, float]]:
        """The [start, end) seconds of each segment: ``frames`` frames from the middle of each of
        up to ``MAX_SEGMENTS`` equal parts of the video."""
        duration = media.duration_s or (media.frames / media.fps if media.fps else 0.0)
        span = self.frames / (media.fps or SEGMENT_FPS)
        count = max(1, min(MAX_SEGMENTS, int(duration // span) if duration else 1))
        edges = np.linspace(0.0, duration, count + 1) if duration else np.zeros(count + 1)
        starts = [max(0.0, min((lo + hi - span) / 2, duration - span)) if duration else 0.0
                  for lo, hi in zip(edges[:-1], edges[1:])]
        return [(round(start, 3), round(start + span, 3)) for start in starts]

    def read_segments(self, path: str | os.PathLike, media, segments: list[tuple[float, float]]) -> torch.Tensor:
        """The frames of ``segments`` (from ``segments(media)``) as the model's input, (S, T, 3, H, W)
        in [-1, 1]."""
        from clipproof.media import read_windows

        # Half a frame of slack: a segment's last frame may sit a rounding error past its end.
        slack = 0.5 / max(media.fps, 1.0)
        read = read_windows(path, [(a, b + slack) for a, b in segments], size=self.size, crop=True)
        clips = np.stack([_pad(frames[: self.frames], self.frames) for frames, _ in read])
        return torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float().div_(127.5).sub_(1.0)

    def score(self, path: str | os.PathLike, media) -> DetectorFindings:
        segments = self.segments(media)
        x = self.read_segments(path, media, segments)
        with self._lock, torch.inference_mode():
            logits = self.model(x)["logits"].float().numpy()
        p = self.calibration.probability(logits)
        return DetectorFindings(
            model=self.config["model"], version=self.config.get("version", ""), p_synthetic=round(float(p.mean()), 4),
            thresholds={"low": round(self.calibration.low, 4), "high": round(self.calibration.high, 4)},
            segments=[Segment(a, b, round(float(q), 4)) for (a, b), q in zip(segments, p)],
            frames_used=len(x) * self.frames)


def _pad(frames: np.ndarray, n: int) -> np.ndarray:
    """Short videos: repeat the last frame up to ``n`` (a still image gives one frame)."""
    if len(frames) >= n:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


def load_detector(weights: str | os.PathLike | None = None) -> Detector | None:
    """The bundled detector (None when this checkout has no bundled weights), or ``weights``."""
    if weights is None:
        if not (DEFAULT_WEIGHTS / TRAINING_FILE).is_file():
            return None
        weights = DEFAULT_WEIGHTS
    return Detector(weights)
