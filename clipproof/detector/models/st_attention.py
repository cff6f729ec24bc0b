"""``st-attention``: per-frame features from a timm ResNet, then self-attention over time (a
small transformer encoder with a learned position per frame and a class token), then a linear
head. Attention over time sees what single frames cannot: flicker, drift, motion that does not
follow from one frame to the next; the backbone also gets each frame's difference from the one
before (``temporal_diff``), so whether fine detail persists reaches the features."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config
from torch import nn

from clipproof.detector.models.base import DetectorBase
from clipproof.detector.registry import register_model


@register_model
class TemporalAttentionDetector(DetectorBase):
    model_name = "st-attention"

    @register_to_config
    def __init__(self, frames: int = 16, backbone_name: str = "resnet10t", channels: tuple[int, ...] = (32, 64, 128, 256),
                 upsample: int = 2, backbone_norm: str = "batch", temporal_diff: bool = True, depth: int = 2, heads: int = 4,
                 dropout: float = 0.1):
        super().__init__(backbone_name=backbone_name, channels=channels, upsample=upsample, frames=frames,
                         temporal_diff=temporal_diff, backbone_norm=backbone_norm)
        d = self.feature_dim
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, self.frames + 1, d))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=dropout, batch_first=True,
                                           norm_first=True)
        self.temporal = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)

    def classifier(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t, _ = features.shape
        x = torch.cat([self.cls.expand(b, -1, -1), features], dim=1) + self.pos[:, : t + 1]
        x = self.norm(self.temporal(x))
        return {"logits": self.head(x[:, 0]).squeeze(1)}
