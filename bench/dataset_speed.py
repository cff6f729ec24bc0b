"""How fast are corpora built and loaded, against plain decoding of the same footage?

    python -m bench.dataset_speed [--windows 4] [--frames 16] [--size 64]

On the offline sample footage (fetched into .bench/samples the first time): builds a corpus
with 1 and 2 worker processes (decode + resize + H.264 encode, no variants), times a plain
PyAV decode of every frame of the same source videos, and reads the corpus through the torch
Dataset with 0 and 2 DataLoader workers. Prints a table.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(".bench")


def plain_decode(paths: list[str]) -> tuple[float, int]:
    """Seconds and frames to decode every video frame of ``paths`` with PyAV, no conversion."""
    import av
    frames = 0
    start = time.perf_counter()
    for p in paths:
        with av.open(p) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in c.decode(stream):
                frames += 1
    return time.perf_counter() - start, frames


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dataset_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args(argv)

    import torch
    from torch.utils.data import DataLoader

    from clipproof.datasets.build import build_corpus
    from clipproof.datasets.dataset import ClipDataset, collate_clips
    from clipproof.datasets.recipe import recipe_from_dict
    from clipproof.datasets.sources import fetch_samples, sample_sources

    torch.set_num_threads(1)
    samples = CACHE / "samples"
    if not (samples / "samples.json").is_file():
        fetch_samples(samples, log=lambda m: print(m, file=sys.stderr))
    videos = [s.path for s in sample_sources(samples) if s.kind == "video"]
    recipe = recipe_from_dict({"seed": 0, "real": [{"kind": "samples", "path": str(samples.resolve())}],
                               "clip": {"frames": args.frames, "width": args.size, "height": args.size,
                                        "windows": args.windows}})
    rows = []
    decode_s, decoded = plain_decode(videos)
    rows.append(("plain PyAV decode of the sources (all frames)", decode_s, f"{decoded / decode_s:.0f} frames/s", ""))
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            start = time.perf_counter()
            result = build_corpus(recipe, out, workers=workers, show_progress=False, log=lambda m: None)
            took = time.perf_counter() - start
            n = len(result.records)
            rows.append((f"build corpus, {workers} worker(s): {n} clips", took, f"{n / took:.1f} clips/s",
                         f"{took / decode_s:.2f}x decode"))
        corpus = Path(tmp) / "w1"
        for workers in (0, 2):
            ds = ClipDataset(corpus)
            loader = DataLoader(ds, batch_size=8, num_workers=workers, collate_fn=collate_clips)
            start = time.perf_counter()
            seen = sum(len(batch[2]) for batch in loader)
            took = time.perf_counter() - start
            rows.append((f"Dataset via DataLoader, {workers} workers: {seen} clips", took,
                         f"{seen / took:.1f} clips/s", ""))
    print(f"\ndataset speed: {len(videos)} sample videos, clips {args.frames}x{args.size}x{args.size}, "
          f"{args.windows} windows/video\n")
    print("| step | seconds | rate | vs decode |")
    print("|---|---:|---:|---:|")
    for name, seconds, rate, ratio in rows:
        print(f"| {name} | {seconds:.2f} | {rate} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
