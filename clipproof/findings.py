"""What a detector found in a clip: the ``detector`` part of a Report.

Plain data at the bottom of the package, so the detector can produce it and the report can
carry it without either knowing the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    p_synthetic: float


def merge_spans(spans) -> list[tuple[float, float]]:
    """(start, end) spans in time order, those that touch or overlap joined into one."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


@dataclass(frozen=True)
class DetectorFindings:
    model: str
    version: str
    # Calibrated P(synthetic) of the clip: its most synthetic segment's, discounted for the number
    # of segments (a long real clip has more chances to hold one high-scoring stretch).
    p_synthetic: float
    thresholds: dict[str, float]       # {"low": ..., "high": ...}
    segments: list[Segment]
    frames_used: int
    seconds_scored: float = 0.0        # how much of the clip the segments cover ...
    duration_s: float = 0.0            # ... of how long
    trained_on: str = ""               # one line: what the detector learned from
    # False when the detector's measured recall on generators it was not trained on is too low
    # for "likely real" to mean anything: a low score is then "uncertain" (calls_real_note: why).
    calls_real: bool = True
    calls_real_note: str = ""
    # How far the clip sits from the training data in the detector's feature space (the median
    # of its segments), and the distance 99 % of held-out in-distribution clips stay within;
    # None for weights without the check.
    ood_distance: float | None = None
    ood_threshold: float | None = None
    # What the clip had less of than the detector's input needs, and how it was scored anyway
    # (too few frames for one segment, frames smaller than a crop): one sentence each.
    shortfalls: list[str] = field(default_factory=list)

    @property
    def out_of_distribution(self) -> bool:
        return self.ood_distance is not None and self.ood_threshold is not None and self.ood_distance > self.ood_threshold
