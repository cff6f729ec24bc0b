"""The adversarial half of an autoencoder's training: a patch discriminator and its losses.

A decoder trained on a pixel loss alone learns the mean of what a latent could have been: soft
edges and missing texture, nothing like the output of a released generator. Stable Diffusion's
VAE and the video VAEs after it (Wan, CogVideoX, HunyuanVideo, LTX) add a patch discriminator
(pix2pix's PatchGAN, as taming-transformers uses it) that pushes the decoder towards sharp,
plausible texture; the traces that decoder leaves are the ones a detector has to learn. Losses
as there: hinge for the discriminator, and the decoder's adversarial term scaled so that its
gradient at the last decoder layer is as large as the reconstruction's (the "adaptive weight").
"""
from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """Real/fake logits per patch (about 70x70 pixels each) of frames (N, 3, H, W) in [-1, 1]."""

    def __init__(self, width: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        channels = width
        for n in range(1, layers + 1):
            out = width * min(2 ** n, 8)
            blocks += [nn.Conv2d(channels, out, 4, 2 if n < layers else 1, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, True)]
            channels = out
        blocks.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)


def frames_of(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) clips as (B*T, 3, H, W) frames: the discriminator judges frame by frame."""
    return clips.flatten(0, 1)


def hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean()


def last_decoder_layer(autoencoder: nn.Module) -> torch.Tensor:
    """The weight of the decoder's output convolution (the last convolution it registers): where
    the adaptive weight compares the two losses' gradients."""
    weights = [p for p in autoencoder.decoder.parameters() if p.ndim >= 4]
    return weights[-1]


def adaptive_weight(reconstruction: torch.Tensor, adversarial: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    """How much the adversarial loss is scaled so its gradient at ``layer`` matches the
    reconstruction loss's (taming-transformers' VQGAN loss), as a constant."""
    rec_grad = torch.autograd.grad(reconstruction, layer, retain_graph=True)[0]
    adv_grad = torch.autograd.grad(adversarial, layer, retain_graph=True)[0]
    return (rec_grad.norm() / (adv_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()
