"""`verify` processes side by side, as on a pipeline's busy machine, against one alone.

    python -m bench.verify_side_by_side [--clips 12] [--detector] [--runs 3]

Makes ``--clips`` unsigned 2 s 640×360 clips (a camera move over a photograph: every file
without credentials gets the watermark search), then runs one `verify --json` process over all
of them (the baseline, same run) and as many such processes at once as this machine has cores.
Prints the median wall time until the last ends and the CPU seconds per process. On a machine
whose cores are shared well, the side-by-side wall time stays near the baseline's; threads
that fight for the cores (OpenBLAS's, before the watermark ran on one) show as CPU per process
far above the baseline's.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.timing import process_cost


def make_clips(folder: Path, count: int) -> list[str]:
    from clipproof.demo import real_clip
    from clipproof.media import write_mp4
    return [str(write_mp4(real_clip(48, 640, 360, seed=i), folder / f"c{i:02d}.mp4", fps=24, preset="veryfast",
                          reproducible=False)) for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.verify_side_by_side", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=12, help="clips each process verifies (default 12)")
    p.add_argument("--detector", action="store_true", help="with the bundled detector (default: --no-detector)")
    p.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-side-") as tmp:
        clips = make_clips(Path(tmp), args.clips)
        verify = [str(Path(sys.executable).parent / "verify"), "--json", *([] if args.detector else ["--no-detector"])]
        alone = process_cost(verify + clips, args.runs)
        together = process_cost(verify + clips, args.runs, at_once=cores)
    what = "with the detector" if args.detector else "--no-detector"
    print(f"\n`verify {what}` over {args.clips} unsigned 2 s 640x360 clips, median of {args.runs} runs, {cores} cores")
    print(f"{'':>34} {'wall s':>7} {'CPU s each':>11} {'peak MB':>8}")
    for name, c in (("one process (baseline)", alone), (f"{cores} processes at once", together)):
        print(f"{name:>34} {c.wall_s:>7.2f} {c.cpu_s:>11.2f} {c.peak_mb:>8.0f}")
    print(f"CPU per process side by side: {together.cpu_s / alone.cpu_s:.2f}x the baseline's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
