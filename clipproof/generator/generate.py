"""``clipproof generate``: sample clips, write them as H.264 MP4, sign every one, record them.

Modes, as real generators make clips:
- ``t2v``: from a class prompt (text-to-video style);
- ``i2v``: from a still of any size, fitted to the clip size; the still is the first frame, kept;
- ``extend``: continue a clip window by window, each window conditioned on the last frames made,
  until it is as long again as the input (or ``seconds`` longer).

Each clip is encoded to a hidden temporary file and signed into its final name, so an unsigned
output is never written. A ``manifest.jsonl`` of ClipRecords lands beside the clips.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from clipproof.atomic import output_folder
from clipproof.digest import sha256_file
from clipproof.errors import InputMissingError, InvalidMediaError, OutputExistsError, UsageError, loading_weights
from clipproof.records import MANIFEST, ClipRecord, read_manifest, write_manifest
from clipproof.generator.settings import MODES, GenerateOptions
from clipproof.version import __version__

WEIGHTS = Path(__file__).parent / "weights"
# `--mode extend --seconds`: sampling goes a few frames at a time, so an absurd length (100,000 s)
# ran for days instead of being refused.
MAX_EXTEND_SECONDS = 600.0


@dataclass(frozen=True)
class LoadedGenerator:
    pipeline: object            # ClipproofVideoPipeline
    model_id: str               # config name
    weights_sha256: str

    @property
    def config(self):
        return self.pipeline.transformer.config

    @property
    def source(self) -> str:
        return f"generator:{self.model_id}@{self.weights_sha256[:12]}"


def default_config() -> str:
    """The bundled config that measured best (chosen when the weights were bundled)."""
    from clipproof.generator.configs import DEFAULT
    marker = WEIGHTS / "DEFAULT"
    return marker.read_text().strip() if marker.is_file() else DEFAULT


def bundled_configs() -> list[str]:
    return sorted(p.name for p in WEIGHTS.iterdir() if (p / "model_index.json").is_file()) if WEIGHTS.is_dir() else []


def load_generator(config: str | None = None, weights: str | os.PathLike | None = None) -> LoadedGenerator:
    """Bundled weights of ``config`` (default: the best bundled one), or a pipeline folder."""
    from diffusers.utils import logging as diffusers_logging

    from clipproof.generator.configs import get_config
    from clipproof.generator.pipeline import ClipproofVideoPipeline

    if weights is not None:
        folder = Path(weights)
        if (folder / "pipeline" / "model_index.json").is_file():   # a training folder
            folder = folder / "pipeline"
        if not (folder / "model_index.json").is_file():
            raise InputMissingError("not a generator pipeline folder (no model_index.json)", path=folder)
    else:
        name = config or default_config()
        get_config(name)  # unknown names fail here, with the list
        folder = WEIGHTS / name
        if not (folder / "model_index.json").is_file():
            raise InputMissingError(f"no bundled weights for {name!r}; bundled: {', '.join(bundled_configs()) or 'none'}")
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    with loading_weights(folder, "generator"):
        pipe = ClipproofVideoPipeline.from_pretrained(str(folder), low_cpu_mem_usage=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.transformer.eval()
    weights_file = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    return LoadedGenerator(pipe, pipe.transformer.config.name, sha256_file(weights_file))


# ---------------------------------------------------------------------------------------------
# Conditioning inputs
# ---------------------------------------------------------------------------------------------

def fit_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """A still of any size → (size, size, 3) uint8: resized to cover, centre-cropped."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputMissingError("no such image", path=path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise InvalidMediaError("not a readable image", path=path) from e
    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    x0, y0 = (im.width - size) // 2, (im.height - size) // 2
    return np.asarray(im.crop((x0, y0, x0 + size, y0 + size)))


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) → float (3, T, H, W) in [-1, 1]."""
    return torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(3, 0, 1, 2).float() / 127.5 - 1


def to_frames(x: torch.Tensor) -> np.ndarray:
    """float (3, T, H, W) in [-1, 1] → uint8 (T, H, W, 3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

def _generators(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def sample_clips(gen: LoadedGenerator, classes: list[str | None], seeds: list[int], *, mode: str = "t2v",
                 first_frames: np.ndarray | None = None, steps: int = 25, sampler: str = "ddim",
                 guidance: float = 2.0) -> np.ndarray:
    """One window per class/seed: uint8 (B, T, H, W, 3). ``first_frames`` (B, H, W, 3) for i2v."""
    known, k = None, 0
    if mode == "i2v":
        known = torch.stack([to_tensor(f[None]) for f in first_frames])
        k = 1
    x = gen.pipeline(classes, known=known, known_frames=k, steps=steps, sampler=sampler, guidance=guidance,
                     generator=_generators(seeds))
    return np.stack([to_frames(c) for c in x])


def extend_clips(gen: LoadedGenerator, clips: np.ndarray, add: int, seeds: list[int], *,
                 classes: list[str | None] | None = None, steps: int = 25, sampler: str = "ddim",
                 guidance: float = 2.0) -> np.ndarray:
    """Clips (B, T0, H, W, 3) continued by ``add`` frames each, window by window, as a batch:
    each window keeps the last ``context_frames`` made so far and makes the rest."""
    cfg = gen.config
    k = min(cfg.context_frames, clips.shape[1])
    out = [list(c) for c in clips]
    classes = classes or [None] * len(clips)
    window = 0
    while len(out[0]) < clips.shape[1] + add:
        context = torch.stack([to_tensor(np.stack(c[-k:])) for c in out])
        x = gen.pipeline(classes, known=context, known_frames=k, steps=steps, sampler=sampler, guidance=guidance,
                         generator=_generators([s * 1000 + window for s in seeds]))
        for c, made in zip(out, x):
            c += list(to_frames(made)[k:])
        window += 1
    return np.stack([np.stack(c[: clips.shape[1] + add]) for c in out])


def extend_clip(gen: LoadedGenerator, frames: np.ndarray, add: int, seed: int, *, cls: str | None = None,
                steps: int = 25, sampler: str = "ddim", guidance: float = 2.0) -> np.ndarray:
    """One clip (T0, H, W, 3) continued by ``add`` frames (see ``extend_clips``)."""
    return extend_clips(gen, frames[None], add, [seed], classes=[cls], steps=steps, sampler=sampler,
                        guidance=guidance)[0]


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def generate(gen: LoadedGenerator, opts: GenerateOptions, out: str | os.PathLike, identity,
             progress: Callable[[int], None] | None = None) -> list[ClipRecord]:
    """Make, sign and record ``opts.n`` clips in ``out``; returns their records."""
    from clipproof.media import probe, read_frames, write_mp4
    from clipproof.provenance.manifest import TRAINED_ALGORITHMIC_MEDIA
    from clipproof.provenance.sign import sign_file

    cfg = gen.config
    _check(opts, gen)
    out = output_folder(out)
    conditioning: dict = {}
    first = None
    fps = opts.fps
    if opts.mode == "i2v":
        first = fit_image(opts.image, cfg.size)
        conditioning["first_frame_sha256"] = sha256_file(opts.image)
    if opts.mode == "extend":
        info = probe(opts.clip)
        parent, _ = read_frames(opts.clip, size=(cfg.size, cfg.size), crop=True)
        fps = info.fps or opts.fps
        add = round(opts.seconds * fps) if opts.seconds else len(parent)
        conditioning |= {"parent_clip_sha256": sha256_file(opts.clip), "parent_frames": len(parent),
                         "added_frames": add}

    seeds = [opts.seed + i for i in range(opts.n)]
    rng = np.random.default_rng(opts.seed)
    classes = [opts.cls if opts.cls is not None else
               (str(rng.choice(gen.pipeline.transformer.class_names)) if opts.mode != "extend" else None)
               for _ in seeds]
    ids = [f"{gen.model_id}-{opts.mode}-{s:06d}" for s in seeds]
    for i in ids:
        if (out / f"{i}.mp4").exists():
            raise OutputExistsError("already exists (another seed, or another folder)", path=out / (i + '.mp4'))

    from clipproof.watermark.pattern import too_small
    # Pictures too small to carry a findable mark get none: no manifest then names a soft binding.
    marking = opts.watermark and too_small(cfg.size, cfg.size) is None
    store = None
    if marking:
        from clipproof.provenance.durable import watermark_frames
        from clipproof.provenance.store import open_store
        store = open_store(opts.store)
    records: list[ClipRecord] = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".unsigned-") as tmp:
        for start in range(0, opts.n, opts.batch):
            chunk = slice(start, start + opts.batch)
            if opts.mode == "extend":
                batch = [extend_clip(gen, parent, add, s, cls=opts.cls, steps=opts.steps, sampler=opts.sampler,
                                     guidance=opts.guidance) for s in seeds[chunk]]
            else:
                firsts = np.stack([first] * len(seeds[chunk])) if first is not None else None
                batch = list(sample_clips(gen, classes[chunk], seeds[chunk], mode=opts.mode, first_frames=firsts,
                                          steps=opts.steps, sampler=opts.sampler, guidance=opts.guidance))
            for clip_id, cls, seed, frames in zip(ids[chunk], classes[chunk], seeds[chunk], batch):
                binding = None
                if marking:
                    frames, binding = watermark_frames(frames)
                unsigned = write_mp4(frames, Path(tmp) / f"{clip_id}.mp4", fps=fps, crf=opts.crf)
                parameters = {"model": gen.model_id, "weights_sha256": gen.weights_sha256,
                              "sampler": opts.sampler, "steps": opts.steps, "guidance": opts.guidance,
                              "seed": seed, "mode": opts.mode, "class": cls, **conditioning}
                final = sign_file(unsigned, out / f"{clip_id}.mp4", identity,
                                  source_type=TRAINED_ALGORITHMIC_MEDIA, parameters=parameters,
                                  software_agent={"name": f"clipproof-generator/{gen.model_id}",
                                                  "version": __version__},
                                  soft_binding=binding, store=store)
                t, h, w, _ = frames.shape
                records.append(ClipRecord(
                    id=clip_id, path=final.name, sha256=sha256_file(final), label="synthetic", source=gen.source,
                    generator=gen.model_id, mode=opts.mode, split=None, frames=t, fps=round(fps, 3), width=w,
                    height=h, codec="h264", crf=opts.crf, parent_id=None, seed=seed, group=clip_id))
                if progress:
                    progress(1)
    previous = read_manifest(out) if (out / MANIFEST).is_file() else []
    merged = {r.id: r for r in previous} | {r.id: r for r in records}
    write_manifest(sorted(merged.values(), key=lambda r: r.id), out / MANIFEST)
    return records


def _check(opts: GenerateOptions, gen: LoadedGenerator) -> None:
    if opts.mode not in MODES:
        raise UsageError(f"unknown mode {opts.mode!r}; choose {', '.join(MODES)}")
    if opts.n < 1 or opts.batch < 1 or opts.steps < 1:
        raise UsageError("--n, --batch and --steps must be at least 1")
    if opts.mode == "i2v" and not opts.image:
        raise UsageError("--mode i2v needs --image PATH")
    if opts.mode == "extend" and not opts.clip:
        raise UsageError("--mode extend needs --clip PATH")
    if opts.mode != "i2v" and opts.image:
        raise UsageError("--image is for --mode i2v")
    if opts.mode != "extend" and (opts.clip or opts.seconds):
        raise UsageError("--clip and --seconds are for --mode extend")
    if opts.seconds is not None and not 0 < opts.seconds <= MAX_EXTEND_SECONDS:     # also refuses nan
        raise UsageError(f"--seconds must be above 0 and at most {MAX_EXTEND_SECONDS:g} (10 s take about "
                         "a minute and a quarter to sample on 2 CPU cores)")
    if not math.isfinite(opts.guidance):
        raise UsageError("--guidance must be a finite number (1 = off)")
    names = gen.pipeline.transformer.class_names
    if opts.cls is not None and opts.cls not in names:
        raise UsageError(f"unknown class {opts.cls!r}; this generator knows: {', '.join(names)}")
