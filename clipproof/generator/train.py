"""Training the generator through the shared lifecycle (``clipproof.training``): the diffusion
loss on clips from a torch Dataset, with classifier-free-guidance dropout and the known-frame
tasks of i2v and extend, an EMA of the weights, and this family's checkpoint: the EMA weights
saved as a diffusers pipeline.

Runs as it is on one process, and under ``torchrun`` (DDP) when ``WORLD_SIZE`` > 1: each rank
takes its share of every global batch, rank 0 writes checkpoints and logs.

A checkpoint folder holds ``pipeline/`` (the EMA weights as a diffusers pipeline: what
``generate`` loads), ``state.safetensors`` and ``state.json`` to resume from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from clipproof.atomic import output_folder
from clipproof.errors import UsageError
from clipproof.generator.configs import GeneratorConfig
from clipproof.generator.model import VideoDiT
from clipproof.generator.pipeline import ClipproofVideoPipeline, training_scheduler
from clipproof.generator.settings import TrainSettings
from clipproof.training import Run, Trainer, rank_batches, start_run

PIPELINE = "pipeline"
GRAD_CLIP = 1.0
LOSS_EVERY = 25          # steps per entry of the loss history


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)   # mean loss per LOSS_EVERY steps
    seconds: float = 0.0


def _collate(batch):
    frames, _, records = zip(*batch)
    return torch.stack(frames), list(records)


def train(dataset: Dataset, class_of: Callable[[object], str], config: GeneratorConfig, out: str | os.PathLike,
          settings: TrainSettings = TrainSettings(), *, progress: bool = True,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train ``config`` on ``dataset`` items ``(frames (T,C,H,W) in [-1,1], label, record)``;
    ``class_of(record)`` names each clip's class. Resumes from ``out`` when it holds a state."""
    out = output_folder(out)
    if len(dataset) == 0:
        raise UsageError("no training clips (is the corpus' train split empty?)")
    sample, _, _ = dataset[0]
    if tuple(sample.shape) != (config.frames, 3, config.size, config.size):
        raise UsageError(f"corpus clips are {tuple(sample.shape)} (T, C, H, W); config {config.name} needs "
                         f"({config.frames}, 3, {config.size}, {config.size})")
    class_names = sorted({class_of(r) for r in getattr(dataset, "records", [])}) or ["any"]
    run = start_run(settings.seed, log, batch_size=settings.batch_size)
    model = VideoDiT.from_generator_config(config, class_names)
    trainer = Trainer(model, out, run, lr=settings.lr, weight_decay=0.0, grad_clip=GRAD_CLIP,
                      ema_decay=settings.ema_decay, identity={"config": config.to_dict(), "class_names": class_names},
                      progress=progress)
    if trainer.resume():
        run.log(f"resuming from step {trainer.state.step}")
    losses = trainer.state.record.setdefault("losses", [])
    interval = trainer.state.record.setdefault("interval", [])
    sched = training_scheduler(config)
    # Small corpora (tests, a first try) may hold less than one batch: one process then trains on it.
    drop_last = len(dataset) >= settings.batch_size

    with trainer.progress(f"generator {config.name}", settings.steps, "steps") as show:
        show(trainer.state.step)
        while trainer.state.step < settings.steps:
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(
                settings.seed * 1000 + trainer.state.epoch)).tolist()
            batches = rank_batches(order, settings.batch_size, run, drop_last=drop_last)
            if not batches:
                raise UsageError(f"{len(dataset)} training clips cannot make a batch of {settings.batch_size} "
                                 f"shared by {run.world_size} processes")
            # A run resumed mid-epoch goes on with the batches it had not taken yet.
            loader = DataLoader(dataset, batch_sampler=batches[trainer.state.epoch_step:],
                                num_workers=settings.workers, collate_fn=_collate)
            for frames, records in loader:
                if trainer.state.step >= settings.steps:
                    break
                for g in trainer.optimizer.param_groups:
                    g["lr"] = settings.lr * min(1.0, (trainer.state.step + 1) / max(1, settings.warmup))
                draws = training_draws(config, settings, trainer.state.step, len(frames) * run.world_size, run)
                interval.append(trainer.step(_loss(trainer.net, model, sched, frames.to(run.device),
                                                   [class_of(r) for r in records], draws)))
                step = trainer.state.step
                status = ""
                if step % LOSS_EVERY == 0 or step == settings.steps:
                    losses.append(float(np.mean(interval)))
                    interval.clear()
                    status = f"loss {losses[-1]:.4f}"
                show(step, status)
                if step % settings.checkpoint_every == 0 or step == settings.steps:
                    _checkpoint(trainer, config)
            else:
                trainer.end_epoch()
    run.barrier()
    return TrainResult(steps=trainer.state.step, losses=list(losses), seconds=trainer.state.seconds)


