"""The one training lifecycle of both model families (the detector and the generator).

What every training run shares lives here; each family keeps only its loss and what it does
at the end of an epoch or checkpoint (validation and calibration, or saving a pipeline):

- ``start_run``: one process, or one rank of a ``torchrun`` job (DDP: gloo on CPU, NCCL on GPUs),
  with its device, seeding and a logger only rank 0 speaks through;
- ``rank_batches``: an epoch's sample order cut into global batches, each rank taking its share,
  so DDP averages gradients over exactly the batch one process would have used;
- ``Trainer``: the model on its device (wrapped in DDP when distributed), AdamW, gradient
  clipping, an optional EMA of the weights (timm's ``ModelEmaV3``), and checkpoints
  (``state.safetensors`` + ``state.json``: model, EMA and optimizer tensors keyed by parameter
  name, written atomically, refused on resume when the run's identity differs), and progress.

Torch only: this module sits at the bottom of the package with ``records`` and ``media``.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

from clipproof.atomic import atomic_output
from clipproof.errors import UsageError

STATE_TENSORS, STATE_JSON = "state.safetensors", "state.json"


# ---------------------------------------------------------------------------------------------
# Run set-up
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """Where this process stands in a training job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    log: Callable[[str], None] = print      # speaks on rank 0 only

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n`` (n is a multiple of the world size)."""
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a per-rank scalar over all ranks (every rank gets the same number)."""
        value = value.detach().float().reshape(())
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return float(value)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start_run(seed: int, log: Callable[[str], None] = print, *, batch_size: int | None = None) -> Run:
    """Set up this process: under ``torchrun`` (``WORLD_SIZE`` > 1) join the process group, take
    the GPU named by ``LOCAL_RANK`` (or the CPU), and seed torch alike on every rank (so every
    rank builds the same initial model; data and noise draws are keyed by global position).
    A ``batch_size`` the ranks cannot share is refused before joining: each rank says so at once,
    instead of after the group has formed and the model is built."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if batch_size is not None:
        _check_shared(batch_size, world_size)
    cuda = torch.cuda.is_available()
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if world_size > 1 else 0
    device = torch.device("cpu")
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    torch.manual_seed(seed)
    return Run(rank, world_size, device, log if rank == 0 else _silent)


def _silent(_: str) -> None:
    pass


def _check_shared(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise UsageError(f"--batch-size {batch_size} must be a multiple of the {world_size} processes")


def rank_batches(order: Sequence[int], batch_size: int, run: Run, *, drop_last: bool = True) -> list[list[int]]:
    """Cut ``order`` (the epoch's sample indices, the same on every rank) into global batches of
    ``batch_size``, and keep this rank's share of each. A last, short batch is kept only by a
    single process with ``drop_last`` off (ranks must share a batch evenly)."""
    _check_shared(batch_size, run.world_size)
    batches = [list(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    if batches and len(batches[-1]) < batch_size and (drop_last or run.distributed):
        batches.pop()
    return [b[run.share(len(b))] for b in batches]


# ---------------------------------------------------------------------------------------------
# Trainer: model, optimizer, EMA, checkpoints, progress
# ---------------------------------------------------------------------------------------------

@dataclass
class TrainState:
    """How far a run got; ``record`` holds what the family keeps (loss history, best epoch)."""

    step: int = 0              # optimizer steps taken
    epoch: int = 0             # passes over the data finished
    epoch_step: int = 0        # steps taken in the epoch under way
    seconds: float = 0.0
    record: dict = field(default_factory=dict)


class Trainer:
    """One model's training: ``step(loss)`` after each batch, ``save()`` at checkpoints.

    ``identity`` (JSON data: model name and arguments, config) is written with every checkpoint
    and must match on resume, so a folder never continues another model's run.
    """

    def __init__(self, model: nn.Module, out: str | os.PathLike, run: Run, *, lr: float, weight_decay: float,
                 grad_clip: float, ema_decay: float, identity: dict, progress: bool = True,
                 betas: tuple[float, float] = (0.9, 0.999)):
        self.out, self.run, self.identity, self.grad_clip = Path(out), run, identity, grad_clip
        model.to(run.device)
        if run.distributed and run.device.type == "cuda":
            # Batch statistics over the global batch, as one process would compute them (CPU
            # has no SyncBatchNorm: there each rank normalises its own share).
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        device_ids = [run.device.index] if run.device.type == "cuda" else None
        # What the training step calls: the model, wrapped in DDP when distributed.
        self.net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids) if run.distributed else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas)
        self.ema = None
        if ema_decay > 0:
            from timm.utils import ModelEmaV3
            self.ema = ModelEmaV3(model, decay=ema_decay, use_warmup=True)
        self.state = TrainState()
        self.show_progress = progress
        self._clock = time.time()

    @property
    def averaged(self) -> nn.Module:
        """The weights to validate and ship: the EMA when there is one, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def step(self, loss: torch.Tensor) -> float:
        """Backward, clip, optimizer step, EMA update; returns the loss averaged over ranks."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.state.step += 1
        self.state.epoch_step += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.state.step)
        return self.run.mean(loss)

    def end_epoch(self) -> None:
        self.state.epoch += 1
        self.state.epoch_step = 0

    # -- checkpoints ------------------------------------------------------------------------

    def save(self) -> None:
        """Write the checkpoint (rank 0; atomically, tensors first so ``state.json`` never
        points at tensors that are not there)."""
        now = time.time()
        self.state.seconds += now - self._clock
        self._clock = now
        if not self.run.is_main:
            return
        from safetensors.torch import save_file
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors |= {f"ema.{k}": v for k, v in self.ema.module.state_dict().items()}
        for name, p in self.model.named_parameters():
            for key, value in self.optimizer.state.get(p, {}).items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{name}.{key}"] = value
        with atomic_output(self.out / STATE_TENSORS) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        meta = {"identity": self.identity, "step": self.state.step, "epoch": self.state.epoch,
                "epoch_step": self.state.epoch_step, "seconds": self.state.seconds, "record": self.state.record}
        with atomic_output(self.out / STATE_JSON) as tmp:
            tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    def resume(self) -> bool:
        """Load the checkpoint in ``out`` if there is one; False when starting afresh."""
        if not (self.out / STATE_JSON).is_file():
            return False
        from safetensors.torch import load_file
        meta = json.loads((self.out / STATE_JSON).read_text(encoding="utf-8"))
        if meta.get("identity") != self.identity:
            raise UsageError("holds a run of another model, config or class list; train into a new folder",
                             path=self.out)
        tensors = load_file(str(self.out / STATE_TENSORS), device=str(self.run.device))
        self.model.load_state_dict(_prefixed(tensors, "model."))
        if self.ema is not None:
            self.ema.module.load_state_dict(_prefixed(tensors, "ema.") or self.model.state_dict())
        per_param: dict[str, dict] = defaultdict(dict)
        for key, value in _prefixed(tensors, "optimizer.").items():
            name, what = key.rsplit(".", 1)
            per_param[name][what] = value.cpu() if what == "step" else value
        for name, p in self.model.named_parameters():
            if name in per_param:
                self.optimizer.state[p] = per_param[name]
        self.state = TrainState(meta["step"], meta["epoch"], meta.get("epoch_step", 0), meta["seconds"],
                                meta.get("record", {}))
        return True

    # -- progress ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def progress(self, label: str, total: int, unit: str) -> Iterator[Callable[..., None]]:
        """A progress bar on rank 0 (``show(completed, status)``); a log line per update when
        the bar is off, so a log file still shows the run moving."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        shown = self.show_progress and self.run.is_main
        with Progress(TextColumn(label), BarColumn(), TextColumn(f"{{task.completed}}/{{task.total}} {unit}"),
                      TextColumn("{task.fields[status]}"), TimeRemainingColumn(), disable=not shown) as bar:
            task = bar.add_task(label, total=total, completed=0, status="")

            def show(completed: int, status: str = "") -> None:
                bar.update(task, completed=completed, status=status)
                if not shown and status:
                    self.run.log(f"{label}: {unit} {completed}/{total}: {status}")
            yield show


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
