"""How fast is `verify` with the detector on, against plainly decoding the same clip?

    python -m bench.detect_speed [--weights DIR]

Builds (once, in .bench/) a 10-second 1080p H.264 clip and 64 short clips, then times: `verify`
end to end in-process (credentials + probe + detector), split into frame decoding and model
time; a plain PyAV decode of the whole 1080p clip; and clips per second for the batch of 64.
Target: under 1 s per clip on 2 cores.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench.timing import median_seconds

CACHE = Path(".bench")


def build_inputs() -> tuple[Path, list[Path]]:
    import itertools

    from clipproof.demo import moving_scene
    from clipproof.media import write_mp4
    big = CACHE / "detect_1080p_10s.mp4"
    if not big.exists():
        CACHE.mkdir(exist_ok=True)
        scene = moving_scene(30, 1920, 1080)
        write_mp4(itertools.islice(itertools.cycle(scene), 300), big, fps=30, crf=23, preset="veryfast",
                  reproducible=False)
    small_dir = CACHE / "detect_short"
    small_dir.mkdir(exist_ok=True)
    smalls = []
    for i in range(64):
        p = small_dir / f"c{i:02d}.mp4"
        if not p.exists():
            write_mp4(moving_scene(48, 320, 240, seed=i), p, fps=24, crf=23, preset="veryfast", reproducible=False)
        smalls.append(p)
    return big, smalls


def plain_decode(path: Path) -> float:
    import av
    start = time.perf_counter()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for _ in c.decode(s):
            pass
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.detect_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="detector weights (default: bundled)")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    from clipproof.detector.inference import load_detector
    from clipproof.media import probe
    from clipproof.verification import Verifier

    big, smalls = build_inputs()
    detector = load_detector(args.weights)
    if detector is None:
        raise SystemExit("no detector weights (bundle them, or give --weights)")
    verifier = Verifier(detector=args.weights or "auto")
    verifier.verify(big)                                  # warm-up: imports, first allocations

    end_to_end = median_seconds(lambda: verifier.verify(big), args.runs)
    info = probe(big)
    segments = detector.segments(info)
    decode_s = median_seconds(lambda: detector.read_segments(big, info, segments), args.runs)
    x = detector.read_segments(big, info, segments)
    model_s = median_seconds(lambda: detector.run(x), args.runs)      # the backend verify uses
    full_decode = statistics.median(plain_decode(big) for _ in range(3))
    start = time.perf_counter()
    outcomes = list(verifier.verify_many(smalls))
    batch_s = time.perf_counter() - start
    assert all(o.report is not None for o in outcomes)

    print(f"\ndetect speed: {detector.name} on {detector.backend}, 10 s 1080p30 H.264 clip ({big.stat().st_size / 1e6:.1f} MB), "
          f"2 threads, median of {args.runs}\n")
    print("| measure | seconds |")
    print("|---|---:|")
    print(f"| verify end to end (credentials, probe, detector) | {end_to_end:.3f} |")
    print(f"| of which: decoding the sampled frames ({len(segments)} segments x {detector.frames}) | {decode_s:.3f} |")
    print(f"| of which: model ({len(segments)} segments x {detector.crops} crops) | {model_s:.3f} |")
    print(f"| baseline: plain PyAV decode of every frame | {full_decode:.3f} |")
    print(f"| batch: 64 short clips (320x240, 2 s), total | {batch_s:.2f} |")
    print(f"| batch: clips per second | {len(smalls) / batch_s:.1f} |")
    print(f"\ntarget < 1 s per clip: {'met' if end_to_end < 1 else 'MISSED'} ({end_to_end:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
