"""``frame-avg``: the same backbone scoring each frame alone, the frame logits averaged: the
baseline that shows what temporal modelling adds."""
from __future__ import annotations

import torch
from torch import nn

from clipproof.detector.models.base import DetectorBase
from clipproof.detector.registry import register_model


class FrameAverageDetector(DetectorBase):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.head = nn.Linear(self.feature_dim, 1)

    def classifier(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        frame_logits = self.head(features).squeeze(-1)          # (B, T)
        return {"logits": frame_logits.mean(dim=1), "frame_logits": frame_logits}


@register_model
def frame_avg(**kwargs) -> FrameAverageDetector:
    return FrameAverageDetector(**kwargs)
