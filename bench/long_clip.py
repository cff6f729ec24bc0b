"""A long clip through the detector: its segments read from keyframes, against centred.

    python -m bench.long_clip [--runs 3] [--seconds 60]

Builds (once, in .bench/) a 720p30 H.264 clip of ``--seconds`` with a keyframe every second, as
a phone's camera writes them (rendered scenes with sensor noise, a new one every second: about
20 Mbit/s). Past 9.6 s the detector's 18 segments (as many as 720p frames get within its decode
budget) leave gaps, one segment in each equal part of the clip. Then, median of ``--runs``: whole
`verify --json` processes with the detector against `--no-detector` (the baseline, same run:
wall, CPU, peak memory), and in one process, reading the
segments as `verify` places them (at the keyframe nearest each part's centre) against the
baseline placement, centred in each part, which decodes from the keyframe before every segment.
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.timing import bench_parser, in_fresh_parent, process_cost

CACHE = Path(".bench")


def build_clip(seconds: int) -> Path:
    clip = CACHE / f"long_720p_{seconds}s_keyint30.mp4"
    if not clip.exists():
        import itertools

        from clipproof.demo import moving_scene
        from clipproof.media import write_mp4
        CACHE.mkdir(exist_ok=True)
        scenes = (moving_scene(30, 1280, 720, seed=i) for i in range(seconds))
        write_mp4(itertools.chain.from_iterable(scenes), clip, fps=30, crf=20, preset="ultrafast", keyint=30,
                  reproducible=False)
    return clip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reading(clip: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of reading the detector's segments, placed both ways."""
    from clipproof.detector.inference import load_detector
    from clipproof.media import keyframe_times, probe
    detector = load_detector()
    if detector is None:
        sys.exit("no bundled detector weights in this checkout")
    media = probe(clip)
    placements = {"centred in their parts (baseline)": detector.segments(media),
                  "at keyframes (verify)": detector.segments(media, keyframe_times(clip))}
    out = {}
    for name, segments in placements.items():
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = time.perf_counter(), _cpu()
            detector.read_segments(clip, media, segments)
            walls.append(time.perf_counter() - wall)
            cpus.append(_cpu() - cpu)
        out[name] = statistics.median(walls), statistics.median(cpus)
    return out


def main(argv: list[str] | None = None) -> int:
    p = bench_parser("bench.long_clip", __doc__)
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3)")
    p.add_argument("--seconds", type=int, default=60, help="length of the clip (default 60)")
    args = p.parse_args(argv)
    clip = build_clip(args.seconds)
    if not args.measure_only:
        return in_fresh_parent("bench.long_clip", argv)
    print(f"\n{clip} ({clip.stat().st_size / 1e6:.0f} MB, {args.seconds} s 720p30, a keyframe a second), "
          f"median of {args.runs} runs, {os.cpu_count()} CPUs\n")
    verify = str(Path(sys.executable).parent / "verify")
    commands = {"verify --no-detector (baseline)": [verify, "--json", "--no-detector", str(clip)],
                "verify (the detector)": [verify, "--json", str(clip)]}
    for cmd in commands.values():
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)     # warm the page cache
    print("| whole process | wall s | CPU s | peak MB |")
    print("|---|---:|---:|---:|")
    for name, cmd in commands.items():
        cost = process_cost(cmd, args.runs)
        print(f"| {name} | {cost.wall_s:.2f} | {cost.cpu_s:.2f} | {cost.peak_mb:.0f} |")
    from clipproof.detector.inference import load_detector
    from clipproof.media import probe
    count = load_detector().most_segments(probe(clip))
    print(f"\n| reading the detector's {count} segments, in process | wall s | CPU s |")
    print("|---|---:|---:|")
    for name, (wall, cpu) in reading(clip, args.runs).items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
