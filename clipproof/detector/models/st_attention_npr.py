"""``st-attention-npr``: ``st-attention`` looking at each frame's neighbouring-pixel residual
instead of its pixels (NPR: Tan et al., "Rethinking the Up-Sampling Operations in CNN-based
Generative Network for Generalizable Deepfake Detection", CVPR 2024).

Every generator in the field decodes its pictures through a learned decoder that upsamples by
2 several times; the pixels of each 2×2 cell it writes are correlated in a way a camera's are
not. The residual of a frame against its own 2× nearest-neighbour downscale-and-upscale keeps
exactly those within-cell relations and drops the content, so what the backbone can learn is
narrowed to the trace all such decoders share rather than to what one generator likes to draw.
Left out of training, AnimateDiff went from segment AUC 0.21-0.85 (``st-attention``) to
0.73-0.99 on the same corpus and seeds. Smooth computer-drawn pictures look alike to it, so it
is trained with rendered clips labelled as not generated (``tools.render_sources``). The bundled
detector.
"""
from __future__ import annotations

import torch
from torch import nn

from clipproof.detector.models.st_attention import TemporalAttentionDetector
from clipproof.detector.registry import register_model


def neighbour_residual(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) → each frame minus its 2× nearest-neighbour downscale, upscaled back
    (the top-left pixel of each 2×2 cell stands for the cell). H and W must be even."""
    x = clips.flatten(0, 1)
    cells = nn.functional.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")
    return (x - cells).view_as(clips)


@register_model
class NeighbourResidualDetector(TemporalAttentionDetector):
    model_name = "st-attention-npr"
    looks_at = ("each frame's neighbouring-pixel residual (the frame minus its own 2× nearest-neighbour "
                "downscale, upscaled back: what a learned 2× upsampler leaves inside each 2×2 cell)")

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        return super().features(neighbour_residual(clips))
