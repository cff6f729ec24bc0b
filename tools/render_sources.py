"""Write a folder of rendered clips — pictures no camera and no generator made — for a detector's
corpus: ``python -m tools.render_sources --out DIR``, then ``clipproof datasets build ...
--labelled DIR``.

FFmpeg's own test sources (test cards, colour bars, zone plates, gradients, fractals, cellular
automata) at several frame sizes, half of them with sensor-like noise laid over, each clip its own
footage labelled ``rendered`` (``DIR/manifest.tsv``). A detector that looks at how neighbouring
pixels relate (``st-attention-npr``) otherwise learns that smooth computer-drawn pictures are
generated: "not a camera" is not "generated". FFmpeg's SMPTE bars, ``testsrc2``, Game of Life
and Mandelbrot zoom are left out: the tests and the model card check the bundled detector on those.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# (source, options with {seed} where the source takes one); every one but the tests' four.
SOURCES = (
    ("testsrc", ""), ("rgbtestsrc", ""), ("yuvtestsrc", ""), ("pal75bars", ""), ("smptehdbars", ""),
    ("colorspectrum", ":type=all"), ("zoneplate", ":ku=48:kv=32:kt2=8:kx2=64:ky2=32"),
    ("sierpinski", ":seed={seed}:jump=4:type=triangle"), ("sierpinski", ":seed={seed}:jump=2:type=carpet"),
    ("cellauto", ":rule={rule}:random_seed={seed}:random_fill_ratio=0.5"),
    ("gradients", ":seed={seed}:speed=0.02:type=linear"), ("gradients", ":seed={seed}:speed=0.03:type=radial"),
    ("gradients", ":seed={seed}:speed=0.02:type=spiral"),
)
SIZES = ((320, 240), (640, 360), (854, 480), (1280, 720))
FRAMES = 16
CLIPS_PER_SOURCE = 3


def render(source: str, options: str, size: tuple[int, int], noise: int, frames: int = FRAMES) -> list[np.ndarray]:
    """``frames`` RGB frames of an FFmpeg test source (a lavfi graph, via PyAV), with temporal
    noise of strength ``noise`` laid over when it is not 0."""
    import av.filter
    graph = av.filter.Graph()
    chain = [graph.add(source, f"size={size[0]}x{size[1]}:rate=24{options}")]
    if noise:
        chain.append(graph.add("noise", f"alls={noise}:allf=t"))
    chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()
    return [chain[-1].pull().to_ndarray() for _ in range(frames)]


def main(argv: list[str] | None = None) -> int:
    from clipproof.media import write_mp4
    p = argparse.ArgumentParser(prog="python -m tools.render_sources", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder to write (rendered/*.mp4 and manifest.tsv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-source", type=int, default=CLIPS_PER_SOURCE, metavar="N",
                   help=f"clips of each source (default {CLIPS_PER_SOURCE})")
    p.add_argument("--only", action="append", metavar="SOURCE", help="render just this source (repeatable)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    (args.out / "rendered").mkdir(parents=True, exist_ok=True)
    rows = ["file\tlabel\tgenerator_or_source"]
    for k, (source, options) in enumerate(SOURCES):
        if args.only and source not in args.only:
            continue
        for i in range(args.per_source):
            size = SIZES[int(rng.integers(len(SIZES)))]
            noise = int(rng.choice([0, 0, 4, 10]))
            filled = options.format(seed=int(rng.integers(1, 2**31)), rule=int(rng.choice([18, 30, 90, 110, 150])))
            name = f"rendered/{source}_{k:02d}_{i}.mp4"
            write_mp4(render(source, filled, size, noise), args.out / name, fps=24)
            rows.append(f"{name}\trendered\ttest source: {source}")
            print(f"{name}: {size[0]}x{size[1]}{f', noise {noise}' if noise else ''}", flush=True)
    (args.out / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
