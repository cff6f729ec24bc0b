"""The generator as a synthetic source of a corpus (the ``[[synthetic]]`` entries of a recipe).

Clips are made in the recipe's clip shape and stored through the builder's ``store_clip``, the
encode path real clips take; their frame rates are drawn from the real clips' rates, so the
container says nothing the pixels do not. ``i2v`` starts from the first frame of a real clip
and ``extend`` continues a real clip (only the new frames are kept), as users of such
generators do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from clipproof.datasets.clips import stable_seed
from clipproof.errors import UsageError
from clipproof.records import ClipRecord


def generate_for_corpus(entry, recipe, corpus: Path, store_clip: Callable, say: Callable[[str], None],
                        real: list[ClipRecord]) -> list[ClipRecord]:
    from clipproof.generator.generate import extend_clip, load_generator, sample_clips
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
    out: list[ClipRecord] = []
    say(f"{gen.source}: generating {entry.count} clips ({', '.join(entry.modes)}, {entry.sampler}, {entry.steps} steps)")
    for i in range(entry.count):
        mode = entry.modes[i % len(entry.modes)]
        seed = stable_seed(recipe.seed, gen.source, entry.sampler, i) % 2**31
        parent = originals[int(rng.integers(len(originals)))]
        fps = originals[int(rng.integers(len(originals)))].fps
        cls = str(rng.choice(classes))
        if mode == "t2v":
            frames = sample_clips(gen, [cls], [seed], steps=entry.steps, sampler=entry.sampler,
                                  guidance=entry.guidance)[0]
        elif mode == "i2v":
            first, _ = read_frames(corpus / parent.path, 1)
            frames = sample_clips(gen, [cls], [seed], mode="i2v", first_frames=first, steps=entry.steps,
                                  sampler=entry.sampler, guidance=entry.guidance)[0]
        elif mode == "extend":
            context, _ = read_frames(corpus / parent.path)
            frames = extend_clip(gen, context, spec.frames, seed, steps=entry.steps, sampler=entry.sampler,
                                 guidance=entry.guidance)[len(context):]
        else:
            raise UsageError(f"unknown generator mode {mode!r}")
        clip_id = f"{gen.model_id}-{entry.sampler.replace('+', 'p')}-{mode}-{i:04d}"
        template = ClipRecord(id=clip_id, path="", sha256="", label="synthetic", source=f"{gen.source}+{entry.sampler}",
                              generator=gen.model_id, mode=mode, split=None, frames=0, fps=0.0, width=0, height=0,
                              codec="", crf=None, parent_id=None, seed=seed, group=clip_id)
        out += store_clip(frames, fps, corpus, template, spec, recipe.variants)
    return out
