"""Named generator configs, and the registry that builds a model from a name.

Each config fixes the clip it makes (frames, size), how it cuts the clip into spacetime
patches, the transformer's width, depth and heads, and its attention layout:

- ``full``: joint space-time attention over every patch of the clip (Wan's layout);
- ``factorized``: spatial blocks alternating with temporal blocks (Latte's layout);
- ``spatial``: frame-by-frame attention only (Latte with its temporal blocks off), the early
  approach whose clips flicker.

The three layouts are distinct generators for the detector's unseen-generator tests.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

from clipproof.errors import UsageError

Layout = Literal["full", "factorized", "spatial"]


@dataclass(frozen=True)
class GeneratorConfig:
    name: str
    backbone: Literal["wan", "latte"]
    layout: Layout
    frames: int = 16
    size: int = 32                 # square clips, pixels
    patch: int = 4                 # spatial patch side
    temporal_patch: int = 1        # frames per patch (Wan only)
    heads: int = 4
    head_dim: int = 32
    depth: int = 4                 # Latte: spatial+temporal pairs; Wan: blocks
    cond_dim: int = 64             # class embedding width, fed as encoder states
    context_frames: int = 8        # frames carried over by `extend`
    train_timesteps: int = 1000
    prediction: str = "v_prediction"

    @property
    def width(self) -> int:
        return self.heads * self.head_dim

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS: dict[str, GeneratorConfig] = {}


def register(config: GeneratorConfig) -> GeneratorConfig:
    CONFIGS[config.name] = config
    return config


register(GeneratorConfig("wan-xs", backbone="wan", layout="full", heads=4, head_dim=32, depth=4))
register(GeneratorConfig("latte-xs", backbone="latte", layout="factorized", heads=4, head_dim=32, depth=4))
register(GeneratorConfig("latte-xs-spatial", backbone="latte", layout="spatial", heads=4, head_dim=32, depth=4))
# For tests: seconds to train, same code path.
register(GeneratorConfig("tiny", backbone="latte", layout="factorized", frames=8, size=16, patch=4,
                         heads=2, head_dim=16, depth=1, cond_dim=16, context_frames=4))
register(GeneratorConfig("tiny-wan", backbone="wan", layout="full", frames=8, size=16, patch=4,
                         heads=2, head_dim=16, depth=1, cond_dim=16, context_frames=4))
register(GeneratorConfig("tiny-spatial", backbone="latte", layout="spatial", frames=8, size=16, patch=4,
                         heads=2, head_dim=16, depth=1, cond_dim=16, context_frames=4))

DEFAULT = "latte-xs"


def get_config(name: str, **overrides) -> GeneratorConfig:
    if name not in CONFIGS:
        raise UsageError(f"unknown generator config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return replace(CONFIGS[name], **overrides) if overrides else CONFIGS[name]
