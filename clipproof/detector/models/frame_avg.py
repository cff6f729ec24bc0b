"""``frame-avg``: the same backbone scoring each frame alone, the frame logits averaged: the
baseline that shows what temporal modelling adds."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config
from torch import nn

from clipproof.detector.models.base import DetectorBase
from clipproof.detector.registry import register_model


@register_model
class FrameAverageDetector(DetectorBase):
    model_name = "frame-avg"

    @register_to_config
    def __init__(self, frames: int = 16, backbone_name: str = "resnet10t", channels: tuple[int, ...] = (32, 64, 128, 256),
                 upsample: int = 2, backbone_norm: str = "batch", temporal_diff: bool = False):
        super().__init__(backbone_name=backbone_name, channels=channels, upsample=upsample, frames=frames,
                         temporal_diff=temporal_diff, backbone_norm=backbone_norm)
        self.head = nn.Linear(self.feature_dim, 1)

    def classifier(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        frame_logits = self.head(features).squeeze(-1)          # (B, T)
        return {"logits": frame_logits.mean(dim=1), "frame_logits": frame_logits}
