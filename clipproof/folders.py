"""What folders hold: walked recursively in sorted order, hidden entries left out, and a folder
that cannot be listed (no permission, nested past the system's path limit) reported, never
silently passed over or left to stop the walk with a traceback. ``verify``, ``batch``, ``datasets
build`` and ``train-autoencoder`` all list their inputs here."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from clipproof.errors import InputMissingError, os_reason
from clipproof.inputs import require_named, url_refused
from clipproof.media_types import MEDIA_SUFFIXES


@dataclass(frozen=True)
class Found:
    """One entry of what ``expand_paths`` found: a file to verify, a file left out (``skipped``
    says why), or a folder that could not be listed (``error``: a row of its own, exit 66)."""

    path: Path
    skipped: str | None = None
    error: InputMissingError | None = None

    @property
    def name(self) -> str:
        """The path as it is to be named in a row: as its error gives it where there is one (a
        link keeps its "//", which ``path`` folded)."""
        return str(self.error.path) if self.error is not None and self.error.path else str(self.path)


def expand_paths(paths: Iterable[str | os.PathLike]) -> Iterator[Found]:
    """What to verify among ``paths``: files named as given (whatever their name: a missing one
    is reported when verified); folders walked recursively in sorted order, hidden entries left
    out, files without a media suffix skipped with a reason, and a folder (named or met on the
    way) that cannot be listed reported, never silently passed over."""
    for raw in paths:
        path = require_named(raw)
        if str(raw) == "-" or not path.is_dir():
            link = None if path.exists() else url_refused(raw)
            yield Found(path, error=link)
            continue
        yield from _walk(path)


def _walk(top: Path) -> Iterator[Found]:
    unlistable: list[OSError] = []
    for folder, subfolders, files in os.walk(top, onerror=unlistable.append):
        yield from map(_unlistable, unlistable)
        unlistable.clear()
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                sub = Path(folder) / name
                yield Found(sub, None if sub.suffix.lower() in MEDIA_SUFFIXES else "not a media file")
    yield from map(_unlistable, unlistable)      # the top folder itself, or the last one met


def _unlistable(e: OSError) -> Found:
    reason = f"a folder that cannot be listed ({os_reason(e)})"
    return Found(Path(e.filename), error=InputMissingError(reason, path=e.filename))
