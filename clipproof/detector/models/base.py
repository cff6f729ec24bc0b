"""The shape every detector has (after DeepfakeBench's base detector): ``features`` turns a
batch of clips into per-frame features, ``classifier`` turns those into logits, and
``forward(batch) -> dict`` returns at least ``logits`` (B,) — positive means synthetic.

Clips arrive as float (B, T, C, H, W) in [-1, 1]. Frames are upsampled 2× (nearest) before
the backbone: its stride-2 stem would otherwise average away the pixel-level traces a
generator leaves at the small sizes the corpora use.

With ``temporal_diff`` the backbone sees each frame beside its difference from the previous
one (6 input channels, the "RGB difference" input of action recognition). Attention over
globally pooled frame features cannot see whether fine detail persists from frame to frame —
pooled statistics of fresh noise look the same in every frame — and that persistence is what
separates a static real camera from a generator's noise.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

import timm
import torch
from diffusers import ConfigMixin, ModelMixin
from timm.layers import GroupNorm1
from torch import nn


# The backbone's normalisation. ``group`` (one group: no statistics across the batch) makes a
# clip's score independent of its batch-mates, which is what a DDP run on CPUs needs to match
# one process exactly (CPUs have no SyncBatchNorm); the bundled weights use ``batch``.
BACKBONE_NORMS = {"batch": nn.BatchNorm2d, "group": GroupNorm1}


class DetectorBase(ModelMixin, ConfigMixin, metaclass=ABCMeta):
    """Saved and loaded as the generator is: ``save_pretrained(folder)`` writes ``config.json``
    (the constructor's arguments, recorded by ``@register_to_config`` on each model's
    ``__init__``) and ``diffusion_pytorch_model.safetensors``; ``Model.from_pretrained(folder)``
    builds the model from them."""

    # What the backbone is shown, in words, for the model card.
    looks_at = "each frame"

    def __init__(self, backbone_name: str = "resnet10t", channels: tuple[int, ...] = (32, 64, 128, 256),
                 upsample: int = 2, frames: int = 16, temporal_diff: bool = False, backbone_norm: str = "batch"):
        super().__init__()
        self.upsample = upsample
        self.frames = frames
        self.temporal_diff = temporal_diff
        self.backbone = timm.create_model(backbone_name, pretrained=False, num_classes=0, channels=tuple(channels),
                                          in_chans=6 if temporal_diff else 3, norm_layer=BACKBONE_NORMS[backbone_norm])
        self.feature_dim = self.backbone.num_features

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) → per-frame features (B, T, D)."""
        b, t = clips.shape[:2]
        if self.temporal_diff:
            diff = clips.diff(dim=1)
            # The first frame has no predecessor: it borrows the second frame's difference.
            clips = torch.cat([clips, torch.cat([diff[:, :1], diff], dim=1) if t > 1 else torch.zeros_like(clips)], dim=2)
        x = clips.flatten(0, 1)
        if self.upsample > 1:
            x = nn.functional.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.backbone(x).view(b, t, -1)

    @abstractmethod
    def classifier(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-frame features (B, T, D) → at least ``logits`` (B,)."""

    def forward(self, batch: torch.Tensor | dict) -> dict[str, torch.Tensor]:
        """One batch row is one segment: ``logits`` (B,), ``scores`` (the per-segment P(synthetic)
        before calibration: ``Calibration.probability`` of the logits is the calibrated one) and
        ``embedding`` (B, D)."""
        clips = batch["frames"] if isinstance(batch, dict) else batch
        features = self.features(clips)
        out = self.classifier(features)
        # ``embedding``: the segment's features averaged over its frames, for the
        # out-of-distribution check (``detector.ood``).
        return {**out, "scores": torch.sigmoid(out["logits"]), "embedding": features.mean(dim=1)}
