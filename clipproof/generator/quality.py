"""Honest, offline quality figures for a generator (they go in its model card).

- Two-sample classifier test: a small fixed 3D-conv classifier learns to tell clips of one set
  from held-out real clips; its accuracy on clips it did not train on is the figure
  (0.5: indistinguishable; 1.0: trivially told apart). It is measured the same way for two
  reference points: blurred real clips, and real clips with their frames shuffled.
- Temporal statistics: mean absolute frame-to-frame difference, and its spread over time
  (flicker), against real clips.
- i2v: PSNR of the first frame against the given still (before and after H.264 encoding).
- extend: frame difference across window seams, against the difference inside windows.

Every clip here is uint8 (N, T, H, W, 3).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


def _classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(3, 16, 3, stride=(1, 2, 2), padding=1), nn.ReLU(),
        nn.Conv3d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv3d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(32, 1))


def _tensor(clips: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(clips)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


def two_sample_accuracy(real: np.ndarray, other: np.ndarray, seed: int = 0, epochs: int = 60) -> float:
    """Held-out accuracy telling ``other`` from ``real``: two folds, each half trains and the
    other half tests, the two accuracies averaged. Sets are cut to the same size."""
    n = min(len(real), len(other))
    rng = np.random.default_rng(seed)
    real, other = real[rng.permutation(len(real))[:n]], other[rng.permutation(len(other))[:n]]
    half = n // 2
    accs = []
    for fold in range(2):
        test = slice(0, half) if fold == 0 else slice(half, n)
        train = slice(half, n) if fold == 0 else slice(0, half)
        xtr = _tensor(np.concatenate([real[train], other[train]]))
        ytr = torch.cat([torch.zeros(len(real[train])), torch.ones(len(other[train]))])
        xte = _tensor(np.concatenate([real[test], other[test]]))
        yte = torch.cat([torch.zeros(len(real[test])), torch.ones(len(other[test]))])
        torch.manual_seed(seed + fold)
        model = _classifier()
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        for _ in range(epochs):
            for idx in torch.randperm(len(xtr)).split(16):
                loss = nn.functional.binary_cross_entropy_with_logits(model(xtr[idx]).squeeze(1), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            accs.append(((model(xte).squeeze(1) > 0).float() == yte).float().mean().item())
    return float(np.mean(accs))


def blurred(clips: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    from PIL import Image, ImageFilter
    return np.stack([[np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(sigma))) for f in clip]
                     for clip in clips])


def shuffled(clips: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([clip[rng.permutation(len(clip))] for clip in clips])


@dataclass(frozen=True)
class TemporalStats:
    frame_diff: float      # mean |x[t+1] - x[t]| over pixels, steps and clips (0-255 scale)
    flicker: float         # mean over clips of the std over time of the per-step difference

    def to_dict(self) -> dict:
        return asdict(self)


def temporal_stats(clips: np.ndarray) -> TemporalStats:
    diffs = np.abs(np.diff(clips.astype(np.float32), axis=1)).mean(axis=(2, 3, 4))   # (N, T-1)
    return TemporalStats(frame_diff=float(diffs.mean()), flicker=float(diffs.std(axis=1).mean()))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def seam_ratio(clips: np.ndarray, window: int, context: int) -> tuple[float, float]:
    """Mean frame difference across seams (first new frame after each window's context) and
    inside windows, for clips made by ``extend`` from a first window of ``window`` frames."""
    step = window - context
    seams, inside = [], []
    for clip in clips.astype(np.float32):
        d = np.abs(np.diff(clip, axis=0)).mean(axis=(1, 2, 3))       # d[i] = |x[i+1] - x[i]|
        seam_idx = set(range(window - 1, len(clip) - 1, step))
        seams += [d[i] for i in seam_idx]
        inside += [d[i] for i in range(len(d)) if i not in seam_idx]
    return float(np.mean(seams)), float(np.mean(inside))
