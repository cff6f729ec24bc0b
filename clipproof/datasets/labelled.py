"""Folders of labelled clips — generator outputs, camera footage, rendered animation — as
``detector eval --folder`` scores them and as ``[[labelled]]`` corpus sources train on them.

Labels come from a manifest in the folder (``manifest.tsv`` or ``manifest.csv`` with columns
``file``, ``label`` and ``generator_or_source`` or ``source``), or else from the folder each clip
sits in: ``synthetic``/``generated``/``fake`` → synthetic; ``real``/``camera`` → real;
``rendered``/``animation`` → real footage's label (not generative AI) but kept apart, since
"not a camera" must not read as "generated". Other folders are skipped, with a note.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from clipproof.errors import UsageError
from clipproof.folders import expand_paths

SYNTHETIC_FOLDERS = {"synthetic", "generated", "fake", "ai"}
REAL_FOLDERS = {"real", "camera", "authentic"}
RENDERED_FOLDERS = {"rendered", "animation", "cgi"}


@dataclass(frozen=True)
class LabelledClip:
    path: Path
    label: int               # 1 synthetic, 0 not generated (camera or rendered)
    group: str               # the generator or source
    kind: str                # "synthetic", "real" or "rendered"
    form: str = "original"   # or the other label's format (detector.folder_eval.PARITY_FORMS)
    source: Path | None = None  # for another form: the clip it was made from (``path`` is temporary)


def labelled_clips(folder: str | os.PathLike, log: Callable[[str], None] = print,
                   both_labels: bool = True) -> list[LabelledClip]:
    """Every labelled clip of ``folder``; with ``both_labels`` (an evaluation), both labels must
    be there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError("not a folder of labelled clips", path=folder)
    manifest = next((folder / n for n in ("manifest.tsv", "manifest.csv") if (folder / n).is_file()), None)
    clips = _from_manifest(folder, manifest) if manifest else _from_folders(folder, log)
    kinds = {c.label for c in clips}
    if not clips or (both_labels and kinds != {0, 1}):
        raise UsageError(f"needs {'both synthetic and real clips to evaluate' if both_labels else 'labelled clips'} "
                         f"(found {len(clips)} clips, labels {sorted(kinds)})", path=folder)
    return clips


def _kind(name: str) -> str | None:
    name = name.lower()
    return ("synthetic" if name in SYNTHETIC_FOLDERS else "real" if name in REAL_FOLDERS
            else "rendered" if name in RENDERED_FOLDERS else None)


def _from_manifest(folder: Path, manifest: Path) -> list[LabelledClip]:
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if manifest.suffix == ".tsv" else ","))
    except UnicodeDecodeError:
        raise UsageError("the manifest is not UTF-8 text", path=manifest) from None
    clips = []
    for line, row in enumerate(rows, 2):
        # A short row leaves its missing fields None.
        file, label = row.get("file") or "", row.get("label") or ""
        kind = _kind(label) or (_kind(Path(file).parts[0]) if file else None)
        if kind is None or not file:
            raise UsageError(f"line {line}: a row needs a 'file' and a known 'label' (synthetic, real or rendered), "
                             f"got {file!r} {label!r}", path=manifest)
        group = row.get("generator_or_source") or row.get("source") or kind
        clips.append(LabelledClip(folder / file, int(kind == "synthetic"), group, kind))
    return clips


def _from_folders(folder: Path, log: Callable[[str], None]) -> list[LabelledClip]:
    clips = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        kind = _kind(sub.name)
        if kind is None:
            log(f"note: skipping {sub} (not a label: synthetic, real or rendered)")
            continue
        for found in sorted(expand_paths([sub]), key=lambda f: f.path):
            path = found.path
            if found.error is not None:
                log(f"note: skipping {found.error}")
            elif found.skipped is None:
                group = path.stem.split("__")[0] if "__" in path.stem else sub.name
                clips.append(LabelledClip(path, int(kind == "synthetic"), group, kind))
    return clips
