"""Training a detector: class-balanced batches, the degradations re-uploads cause (H.264
re-encode at a random CRF, downscale, crop, blur, flip) plus sensor noise on both labels,
optionally an exponential moving average of the weights (timm's ModelEmaV3, then validated and
saved in their place), early stopping on validation AUC, temperature scaling and thresholds
fitted on the validation split, safetensors checkpoints, resume, progress, and DDP under
``torchrun`` like the generator.

A weights folder holds ``model.safetensors`` (best validation AUC), ``config.json`` (model
name and arguments, clip shape, training settings and history) and ``calibration.json``;
``state.safetensors`` + ``state.json`` let an interrupted run resume.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from clipproof.atomic import atomic_output, output_folder
from clipproof.detector.calibration import Calibration, calibrate
from clipproof.detector.registry import create_model
from clipproof.errors import InputMissingError, UsageError, check_settings, loading_weights
from clipproof.version import __version__

MODEL_FILE, CONFIG_FILE, CALIBRATION_FILE = "model.safetensors", "config.json", "calibration.json"
STATE_FILE, STATE_JSON = "state.safetensors", "state.json"


@dataclass(frozen=True)
class DetectorSettings:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 3                # epochs without a better validation AUC before stopping
    # Per-step EMA decay of the weights (0: off). Off by default, on a measurement (frames-only
    # st-attention, before the difference input): leaving `extend` out of detector-16x32 (20
    # epochs, patience 5), EMA 0.99 smoothed the validation curve but stopped at a best AUC of
    # 0.93 and reached 0.89 on `extend`; without it, 1.00.
    ema: float = 0.0
    seed: int = 0
    workers: int = 0
    augment: dict = field(default_factory=lambda: {"crop": 0.3, "flip": 0.5, "reencode": 0.3,
                                                   "downscale": 0.2, "blur": 0.2, "noise": 0.3})

    def __post_init__(self):
        check_settings({
            "--epochs must be at least 1": self.epochs >= 1,
            "--batch-size must be at least 1": self.batch_size >= 1,
            "--lr must be above 0": self.lr > 0,
            "weight decay must not be negative": self.weight_decay >= 0,
            "--patience must be at least 1": self.patience >= 1,
            "--ema must be 0 (off) or a decay below 1, e.g. 0.99": 0 <= self.ema < 1,
            "--workers must not be negative": self.workers >= 0,
        })


def collate(batch):
    frames, labels, records = zip(*batch)
    return torch.stack(frames), torch.tensor(labels, dtype=torch.float32), list(records)


@torch.no_grad()
def predict_logits(model, dataset: Dataset, batch_size: int = 32, workers: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """Logits, labels and records of every clip of ``dataset``."""
    model.eval()
    logits, labels, records = [], [], []
    for frames, y, recs in DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate):
        logits.append(model(frames)["logits"].float().cpu())
        labels.append(y)
        records += recs
    return torch.cat(logits).numpy(), torch.cat(labels).numpy().astype(int), records


def train_detector(train_set: Dataset, val_set: Dataset, model_name: str, out: str | os.PathLike,
                   settings: DetectorSettings = DetectorSettings(), model_kwargs: dict | None = None, *,
                   progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Train, keep the best epoch by validation AUC, calibrate on validation; return the config."""
    from sklearn.metrics import roc_auc_score

    out = output_folder(out)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    labels = np.array([1 if r.label == "synthetic" else 0 for r in train_set.records])
    if len(set(labels.tolist())) < 2:
        raise UsageError("the training split needs both real and synthetic clips")
    val_labels = {r.label for r in val_set.records}
    if val_labels != {"real", "synthetic"}:
        raise UsageError("the validation split needs both real and synthetic clips (for early stopping and calibration)")
    frames, _, _ = train_set[0]
    kwargs = {"frames": int(frames.shape[0]), **(model_kwargs or {})}
    torch.manual_seed(settings.seed)
    model = create_model(model_name, **kwargs)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    ema = ModelEmaV3(model, decay=settings.ema, use_warmup=True) if settings.ema > 0 else None
    state = {"epoch": 0, "best_auc": -1.0, "best_epoch": -1, "history": []}
    if (out / STATE_JSON).is_file():
        state = _resume(out, model, opt, model_name, kwargs, ema)
        log(f"resuming after epoch {state['epoch']}")
    ddp = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs)
    with warnings.catch_warnings():     # replaying the schedule, not skipping an optimizer step
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(state["epoch"]):
            sched.step()

    # Class-balanced: each batch draws real and synthetic clips equally often.
    weights = np.where(labels == 1, 1.0 / labels.sum(), 1.0 / (len(labels) - labels.sum()))
    started = time.time()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn("detector {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                  disable=not progress or rank != 0) as bar:
        task = bar.add_task(model_name, total=settings.epochs, completed=state["epoch"], status="")
        while state["epoch"] < settings.epochs and state["epoch"] - state["best_epoch"] <= settings.patience:
            epoch = state["epoch"]
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            sampler = WeightedRandomSampler(torch.tensor(weights), num_samples=len(labels), replacement=True,
                                            generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch))
            if distributed:  # each rank takes its share of the balanced draw
                idx = list(sampler)[rank::dist.get_world_size()]
                sampler = idx
            model.train()
            losses = []
            for frames, y, _ in DataLoader(train_set, batch_size=settings.batch_size, sampler=sampler,
                                           num_workers=settings.workers, collate_fn=collate, drop_last=True):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(ddp(frames)["logits"], y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
                opt.step()
                if ema is not None:
                    state["step"] = state.get("step", 0) + 1
                    ema.update(model, step=state["step"])
                losses.append(loss.item())
            sched.step()
            judged = ema.module if ema is not None else model
            logits, y_val, _ = predict_logits(judged, val_set)
            auc = float(roc_auc_score(y_val, logits))
            val_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(
                torch.tensor(logits), torch.tensor(y_val, dtype=torch.float32)))
            state["epoch"] = epoch + 1
            state["history"].append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_auc": auc,
                                     "val_loss": val_loss})
            # Best by validation AUC; among equal AUCs (a saturated small split) the lower loss.
            if (auc, -val_loss) > (state["best_auc"], -state.get("best_loss", float("inf"))):
                state["best_auc"], state["best_epoch"], state["best_loss"] = auc, epoch + 1, val_loss
                if rank == 0:
                    _save_tensors(judged.state_dict(), out / MODEL_FILE)
            state["seconds"] = state.get("seconds", 0.0) + time.time() - started
            started = time.time()
            if rank == 0:
                _save_state(out, model, opt, state, model_name, kwargs, ema)
            bar.update(task, completed=state["epoch"], status=f"loss {np.mean(losses):.3f} val AUC {auc:.3f}")
            if not progress and rank == 0:
                log(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, val AUC {auc:.4f}")

    model.load_state_dict(load_file(str(out / MODEL_FILE)))
    logits, y_val, _ = predict_logits(model, val_set)
    calibration = calibrate(logits, y_val)
    config = {"model": model_name, "kwargs": kwargs, "frames": kwargs["frames"],
              "size": [int(train_set[0][0].shape[-1]), int(train_set[0][0].shape[-2])],
              "version": __version__, "settings": asdict(settings), "history": state["history"],
              "best_epoch": state["best_epoch"], "best_val_auc": state["best_auc"],
              "train_clips": len(labels), "val_clips": len(y_val), "seconds": state.get("seconds", 0.0)}
    if rank == 0:
        calibration.save(out / CALIBRATION_FILE)
        with atomic_output(out / CONFIG_FILE) as tmp:
            tmp.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return config


def load_weights(folder: str | os.PathLike):
    """(model in eval mode, config dict, Calibration) from a weights folder."""
    folder = Path(folder)
    for name in (MODEL_FILE, CONFIG_FILE, CALIBRATION_FILE):
        if not (folder / name).is_file():
            raise InputMissingError(f"{folder}: not detector weights (no {name})")
    with loading_weights(folder, "detector"):
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        model = create_model(config["model"], **config["kwargs"])
        model.load_state_dict(load_file(str(folder / MODEL_FILE)))
        calibration = Calibration.load(folder / CALIBRATION_FILE)
    model.eval()
    return model, config, calibration


def _save_tensors(tensors: dict, path: Path) -> None:
    with atomic_output(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))


