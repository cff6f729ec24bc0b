"""The autoencoder architectures and training settings of ``datasets.autoencoders``, apart from
the code that trains them, so the command line lists them without importing torch."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

from clipproof.errors import check_settings


# What `clipproof datasets train-autoencoder` writes in its folder: the diffusers model, and a
# record of its architecture and PSNR.
AUTOENCODER_DIR, INFO_FILE = "autoencoder", "autoencoder.json"


@dataclass(frozen=True)
class AutoencoderSpec:
    """An architecture at a trainable size, with what its inputs must be multiples of."""

    name: str
    make: Callable[[], object]     # builds the (torch) model
    spatial: int           # height and width: multiples of this
    temporal: int          # frames: 1 + a multiple of this (1: any count, frame by frame)
    description: str


def _kl(widths: tuple[int, ...], latent: int, groups: int = 16):
    """A per-frame diffusers ``AutoencoderKL``: one block per width, each but the last halving the
    size (8x for four), one layer a block, ``latent`` channels."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(widths),
                         up_block_types=("UpDecoderBlock2D",) * len(widths), block_out_channels=widths,
                         layers_per_block=1, latent_channels=latent, norm_num_groups=groups)


def _ltx():
    from diffusers import AutoencoderKLLTXVideo
    return AutoencoderKLLTXVideo(block_out_channels=(32, 64, 128, 128), decoder_block_out_channels=(32, 64, 128, 128),
                                 layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
                                 latent_channels=128)


# The causal 3D VAEs of current open video generators, at base width 32 (~10 M parameters; their
# released ones are 8-12x wider): 8x spatial and 4x temporal compression into 16 latent channels,
# as released. A step at batch 2 x 9 frames x 32x32 takes 0.5-0.9 s on this machine's 2 cores.
def _wan():
    from diffusers import AutoencoderKLWan
    return AutoencoderKLWan(base_dim=32, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                            temperal_downsample=[False, True, True])   # lists: Wan concatenates them


def _cogvideox():
    from diffusers import AutoencoderKLCogVideoX
    return AutoencoderKLCogVideoX(block_out_channels=(32, 64, 128, 128), latent_channels=16, layers_per_block=1,
                                  norm_num_groups=16)


def _hunyuan_video():
    from diffusers import AutoencoderKLHunyuanVideo
    return AutoencoderKLHunyuanVideo(block_out_channels=(32, 64, 128, 128), latent_channels=16, layers_per_block=1,
                                     norm_num_groups=16)


AUTOENCODERS: dict[str, AutoencoderSpec] = {s.name: s for s in (
    AutoencoderSpec("kl-frame", partial(_kl, (32, 64, 128), 4), 4, 1,
                    "per-frame AutoencoderKL (the Stable Diffusion family's architecture) at 4x spatial "
                    "compression into 4 latent channels, 2.7 M parameters"),
    AutoencoderSpec("kl-sd", partial(_kl, (32, 64, 128, 128), 4), 8, 1,
                    "per-frame AutoencoderKL at Stable Diffusion 1.x/2.x's VAE shape (8x spatial compression into 4 "
                    "latent channels, as AnimateDiff, LaVie and VideoCrafter decode), 3.9 M parameters"),
    AutoencoderSpec("kl-f8", partial(_kl, (32, 64, 128, 128), 16), 8, 1,
                    "per-frame AutoencoderKL at the Stable Diffusion family's 8x spatial compression, with the "
                    "16 latent channels of SD3/Flux-class VAEs, 3.9 M parameters"),
    AutoencoderSpec("ltx", _ltx, 32, 8,
                    "AutoencoderKLLTXVideo (LTX-Video's causal video VAE), 13.3 M parameters, 32x spatial and "
                    "8x temporal compression into 128 latent channels, as LTX-Video's own (16 channels "
                    "reached 12.4 dB after 800 steps here: too little room)"),
    AutoencoderSpec("wan", _wan, 8, 4,
                    "AutoencoderKLWan (Wan 2.1's causal video VAE), 10.1 M parameters, 8x spatial and 4x temporal "
                    "compression into 16 latent channels"),
    # CogVideoX's decoder doubles an even count of latent frames (9 frames make 3 latents, 5 make 2 and
    # decode to 8): 1 + a multiple of 8 frames come back as many.
    AutoencoderSpec("cogvideox", _cogvideox, 8, 8,
                    "AutoencoderKLCogVideoX (CogVideoX's video VAE), 10.3 M parameters, 8x spatial and 4x temporal "
                    "compression into 16 latent channels; 1 + a multiple of 8 frames"),
    AutoencoderSpec("hunyuan-video", _hunyuan_video, 8, 4,
                    "AutoencoderKLHunyuanVideo (HunyuanVideo's causal video VAE), 11.4 M parameters, 8x spatial and "
                    "4x temporal compression into 16 latent channels"),
    AutoencoderSpec("tiny-kl", partial(_kl, (8, 16), 4, groups=8), 2, 1, "a per-frame AutoencoderKL small enough for tests"),
)}


@dataclass(frozen=True)
class AutoencoderSettings:
    steps: int = 2000
    batch_size: int = 4
    lr: float = 5e-4
    crop: int = 64
    frames: int = 9            # a multiple of the temporal compression, plus one
    checkpoint_every: int = 250
    seed: int = 0
    adversarial: float = 0.0       # weight of the patch discriminator's loss (0: the pixel loss alone)
    adversarial_from: int = 0      # the step it starts at: a decoder first learns to reconstruct at all

    def __post_init__(self):
        check_settings({"--lr must be above 0": self.lr > 0,
                        "--adversarial must be a finite number, 0 or more": 0 <= self.adversarial < math.inf,
                        # a start step with no discriminator would be ignored without a word
                        "--adversarial-from needs --adversarial (a weight above 0)":
                            self.adversarial > 0 or self.adversarial_from == 0})
