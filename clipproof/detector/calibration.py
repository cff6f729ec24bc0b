"""Calibration: temperature scaling fitted on the validation split, and the decision
thresholds stored beside the weights. Everything is fitted on *segment* scores, as ``verify``
makes them (the mean logit of a segment's crops).

- ``high``: the lowest probability at which at least 99 % of real validation segments score
  below (true-negative rate ≥ 0.99): above it a clip is ``likely-synthetic``.
- ``low``: the probability below which at most 1 % of synthetic validation segments fall (so
  "likely real" misses few generated clips), capped at ``high``.
- ``real_mean``/``real_std``: a normal fit of real segments' logits. A clip is judged by its
  most synthetic segment, and the most synthetic of 24 real segments is far more synthetic than
  one: without a correction, every long real clip would cross ``high`` somewhere (measured: a
  40-second film reached 0.92). ``clip_probability`` turns the highest of N segment logits into
  the single-segment logit equally rare among real segments (Šidák: a real clip's highest of N
  independent segments exceeds a tail ``t`` with probability 1 − (1 − t)^N), so ``high`` keeps
  its meaning — 1 % of real clips above it — whatever the clip's length.
- ``calls_real``: whether a low score may be called "likely real". Only a measurement on
  generators the detector never saw can say so (``detector loo``, then ``detector calibrate
  --loo``): training alone leaves it off.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from pathlib import Path

import numpy as np

from clipproof.atomic import atomic_output

TARGET_TNR = 0.99
TARGET_TPR = 0.99
# Leave-one-generator-out: "likely real" is allowed when, on every left-out generator, at most
# this share of its generated clips scores at or below ``low``.
MAX_MISSED_UNSEEN = 0.05
UNMEASURED = ("its recall on generators it was not trained on is unmeasured "
              "(clipproof detector loo, then detector calibrate --loo)")


@dataclass(frozen=True)
class Calibration:
    temperature: float
    low: float
    high: float
    val_clips: int
    # Whether a score at or below ``low`` may be reported as "likely real", and the measurement
    # that says why (or why not).
    calls_real: bool = False
    calls_real_note: str = UNMEASURED
    # Normal fit of real validation segments' logits; None in weights calibrated before it
    # (their clip score is then the highest segment's, uncorrected).
    real_mean: float | None = None
    real_std: float | None = None

    def probability(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        return 1.0 / (1.0 + np.exp(-z))

    def clip_logit(self, segment_logits: np.ndarray) -> float:
        """The clip's logit from its segments': the highest, discounted for how many there are
        (the module docstring says why); one segment's is its own."""
        z = np.asarray(segment_logits, dtype=np.float64).ravel()
        top, n = float(z.max()), len(z)
        if n == 1 or self.real_mean is None or not self.real_std:
            return top
        # In tails, not cumulative probabilities: a clearly synthetic segment sits 10+ standard
        # deviations out, where 1 - cdf would round to 0.
        tail = max(0.5 * math.erfc((top - self.real_mean) / (self.real_std * math.sqrt(2))), 1e-300)
        clip_tail = -math.expm1(n * math.log1p(-tail)) if tail < 1.0 else 1.0
        return self.real_mean - self.real_std * NormalDist().inv_cdf(min(clip_tail, 1.0 - 1e-16))

    def clip_probability(self, segment_logits: np.ndarray) -> float:
        return float(self.probability(np.array([self.clip_logit(segment_logits)]))[0])

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
    """From validation segments' logits and labels (1: synthetic)."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    temperature = fit_temperature(logits, labels)
    p = 1.0 / (1.0 + np.exp(-logits / temperature))
    real, synthetic = p[labels == 0], p[labels == 1]
    high = float(np.quantile(real, TARGET_TNR, method="higher")) if len(real) else 0.5
    high = min(max(high, 0.5), 0.999)
    low = float(np.quantile(synthetic, 1 - TARGET_TPR, method="lower")) if len(synthetic) else 0.5
    low = max(min(low, high, 0.5), 0.001)
    real_logits = logits[labels == 0]
    spread = float(real_logits.std(ddof=1)) if len(real_logits) > 1 else 0.0
    return Calibration(temperature=temperature, low=low, high=high, val_clips=len(labels),
                       real_mean=float(real_logits.mean()) if len(real_logits) else None,
                       real_std=spread if spread > 0 else None)


def with_unseen_recall(calibration: Calibration, loo: dict) -> Calibration:
    """``calls_real`` from a leave-one-generator-out run (the JSON ``detector loo`` writes): on
    each left-out generator, the share of its generated clips that its model, trained without
    it, scored at or below ``low`` — generated clips "likely real" would have passed."""
    missed = {name: r.get("synthetic_at_or_below_low") for name, r in loo.get("results", {}).items()}
    if not missed or any(v is None for v in missed.values()):
        raise ValueError("a leave-one-out result without synthetic_at_or_below_low (run detector loo again)")
    listed = ", ".join(f"{name} {v:.0%}" for name, v in sorted(missed.items()))
    measured = (f"left out of training one at a time, {len(missed)} generator{'s' if len(missed) > 1 else ''} "
                f"had {listed} of their clips scored as low as real footage")
    ok = max(missed.values()) <= MAX_MISSED_UNSEEN
    note = measured + ("" if ok else f" (more than {MAX_MISSED_UNSEEN:.0%}: a low score is no evidence)")
    return replace(calibration, calls_real=ok, calls_real_note=note)
