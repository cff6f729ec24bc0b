"""``make demo``: the main job on material the demo makes itself.

Development keys, a short clip of real pixels (a simulated camera moving over scikit-image's
``camera.png``, a photograph the bundled detector never saw in training), signed two ways,
verified with and without the development root as trust anchor, then a tampered copy, a
stripped (re-muxed) copy and a re-uploaded copy (re-encoded at half size) verified again — the
AI-generated clip carries a watermark that leads back to its manifest in the demo's manifest
store — and a clip from the bundled generator, signed as it is written, verified with its
manifest and after a re-upload that dropped it.
Everything lands in ``out/demo/`` (or the folder given), so the files can be inspected after.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from clipproof.bmff import find_box
from clipproof.media import remux, write_mp4
from clipproof.provenance.keys import init_dev_keys
from clipproof.provenance.report import render_text
from clipproof.provenance.sign import sign
from clipproof.verification import Verifier


def moving_scene(frames: int = 24, width: int = 128, height: int = 96, seed: int = 0) -> np.ndarray:
    """A small rendered scene (gradient sky, a moving disc, sensor noise): uint8 (T, H, W, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        sky = np.stack([60 + 100 * y / height, 90 + 80 * x / width, np.full_like(x, 180)], -1)
        cx, cy = width * (0.2 + 0.6 * t / max(frames - 1, 1)), height * 0.55
        disc = ((x - cx) ** 2 + (y - cy) ** 2) < (height / 6) ** 2
        sky[disc] = (230, 120, 40)
        # Luminance noise, as a camera's denoised output mostly has; smooth chroma.
        out[t] = np.clip(sky + rng.normal(0, 3, (height, width, 1)), 0, 255).astype(np.uint8)
    return out


def real_clip(frames: int = 24, width: int = 128, height: int = 96, seed: int = 0) -> np.ndarray:
    """A camera move over a real photograph (the corpus' ``still-pan`` source): uint8 (T, H, W, 3).
    Falls back to ``moving_scene`` where scikit-image's sample data is not installed."""
    from clipproof.datasets.sources import still_sources
    from clipproof.datasets.stills import camera_move, load_photo
    sources, _ = still_sources(["camera"])
    if not sources:
        return moving_scene(frames, width, height, seed)
    return camera_move(load_photo(sources[0].path), frames, width, height, np.random.default_rng(seed))


def flip_byte(src: Path, dst: Path, box: str) -> Path:
    """Copy ``src`` with one byte inverted in the middle of its top-level ``box``."""
    shutil.copyfile(src, dst)
    target = find_box(dst, box)
    with open(dst, "r+b") as f:
        f.seek(target.middle)
        byte = f.read(1)[0]
        f.seek(target.middle)
        f.write(bytes([byte ^ 0xFF]))
    return dst


def run(out: Path) -> list[tuple[str, str, int]]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    keys = init_dev_keys(out / "keys")
    print(f"1. development keys in {keys.root.parent} (root certificate: {keys.root.name})")

    store = out / "manifests.sqlite"
    clip = write_mp4(real_clip(36, 1280, 720), out / "clip.mp4", fps=12, crf=20, reproducible=False)
    ai = sign(clip, out / "clip.ai.mp4", key=keys.key, cert=keys.chain, source_type="trainedAlgorithmicMedia",
              store=store)
    cam = sign(clip, out / "clip.capture.mp4", key=keys.key, cert=keys.chain, source_type="digitalCapture")
    print(f"2. a {clip.stat().st_size // 1024} KiB clip of a real photograph, signed as AI-generated with a watermark "
          f"({ai.name}; its manifest also kept in {store.name}) and as a camera capture ({cam.name})")
    tampered = flip_byte(ai, out / "clip.ai.tampered.mp4", "mdat")
    stripped = remux(ai, out / "clip.ai.stripped.mp4")
    reupload = _reupload(stripped, out / "clip.ai.reupload.mp4")
    print(f"3. a copy with one video byte flipped ({tampered.name}), a re-muxed copy that lost its manifest "
          f"({stripped.name}) and a re-upload of it, re-encoded at half size ({reupload.name})")

    untrusting, trusting = Verifier(stores=[store]), Verifier(trust=keys.root, stores=[store])
    cases = [
        ("unknown signer", untrusting, ai), ("dev root trusted", trusting, ai),
        ("unknown signer", untrusting, cam), ("dev root trusted", trusting, cam),
        ("dev root trusted", trusting, tampered), ("dev root trusted", trusting, stripped),
        ("dev root trusted", trusting, reupload), ("dev root trusted", trusting, clip),
    ]
    generated = _generate_one(out, keys)
    if generated is not None:
        # The same clip after a re-upload that dropped its manifest: only the detector can tell.
        stripped_generated = remux(generated, out / "generated" / f"{generated.stem}.stripped.mp4")
        cases += [("dev root trusted", trusting, generated), ("dev root trusted", trusting, stripped_generated)]
    summary = []
    for label, verifier, path in cases:
        report = verifier.verify(path)
        print(f"── verify {path.name}  ({label})")
        print(render_text(report) + "\n")
        summary.append((f"{path.name} ({label})", report.verdict, report.exit_code))
    return summary


def _reupload(src: Path, dst: Path) -> Path:
    """What a platform does to an upload: decode, scale to half size, encode again (CRF 23)."""
    from PIL import Image

    from clipproof.media import read_frames
    frames, _ = read_frames(src)
    h, w = frames.shape[1] // 4 * 2, frames.shape[2] // 4 * 2
    small = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BICUBIC)) for f in frames])
    return write_mp4(small, dst, fps=12, crf=23, reproducible=False)


def _generate_one(out: Path, keys) -> Path | None:
    """A clip from the bundled generator, signed with the demo's keys (when weights are bundled)."""
    from clipproof.generator.generate import GenerateOptions, bundled_configs, generate, load_generator
    if not bundled_configs():
        print("4. (no bundled generator weights in this checkout: skipping generation)\n")
        return None
    from clipproof.provenance.keys import load_identity
    gen = load_generator()
    records = generate(gen, GenerateOptions(n=1, steps=20, seed=1, store=str(out / "manifests.sqlite")), out / "generated",
                       load_identity(keys.key, keys.chain))
    path = out / "generated" / records[0].path
    print(f"4. a clip from the bundled generator {gen.model_id} ({records[0].frames} frames "
          f"{records[0].width}x{records[0].height}), signed as it was written: {path.name}\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clipproof.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="working folder (replaced)")
    args = p.parse_args(argv)
    summary = run(args.out)
    width = max(len(s[0]) for s in summary)
    print(f"{'file':<{width}}  {'verdict':<22} exit")
    for name, verdict, code in summary:
        print(f"{name:<{width}}  {verdict:<22} {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
