"""Leave-one-generator-out: for each value of a record field that names a generator variant
(``generator``: the attention layout; ``mode``: t2v / i2v / extend; ``sampler``: from the
source name), train without the synthetic clips that have it, then test on all of them (every
split: none was trained on) against the held-out real clips. The detector never learns about the
left-out generator: only about labelled clips.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from clipproof.detector.metrics import summary
from clipproof.detector.evaluate import predict_logits
from clipproof.detector.settings import DetectorSettings
from clipproof.detector.train import train_detector
from clipproof.detector.weights import load_weights
from clipproof.errors import UsageError
from clipproof.records import ClipRecord

AXES = ("generator", "mode", "sampler")


def axis_value(record: ClipRecord, axis: str) -> str | None:
    if record.label != "synthetic":
        return None
    if axis == "sampler":
        # source is "generator:NAME@SHA+SAMPLER"; sampler names may hold "+" themselves (dpm++).
        return record.source.split("+", 1)[1] if "+" in record.source else None
    return getattr(record, axis)


def leave_one_out(corpus: str | os.PathLike, axis: str, model_name: str, out: str | os.PathLike,
                  settings: DetectorSettings, log: Callable[[str], None] = print,
                  only: list[str] | None = None) -> dict:
    """``only``: leave out just these values (each run is resumable on its own)."""
    from clipproof.datasets.dataset import Augment, ClipDataset

    out = Path(out)
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
        train = ClipDataset(corpus, "train", variants=settings.train_variants, augment=Augment(**settings.augment),
                            seed=settings.seed)
        train.records = [r for r in train.records if keep(r)]
        val = ClipDataset(corpus, "val", variants=settings.train_variants)
        val.records = [r for r in val.records if keep(r)]
        folder = out / f"{axis}-{value.replace('+', 'p')}"
        log(f"leave out {axis}={value}: {len(train.records)} training clips")
        train_detector(train, val, model_name, folder, settings, progress=False, log=log)
        model, config, cal = load_weights(folder)
        test = ClipDataset(corpus, None)
        test.records = [r for r in test.records
                        if (r.label == "real" and r.split == "test") or axis_value(r, axis) == value]
        logits, y, _ = predict_logits(model, test)
        p = cal.probability(logits)
        results[value] = summary(p, y, cal.low, cal.high, 1 / (1 + np.exp(-logits)))
    return results
