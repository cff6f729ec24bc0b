"""VideoDiT: a diffusers video transformer with clipproof's conditioning around it.

The transformer itself is diffusers' (``LatteTransformer3DModel`` for the factorized and
spatial layouts, ``WanTransformer3DModel`` for full space-time attention), built tiny from a
config with random weights. What they lack, and this file adds:

- class conditioning: a learned embedding per class (the corpus' sources), fed to the
  transformer as its one-token "text" encoder states; one extra index is the null class that
  classifier-free guidance drops to;
- known-frame conditioning for ``i2v`` and ``extend``: three channels carrying the known frames
  and one carrying their mask, concatenated to the noisy clip (so the model sees 7 channels
  and predicts 3).

Clips are pixels in [-1, 1], shaped (B, 3, T, H, W): at 32×32 no autoencoder is needed.
"""
from __future__ import annotations

import torch
from diffusers import LatteTransformer3DModel, ModelMixin, WanTransformer3DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from clipproof.generator.configs import GeneratorConfig

IN_CHANNELS = 3 + 3 + 1        # noisy clip, known frames, known mask
OUT_CHANNELS = 3


class VideoDiT(ModelMixin, ConfigMixin):
    """Predicts the diffusion target (v or ε) of a clip, given timestep, class and known frames."""

    @register_to_config
    def __init__(self, name: str = "latte-xs", backbone: str = "latte", layout: str = "factorized",
                 frames: int = 16, size: int = 32, patch: int = 4, temporal_patch: int = 1, heads: int = 4,
                 head_dim: int = 32, depth: int = 4, cond_dim: int = 64, context_frames: int = 8,
                 train_timesteps: int = 1000, prediction: str = "v_prediction",
                 class_names: list[str] | None = None):
        super().__init__()
        self.class_names = list(class_names or ["any"])
        self.null_class = len(self.class_names)
        self.class_embedding = nn.Embedding(len(self.class_names) + 1, cond_dim)
        if backbone == "latte":
            self.transformer = LatteTransformer3DModel(
                num_attention_heads=heads, attention_head_dim=head_dim, in_channels=IN_CHANNELS,
                out_channels=OUT_CHANNELS, num_layers=depth, cross_attention_dim=heads * head_dim,
                sample_size=size, patch_size=patch, norm_type="ada_norm_single", caption_channels=cond_dim,
                video_length=frames, activation_fn="gelu-approximate", num_embeds_ada_norm=train_timesteps)
        elif backbone == "wan":
            self.transformer = WanTransformer3DModel(
                patch_size=(temporal_patch, patch, patch), num_attention_heads=heads, attention_head_dim=head_dim,
                in_channels=IN_CHANNELS, out_channels=OUT_CHANNELS, text_dim=cond_dim, freq_dim=64,
                ffn_dim=4 * heads * head_dim, num_layers=depth, rope_max_seq_len=256)
        else:
            raise ValueError(f"unknown backbone {backbone!r}")

    @classmethod
    def from_generator_config(cls, config: GeneratorConfig, class_names: list[str]) -> "VideoDiT":
        return cls(**config.to_dict(), class_names=class_names)

    def class_index(self, name: str | None) -> int:
        if name is None:
            return self.null_class
        return self.class_names.index(name)

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, classes: torch.Tensor,
                known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """noisy, known: (B, 3, T, H, W); mask: (B, 1, T, H, W), 1 where frames are known;
        timestep: (B,); classes: (B,) class indices (``null_class`` for none)."""
        x = torch.cat([noisy, known * mask, mask], dim=1)
        states = self.class_embedding(classes)[:, None, :]
        if self.config.backbone == "latte":
            return self.transformer(x, timestep=timestep, encoder_hidden_states=states,
                                    enable_temporal_attentions=self.config.layout != "spatial",
                                    return_dict=False)[0]
        return self.transformer(x, timestep=timestep, encoder_hidden_states=states, return_dict=False)[0]
