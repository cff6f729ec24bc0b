"""Derived variants of a clip: what re-uploads do to video (re-encoding, downscaling, cropping),
and the formats clips are published in (a GIF's 256-colour palette, upscaling to a player's size).

Both labels get the same variants: most public generators' samples are palette GIFs, and a
detector that meets the palette only on generated clips learns the palette.

A variant is made from the *decoded* stored clip, as a platform would from an upload, and keeps
its parent's group, so it never lands in another split than the clip it came from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from clipproof.errors import UsageError


@dataclass(frozen=True)
class Variant:
    name: str                 # "crf28", "down0.5", "crop0.8", "gif256", "up2"
    crf: int | None = None    # re-encode at this CRF
    scale: float | None = None  # resize factor (below 1: downscale; above: upscale)
    crop: float | None = None   # centre-crop fraction
    palette: int | None = None  # colours of a GIF round trip (adaptive palette, dithered)
    dither: str = "diffusion"   # the GIF's dithering: "diffusion" (Floyd–Steinberg) or "ordered" (Bayer 2x2)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 → the variant's frames (sizes kept even for 4:2:0)."""
        t, h, w, _ = frames.shape
        if self.palette is not None:
            # As GIF encoders do: an adaptive palette per frame, dithered as the encoder does.
            return np.stack([_gif_frame(f, self.palette, self.dither) for f in frames])
        if self.scale is not None:
            size = (_even(w * self.scale), _even(h * self.scale))
            return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BICUBIC)) for f in frames])
        if self.crop is not None:
            cw, ch = _even(w * self.crop), _even(h * self.crop)
            x0, y0 = (w - cw) // 2, (h - ch) // 2
            return np.ascontiguousarray(frames[:, y0:y0 + ch, x0:x0 + cw])
        return frames


# Bayer's 2x2 threshold matrix, centred on zero: ordered dithering adds it (scaled to the palette's
# step) before each pixel takes its nearest palette colour, leaving a period-2 checkerboard. Some
# published generator samples carry exactly that pattern (wild-dev's VideoCrafter and AnimateDiff
# GIFs from small palettes); camera clips made into GIFs the same way must carry it too.
_BAYER2 = (np.array([[0, 2], [3, 1]], np.float32) + 0.5) / 4 - 0.5


def _gif_frame(frame: np.ndarray, colours: int, dither: str) -> np.ndarray:
    image = Image.fromarray(frame)
    if dither != "ordered":
        return np.asarray(image.quantize(colours, dither=Image.Dither.FLOYDSTEINBERG).convert("RGB"))
    palette = image.quantize(colours, dither=Image.Dither.NONE)
    step = 255.0 / max(colours ** (1 / 3) - 1, 1)
    h, w = frame.shape[:2]
    offset = np.tile(_BAYER2, (h // 2 + 1, w // 2 + 1))[:h, :w, None] * step
    shifted = Image.fromarray(np.clip(frame + offset, 0, 255).astype(np.uint8))
    return np.asarray(shifted.quantize(palette=palette, dither=Image.Dither.NONE).convert("RGB"))


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def variants_from(reencode_crf=(), downscale=(), center_crop=(), gif_palette=(), gif_ordered=(),
                  upscale=()) -> list[Variant]:
    out = [Variant(f"crf{int(c)}", crf=int(c)) for c in reencode_crf]
    out += [Variant(f"down{s:g}", scale=float(s)) for s in downscale]
    out += [Variant(f"crop{c:g}", crop=float(c)) for c in center_crop]
    out += [Variant(f"gif{int(n)}", palette=int(n)) for n in gif_palette]
    out += [Variant(f"gif{int(n)}-ordered", palette=int(n), dither="ordered") for n in gif_ordered]
    out += [Variant(f"up{s:g}", scale=float(s)) for s in upscale]
    for v in out:
        if v.crf is not None and not 0 <= v.crf <= 51:
            raise UsageError(f"variant CRF must be in 0..51, got {v.crf}")
        if v.scale is not None and v.name.startswith("down") and not 0.1 <= v.scale < 1:
            raise UsageError(f"downscale factor must be in [0.1, 1), got {v.scale}")
        if v.scale is not None and v.name.startswith("up") and not 1 < v.scale <= 8:
            raise UsageError(f"upscale factor must be in (1, 8], got {v.scale}")
        if v.palette is not None and not 2 <= v.palette <= 256:
            raise UsageError(f"a GIF palette holds 2 to 256 colours, got {v.palette}")
        if v.crop is not None and not 0.2 <= v.crop < 1:
            raise UsageError(f"centre-crop fraction must be in [0.2, 1), got {v.crop}")
    return out


# The standard set of the robustness evaluation.
STANDARD = variants_from(reencode_crf=(23, 28, 35), downscale=(0.5,), center_crop=(0.8,))
