"""Reconstructed sources of a corpus (the ``[[reconstructed]]`` entries of a recipe): each real
clip of the corpus decoded through an autoencoder trained here (``datasets.autoencoders``),
labelled synthetic.

A reconstruction keeps its real clip's footage group, so it lands in the same split (the
detector is never tested on footage whose reconstruction it trained on), and its frame rate;
it is stored through the builder's ``store_clip``, the encode path every clip takes: the pair
differs only by the decoder's traces.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from clipproof.digest import sha256_file
from clipproof.errors import InputMissingError
from clipproof.records import ClipRecord

MODE = "reconstruct"


@dataclass(frozen=True)
class ReconstructedSource:
    autoencoder: str                # a folder written by `clipproof datasets train-autoencoder`


def reconstructed_clips(entry: ReconstructedSource, recipe, corpus: Path, store_clip: Callable,
                        say: Callable[[str], None], real: list[ClipRecord]) -> list[ClipRecord]:
    """Every original real clip of the corpus, decoded through ``entry.autoencoder``."""
    from clipproof.datasets.autoencoders import AUTOENCODER_DIR, INFO_FILE, load_autoencoder, reconstruct
    from clipproof.media import read_frames

    folder = Path(entry.autoencoder)
    if not (folder / INFO_FILE).is_file():
        raise InputMissingError(f"not a trained autoencoder (no {INFO_FILE})", path=folder)
    ae, spec = load_autoencoder(folder)
    weights = next((folder / AUTOENCODER_DIR).glob("*.safetensors"))
    source = f"autoencoder:{spec.name}@{sha256_file(weights)[:12]}"
    originals = [r for r in real if r.variant == "original" and r.label == "real"]
    say(f"{source}: reconstructing {len(originals)} real clips")
    out: list[ClipRecord] = []
    for r in originals:
        frames, _ = read_frames(corpus / r.path)
        template = replace(r, id=f"{r.id}-ae-{spec.name}", path="", sha256="", label="synthetic", source=source,
                           generator=f"ae:{spec.name}", mode=MODE, split=None)
        out += store_clip(reconstruct(ae, spec, frames), r.fps, corpus, template, recipe.clip, recipe.variants)
    return out
