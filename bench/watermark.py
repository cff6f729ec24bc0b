"""The watermark on footage nobody here made: invisibility, robustness, false alarms, cost.

    python -m bench.watermark [--footage DIR ...] [--clips 6] [--sizes 256x256,640x360,1280x720,1920x1080]

Sources: the offline sample footage (``clipproof datasets fetch``'s cache) and any folders given
with ``--footage`` (e.g. a folder of clips from public generators and cameras). For each of ``--clips`` sources and each size, a
3-second clip (24 fps, centre-cropped and scaled) is marked and encoded (H.264 CRF 18, x264
veryfast, as every encode here), then
attacked (Video Seal's CRF grid, scaling, crop, frame rate, trim, GIF, CRF 28 + 0.5×, placed in a
9:16 frame between black bars as a vertical feed re-uploads it, CRF 23; mirrored left to right,
turned 90° clockwise as a phone clip whose display rotation was dropped, flipped top to bottom,
each CRF 23; under a meme's caption band, CRF 23) and read
back. Printed per attack: payloads recovered exactly, and bit accuracy at the detector's chosen
alignment (raw bits, before the code's correction). Invisibility: luma PSNR and SSIM of the
marked encode against the unmarked encode (same CRF), beside the same figures for an invisible
change (every pixel one level brighter: what any change costs against another encode), and of
the marked frames against the source frames before encoding. Cost: embedding CPU time against
the H.264 encode of the same clip (the baseline, same run: x264 medium as `sign` uses, and
veryfast), and detection on a 10 s 1080p clip as a new process (wall, CPU, peak memory;
imports alone as the baseline; and as many at once as there are cores, as on a busy machine),
and as a whole `verify --no-detector` of it beside the same command with ``--no-watermark``.
False alarms: every 2-second window (0.5 s apart) of every unmarked source clip, at its own size
and at half size, read by the detector; the count of payloads found must be 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.timing import process_cost
from clipproof.datasets.variants import Variant
from clipproof.media import probe, read_frames, write_mp4
from clipproof.media_types import MEDIA_SUFFIXES
from clipproof.watermark import Embedder, detect, payload
from clipproof.watermark.embedding import luma
from clipproof.watermark.detection import SCAN_STAGES, _read_bits, _residual, _scan, clean_fold, search

FPS = 24
PRESET = "veryfast"    # x264 preset of every encode here (a platform's re-encode is rarely slower)
ATTACKS = ["none", "crf23", "crf28", "crf30", "crf35", "crf40", "down0.5", "crop0.8", "fps30to24", "trim2s", "gif",
           "crf28+down0.5", "vertical9:16", "mirror", "turn90", "flip", "caption"]


def sources(folders: list[Path]) -> list[Path]:
    from clipproof.datasets.sources import default_sample_cache, fetch_samples
    cache = default_sample_cache()
    if not (cache / "samples.json").is_file():
        fetch_samples(cache, log=lambda m: print(m, file=sys.stderr))
    found = sorted(p for p in cache.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES)
    for f in folders:
        found += sorted(p for p in f.rglob("*") if p.suffix.lower() in (".mp4", ".avi", ".mov", ".webm", ".mkv"))
    return found


def fit(frames: np.ndarray, w: int, h: int) -> np.ndarray:
    """Centre-crop to the aspect ratio, then scale to w×h."""
    _, fh, fw, _ = frames.shape
    scale = max(w / fw, h / fh)
    cw, ch = min(fw, round(w / scale)), min(fh, round(h / scale))
    y0, x0 = (fh - ch) // 2, (fw - cw) // 2
    return np.stack([np.asarray(Image.fromarray(f[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.Resampling.BICUBIC))
                     for f in frames])


def attacked(frames: np.ndarray, attack: str) -> tuple[np.ndarray, int, float]:
    crf, fps = 18, FPS
    if attack.startswith("crf") and "+" not in attack:
        crf = int(attack[3:])
    elif attack == "down0.5":
        frames = Variant("d", scale=0.5).apply(frames)
    elif attack == "crop0.8":
        frames = Variant("c", crop=0.8).apply(frames)
    elif attack == "gif":
        frames = Variant("g", palette=256).apply(frames)
    elif attack == "fps30to24":
        frames, fps = frames[np.round(np.arange(0, len(frames), 1.25)).astype(int)], 24 * 24 / 30
    elif attack == "trim2s":
        frames = frames[len(frames) - 2 * FPS:]
    elif attack == "crf28+down0.5":
        frames, crf = Variant("d", scale=0.5).apply(frames), 28
    elif attack == "vertical9:16":
        frames, crf = in_vertical_frame(frames), 23
    elif attack == "mirror":
        frames, crf = frames[:, :, ::-1], 23
    elif attack == "turn90":
        frames, crf = np.rot90(frames, -1, axes=(1, 2)), 23
    elif attack == "flip":
        frames, crf = frames[:, ::-1], 23
    elif attack == "caption":
        frames, crf = under_caption(frames), 23
    return frames, crf, fps


def in_vertical_frame(frames: np.ndarray) -> np.ndarray:
    """The clip as a vertical feed re-uploads it: scaled to the width of a 9:16 frame as wide as
    the clip's short side, centred between black bars."""
    _, h, w, _ = frames.shape
    width = min(w, h) // 2 * 2
    fh, fw = max(2, round(h * width / w) // 2 * 2), width
    canvas = np.zeros((len(frames), round(width * 16 / 9) // 2 * 2, width, 3), np.uint8)
    top = (canvas.shape[1] - fh) // 2
    canvas[:, top:top + fh] = [np.asarray(Image.fromarray(f).resize((fw, fh), Image.Resampling.BICUBIC)) for f in frames]
    return canvas


def under_caption(frames: np.ndarray) -> np.ndarray:
    """The clip as a meme re-uploads it: under a white band a fifth of its height, with a line
    of black text."""
    from PIL import ImageDraw
    _, h, w, _ = frames.shape
    band = round(h / 5) // 2 * 2
    header = Image.new("RGB", (w, band), "white")
    ImageDraw.Draw(header).text((w // 20, band // 3), "nobody: / the AI video:", fill="black", font_size=max(10, band // 3))
    canvas = np.empty((len(frames), h + band, w, 3), np.uint8)
    canvas[:, :band], canvas[:, band:] = np.asarray(header), frames
    return canvas


def bit_accuracy(luma: np.ndarray, truth: np.ndarray) -> float:
    """Raw bit agreement at the alignment the detector's scan ranks first (no decoding), on the
    frames the detector's answer came from."""
    residual = _residual(luma)
    best = max((c for stage in SCAN_STAGES for c in _scan(residual, stage)), key=lambda c: c.score)
    bits = _read_bits(clean_fold(residual, best.chip, best.orientation)) > 0
    return float(np.mean(bits == truth.astype(bool)))


def psnr_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity
    ya, yb = luma(a), luma(b)
    mse = np.mean((ya - yb) ** 2, axis=(1, 2))
    psnr = float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-6))))
    ssim = float(np.mean([structural_similarity(x, y, data_range=255) for x, y in zip(ya[::6], yb[::6])]))
    return psnr, ssim


def robustness(clips: list[Path], sizes: list[tuple[int, int]], tmp: Path, attacks: list[str]) -> None:
    rows: dict[tuple[str, str], list] = {}
    quality: dict[str, list] = {}
    for i, src in enumerate(clips):
        raw, _ = read_frames(src, 3 * FPS)
        for w, h in sizes:
            size = f"{w}x{h}"
            frames = fit(raw, w, h)
            pay = payload.new_payload()
            marked = np.stack(list(map(Embedder(pay), frames)))
            plain_path = write_mp4(frames, tmp / "plain.mp4", fps=FPS, crf=18, preset=PRESET, reproducible=False)
            marked_path = write_mp4(marked, tmp / "marked.mp4", fps=FPS, crf=18, preset=PRESET, reproducible=False)
            plain, _ = read_frames(plain_path)
            decoded, _ = read_frames(marked_path)
            # The baseline: an invisible change (every pixel one level brighter) encoded the same
            # way. Against the unmarked encode it measures what any change at all costs there:
            # the encoder takes other decisions and its own noise lands elsewhere.
            shifted = np.minimum(frames, 254) + np.uint8(1)
            brighter, _ = read_frames(write_mp4(shifted, tmp / "shifted.mp4", fps=FPS, crf=18, preset=PRESET,
                                               reproducible=False))
            quality.setdefault(size, []).append((*psnr_ssim(decoded, plain), *psnr_ssim(marked, frames),
                                                 *psnr_ssim(brighter, plain)))
            truth = payload.encode(pay)
            for attack in attacks:
                arr, crf, fps = attacked(decoded, attack)
                path = write_mp4(arr, tmp / "attacked.mp4", fps=fps, crf=crf, preset=PRESET, reproducible=False)
                found, seen = search(path)
                rows.setdefault((size, attack), []).append((found.found and found.payload == pay.hex(),
                                                            bit_accuracy(seen, truth)))
            print(f"  {src.name} {size}: done", file=sys.stderr)
    print(f"\nInvisibility ({len(clips)} clips per size; luma). Baseline: every pixel one level brighter, "
          "encoded the same way, against the unmarked encode")
    print(f"{'size':>10} {'PSNR vs unmarked encode':>24} {'SSIM':>6} {'PSNR vs source':>15} {'SSIM':>6} "
          f"{'baseline PSNR':>14} {'SSIM':>6}")
    for size, q in quality.items():
        q = np.array(q)
        print(f"{size:>10} {q[:, 0].mean():>24.2f} {q[:, 1].mean():>6.4f} {q[:, 2].mean():>15.2f} {q[:, 3].mean():>6.4f} "
              f"{q[:, 4].mean():>14.2f} {q[:, 5].mean():>6.4f}")
    print("\nRobustness: exact payloads recovered / clips (mean raw bit accuracy)")
    print(f"{'attack':>14} " + " ".join(f"{s:>16}" for s in quality))
    for attack in attacks:
        cells = []
        for size in quality:
            r = rows[(size, attack)]
            cells.append(f"{sum(ok for ok, _ in r)}/{len(r)} ({np.mean([b for _, b in r]):.3f})")
        print(f"{attack:>14} " + " ".join(f"{c:>16}" for c in cells))


def embedding_cost(clips: list[Path], sizes: list[tuple[int, int]], tmp: Path) -> None:
    """Embedding CPU time against the H.264 encode of the same frames: x264 medium (what `sign`
    re-encodes with) and veryfast."""
    print("\nEmbedding cost: CPU s for a 3 s clip (72 frames), against encoding the same frames")
    print(f"{'size':>10} {'embed':>7} {'x264 medium':>12} {'ratio':>6} {'x264 veryfast':>14} {'ratio':>6}")
    raw, _ = read_frames(clips[0], 3 * FPS)
    for w, h in sizes:
        frames = fit(raw, w, h)
        embed = Embedder(payload.new_payload())
        start = time.process_time()
        for f in frames:
            embed(f)
        embed_s = time.process_time() - start
        encode = {}
        for preset in ("medium", "veryfast"):
            start = time.process_time()
            write_mp4(frames, tmp / "plain.mp4", fps=FPS, crf=18, preset=preset, reproducible=False)
            encode[preset] = time.process_time() - start
        print(f"{f'{w}x{h}':>10} {embed_s:>7.2f} {encode['medium']:>12.2f} {embed_s / encode['medium']:>6.2f} "
              f"{encode['veryfast']:>14.2f} {embed_s / encode['veryfast']:>6.2f}")


def false_alarms(clips: list[Path], tmp: Path, limit: int) -> None:
    checked, found, seconds = 0, 0, []
    for src in clips:
        info = probe(src)
        starts = np.arange(0.0, max(info.duration_s - 2.0, 0.0) + 1e-6, 0.5)
        for start in starts:
            frames, _ = read_frames(src, None, start_s=float(start), end_s=float(start) + 2.0)
            if len(frames) < 2:
                continue
            frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
            for variant in (frames, Variant("d", scale=0.5).apply(frames)):
                path = write_mp4(variant, tmp / "window.mp4", fps=FPS, crf=23, preset="veryfast", reproducible=False)
                t = time.perf_counter()
                found += detect(path).found
                seconds.append(time.perf_counter() - t)
                checked += 1
            if checked >= limit:
                break
        if checked >= limit:
            break
    print(f"\nFalse alarms: {found} payloads found in {checked} unmarked clips from {len(clips)} sources "
          f"(stated false-match probability per clip {payload.FALSE_MATCH_PER_CLIP:.1e}); "
          f"detection median {np.median(seconds):.2f} s")


def detection_cost(tmp: Path) -> None:
    import subprocess
    clip = tmp / "1080p.mp4"
    # Made in a child: a measured process's peak memory counts its parent's at fork.
    subprocess.run([sys.executable, "-c", "import sys; from clipproof.demo import moving_scene; "
                    "from clipproof.media import write_mp4; write_mp4((f for i in range(10) for f in "
                    "moving_scene(30, 1920, 1080, seed=i)), sys.argv[1], fps=30, crf=20, preset='veryfast', "
                    "reproducible=False)", str(clip)], check=True)
    inner = [sys.executable, "-c", "import sys; from clipproof.watermark import detect; detect(sys.argv[1])", str(clip)]
    baseline = [sys.executable, "-c", "import clipproof.watermark, av"]
    # What a desk meets: the whole `verify` of the clip (no credentials, so the search runs),
    # beside the same command told not to search.
    cli = [sys.executable, "-m", "clipproof.cli", "verify", "--no-detector", "--quiet", str(clip)]
    whole, imports = process_cost(inner, 3), process_cost(baseline, 3)
    verify, unsearched = process_cost(cli, 3), process_cost([*cli[:-1], "--no-watermark", str(clip)], 3)
    # A pipeline's machine is busy: as many detections at once as there are cores.
    cores = len(os.sched_getaffinity(0))
    busy = process_cost(inner, 3, at_once=cores)
    print("\nDetection on a 10 s 1080p30 clip, unmarked (the whole search runs), as a new process:")
    print(f"{'':>42} {'wall s':>7} {'CPU s':>6} {'peak MB':>8}")
    for name, c in (("imports only (baseline)", imports), ("imports + detect", whole),
                    (f"imports + detect, {cores} at once (each)", busy),
                    ("verify --no-detector --no-watermark", unsearched), ("verify --no-detector", verify)):
        print(f"{name:>42} {c.wall_s:>7.2f} {c.cpu_s:>6.2f} {c.peak_mb:>8.0f}")
    print(f"{'detect alone':>42} {whole.wall_s - imports.wall_s:>7.2f} {whole.cpu_s - imports.cpu_s:>6.2f}")
    print(f"{'the search in verify':>42} {verify.wall_s - unsearched.wall_s:>7.2f} {verify.cpu_s - unsearched.cpu_s:>6.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.watermark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--footage", type=Path, action="append", default=[], help="more folders of real footage")
    p.add_argument("--clips", type=int, default=6, help="source clips marked per size (default 6)")
    p.add_argument("--sizes", default="256x256,640x360,1280x720,1920x1080")
    p.add_argument("--false-alarm-clips", type=int, default=600)
    p.add_argument("--skip", default="", help="comma-separated parts to skip: robustness, false-alarms, cost")
    p.add_argument("--attacks", default=",".join(ATTACKS), help=f"comma-separated attacks (default all: {', '.join(ATTACKS)})")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    attacks = [a for a in args.attacks.split(",") if a]
    if unknown := set(attacks) - set(ATTACKS):
        p.error(f"unknown attacks: {', '.join(sorted(unknown))}")
    found = sources(args.footage)
    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    picked = [found[i] for i in sorted(rng.choice(len(found), min(args.clips, len(found)), replace=False))]
    with tempfile.TemporaryDirectory(prefix="bench-watermark-") as tmp:
        if "cost" not in skip:
            detection_cost(Path(tmp))
            embedding_cost(picked, sizes, Path(tmp))
        if "robustness" not in skip:
            robustness(picked, sizes, Path(tmp), attacks)
        if "false-alarms" not in skip:
            false_alarms(found, Path(tmp), args.false_alarm_clips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
