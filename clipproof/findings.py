"""What a detector found in a clip: the ``detector`` part of a Report.

Plain data at the bottom of the package, so the detector can produce it and the report can
carry it without either knowing the other.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    p_synthetic: float


@dataclass(frozen=True)
class DetectorFindings:
    model: str
    version: str
    p_synthetic: float                 # calibrated P(synthetic) of the clip (mean of segments)
    thresholds: dict[str, float]       # {"low": ..., "high": ...}
    segments: list[Segment]
    frames_used: int
