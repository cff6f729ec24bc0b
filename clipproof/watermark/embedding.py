"""Embedding: the payload's tile added to every frame's luma, weighted by local texture.

Adding the same value to R, G and B changes luma (Y = .299R + .587G + .114B) by that value and
leaves the chroma planes alone. The weight follows how busy the picture is around each pixel
(flat sky gets less, texture more) and is normalised so the mark's RMS is ``strength`` luma
levels: 1.8 keeps luma PSNR above 40 dB against the unmarked encode (bench.watermark).
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
from scipy import ndimage

from clipproof.watermark import payload as code
from clipproof.watermark.pattern import chip_size, render, tile

STRENGTH = 1.8          # RMS of the mark, in 8-bit luma levels
MASK_RANGE = (0.5, 1.8)  # how far texture may lower or raise the local strength


class Embedder:
    """Marks frames with one payload: ``embedder(frame)`` → the marked frame. The pattern is
    rendered once per frame size and reused."""

    def __init__(self, payload: bytes, *, strength: float = STRENGTH):
        self.chips = tile(code.encode(payload))
        self.strength = strength
        self._pattern: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        h, w, _ = frame.shape
        if self._pattern is None or self._pattern.shape != (h, w):
            self._pattern = render(self.chips, h, w, chip_size(h, w)) * self.strength
        mark = self._pattern * _texture_weight(frame)
        return np.clip(frame.astype(np.float32) + mark[..., None] + 0.5, 0, 255).astype(np.uint8)


def embed_frames(frames: Iterable[np.ndarray], payload: bytes, *, strength: float = STRENGTH) -> Iterator[np.ndarray]:
    """Yield each (H, W, 3) uint8 RGB frame with the watermark carrying ``payload`` (8 bytes).
    Frames stream through: a long clip need not fit in memory."""
    return map(Embedder(payload, strength=strength), frames)


def _texture_weight(frame: np.ndarray) -> np.ndarray:
    """Per-pixel weight (mean 1 over the frame) from local luma contrast, on a 4× smaller copy."""
    h, w, _ = frame.shape
    small = frame[::4, ::4].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    detail = np.abs(small - ndimage.uniform_filter(small, 3))
    activity = ndimage.uniform_filter(detail, 5) + 1.0
    weight = np.clip(activity / activity.mean(), *MASK_RANGE)
    weight /= np.sqrt(np.mean(weight * weight))
    return np.repeat(np.repeat(weight, 4, 0), 4, 1)[:h, :w]
