"""The benchmarks' ways to time code: the median wall time of repeated calls, and what a whole
process costs (wall, CPU, peak memory)."""
from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProcessCost:
    wall_s: float          # median over the runs
    cpu_s: float           # median user + system seconds: a busy pipeline has no idle core
    peak_mb: float         # the largest peak resident memory
    exit_codes: frozenset[int]


def process_cost(cmd: list[str], runs: int, at_once: int = 1) -> ProcessCost:
    """Run ``cmd`` ``runs`` times as a new process each (stdout and stderr discarded). Measure from
    a small parent: a child's peak RSS counts its parent's at fork time.

    ``at_once`` > 1 starts that many copies together, as on a busy machine: the wall time is until
    the last ends, CPU and peak memory are per copy."""
    walls, cpus, peaks, codes = [], [], [], set()
    for _ in range(runs):
        start = time.perf_counter()
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(at_once)]
        cpu = 0.0
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            cpu += usage.ru_utime + usage.ru_stime
            peaks.append(usage.ru_maxrss / 1024)        # KiB on Linux
            codes.add(os.waitstatus_to_exitcode(status))
        walls.append(time.perf_counter() - start)
        cpus.append(cpu / at_once)
    return ProcessCost(statistics.median(walls), statistics.median(cpus), max(peaks), frozenset(codes))
