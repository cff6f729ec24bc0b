"""A torch Dataset over a corpus folder.

Each item is ``(frames, label, record)``: frames a float tensor (T, C, H, W) in [-1, 1], label
0 (real) or 1 (synthetic), and the ClipRecord. ``collate_clips`` batches them (records stay a
list). Augmentations are drawn from a generator seeded by (seed, epoch, index), so a run is
reproducible whatever the number of DataLoader workers.
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from clipproof.errors import UsageError
from clipproof.records import ClipRecord, read_manifest

LABELS = {"real": 0, "synthetic": 1}


@dataclass(frozen=True)
class Augment:
    """On-the-fly degradations, each applied with its probability."""

    crop: float = 0.0            # probability of a random crop (80-100 % of each side), resized back
    flip: float = 0.0            # probability of a horizontal flip
    reencode: float = 0.0        # probability of an H.264 re-encode at a CRF from crf_range
    crf_range: tuple[int, int] = (18, 35)
    downscale: float = 0.0       # probability of a downscale (to 50-90 %) and back up
    blur: float = 0.0            # probability of a Gaussian blur (sigma 0.3-1.0)
    # The frame-to-frame sensor noise every real camera adds, on both labels alike: the corpus'
    # panning stills have none, and weak fresh noise alone must not read as "generated".
    noise: float = 0.0           # probability of per-frame Gaussian noise (sigma 1-4 grey levels)


class ClipDataset(Dataset):
    """Clips of ``corpus`` (a folder with ``manifest.jsonl``), filtered by split, label, variant.

    ``size`` (W, H) resizes clips whose size differs (variants such as ``down0.5``).
    """

    def __init__(self, corpus: str | os.PathLike, split: str | Sequence[str] | None = None, *,
                 labels: Iterable[str] | None = None, variants: Iterable[str] | None = ("original",),
                 size: tuple[int, int] | None = None, augment: Augment | None = None, seed: int = 0):
        self.root, self.split = Path(corpus), split
        splits = {split} if isinstance(split, str) else set(split) if split is not None else None
        labels = set(labels) if labels is not None else None
        variants = set(variants) if variants is not None else None
        stored = read_manifest(self.root)
        missing = sorted(variants - {r.variant for r in stored}) if variants is not None else []
        if missing:
            # A misspelt or unbuilt variant would otherwise just leave its clips out.
            raise UsageError(f"the corpus has no {', '.join(missing)} clips "
                             f"(it has {', '.join(sorted({r.variant for r in stored}))})", path=self.root)
        self.records: list[ClipRecord] = [
            r for r in stored
            if (splits is None or r.split in splits) and (labels is None or r.label in labels)
            and (variants is None or r.variant in variants)]
        self.size, self.augment, self.seed, self.epoch = size, augment, seed, 0

    def with_variants(self) -> "ClipDataset":
        """The same split with every variant of its clips (re-encoded, downscaled, cropped…), as
        stored: harder to separate than the originals, which is what calibration needs."""
        return ClipDataset(self.root, self.split, variants=None, size=self.size, seed=self.seed)

    def without_augmentation(self) -> "ClipDataset":
        """The same clips as they are stored (for statistics of the training data itself)."""
        plain = copy.copy(self)
        plain.augment = None
        return plain

    def set_epoch(self, epoch: int) -> None:
        """New augmentation draws for a new epoch (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, ClipRecord]:
        from clipproof.media import read_frames

        record = self.records[index]
        frames, _ = read_frames(self.root / record.path)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            frames = _augment(frames, self.augment, rng)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if self.size is not None and (x.shape[-1], x.shape[-2]) != tuple(self.size):
            x = torch.nn.functional.interpolate(x, size=(self.size[1], self.size[0]), mode="bilinear",
                                                align_corners=False, antialias=True).clamp_(-1, 1)
        return x, LABELS[record.label], record


def collate_clips(batch):
    """Stack frames and labels; keep the records as a list."""
    frames, labels, records = zip(*batch)
    return torch.stack(frames), torch.tensor(labels), list(records)


def _augment(frames: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    t, h, w, _ = frames.shape
    if aug.noise and rng.random() < aug.noise:      # (no draw when off: older runs replay unchanged)
        sigma = rng.uniform(1.0, 4.0)
        frames = np.clip(frames + rng.normal(0.0, sigma, frames.shape), 0, 255).astype(np.uint8)
    if rng.random() < aug.crop:
        from PIL import Image
        cw, ch = int(w * rng.uniform(0.8, 1.0)), int(h * rng.uniform(0.8, 1.0))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        frames = np.stack([np.asarray(Image.fromarray(f[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.Resampling.BILINEAR))
                           for f in frames])
    if rng.random() < aug.downscale:
        from PIL import Image
        f = rng.uniform(0.5, 0.9)
        small = (max(2, round(w * f)), max(2, round(h * f)))
        frames = np.stack([np.asarray(Image.fromarray(x).resize(small, Image.Resampling.BILINEAR)
                                      .resize((w, h), Image.Resampling.BILINEAR)) for x in frames])
    if rng.random() < aug.blur:
        from PIL import Image, ImageFilter
        sigma = rng.uniform(0.3, 1.0)
        frames = np.stack([np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(sigma))) for x in frames])
    if rng.random() < aug.flip:
        frames = frames[:, :, ::-1]
    if rng.random() < aug.reencode:
        from clipproof.media import read_frames, write_mp4
        crf = int(rng.integers(aug.crf_range[0], aug.crf_range[1] + 1))
        with tempfile.TemporaryDirectory() as tmp:
            path = write_mp4(np.ascontiguousarray(frames), Path(tmp) / "aug.mp4", crf=crf, preset="veryfast",
                             reproducible=True)
            frames, _ = read_frames(path)
    return frames
