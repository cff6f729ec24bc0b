"""The checks every input file gets before anything opens it, with one-line reasons."""
from __future__ import annotations

import os
from pathlib import Path

from clipproof.errors import InputMissingError, InvalidMediaError


def require_readable_file(path: str | os.PathLike) -> Path:
    """Raise InputMissingError (missing, a folder, no permission) or InvalidMediaError (empty)."""
    path = Path(path)
    if not path.exists():
        raise InputMissingError("no such file", path=path)
    if path.is_dir():
        raise InputMissingError("is a folder, not a file", path=path)
    if not os.access(path, os.R_OK):
        raise InputMissingError("permission denied", path=path)
    if path.stat().st_size == 0:
        raise InvalidMediaError("empty file", path=path)
    return path
