"""The benchmarks' ways to time code: the median wall time of repeated calls, and what a whole
process costs (wall, CPU, peak memory), measured from a small parent."""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
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


def bench_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """A bench's command line (``python -m MODULE``, its docstring as help), with the hidden
    ``--measure-only`` that ``in_fresh_parent`` runs it again with."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    return p


def in_fresh_parent(module: str, argv: list[str] | None) -> int:
    """Run the bench again, ``python -m MODULE`` with the same arguments and ``--measure-only``,
    and return its exit code: the processes it times get a small parent (a child's peak RSS
    counts its parent's at fork, and building the inputs leaves a bench's own process large)."""
    return subprocess.call([sys.executable, "-m", module, *(sys.argv[1:] if argv is None else argv), "--measure-only"])
