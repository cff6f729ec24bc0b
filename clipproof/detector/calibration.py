"""Calibration: temperature scaling fitted on the validation split, and the decision
thresholds stored beside the weights.

- ``high``: the lowest probability at which at least 99 % of real validation clips score below
  (true-negative rate ≥ 0.99): above it a clip is ``likely-synthetic``.
- ``low``: the probability below which at most 1 % of synthetic validation clips fall (so
  "likely real" misses few generated clips), capped at ``high``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from clipproof.atomic import atomic_output

TARGET_TNR = 0.99
TARGET_TPR = 0.99


@dataclass(frozen=True)
class Calibration:
    temperature: float
    low: float
    high: float
    val_clips: int
    # Whether a score at or below ``low`` may be reported as "likely real": turned off (with the
    # measurement that says why) when generated clips from unseen generators score that low.
    calls_real: bool = True
    calls_real_note: str = ""

    def probability(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: str | os.PathLike) -> None:
        with atomic_output(Path(path)) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the validation negative log-likelihood (LBFGS on log T)."""
    import torch
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), y)
        loss.backward()
        return loss
    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def calibrate(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    temperature = fit_temperature(logits, labels)
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64) / temperature))
    real, synthetic = p[labels == 0], p[labels == 1]
    high = float(np.quantile(real, TARGET_TNR, method="higher")) if len(real) else 0.5
    high = min(max(high, 0.5), 0.999)
    low = float(np.quantile(synthetic, 1 - TARGET_TPR, method="lower")) if len(synthetic) else 0.5
    low = max(min(low, high, 0.5), 0.001)
    return Calibration(temperature=temperature, low=low, high=high, val_clips=len(labels))