def _checkpoint(trainer: Trainer, config: GeneratorConfig) -> None:
    """The EMA weights as a pipeline (what ``generate`` loads), then the training state."""
    if trainer.run.is_main:
        ema_model = VideoDiT.from_config(trainer.model.config)
        ema_model.load_state_dict(trainer.averaged.state_dict())
        ClipproofVideoPipeline(transformer=ema_model.cpu(), scheduler=training_scheduler(config)) \
            .save_pretrained(trainer.out / PIPELINE)
    trainer.save()


# ---------------------------------------------------------------------------------------------
# The loss
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Draws:
    """The random choices of one training step for this rank's rows of the global batch: drawn
    for the whole global batch from (seed, step) and sliced, so a DDP run makes exactly the
    draws one process would make."""

    noise: torch.Tensor        # (B, 3, T, H, W)
    timesteps: torch.Tensor    # (B,)
    modes: np.ndarray          # (B,) 0 t2v, 1 i2v, 2 extend
    drop_class: np.ndarray     # (B,) bool: classifier-free guidance drops the class


def training_draws(config: GeneratorConfig, settings: TrainSettings, step: int, global_size: int,
                   run: Run = Run()) -> Draws:
    g = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
    rng = np.random.default_rng([settings.seed, step])
    rows = run.share(global_size)
    noise = torch.randn(global_size, 3, config.frames, config.size, config.size, generator=g)[rows]
    timesteps = torch.randint(0, config.train_timesteps, (global_size,), generator=g)[rows]
    p = np.asarray(settings.mode_probs, dtype=float)
    modes = rng.choice(3, size=global_size, p=p / p.sum())[rows]
    drop = (rng.random(global_size) < settings.class_dropout)[rows]
    return Draws(noise.to(run.device), timesteps.to(run.device), modes, drop)


def _loss(net, model: VideoDiT, sched, x0: torch.Tensor, classes: list[str], draws: Draws) -> torch.Tensor:
    """v-prediction loss on the frames the model must make; known frames are given, not scored.

    Each clip's loss is its mean over the frames it must make, and the batch's the mean over clips,
    so the loss of a global batch is the mean of its shares' (as DDP averages gradients)."""
    x0 = x0.permute(0, 2, 1, 3, 4)                      # (B, T, C, H, W) -> (B, C, T, H, W)
    b, _, t, h, w = x0.shape
    noisy = sched.add_noise(x0, draws.noise, draws.timesteps)
    target = sched.get_velocity(x0, draws.noise, draws.timesteps) \
        if model.config.prediction == "v_prediction" else draws.noise
    mask = torch.zeros(b, 1, t, h, w, device=x0.device)
    for i, mode in enumerate(draws.modes):
        if mode == 1:
            mask[i, :, :1] = 1                             # i2v: the first frame is known
        elif mode == 2:
            mask[i, :, :model.config.context_frames] = 1   # extend: the first k frames are known
    ids = [model.null_class if drop else model.class_index(c) for c, drop in zip(classes, draws.drop_class)]
    pred = net(noisy, draws.timesteps, torch.tensor(ids, device=x0.device), x0, mask)
    weight = (1 - mask).expand_as(pred)
    per_clip = ((pred - target) ** 2 * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp(min=1)
    return per_clip.mean()
