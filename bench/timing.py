"""The benchmarks' one way to time code: the median wall time of repeated calls."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(fn: Callable[[], object], runs: int, warmup: int = 0) -> float:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; the median seconds of a call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
