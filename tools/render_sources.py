"""Write a folder of rendered clips — pictures no camera and no generator made — for a detector's
corpus: ``python -m tools.render_sources --out DIR``, then ``clipproof datasets build ...
--labelled DIR``.

Two kinds, each clip its own footage labelled ``rendered`` (``DIR/manifest.tsv``), at several frame
sizes, half of them with sensor-like noise laid over:

- FFmpeg's test sources: test cards, colour bars, zone plates, gradients, fractals, cellular
  automata (group ``test source: NAME``);
- motion graphics drawn by FFmpeg filter graphs: plasma and Perlin-noise fields in false colour,
  audio visualisers (waveforms, spectra, vector scopes), flat shapes moving over a grid, rotated,
  panned, lens-warped and cross-faded test pictures, fractals with trails (group ``motion graphic:
  NAME``).

A detector that looks at how neighbouring pixels relate (``st-attention-npr``) otherwise learns
that smooth computer-drawn pictures are generated: "not a camera" is not "generated". FFmpeg's
SMPTE bars, ``testsrc2``, Game of Life and Mandelbrot zoom are left out: the tests and the model
card check the bundled detector on those.
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
# (name, lavfi graph, frames to skip: an audio visualiser starts on an empty screen). Fields:
# {w}x{h} the size, {seed}, {s} a speed factor, {c1}/{c2} colours, {palette}, {mode}.
_AUDIO = "aevalsrc=0.6*sin(2*PI*({f}+{f}*0.4*sin({s}*t))*t)|0.6*sin(2*PI*{f}*1.5*t+sin(7*t)):s=44100"
MOTION_GRAPHICS = (
    ("plasma", "nullsrc=s={w}x{h}:r=24,geq=r='128+100*sin(X/{a}+T*{s}*3)':g='128+100*sin(Y/{b}+T*{s}*2)'"
               ":b='128+100*sin((X+Y)/{c}+T*{s})'", 0),
    ("perlin field", "perlin=s={w}x{h}:r=24:octaves={octaves}:persistence=0.6:tscale={s}:random_mode=seed"
                     ":random_seed={seed},format=gbrp,pseudocolor=p={palette}", 0),
    ("waveform", _AUDIO + ",showwaves=s={w}x{h}:r=24:mode={mode}:colors={c2}", 12),
    ("spectrum", _AUDIO + ",showspectrum=s={w}x{h}:slide=scroll:color={scheme},fps=24", 24),
    ("constant-Q spectrum", _AUDIO + ",showcqt=s={w}x{h}:r=24:axis=0:text=0", 24),
    ("vector scope", _AUDIO + ",avectorscope=s={w}x{h}:r=24:draw=line:zoom=1.5", 12),
    ("audio histogram", "anoisesrc=c=pink:a=0.5:seed={seed},ahistogram=s={w}x{h}:r=24", 24),
    ("3D scope", _AUDIO + ",a3dscope=s={w}x{h}:r=24", 12),
    ("moving shapes", "color=c={c1}:s={w}x{h}:r=24,drawgrid=w={a}:h={a}:t=2:c=white@0.4[bg];"
                      "color=c={c2}:s={b}x{c}:r=24[p];color=c=0x33ff66:s={c}x{c}:r=24[q];"
                      "[bg][p]overlay=x={a}+{w}*0.3*{s}*t:y={h}/4+{h}/8*sin(3*t)[r];"
                      "[r][q]overlay=x={w}*0.7-{w}*0.2*{s}*t:y={h}*0.6", 0),
    ("rotating card", "{card}=r=24,scale={w}:{h},rotate=a={s}*0.4*t:c={c1}", 0),
    ("panned colour cube", "allrgb=r=24,scale=1536:1536,crop={w}:{h}:x=60*{s}*t:y=30*{s}*t", 0),
    ("transition", "testsrc=s={w}x{h}:r=24:d=4[a];colorspectrum=s={w}x{h}:r=24[b];"
                   "[a][b]xfade=transition={transition}:duration=0.6:offset=0.05", 0),
    ("fractal trails", "sierpinski=s={w}x{h}:r=24:seed={seed},lagfun=decay=0.95", 0),
    ("warped zone plate", "zoneplate=s={w}x{h}:r=24:ku=20:kv=20:kt2=3,lenscorrection=k1=-0.3:k2=0.1,vignette", 0),
    ("scrolling spectrum", "colorspectrum=s={w}x{h}:r=24,scroll=h=0.01*{s}:v=0.004", 0),
    ("square gradients", "gradients=s={w}x{h}:r=24:seed={seed}:speed=0.03:type={gradient}", 0),
    ("hue-cycled lookup", "haldclutsrc=level=8:r=24,scale={w}:{h}:flags=neighbor,hue=H={s}*t", 0),
)
SIZES = ((320, 240), (640, 360), (854, 480), (1280, 720))
FRAMES = 16
CLIPS_PER_SOURCE = 3


def render_graph(graph: str, noise: int, frames: int = FRAMES, skip: int = 0) -> list[np.ndarray]:
    """``frames`` RGB frames of a lavfi filter graph (FFmpeg's filter-graph input, via PyAV), after
    ``skip`` frames, with temporal noise of strength ``noise`` laid over when it is not 0."""
    import av
    # In planar YUV: FFmpeg's noise filter garbles packed RGBA (the ``gradients`` source's format).
    graph += f",format=yuv444p,noise=alls={noise}:allf=t" if noise else ""
    out = []
    with av.open(graph, format="lavfi") as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k >= skip:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return out


def render(source: str, options: str, size: tuple[int, int], noise: int, frames: int = FRAMES) -> list[np.ndarray]:
    """``frames`` RGB frames of an FFmpeg test source, with noise as in ``render_graph``."""
    return render_graph(f"{source}=size={size[0]}x{size[1]}:rate=24{options}", noise, frames)


def _fields(rng: np.random.Generator, size: tuple[int, int]) -> dict:
    def pick(*choices):
        return choices[int(rng.integers(len(choices)))]
    return {"w": size[0], "h": size[1], "seed": int(rng.integers(1, 2**31)),
            "rule": pick(18, 30, 90, 110, 150), "s": round(float(rng.uniform(0.5, 2.0)), 2),
            "a": int(rng.integers(12, 60)), "b": int(rng.integers(12, 60)), "c": int(rng.integers(12, 60)),
            "f": int(rng.integers(110, 660)), "octaves": int(rng.integers(2, 7)),
            "c1": pick("0x204060", "black", "0x302030", "white", "0x106030"),
            "c2": pick("orange", "yellow", "red", "0x3399ff", "magenta"),
            "palette": pick("turbo", "viridis", "magma", "inferno", "plasma", "cividis"),
            "mode": pick("line", "p2p", "cline"), "scheme": pick("intensity", "rainbow", "fire", "cool", "viridis"),
            "card": pick("testsrc", "rgbtestsrc", "colorchart", "pal100bars"),
            "transition": pick("wipeleft", "circleopen", "dissolve", "pixelize", "radial", "slideup"),
            "gradient": pick("circular", "square")}


def recipes(only: list[str] | None = None) -> list[tuple[str, str, int]]:
    """(group, graph template, frames to skip) for each kind of rendered clip."""
    out = [(f"test source: {source}", f"{source}=size={{w}}x{{h}}:rate=24{options}", 0) for source, options in SOURCES]
    out += [(f"motion graphic: {name}", graph, skip) for name, graph, skip in MOTION_GRAPHICS]
    return [r for r in out if not only or r[0].split(": ", 1)[1] in only]


def main(argv: list[str] | None = None) -> int:
    from clipproof.media import write_mp4
    p = argparse.ArgumentParser(prog="python -m tools.render_sources", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder to write (rendered/*.mp4 and manifest.tsv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-source", type=int, default=CLIPS_PER_SOURCE, metavar="N",
                   help=f"clips of each source (default {CLIPS_PER_SOURCE})")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="render just this test source or motion graphic (repeatable)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    (args.out / "rendered").mkdir(parents=True, exist_ok=True)
    rows = ["file\tlabel\tgenerator_or_source"]
    for k, (group, template, skip) in enumerate(recipes(args.only)):
        for i in range(args.per_source):
            size = SIZES[int(rng.integers(len(SIZES)))]
            noise = int(rng.choice([0, 0, 4, 10]))
            graph = template.format(**_fields(rng, size))
            name = f"rendered/{group.split(': ', 1)[1].replace(' ', '_')}_{k:02d}_{i}.mp4"
            write_mp4(render_graph(graph, noise, skip=skip), args.out / name, fps=24)
            rows.append(f"{name}\trendered\t{group}")
            print(f"{name}: {size[0]}x{size[1]}{f', noise {noise}' if noise else ''}", flush=True)
    (args.out / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
