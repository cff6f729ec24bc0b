"""What does a hostile upload cost a whole `verify` process, against a normal clip?

    python -m bench.hostile [--runs 3] [--no-detector-only]

Builds (once, cached in .bench/hostile/) a signed 2-second clip — the baseline — and one file
per attack of issue 13: a million 8-byte `free` boxes, 200,000 boxes nested in `moov`, a PNG
with a million chunks, a 69-byte PNG declaring 16000x16000, a frame-count bomb (200,000 frames
behind one keyframe), an 8192x8192 clip, and a batch of 16 clips verified with --workers 8.
Each is verified by a fresh `verify --json` process (imports included), with and without the
detector; the table gives the median wall seconds, the CPU seconds (user + system: a busy
pipeline has no idle core) and the peak resident memory, beside the baseline's.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.timing import bench_parser, in_fresh_parent, process_cost

CACHE = Path(".bench") / "hostile"


def build() -> dict[str, list[Path]]:
    """name -> the files one `verify` call gets (built once, then cached)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from hostile import frame_count_bomb, free_box_flood, nested_box_flood, png_bomb, png_chunk_flood

    from clipproof.demo import moving_scene
    from clipproof.media import write_mp4
    from clipproof.provenance.keys import init_dev_keys
    from clipproof.provenance.sign import sign

    CACHE.mkdir(parents=True, exist_ok=True)
    keys = CACHE / "keys"
    if not (keys / "signer.key").exists():
        init_dev_keys(keys)
    good = CACHE / "good.mp4"
    if not good.exists():
        raw = write_mp4(moving_scene(24, 320, 240), CACHE / "raw.mp4", fps=12)
        sign(raw, good, key=keys / "signer.key", cert=keys / "signer.pem", source_type="digitalCapture")
    makers = {
        "1M free boxes (8 MB)": ("flood.mp4", lambda p: free_box_flood(good, p, 1_000_000)),
        "200k nested boxes": ("nested.mp4", lambda p: nested_box_flood(good, p, 200_000)),
        "1M PNG chunks": ("chunks.png", lambda p: png_chunk_flood(p, 1_000_000)),
        "PNG declaring 16000x16000": ("bomb.png", png_bomb),
        "200k frames, one keyframe": ("frames.mp4", lambda p: frame_count_bomb(p, 200_000)),
        "8192x8192 clip": ("8k.mp4", _big_clip),
    }
    files = {"baseline: signed 320x240 clip": [good]}
    for name, (file, make) in makers.items():
        path = CACHE / file
        if not path.exists():
            print(f"building {path} ...", file=sys.stderr)
            make(path)
        files[name] = [path]
    batch = CACHE / "batch"
    if not batch.exists():
        batch.mkdir()
        for i in range(16):
            write_mp4(moving_scene(24, 1920, 1080, seed=i), batch / f"{i:02d}.mp4", fps=12, preset="ultrafast")
    files["16 clips of 1080p, --workers 8"] = sorted(batch.iterdir())
    return files


def _big_clip(path: Path) -> Path:
    import numpy as np

    from clipproof.media import write_mp4
    noise = np.random.default_rng(0).integers(0, 255, (8192, 8192, 3), dtype=np.uint8)
    return write_mp4((np.roll(noise, 8 * i, axis=1) for i in range(12)), path, fps=12, preset="ultrafast")


def main(argv: list[str] | None = None) -> int:
    p = bench_parser("bench.hostile", __doc__)
    p.add_argument("--runs", type=int, default=3, help="runs per command (default 3)")
    p.add_argument("--no-detector-only", action="store_true", help="skip the runs with the detector")
    args = p.parse_args(argv)
    files = build()
    if not args.measure_only:
        return in_fresh_parent("bench.hostile", argv)
    verify = str(Path(sys.executable).parent / "verify")
    modes = {"--no-detector": ["--no-detector"]} if args.no_detector_only else {"--no-detector": ["--no-detector"],
                                                                                 "detector": []}
    print(f"\nhostile inputs: a whole `verify --json` process each, median of {args.runs} runs, "
          f"{os.cpu_count()} CPUs\n")
    print("| input | mode | exit | wall s | CPU s | peak MB | vs baseline peak |")
    print("|---|---|---:|---:|---:|---:|---:|")
    baseline: dict[str, float] = {}
    for name, paths in files.items():
        for mode, flags in modes.items():
            workers = ["--workers", "8"] if len(paths) > 1 else []
            cost = process_cost([verify, "--json", *flags, *workers, *map(str, paths)], args.runs)
            baseline.setdefault(mode, cost.peak_mb)
            code = ",".join(map(str, sorted(cost.exit_codes)))
            print(f"| {name} | {mode} | {code} | {cost.wall_s:.2f} | {cost.cpu_s:.2f} | {cost.peak_mb:.0f} | "
                  f"{cost.peak_mb - baseline[mode]:+.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
