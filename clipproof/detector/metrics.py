"""The figures the field reports for a real-vs-synthetic detector (scikit-learn underneath)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def ece(p: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of P(synthetic), equal-width bins."""
    p, y = np.asarray(p, float), np.asarray(y, float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (p > lo) & (p <= hi) if lo > 0 else (p >= lo) & (p <= hi)
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def eer(p: np.ndarray, y: np.ndarray) -> float:
    """Equal error rate: where the false-positive and false-negative rates cross."""
    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def summary(p: np.ndarray, y: np.ndarray, low: float, high: float, p_uncalibrated: np.ndarray | None = None) -> dict:
    """AUC, AP, accuracy at 0.5, TNR on real clips at ``high`` (and TPR), the shares of real clips
    above ``low`` and of synthetic clips at or below it (what "likely real" would let through), EER,
    ECE."""
    p, y = np.asarray(p, float), np.asarray(y, int)
    both = len(set(y.tolist())) == 2
    real, synth = p[y == 0], p[y == 1]
    out = {
        "clips": int(len(y)), "real": int((y == 0).sum()), "synthetic": int((y == 1).sum()),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "ap": float(average_precision_score(y, p)) if both else None,
        "accuracy": float(((p >= 0.5) == y).mean()),
        "tnr_at_high": float((real < high).mean()) if len(real) else None,
        "tpr_at_high": float((synth >= high).mean()) if len(synth) else None,
        "real_above_low": float((real > low).mean()) if len(real) else None,
        "synthetic_at_or_below_low": float((synth <= low).mean()) if len(synth) else None,
        "eer": eer(p, y) if both else None,
        "ece": ece(p, y),
    }
    if p_uncalibrated is not None:
        out["ece_uncalibrated"] = ece(p_uncalibrated, y)
    return out
