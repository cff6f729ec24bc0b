"""What does the detector add to a whole `verify` process, on ONNX Runtime and on torch?

    python -m bench.verify_detector [--runs 5]

Builds (once, in .bench/) two 10-second 1080p30 H.264 clips of rendered scenes with sensor noise
at a phone's bit rate (CRF 20, ~15-17 Mbit/s): one with a keyframe every second, as a phone's
camera writes them, one with x264's default (one every 250 frames, as many web encodes have).
Then runs fresh processes, imports included, for each clip: `verify --json --no-detector` (the
baseline, same run) and `verify --json` (the bundled detector on ONNX Runtime, the default when the
weights carry a matching `model.onnx`); on the phone clip also the same verification with the
detector on torch. Prints median wall and CPU seconds and peak memory. Targets (issue 14):
≤ 1.5 s and ≤ 400 MB on 2 cores.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from bench.timing import bench_parser, in_fresh_parent, process_cost

CACHE = Path(".bench")
TORCH = ("import sys; from clipproof.cli import _printer; from clipproof.verification import Verifier; "
         "from clipproof.detector.inference import load_detector; "
         "v = Verifier(detector=load_detector(backend='torch')); "
         "[_printer(True, 'verify')(o) for o in v.verify_many(sys.argv[1:])]")


CLIPS = {"phone": 30, "long-GOP": None}       # keyframe interval, frames


def build_clip(kind: str) -> Path:
    keyint = CLIPS[kind]
    clip = CACHE / ("verify_detector_1080p_10s.mp4" if keyint is None else f"verify_detector_1080p_10s_keyint{keyint}.mp4")
    if not clip.exists():
        from clipproof.demo import moving_scene
        from clipproof.media import write_mp4
        CACHE.mkdir(exist_ok=True)
        # A new scene every second (each with its own noise): nothing for the encoder to reuse.
        seconds = (moving_scene(30, 1920, 1080, seed=i) for i in range(10))
        write_mp4(itertools.chain.from_iterable(seconds), clip, fps=30, crf=20, preset="veryfast",
                  reproducible=False, keyint=keyint)
    return clip


def main(argv: list[str] | None = None) -> int:
    p = bench_parser("bench.verify_detector", __doc__)
    p.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    args = p.parse_args(argv)
    clips = {kind: build_clip(kind) for kind in CLIPS}
    if not args.measure_only:
        return in_fresh_parent("bench.verify_detector", argv)
    verify = str(Path(sys.executable).parent / "verify")
    commands = {}
    for kind, clip in clips.items():
        commands[kind, "verify --no-detector (baseline)"] = [verify, "--json", "--no-detector", str(clip)]
        commands[kind, "verify, detector on ONNX Runtime"] = [verify, "--json", str(clip)]
    commands["phone", "verify, detector on torch"] = [sys.executable, "-c", TORCH, str(clips["phone"])]
    for cmd in commands.values():
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)     # warm the page cache
    results = {key: process_cost(cmd, args.runs) for key, cmd in commands.items()}
    sizes = ", ".join(f"{kind} {clip.stat().st_size / 1e6:.0f} MB" for kind, clip in clips.items())
    print(f"\nverify with the detector: 10 s 1080p30 clips ({sizes}), median of {args.runs} runs, "
          f"{os.cpu_count()} CPUs\n")
    print("| clip | command | wall s | CPU s | peak MB | wall vs baseline | peak vs baseline |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (kind, name), c in results.items():
        base = results[kind, "verify --no-detector (baseline)"]
        print(f"| {kind} | {name} | {c.wall_s:.2f} | {c.cpu_s:.2f} | {c.peak_mb:.0f} | {c.wall_s - base.wall_s:+.2f} s | "
              f"{c.peak_mb - base.peak_mb:+.0f} MB |")
    for kind in clips:
        onnx = results[kind, "verify, detector on ONNX Runtime"]
        print(f"\n{kind} clip, targets: wall ≤ 1.5 s: {'met' if onnx.wall_s <= 1.5 else 'MISSED'} ({onnx.wall_s:.2f}); "
              f"peak ≤ 400 MB: {'met' if onnx.peak_mb <= 400 else 'MISSED'} ({onnx.peak_mb:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
