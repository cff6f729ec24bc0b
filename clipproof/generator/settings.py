"""Settings of the generator's training and sampling, apart from the code that uses them, so that
the command line can take its defaults from here without importing torch."""
from __future__ import annotations

from dataclasses import dataclass

from clipproof.errors import check_settings


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1000
    batch_size: int = 8                   # the global batch: shared by the processes of a DDP run
    lr: float = 3e-4
    warmup: int = 50
    ema_decay: float = 0.995
    class_dropout: float = 0.1            # classifier-free guidance: drop the class this often
    mode_probs: tuple[float, float, float] = (0.5, 0.25, 0.25)  # t2v, i2v, extend
    checkpoint_every: int = 250
    seed: int = 0
    workers: int = 0

    def __post_init__(self):
        check_settings({
            "--steps must be at least 1": self.steps >= 1,
            "--batch-size must be at least 1": self.batch_size >= 1,
            "--lr must be above 0": self.lr > 0,
            "warmup must not be negative": self.warmup >= 0,
            "EMA decay must be in [0, 1)": 0 <= self.ema_decay < 1,
            "class dropout must be in [0, 1]": 0 <= self.class_dropout <= 1,
            "mode probabilities must be 3 non-negative numbers, not all 0":
                len(self.mode_probs) == 3 and min(self.mode_probs) >= 0 and sum(self.mode_probs) > 0,
            "--checkpoint-every must be at least 1": self.checkpoint_every >= 1,
            "--workers must not be negative": self.workers >= 0,
        })


MODES = ("t2v", "i2v", "extend")
# Frame rate of generated clips (the bundled models learn from clips at the sources' rates).
DEFAULT_FPS = 12.0


@dataclass(frozen=True)
class GenerateOptions:
    n: int = 4
    mode: str = "t2v"
    cls: str | None = None
    image: str | None = None
    clip: str | None = None
    seconds: float | None = None
    sampler: str = "ddim"
    steps: int = 25
    guidance: float = 2.0
    seed: int = 0
    batch: int = 8
    crf: int = 18
    fps: float = DEFAULT_FPS
    watermark: bool = True          # every clip carries the watermark leading to its manifest, where its
                                    # pictures are large enough to (``watermark.pattern.too_small``)
    store: str | None = None        # the manifest store (default: the user's)
