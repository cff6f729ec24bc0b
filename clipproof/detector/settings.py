"""Training settings of the detector, apart from the training code so that the command line can
take its defaults from here without importing torch."""
from __future__ import annotations

from dataclasses import dataclass, field

from clipproof.errors import check_settings


@dataclass(frozen=True)
class DetectorSettings:
    epochs: int = 10
    batch_size: int = 16             # the global batch: shared by the processes of a DDP run
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
    # The corpus variants trained on besides the originals. A corpus holding generator samples
    # as they were published (GIFs) must train on its GIF variants of both labels, or the
    # palette alone tells the labels apart.
    train_variants: tuple[str, ...] = ("original",)

    def __post_init__(self):
        check_settings({
            "--epochs must be at least 1": self.epochs >= 1,
            "--batch-size must be at least 1": self.batch_size >= 1,
            "--lr must be above 0": self.lr > 0,
            "weight decay must not be negative": self.weight_decay >= 0,
            "--patience must be at least 1": self.patience >= 1,
            "--ema must be 0 (off) or a decay below 1, e.g. 0.99": 0 <= self.ema < 1,
            "--workers must not be negative": self.workers >= 0,
            "--train-variants must name at least one variant": len(self.train_variants) >= 1,
        })