def _save_state(out: Path, model, opt, state: dict, name: str, kwargs: dict, ema=None) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.module.state_dict().items()})
    for i, (p, s) in enumerate((p, opt.state[p]) for g in opt.param_groups for p in g["params"] if p in opt.state):
        for key in ("exp_avg", "exp_avg_sq"):
            tensors[f"adam.{key}.{i}"] = s[key]
    _save_tensors(tensors, out / STATE_FILE)
    step = next((float(s["step"]) for s in opt.state.values()), 0.0)
    with atomic_output(out / STATE_JSON) as tmp:
        tmp.write_text(json.dumps({**state, "model": name, "kwargs": kwargs, "adam_step": step}, indent=1))


def _resume(out: Path, model, opt, name: str, kwargs: dict, ema=None) -> dict:
    state = json.loads((out / STATE_JSON).read_text(encoding="utf-8"))
    if state.get("model") != name or state.get("kwargs") != kwargs:
        raise UsageError(f"{out}: holds a run of another model; train into a new folder")
    tensors = load_file(str(out / STATE_FILE))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        saved = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        ema.module.load_state_dict(saved or model.state_dict())
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        if f"adam.exp_avg.{i}" in tensors:
            opt.state[p] = {"step": torch.tensor(state["adam_step"]), "exp_avg": tensors[f"adam.exp_avg.{i}"],
                            "exp_avg_sq": tensors[f"adam.exp_avg_sq.{i}"]}
    return state
