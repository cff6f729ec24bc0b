"""Training: diffusion loss on clips from a torch Dataset, EMA weights, safetensors checkpoints,
resume, classifier-free-guidance dropout, and the known-frame tasks of i2v and extend.

Runs as it is on one process, and under ``torchrun`` (DDP; gloo on CPU, NCCL on GPUs) when
``WORLD_SIZE`` > 1: each rank sees its shard of the data, rank 0 writes checkpoints and logs.

A checkpoint folder holds ``pipeline/`` (the EMA weights as a diffusers pipeline: what
``generate`` loads), ``state.safetensors`` (model, EMA and optimizer tensors) and
``state.json`` (step, loss history, settings) to resume from.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from clipproof.atomic import atomic_output, output_folder
from clipproof.errors import UsageError, check_settings
from clipproof.generator.configs import GeneratorConfig
from clipproof.generator.model import VideoDiT
from clipproof.generator.pipeline import ClipproofVideoPipeline, training_scheduler

STATE = "state.safetensors"
STATE_JSON = "state.json"
PIPELINE = "pipeline"


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    warmup: int = 50
    ema_decay: float = 0.995
    class_dropout: float = 0.1            # classifier-free guidance: drop the class this often
    mode_probs: tuple[float, float, float] = (0.5, 0.25, 0.25)  # t2v, i2v, extend
    checkpoint_every: int = 250
    seed: int = 0
    workers: int = 0

    def __post_init__(self):
        check_settings({
            "--steps must be at least 1": self.steps >= 1,
            "--batch-size must be at least 1": self.batch_size >= 1,
            "--lr must be above 0": self.lr > 0,
            "warmup must not be negative": self.warmup >= 0,
            "EMA decay must be in [0, 1)": 0 <= self.ema_decay < 1,
            "class dropout must be in [0, 1]": 0 <= self.class_dropout <= 1,
            "mode probabilities must be 3 non-negative numbers, not all 0":
                len(self.mode_probs) == 3 and min(self.mode_probs) >= 0 and sum(self.mode_probs) > 0,
            "--checkpoint-every must be at least 1": self.checkpoint_every >= 1,
            "--workers must not be negative": self.workers >= 0,
        })


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)   # mean loss per logging interval
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
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(settings.seed + rank)

    if len(dataset) == 0:
        raise UsageError("no training clips (is the corpus' train split empty?)")
    sample, _, _ = dataset[0]
    if tuple(sample.shape) != (config.frames, 3, config.size, config.size):
        raise UsageError(f"corpus clips are {tuple(sample.shape)} (T, C, H, W); config {config.name} needs "
                         f"({config.frames}, 3, {config.size}, {config.size})")
    class_names = sorted({class_of(r) for r in getattr(dataset, "records", [])}) or ["any"]

    model = VideoDiT.from_generator_config(config, class_names).to(device)
    ema = EMAModel(model.parameters(), decay=settings.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    sched = training_scheduler(config)
    result = TrainResult(steps=0)
    if (out / STATE).is_file():
        result = _load_state(out, model, ema, opt, config, class_names)
        log(f"resuming from step {result.steps}")
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    sampler = torch.utils.data.DistributedSampler(dataset, seed=settings.seed) if distributed else None
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=len(dataset) >= settings.batch_size, num_workers=settings.workers,
                        collate_fn=_collate, generator=torch.Generator().manual_seed(settings.seed + result.steps),
                        persistent_workers=settings.workers > 0)
    rng = np.random.default_rng([settings.seed, rank, result.steps])
    started, interval = time.time(), []
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn("training {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                  disable=not progress or rank != 0) as bar:
        task = bar.add_task(config.name, total=settings.steps, completed=result.steps, loss="-")
        epoch = 0
        while result.steps < settings.steps:
            if sampler is not None:
                sampler.set_epoch(epoch)
            for frames, records in loader:
                if result.steps >= settings.steps:
                    break
                lr = settings.lr * min(1.0, (result.steps + 1) / max(1, settings.warmup))
                for g in opt.param_groups:
                    g["lr"] = lr
                loss = _loss(ddp_model, model, sched, frames.to(device), [class_of(r) for r in records],
                             config, settings, rng)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                ema.step(model.parameters())
                result.steps += 1
                interval.append(loss.item())
                if result.steps % 25 == 0 or result.steps == settings.steps:
                    result.losses.append(float(np.mean(interval)))
                    interval = []
                    bar.update(task, loss=f"{result.losses[-1]:.4f}")
                bar.update(task, completed=result.steps)
                if rank == 0 and (result.steps % settings.checkpoint_every == 0 or result.steps == settings.steps):
                    result.seconds += time.time() - started
                    started = time.time()
                    save_checkpoint(out, model, ema, opt, config, settings, result)
            epoch += 1
    if distributed:
        dist.barrier()
    return result


def _loss(ddp_model, model: VideoDiT, sched, x0: torch.Tensor, classes: list[str], config: GeneratorConfig,
          settings: TrainSettings, rng: np.random.Generator) -> torch.Tensor:
    """v-prediction loss on the frames the model must make; known frames are given, not scored."""
    x0 = x0.permute(0, 2, 1, 3, 4)                      # (B, T, C, H, W) -> (B, C, T, H, W)
    b, _, t, h, w = x0.shape
    noise = torch.randn_like(x0)
    steps = torch.randint(0, sched.config.num_train_timesteps, (b,), device=x0.device)
    noisy = sched.add_noise(x0, noise, steps)
    target = sched.get_velocity(x0, noise, steps) if config.prediction == "v_prediction" else noise
    mask = torch.zeros(b, 1, t, h, w, device=x0.device)
    modes = rng.choice(3, size=b, p=settings.mode_probs)
    for i, mode in enumerate(modes):
        if mode == 1:
            mask[i, :, :1] = 1                             # i2v: the first frame is known
        elif mode == 2:
            mask[i, :, :config.context_frames] = 1         # extend: the first k frames are known
    ids = [model.null_class if rng.random() < settings.class_dropout else model.class_index(c) for c in classes]
    pred = ddp_model(noisy, steps, torch.tensor(ids, device=x0.device), x0, mask)
    weight = (1 - mask).expand_as(pred)
    return ((pred - target) ** 2 * weight).sum() / weight.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

def save_checkpoint(out: Path, model: VideoDiT, ema: EMAModel, opt: torch.optim.Optimizer,
                    config: GeneratorConfig, settings: TrainSettings, result: TrainResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ema_model = VideoDiT.from_config(model.config)
    ema.copy_to(ema_model.parameters())
    pipe = ClipproofVideoPipeline(transformer=ema_model, scheduler=training_scheduler(config))
    pipe.save_pretrained(out / PIPELINE)
    names = [n for n, _ in model.named_parameters()]
    tensors = {f"model.{n}": p.detach().cpu().contiguous() for n, p in model.named_parameters()}
    tensors |= {f"ema.{n}": p.detach().cpu().contiguous() for n, p in zip(names, ema.shadow_params)}
    for n, p in model.named_parameters():
        state = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                tensors[f"adam.{key}.{n}"] = state[key].detach().cpu().contiguous()
    with atomic_output(out / STATE) as tmp:
        save_file(tensors, str(tmp))
    meta = {"step": result.steps, "losses": result.losses, "seconds": result.seconds,
            "adam_step": int(next(iter(opt.state.values()), {}).get("step", torch.tensor(0)).item()) if opt.state else 0,
            "config": config.to_dict(), "settings": asdict(settings), "class_names": model.class_names,
            "ema_optimization_step": ema.optimization_step}
    with atomic_output(out / STATE_JSON) as tmp:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _load_state(out: Path, model: VideoDiT, ema: EMAModel, opt: torch.optim.Optimizer, config: GeneratorConfig,
                class_names: list[str]) -> TrainResult:
    meta = json.loads((out / STATE_JSON).read_text(encoding="utf-8"))
    if meta["config"] != config.to_dict() or meta["class_names"] != class_names:
        raise UsageError(f"{out}: holds a checkpoint of another config or class list; train into a new folder")
    tensors = load_file(str(out / STATE))
    named = dict(model.named_parameters())
    with torch.no_grad():
        for n, p in named.items():
            p.copy_(tensors[f"model.{n}"])
        for n, shadow in zip(named, ema.shadow_params):
            shadow.copy_(tensors[f"ema.{n}"])
    ema.optimization_step = meta.get("ema_optimization_step", 0)
    for n, p in named.items():
        if f"adam.exp_avg.{n}" in tensors:
            opt.state[p] = {"step": torch.tensor(float(meta["adam_step"])),
                            "exp_avg": tensors[f"adam.exp_avg.{n}"].to(p.device),
                            "exp_avg_sq": tensors[f"adam.exp_avg_sq.{n}"].to(p.device)}
    return TrainResult(steps=meta["step"], losses=list(meta["losses"]), seconds=meta["seconds"])
