"""Atomic output: write to a temporary file beside the target, then rename over it.

A crash or an exception in the middle leaves the target untouched (absent or as it was),
never half-written: a half-signed video must not exist.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def default_file_mode() -> int:
    """The permissions a new file gets from the user's umask (temporary files start at 0600)."""
    return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success rename it to ``target``.

    The temporary file keeps the target's suffix, because some writers (FFmpeg's muxer
    choice, c2pa's format detection) look at it. ``mode`` sets permissions before the
    rename, so a private key is never visible with looser ones.
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent or "."
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file 0600; an output should get what the user's umask gives. Set before
    # writing (a key is never readable by others) and again after (some writers replace the file).
    final_mode = mode if mode is not None else default_file_mode()
    try:
        os.chmod(tmp, final_mode)
        yield tmp
        os.chmod(tmp, final_mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def output_folder(path: str | os.PathLike) -> Path:
    """Make ``path`` (and its parents) to hold a command's outputs, or say in one line why not."""
    from clipproof.errors import OutputUnwritableError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputUnwritableError("exists and is not a folder", path=path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputUnwritableError(f"cannot make the output folder ({e.strerror or e})", path=path) from None
    return path
