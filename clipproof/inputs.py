"""The checks every input file gets before anything opens it, with one-line reasons."""
from __future__ import annotations

import os
from pathlib import Path

from clipproof.errors import InputMissingError, InvalidMediaError


def require_readable_file(path: str | os.PathLike) -> Path:
    """Raise InputMissingError (missing, a folder, no permission) or InvalidMediaError (empty)."""
    path = Path(path)
    if not path.exists():
        raise InputMissingError(f"{path}: no such file")
    if path.is_dir():
        raise InputMissingError(f"{path}: is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputMissingError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise InvalidMediaError(f"{path}: empty file")
    return path
