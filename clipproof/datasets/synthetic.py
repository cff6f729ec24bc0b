"""Synthetic sources of a corpus (the ``[[synthetic]]`` entries of a recipe): clips made by the
generator, labelled by how they were made.

The recipe names a generator config, its weights, the sampler and the modes. Clips are made in
the recipe's clip shape and stored through the builder's ``store_clip`` (the encode path real
clips take), with ``generator`` and ``mode`` filled in; their frame rates are drawn from the
real clips' rates, so the container says nothing the pixels do not. ``i2v`` starts from the
first frame of a real clip and ``extend`` continues a real clip (only the new frames are kept),
as users of such generators do. The generator never imports ``datasets``: this module calls it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from clipproof.errors import UsageError
from clipproof.records import ClipRecord, stable_seed

BATCH = 8


def synthetic_clips(entry, recipe, corpus: Path, store_clip: Callable, say: Callable[[str], None],
                    real: list[ClipRecord]) -> list[ClipRecord]:
    """Generate ``entry.count`` clips (spread over ``entry.modes``) and store them in ``corpus``;
    ``real`` are the corpus' real clips (frame rates, first frames and clips to extend)."""
    from clipproof.generator.generate import extend_clips, load_generator, sample_clips
    from clipproof.media import read_frames

    gen = load_generator(entry.generator if entry.weights == "bundled" else None,
                         None if entry.weights == "bundled" else entry.weights)
    cfg, spec = gen.config, recipe.clip
    if (cfg.frames, cfg.size, cfg.size) != (spec.frames, spec.width, spec.height):
        raise UsageError(f"generator {gen.model_id} makes {cfg.frames}x{cfg.size}x{cfg.size} clips; the recipe "
                         f"asks {spec.frames}x{spec.width}x{spec.height}")
    originals = [r for r in real if r.variant == "original" and r.label == "real"]
    if not originals:
        raise UsageError("a synthetic source needs real clips in the corpus (for frame rates, i2v and extend)")
    rng = np.random.default_rng(stable_seed(recipe.seed, gen.source, entry.sampler, entry.steps))
    classes = gen.pipeline.transformer.class_names
    say(f"{gen.source}: generating {entry.count} clips ({', '.join(entry.modes)}, {entry.sampler}, {entry.steps} steps)")
    # Draw every clip's plan first (deterministic), then sample each mode in batches.
    plans = []
    for i in range(entry.count):
        plans.append({"i": i, "mode": entry.modes[i % len(entry.modes)],
                      "seed": stable_seed(recipe.seed, gen.source, entry.sampler, i) % 2**31,
                      "parent": originals[int(rng.integers(len(originals)))],
                      "fps": originals[int(rng.integers(len(originals)))].fps, "cls": str(rng.choice(classes))})
    made: dict[int, np.ndarray] = {}
    kwargs = {"steps": entry.steps, "sampler": entry.sampler, "guidance": entry.guidance}
    for mode in dict.fromkeys(p["mode"] for p in plans):
        if mode not in ("t2v", "i2v", "extend"):
            raise UsageError(f"unknown generator mode {mode!r}")
        todo = [p for p in plans if p["mode"] == mode]
        for b in range(0, len(todo), BATCH):
            batch = todo[b:b + BATCH]
            seeds = [p["seed"] for p in batch]
            if mode == "t2v":
                frames = sample_clips(gen, [p["cls"] for p in batch], seeds, **kwargs)
            elif mode == "i2v":
                firsts = np.stack([read_frames(corpus / p["parent"].path, 1)[0][0] for p in batch])
                frames = sample_clips(gen, [p["cls"] for p in batch], seeds, mode="i2v", first_frames=firsts, **kwargs)
            else:
                context = np.stack([read_frames(corpus / p["parent"].path)[0] for p in batch])
                frames = extend_clips(gen, context, spec.frames, seeds, **kwargs)[:, context.shape[1]:]
            made |= {p["i"]: f for p, f in zip(batch, frames)}
    out: list[ClipRecord] = []
    for p in plans:
        clip_id = f"{gen.model_id}-{entry.sampler.replace('+', 'p')}-{p['mode']}-{p['i']:04d}"
        template = ClipRecord(id=clip_id, path="", sha256="", label="synthetic", source=f"{gen.source}+{entry.sampler}",
                              generator=gen.model_id, mode=p["mode"], split=None, frames=0, fps=0.0, width=0,
                              height=0, codec="", crf=None, parent_id=None, seed=p["seed"], group=clip_id)
        out += store_clip(made[p["i"]], p["fps"], corpus, template, spec, recipe.variants)
    return out
