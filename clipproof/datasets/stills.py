"""Real photographs turned into clips by a simulated camera: pan, zoom, slight shake, sensor noise.

No model makes these pixels: every frame is a resampled crop of one real photograph. They widen
what the detector sees of real content, and carry their own source label (``still-pan:<name>``)
so their effect on the detector can be measured apart from real video.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def load_photo(path: str) -> Image.Image:
    """The photograph as 8-bit RGB (grey images are replicated to three channels)."""
    with Image.open(path) as im:
        return im.convert("RGB")


def camera_move(photo: Image.Image, frames: int, width: int, height: int,
                rng: np.random.Generator) -> np.ndarray:
    """``frames`` frames (T, H, W, 3) uint8 of a camera moving over ``photo``.

    A crop window of the clip's aspect ratio starts somewhere in the photo and travels in a
    straight line while zooming slightly; a random walk adds hand-held shake; Gaussian noise
    stands in for the sensor. Every parameter is drawn from ``rng``.
    """
    pw, ph = photo.size
    aspect = width / height
    # Window size as a fraction of the largest window of this aspect that fits the photo.
    max_w = min(pw, ph * aspect)
    scale0 = rng.uniform(0.45, 0.8)
    zoom = rng.uniform(-0.15, 0.15)                      # relative size change over the clip
    travel = rng.uniform(0.05, 0.25) * max_w              # pixels moved over the clip
    angle = rng.uniform(0, 2 * np.pi)
    shake = rng.normal(0, 0.004 * max_w, size=(frames, 2)).cumsum(axis=0)
    noise_sigma = rng.uniform(1.0, 3.5)

    out = np.empty((frames, height, width, 3), np.uint8)
    t = np.linspace(0.0, 1.0, frames)
    w0 = scale0 * max_w
    # Start so that the whole path stays inside the photo.
    cx0 = rng.uniform(w0 / 2 + travel, pw - w0 / 2 - travel) if pw > w0 + 2 * travel else pw / 2
    cy0 = rng.uniform(w0 / aspect / 2 + travel, ph - w0 / aspect / 2 - travel) if ph > w0 / aspect + 2 * travel else ph / 2
    for i, ti in enumerate(t):
        w = w0 * (1 + zoom * ti)
        h = w / aspect
        cx = cx0 + travel * ti * np.cos(angle) + shake[i, 0]
        cy = cy0 + travel * ti * np.sin(angle) + shake[i, 1]
        cx = float(np.clip(cx, w / 2, pw - w / 2))
        cy = float(np.clip(cy, h / 2, ph - h / 2))
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        frame = np.asarray(photo.resize((width, height), Image.Resampling.BICUBIC, box=box), np.float32)
        frame += rng.normal(0, noise_sigma, (height, width, 1))      # luminance noise
        out[i] = np.clip(frame + rng.normal(0, noise_sigma / 3, frame.shape), 0, 255).astype(np.uint8)
    return out
