"""The standard evaluation: ``eval.json``, a Markdown table and PNG plots.

On the test split, clip level (a clip is one segment here): AUC, AP, accuracy, true-negative
rate on real clips at the stored ``high`` threshold, EER, ECE before and after calibration —
overall, per generator source, per robustness variant (re-encode CRF 23/28/35, 0.5× downscale,
80 % crop), and for real footage held out entirely (test sources are never seen in training).
Leave-one-generator-out runs live in ``loo.py``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import torch
from torch.utils.data import DataLoader, Dataset

from clipproof.atomic import atomic_output, output_folder
from clipproof.detector.metrics import summary
from clipproof.detector.weights import load_weights
from clipproof.errors import UsageError


def collate(batch):
    """Dataset items ``(frames, label, record)`` as (frames (B, T, C, H, W), labels (B,) float, records)."""
    frames, labels, records = zip(*batch)
    return torch.stack(frames), torch.tensor(labels, dtype=torch.float32), list(records)


@torch.no_grad()
def predict_logits(model, dataset: Dataset, batch_size: int = 32, workers: int = 0,
                   device: torch.device | str = "cpu", output: str = "logits") -> tuple[np.ndarray, np.ndarray, list]:
    """Logits (or another of the model's outputs, e.g. ``embedding``), labels and records of
    every clip of ``dataset``."""
    model.eval()
    values, labels, records = [], [], []
    for frames, y, recs in DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate):
        values.append(model(frames.to(device))[output].float().cpu())
        labels.append(y)
        records += recs
    return torch.cat(values).numpy(), torch.cat(labels).numpy().astype(int), records


def evaluate(weights: str | os.PathLike, corpus: str | os.PathLike, out: str | os.PathLike | None = None,
             split: str = "test") -> dict:
    from clipproof.datasets.dataset import ClipDataset

    model, config, cal = load_weights(weights)
    if out is not None:
        output_folder(out)          # before the work, so a bad --out costs nothing
    size = tuple(config["size"])
    data = ClipDataset(corpus, split, variants=None, size=size)
    if {r.label for r in data.records} != {"real", "synthetic"}:
        raise UsageError(f"the {split!r} split needs both real and synthetic clips to evaluate "
                         f"(it has {len(data)} clips)", path=corpus)
    logits, y, records = predict_logits(model, data)
    p = cal.probability(logits)
    p_raw = 1 / (1 + np.exp(-logits))
    variants = np.array([r.variant for r in records])
    sources = np.array([r.source for r in records])
    original = variants == "original"
    result = {"weights": str(weights), "corpus": str(corpus), "split": split,
              "thresholds": {"low": cal.low, "high": cal.high, "temperature": cal.temperature},
              "overall": summary(p[original], y[original], cal.low, cal.high, p_raw[original]),
              "per_generator": {}, "robustness": {}, "held_out_real": {}}
    real_orig = original & (y == 0)
    for source in sorted(set(sources[(y == 1) & original])):
        sel = real_orig | (original & (sources == source))
        result["per_generator"][source] = summary(p[sel], y[sel], cal.low, cal.high, p_raw[sel])
    for variant in sorted(set(variants) - {"original"}):
        sel = variants == variant
        result["robustness"][variant] = summary(p[sel], y[sel], cal.low, cal.high, p_raw[sel])
    real_p = p[real_orig]
    result["held_out_real"] = {"clips": int(real_orig.sum()), "sources": sorted(set(sources[real_orig])),
                               "false_positive_rate_at_high": float((real_p >= cal.high).mean()) if len(real_p) else None,
                               "false_positive_rate_at_0.5": float((real_p >= 0.5).mean()) if len(real_p) else None}
    if out is not None:
        write_report(result, Path(out), p[original], y[original], p_raw[original])
    return result


def table(result: dict) -> str:
    rows = [("overall", result["overall"])] + list(result["per_generator"].items()) + \
           [(f"variant {k}", v) for k, v in result["robustness"].items()]
    lines = ["| subset | clips (real/synth) | AUC | AP | acc | TNR@high | TPR@high | EER | ECE raw → cal |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in rows:
        lines.append(f"| {name} | {m['real']}/{m['synthetic']} | {metric(m['auc'])} | {metric(m['ap'])} | {metric(m['accuracy'])} | "
                     f"{metric(m['tnr_at_high'])} | {metric(m.get('tpr_at_high'))} | {metric(m['eer'])} | "
                     f"{metric(m.get('ece_uncalibrated'))} → {metric(m['ece'])} |")
    hr = result["held_out_real"]
    lines.append(f"\nHeld-out real footage ({hr['clips']} clips from {', '.join(hr['sources'])}): false-positive "
                 f"rate {metric(hr['false_positive_rate_at_high'])} at high = {result['thresholds']['high']:.3f}.")
    return "\n".join(lines)


def metric(x) -> str:
    """A figure for the tables: three decimals, or a dash where it is undefined."""
    return "–" if x is None else f"{x:.3f}"


def write_report(result: dict, out: Path, p: np.ndarray, y: np.ndarray, p_raw: np.ndarray) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "eval.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    with atomic_output(out / "eval.md") as tmp:
        tmp.write_text(table(result) + "\n", encoding="utf-8")
    plots(out, p, y, p_raw)


def plots(out: Path, p: np.ndarray, y: np.ndarray, p_raw: np.ndarray) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label="calibrated")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate (real called synthetic)")
    ax.set_ylabel("true-positive rate")
    ax.set_title("ROC, test split")
    fig.tight_layout()
    fig.savefig(out / "roc.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    edges = np.linspace(0, 1, 11)
    for probs, name in ((p_raw, "before calibration"), (p, "after")):
        centres, freq = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (probs >= lo) & (probs < hi) if hi < 1 else (probs >= lo)
            if sel.any():
                centres.append(probs[sel].mean())
                freq.append(y[sel].mean())
        ax.plot(centres, freq, "o-", label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("predicted P(synthetic)")
    ax.set_ylabel("observed fraction synthetic")
    ax.set_title("reliability, test split")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "reliability.png")
    plt.close(fig)
