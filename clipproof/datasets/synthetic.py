"""Synthetic sources of a corpus: clips made by a generator, labelled by how they were made.

The recipe names a generator config, its weights, the sampler and the modes; this module asks
``clipproof.generator`` for frames and stores each clip through the builder's ``store_clip``
(the same encode path as real footage), with ``generator`` and ``mode`` filled in.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

from clipproof.errors import UsageError
from clipproof.records import ClipRecord


def synthetic_clips(entry, recipe, corpus: Path, store_clip: Callable, say: Callable[[str], None],
                    real: list[ClipRecord]) -> list[ClipRecord]:
    """Generate ``entry.count`` clips (spread over ``entry.modes``) and store them in ``corpus``;
    ``real`` are the corpus' real clips (frame rates, first frames and clips to extend)."""
    try:
        available = importlib.util.find_spec("clipproof.generator.corpus") is not None
    except ModuleNotFoundError:
        available = False
    if not available:
        raise UsageError(f"synthetic source {entry.generator!r}: the generator is not installed in this "
                         "version of clipproof; remove [[synthetic]] from the recipe")
    from clipproof.generator.corpus import generate_for_corpus
    return generate_for_corpus(entry, recipe, corpus, store_clip, say, real)
