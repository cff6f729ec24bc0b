"""Corpus recipes: which sources, what clips, which variants, how to split, which seed.

A recipe is a TOML file (shipped ones live in ``clipproof/datasets/recipes/``)::

    seed = 5
    [clip]                      # ClipSpec: frames, width, height, fps | stride, windows, crf, native
    frames = 16
    width = 64
    height = 64
    windows = 3
    [splits]                    # fractions of source groups, per stratum
    train = 0.7
    val = 0.15
    test = 0.15
    [[real]]                    # kind = "samples" | "folder" | "stills"
    kind = "samples"            # path: the sample cache (default: the user cache folder)
    [[real]]
    kind = "stills"             # names = [...] picks photographs (default: all)
    [variants]                  # made of every clip, real and synthetic alike
    reencode_crf = [23, 28, 35]
    downscale = [0.5]
    center_crop = [0.8]
    gif_palette = [256]         # a GIF round trip: adaptive palette, dithered
    gif_ordered = [64]          # ... with ordered (Bayer) dithering, as some encoders do
    upscale = [2.0]             # a player's upscale
    [[synthetic]]               # clips from a generator (see clipproof.datasets.synthetic)
    generator = "latte-xs"
    count = 60
    modes = ["t2v", "i2v", "extend"]
    [[reconstructed]]           # every real clip through a trained autoencoder (datasets.reconstructed)
    autoencoder = "ae-ltx"      # a folder from `clipproof datasets train-autoencoder`
    [[labelled]]                # a folder of labelled clips (synthetic/, real/, rendered/ or a
    path = "wild-dev"           # manifest.tsv): generator outputs and footage from elsewhere

Relative paths are taken from the recipe file's folder.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipproof.datasets.clips import ClipSpec
from clipproof.datasets.reconstructed import ReconstructedSource
from clipproof.datasets.variants import Variant, variants_from
from clipproof.errors import InputMissingError, UsageError

RECIPES = Path(__file__).parent / "recipes"
REAL_KINDS = ("samples", "folder", "stills")


@dataclass(frozen=True)
class RealSource:
    kind: str                       # samples | folder | stills
    path: str | None = None         # folder, or sample cache
    names: tuple[str, ...] | None = None  # stills to use (default all)


@dataclass(frozen=True)
class SyntheticSource:
    """A generator as a source of synthetic clips (filled in by ``clipproof.generator``)."""

    generator: str                  # a registered config name, e.g. "latte-xs"
    weights: str = "bundled"        # "bundled" or a checkpoint folder
    sampler: str = "ddim"
    steps: int = 25
    modes: tuple[str, ...] = ("t2v",)
    count: int = 16
    guidance: float = 2.0


@dataclass(frozen=True)
class LabelledSource:
    """A folder of labelled clips (``datasets.labelled``), each clip cut as footage is."""

    path: str


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    clip: ClipSpec = field(default_factory=ClipSpec)
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    real: tuple[RealSource, ...] = ()
    synthetic: tuple[SyntheticSource, ...] = ()
    variants: tuple[Variant, ...] = ()
    reconstructed: tuple[ReconstructedSource, ...] = ()
    labelled: tuple[LabelledSource, ...] = ()

    def __post_init__(self):
        if set(self.splits) != {"train", "val", "test"} or any(v < 0 for v in self.splits.values()):
            raise UsageError("splits must give train, val and test fractions (non-negative)")
        if abs(sum(self.splits.values()) - 1) > 1e-6:
            raise UsageError(f"split fractions must sum to 1, got {sum(self.splits.values()):g}")
        if not self.real and not self.synthetic and not self.labelled:
            raise UsageError("a recipe needs at least one real, synthetic or labelled source")
        if self.reconstructed and not (self.real or self.labelled):
            raise UsageError("a reconstructed source needs real footage ([[real]] or [[labelled]] sources: their "
                             "clips are what it reconstructs)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_recipe(path_or_name: str | os.PathLike) -> Recipe:
    """A recipe from a TOML path, or the name of a shipped one (``samples-16x64``)."""
    path = Path(path_or_name)
    if not path.is_file() and (RECIPES / f"{path_or_name}.toml").is_file():
        path = RECIPES / f"{path_or_name}.toml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
        raise InputMissingError(f"no such recipe file (shipped recipes: {shipped})", path=path_or_name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"not a valid TOML recipe ({e})", path=path) from e
    return recipe_from_dict(data, base=path.parent)


def recipe_from_dict(data: dict[str, Any], base: Path = Path(".")) -> Recipe:
    known = {"seed", "clip", "splits", "real", "synthetic", "variants", "reconstructed", "labelled"}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"recipe: unknown keys {', '.join(sorted(unknown))}")
    try:
        real = tuple(_real(item, base) for item in data.get("real", []))
        synthetic = tuple(SyntheticSource(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})
                          for item in data.get("synthetic", []))
        clip = ClipSpec(**data.get("clip", {}))
        variants = tuple(variants_from(**data.get("variants", {})))
        reconstructed = tuple(_reconstructed(item, base) for item in data.get("reconstructed", []))
        labelled = tuple(_labelled(item, base) for item in data.get("labelled", []))
        kwargs: dict[str, Any] = {"seed": int(data.get("seed", 0)), "clip": clip, "real": real,
                                  "synthetic": synthetic, "variants": variants, "reconstructed": reconstructed,
                                  "labelled": labelled}
        if "splits" in data:
            kwargs["splits"] = {k: float(v) for k, v in data["splits"].items()}
        return Recipe(**kwargs)
    except TypeError as e:
        raise UsageError(f"recipe: {e}") from e


def _real(item: dict, base: Path) -> RealSource:
    kind = item.get("kind")
    if kind not in REAL_KINDS:
        raise UsageError(f"recipe: real source kind must be one of {', '.join(REAL_KINDS)}, got {kind!r}")
    path = item.get("path")
    if path is not None:
        path = _resolve(base, path)
    elif kind == "folder":
        raise UsageError("recipe: a folder source needs a path")
    names = tuple(item["names"]) if "names" in item else None
    extra = set(item) - {"kind", "path", "names"}
    if extra:
        raise UsageError(f"recipe: unknown keys in a real source: {', '.join(sorted(extra))}")
    return RealSource(kind=kind, path=path, names=names)


def _reconstructed(item: dict, base: Path) -> ReconstructedSource:
    if "autoencoder" not in item:
        raise UsageError("recipe: a reconstructed source needs an autoencoder folder")
    return ReconstructedSource(**{**item, "autoencoder": _resolve(base, item["autoencoder"])})


def _labelled(item: dict, base: Path) -> LabelledSource:
    if set(item) != {"path"}:
        raise UsageError("recipe: a labelled source takes one key, path (a folder of labelled clips)")
    return LabelledSource(_resolve(base, item["path"]))


def _resolve(base: Path, path: str) -> str:
    """A path from the recipe, taken from the recipe file's folder."""
    return str((base / Path(path).expanduser()).resolve())
