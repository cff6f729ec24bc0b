"""Reconstructed sources of a corpus (the ``[[reconstructed]]`` entries of a recipe): the real
footage of a corpus decoded through autoencoders trained here (``datasets.autoencoders``),
labelled synthetic.

Each window of a real source is cut with ``CONTEXT`` pixels of footage around it; the real clip
is its middle, and each reconstruction is the middle of the autoencoder's output for the whole
cut. So a reconstruction is made from the same decoded pixels as its real twin, goes through the
same single encode (``store_clip``), and its pixels were decoded with the footage around them
as a generator's frame is — not at the border of a tiny crop. It keeps its real clip's footage
group, so it lands in the same split (the detector is never tested on footage whose
reconstruction it trained on), and its frame rate.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipproof.datasets.autoencoder_specs import AUTOENCODER_DIR, INFO_FILE, AutoencoderSpec
from clipproof.errors import InputMissingError

MODE = "reconstruct"
# Footage around each cut the autoencoder sees: two latent cells of an 8x autoencoder, so the
# kept middle is decoded as the inside of a frame is.
CONTEXT = 16


@dataclass(frozen=True)
class ReconstructedSource:
    autoencoder: str                # a folder written by `clipproof datasets train-autoencoder`


@dataclass(frozen=True)
class Reconstructor:
    """A loaded autoencoder, named as its clips' source is: ``autoencoder:NAME@SHA12``."""

    name: str
    source: str
    model: object                   # a diffusers autoencoder (torch)
    spec: AutoencoderSpec

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        from clipproof.datasets.autoencoders import reconstruct
        return reconstruct(self.model, self.spec, frames)


@functools.lru_cache(maxsize=8)
def load_reconstructor(folder: str) -> Reconstructor:
    """The autoencoder in ``folder``, loaded once per process (a build's workers each load it)."""
    from clipproof.datasets.autoencoders import load_autoencoder
    from clipproof.digest import sha256_file

    path = require_trained(folder)
    model, spec = load_autoencoder(path)
    weights = next((path / AUTOENCODER_DIR).glob("*.safetensors"))
    return Reconstructor(spec.name, f"autoencoder:{spec.name}@{sha256_file(weights)[:12]}", model, spec)


def require_trained(folder: str | Path) -> Path:
    """``folder`` as a Path, when it holds an autoencoder trained by this package."""
    path = Path(folder)
    if not (path / INFO_FILE).is_file():
        raise InputMissingError(f"not a trained autoencoder (no {INFO_FILE})", path=path)
    return path


def middle(frames: np.ndarray, margin: int) -> np.ndarray:
    """``frames`` (T, H, W, 3) without ``margin`` pixels on each side."""
    return frames[:, margin:frames.shape[1] - margin, margin:frames.shape[2] - margin] if margin else frames
