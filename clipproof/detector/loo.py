"""Leave-one-generator-out: for each value of a record field that names a generator variant
(``generator``: the attention layout; ``mode``: t2v / i2v / extend; ``sampler``: from the
source name), train without the synthetic clips that have it, then test on all of them (every
split: none was trained on) against the held-out real clips, segment by segment as ``verify``
scores them. The detector never learns about the left-out generator: only about labelled clips.
What it measures — how many of an unseen generator's clips score as low as real footage — decides
whether a detector may call clips "likely real" (``detector calibrate --loo``).

One training run is one draw: two runs of the same recipe on the bundled corpus left AnimateDiff
out at segment AUC 0.85 and 0.33. ``runs`` trains each left-out model that many times (seeds
``settings.seed`` on), and the record gives their mean, the AUC's range, each run, and the
runs scored together as an ensemble (``ensemble``).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Callable

import numpy as np

from clipproof.atomic import atomic_output, output_folder
from clipproof.detector.metrics import summary
from clipproof.detector.evaluate import predict_logits
from clipproof.detector.settings import DetectorSettings
from clipproof.detector.train import corpus_input, segments_of, train_detector
from clipproof.detector.weights import load_weights, segment_crops
from clipproof.errors import UsageError
from clipproof.records import ClipRecord

AXES = ("generator", "mode", "sampler")
LOO_FILE = "loo.json"


def axis_value(record: ClipRecord, axis: str) -> str | None:
    if record.label != "synthetic":
        return None
    if axis == "sampler":
        # source is "generator:NAME@SHA+SAMPLER"; sampler names may hold "+" themselves (dpm++).
        return record.source.split("+", 1)[1] if "+" in record.source else None
    return getattr(record, axis)


def leave_one_out(corpus: str | os.PathLike, axis: str, model_name: str, out: str | os.PathLike,
                  settings: DetectorSettings, log: Callable[[str], None] = print,
                  only: list[str] | None = None, crops: int = 4, runs: int = 1) -> dict:
    """The run's record, also written to ``out/loo.json`` (``detector calibrate --loo`` reads
    it): ``results`` holds the figures of each left-out value. ``only``: leave out just these
    values (each run is resumable on its own); ``crops``: crops per segment, for a corpus of
    native-resolution crops (as ``detector train --crops``); ``runs``: trainings per left-out
    value, seeds ``settings.seed`` to ``settings.seed + runs - 1`` (``combined``)."""
    if runs < 1:
        raise UsageError(f"--runs must be at least 1, got {runs}")
    from clipproof.datasets.dataset import Augment, ClipDataset

    out = output_folder(out)       # before the work: a bad --out costs nothing
    clip_input = corpus_input(corpus, crops)
    crops = segment_crops(clip_input)
    base = ClipDataset(corpus, "train")
    values = sorted({v for r in base.records if (v := axis_value(r, axis)) is not None})
    if only:
        unknown = sorted(set(only) - set(values))
        if unknown:
            raise UsageError(f"no {axis} {', '.join(unknown)} in the corpus; it has {', '.join(values)}")
        values = [v for v in values if v in only]
    results = {}
    for value in values:
        def keep(r, value=value) -> bool:
            return axis_value(r, axis) != value
        val = ClipDataset(corpus, "val", variants=settings.train_variants)
        val.records = [r for r in val.records if keep(r)]
        test = ClipDataset(corpus, None)
        test.records = [r for r in test.records
                        if (r.label == "real" and r.split == "test") or axis_value(r, axis) == value]
        each, scores = [], []
        for seed in range(settings.seed, settings.seed + runs):
            # Only the training clips' order and augmentation follow the seed.
            train = ClipDataset(corpus, "train", variants=settings.train_variants, augment=Augment(**settings.augment),
                                seed=seed)
            train.records = [r for r in train.records if keep(r)]
            # The first run's folder keeps the name a single run has always had.
            folder = out / (f"{axis}-{value.replace('+', 'p')}" + (f"-seed{seed}" if seed != settings.seed else ""))
            log(f"leave out {axis}={value}: {len(train.records)} training clips"
                + (f" (seed {seed}, run {seed - settings.seed + 1} of {runs})" if runs > 1 else ""))
            train_detector(train, val, model_name, folder, replace(settings, seed=seed), clip_input=clip_input,
                           progress=False, log=log)
            model, config, cal = load_weights(folder)
            logits, y = segments_of(*predict_logits(model, test), crops)
            p = cal.probability(logits)
            each.append({"seed": seed, **summary(p, y, cal.low, cal.high, 1 / (1 + np.exp(-logits)))})
            scores.append(p)
        results[value] = combined(each)
        if runs > 1:
            results[value]["ensemble"] = ensemble(scores, y)
    record = {"axis": axis, "model": model_name, "epochs": settings.epochs, "patience": settings.patience,
              "train_variants": list(settings.train_variants), "crops": crops, "runs": runs, "results": results}
    with atomic_output(out / LOO_FILE) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def ensemble(scores: list[np.ndarray], y: np.ndarray) -> dict:
    """The runs as one detector — each segment scored by the mean of their calibrated
    probabilities — in the figures that need no threshold (the members' thresholds differ). What
    shipping the runs together would reach on the left-out value: averaging independent draws
    narrows the spread that makes one run's AUC a lottery."""
    mean = np.mean(scores, axis=0)
    figures = summary(mean, y, low=0.0, high=1.0)
    return {"members": len(scores), **{k: figures[k] for k in ("auc", "ap", "eer")}}


def combined(runs: list[dict]) -> dict:
    """One left-out value's figures from its runs (``summary`` each, with its ``seed``): one run's
    as they are; of several, the mean of each figure, the AUC's range, and the share of generated
    clips at or below ``low`` of the worst run, which ``detector calibrate --loo`` decides on."""
    if len(runs) == 1:
        return {k: v for k, v in runs[0].items() if k != "seed"}
    out: dict = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if key == "seed" or any(v is None for v in values):
            continue
        out[key] = first if isinstance(first, int) else float(np.mean(values))
    lows = [r["synthetic_at_or_below_low"] for r in runs]
    if None not in lows:
        out["synthetic_at_or_below_low"] = max(lows)
    aucs = [r["auc"] for r in runs if r["auc"] is not None]
    out["auc_range"] = [min(aucs), max(aucs)] if aucs else None
    out["runs"] = runs
    return out
