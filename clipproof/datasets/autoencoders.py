"""Learned autoencoders as a source of synthetic clips: the traces a generator's decoder leaves.

Every current video generator (Sora-class, Wan, CogVideoX, HunyuanVideo, LTX, Open-Sora…) makes
its pixels by decoding latents through a learned autoencoder, so its output carries that
decoder's fingerprint whatever the content. An autoencoder of the same architecture, trained
here from random initialisation on real footage, turns real clips into "decoded" ones whose
content is real and whose pixels went through a learned decoder: hard synthetic examples that
teach a detector the trace, not the subject (DRCT, ICML 2024; AEROBLADE, CVPR 2024).

``autoencoder_specs.AUTOENCODERS`` maps a name to a constructor (diffusers' model classes at
small sizes, trained on crops: they are fully convolutional and apply to any frame size). ``train_autoencoder`` runs
through the shared training lifecycle and reports the reconstruction PSNR on held-back frames;
``reconstruct`` decodes a clip of any size through a trained one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from clipproof.atomic import atomic_output, output_folder
from clipproof.datasets.autoencoder_specs import (AUTOENCODER_DIR, AUTOENCODERS, INFO_FILE, AutoencoderSettings,
                                                  AutoencoderSpec)
from clipproof.datasets.discriminator import (PatchDiscriminator, adaptive_weight, frames_of, hinge_loss,
                                              last_decoder_layer)
from clipproof.errors import UsageError
from clipproof.training import Trainer, rank_batches, start_run

GRAD_CLIP = 1.0
KL_WEIGHT = 1e-6          # a light prior on the latents: reconstructions stay sharp
DISCRIMINATOR_DIR = "discriminator"
MIN_ADVERSARIAL_CROP = 32  # the patch discriminator halves a crop three times, then looks at 4x4 patches


def create_autoencoder(name: str) -> torch.nn.Module:
    if name not in AUTOENCODERS:
        raise UsageError(f"unknown autoencoder {name!r} (one of {', '.join(AUTOENCODERS)})")
    return AUTOENCODERS[name].make()


# ---------------------------------------------------------------------------------------------
# Data: random crops of real footage at its own resolution
# ---------------------------------------------------------------------------------------------

def load_footage(videos: list[Path], max_frames: int = 120, log: Callable[[str], None] = print,
                 read: Callable[[Path, int], np.ndarray] | None = None) -> dict[Path, np.ndarray]:
    """The first ``max_frames`` frames of each video, (T, H, W, 3) uint8 at its own resolution,
    read by ``read(video, max_frames)`` (default: PyAV, through ``clipproof.media``; a machine
    without PyAV passes its own). A video that cannot be read is left out with a note, as
    ``datasets build`` does (one corrupt file in a folder of footage stopped the whole run)."""
    from clipproof.errors import InputMissingError, InvalidMediaError
    footage = {}
    for video in videos:
        try:
            footage[Path(video)] = (read or _read_with_pyav)(Path(video), max_frames)
        except (InvalidMediaError, InputMissingError) as e:
            log(f"note: skipping {e}")
    if not footage:
        raise UsageError(f"none of the {len(videos)} videos given can be read")
    return footage


def _read_with_pyav(video: Path, max_frames: int) -> np.ndarray:
    from clipproof.media import probe, read_frames
    return read_frames(video, end_s=max_frames / (probe(video).fps or 25.0))[0]


class FootageCrops(Dataset):
    """Crops (T, 3, crop, crop) in [-1, 1] of real footage (from ``load_footage``) at its own
    resolution; item ``i`` is the same crop every time (its place drawn from ``seed`` and
    ``i``). ``part`` "train" takes each video's first 80 % of frames, "val" the rest: frames
    checked are never trained on."""

    def __init__(self, footage: list[np.ndarray], frames: int, crop: int, part: str = "train", length: int = 4096,
                 seed: int = 0):
        self.frames, self.crop, self.length, self.seed = frames, crop, length, seed + (0 if part == "train" else 7)
        self.clips = []
        for decoded in footage:
            cut = int(len(decoded) * 0.8)
            kept = decoded[:cut] if part == "train" else decoded[cut:]
            if len(kept) >= frames and min(kept.shape[1:3]) >= crop:
                self.clips.append(kept)
        if not self.clips:
            raise UsageError(f"no footage long and large enough for {frames} frames of {crop}x{crop}")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, i])
        clip = self.clips[int(rng.integers(len(self.clips)))]
        t = int(rng.integers(len(clip) - self.frames + 1))
        y = int(rng.integers(clip.shape[1] - self.crop + 1))
        x = int(rng.integers(clip.shape[2] - self.crop + 1))
        crop = clip[t:t + self.frames, y:y + self.crop, x:x + self.crop]
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def _forward(ae: torch.nn.Module, spec: AutoencoderSpec, clips: torch.Tensor,
             sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction (B, T, 3, H, W), KL of the posterior) of clips (B, T, 3, H, W); the latent
    is drawn from the posterior in training, its mode otherwise."""
    b, t = clips.shape[:2]
    x = clips.flatten(0, 1) if spec.temporal == 1 else clips.permute(0, 2, 1, 3, 4)
    posterior = ae.encode(x).latent_dist
    out = ae.decode(posterior.sample() if sample else posterior.mode()).sample
    out = out.unflatten(0, (b, t)) if spec.temporal == 1 else out.permute(0, 2, 1, 3, 4)
    return out, posterior.kl().mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [-1, 1], on the 8-bit scale."""
    mse = float(((a.clamp(-1, 1) - b) / 2).pow(2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def train_autoencoder(name: str, videos: list[Path], out: str | os.PathLike,
                      settings: AutoencoderSettings = AutoencoderSettings(), *, progress: bool = True,
                      log: Callable[[str], None] = print,
                      read: Callable[[Path, int], np.ndarray] | None = None) -> dict:
    """Train autoencoder ``name`` on crops of ``videos`` (read by ``read``, as ``load_footage``);
    save it (diffusers ``save_pretrained`` in ``out/autoencoder``) with ``autoencoder.json`` (its
    PSNR on held-back frames). With ``settings.adversarial`` > 0 a patch discriminator (its
    checkpoint in ``out/discriminator``) joins from step ``settings.adversarial_from``."""
    spec = AUTOENCODERS.get(name) or create_autoencoder(name)
    if (settings.frames - 1) % spec.temporal or settings.crop % spec.spatial:
        raise UsageError(f"{name} takes 1 + a multiple of {spec.temporal} frames and crops a multiple of "
                         f"{spec.spatial} pixels (got {settings.frames} frames of {settings.crop})")
    if settings.adversarial > 0 and settings.crop < MIN_ADVERSARIAL_CROP:
        raise UsageError(f"--adversarial needs crops of at least {MIN_ADVERSARIAL_CROP} pixels (the discriminator's "
                         f"patches), got {settings.crop}")
    footage = load_footage(videos, log=log, read=read)
    out = output_folder(out)
    run = start_run(settings.seed, log, batch_size=settings.batch_size)
    train_set = FootageCrops(list(footage.values()), settings.frames, settings.crop, "train", seed=settings.seed)
    val_set = FootageCrops(list(footage.values()), settings.frames, settings.crop, "val", seed=settings.seed)
    val = torch.stack([val_set[i] for i in range(16)])
    trainer = Trainer(create_autoencoder(name), out, run, lr=settings.lr, weight_decay=0.0, grad_clip=GRAD_CLIP,
                      ema_decay=0.0, identity=_identity(name, settings), progress=progress)
    critic = _critic(name, out, run, settings) if settings.adversarial > 0 else None
    trainers = (trainer,) if critic is None else (trainer, critic)     # checkpointed and resumed together
    for each in trainers:
        each.resume()
    last_layer = last_decoder_layer(trainer.model)
    order = list(range(trainer.state.step * settings.batch_size, settings.steps * settings.batch_size))
    loader = DataLoader(train_set, batch_sampler=rank_batches(order, settings.batch_size, run))
    trainer.model.train()
    with trainer.progress(f"autoencoder {name}", settings.steps, "steps") as show, _saved_on_interrupt(trainers):
        for clips in loader:
            clips = clips.to(run.device)
            recon, kl = _forward(trainer.net, spec, clips)
            rec = (recon - clips).abs().mean()
            loss = rec + KL_WEIGHT * kl
            adversarial = critic is not None and trainer.state.step >= settings.adversarial_from
            if adversarial:
                fooled = -critic.net(frames_of(recon)).mean()
                loss = loss + settings.adversarial * adaptive_weight(rec, fooled, last_layer) * fooled
            loss = trainer.step(loss)
            if adversarial:
                critic.step(hinge_loss(critic.net(frames_of(clips)), critic.net(frames_of(recon.detach()))))
            step = trainer.state.step
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                for each in trainers:
                    each.save()
                show(step, f"loss {loss:.4f}")
    trainer.model.eval()
    with torch.no_grad():
        recon, _ = _forward(trainer.model, spec, val.to(run.device), sample=False)
    info = {"autoencoder": name, "description": spec.description, "steps": trainer.state.step,
            "val_psnr_db": round(psnr(recon.cpu(), val), 2), "footage": [v.name for v in footage],
            "settings": asdict(settings), "seconds": round(trainer.state.seconds, 1)}
    if run.is_main:
        trainer.model.save_pretrained(str(out / AUTOENCODER_DIR))
        with atomic_output(out / INFO_FILE) as tmp:
            tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


@contextlib.contextmanager
def _saved_on_interrupt(trainers: tuple[Trainer, ...]) -> Iterator[None]:
    """Ctrl-C (or a job's time limit, sent as SIGINT) checkpoints the steps taken so far: the same
    command resumes from there instead of from the last scheduled checkpoint."""
    try:
        yield
    except KeyboardInterrupt:
        for trainer in trainers:
            trainer.save()
        raise


def _critic(name: str, out: Path, run, settings: AutoencoderSettings) -> Trainer:
    """The discriminator's own training (checkpointed in ``out/discriminator``; Adam's betas as
    GAN training uses them)."""
    (out / DISCRIMINATOR_DIR).mkdir(exist_ok=True)
    return Trainer(PatchDiscriminator(), out / DISCRIMINATOR_DIR, run, lr=settings.lr, weight_decay=0.0,
                   grad_clip=GRAD_CLIP, ema_decay=0.0, identity={"discriminator": "patch", **_identity(name, settings)},
                   progress=False, betas=(0.5, 0.9))


def _identity(name: str, settings: AutoencoderSettings) -> dict:
    """What a resumed run must share with the checkpoint (steps may grow; the rest may not)."""
    kept = asdict(settings)
    for free in ("steps", "checkpoint_every"):
        kept.pop(free)
    return {"autoencoder": name, **kept}


def load_autoencoder(folder: str | os.PathLike) -> tuple[torch.nn.Module, AutoencoderSpec]:
    folder = Path(folder)
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    spec = AUTOENCODERS[info["autoencoder"]]
    model = type(spec.make()).from_pretrained(str(folder / AUTOENCODER_DIR), low_cpu_mem_usage=False)
    return model.eval(), spec


@torch.no_grad()
def reconstruct(ae: torch.nn.Module, spec: AutoencoderSpec, frames: np.ndarray) -> np.ndarray:
    """``frames`` (T, H, W, 3) uint8 of any size, decoded through ``ae``: edge-padded up to the
    multiples the architecture needs, then cut back to (T, H, W, 3)."""
    t, h, w, _ = frames.shape
    pad_t = (-(t - 1)) % spec.temporal if spec.temporal > 1 else 0
    pad_h, pad_w = (-h) % spec.spatial, (-w) % spec.spatial
    padded = np.pad(frames, ((0, pad_t), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    clips = torch.from_numpy(padded).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)[None]
    recon, _ = _forward(ae, spec, clips, sample=False)
    out = recon[0, :t, :, :h, :w].clamp(-1, 1).add(1).mul(127.5).round().byte()
    return out.permute(0, 2, 3, 1).numpy()
