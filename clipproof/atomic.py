"""Atomic output: write to a temporary file beside the target, then rename over it.

A crash or an exception in the middle leaves the target untouched (absent or as it was),
never half-written: a half-signed video must not exist. The temporary file's name carries the
host and process that write it (``.clip.<host>-<pid>-<random>.partial.mp4``); a later write to
the same target removes those whose process has died (``kill -9`` runs no clean-up of its own).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Iterator

from clipproof.errors import OutputExistsError, OutputUnwritableError, os_reason


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32] or "host"
# The stem kept in a temporary name: a long target name plus the marker must still fit the
# 255 bytes a file name may have.
_STEM_CHARS = 80


def default_file_mode() -> int:
    """The permissions a new file gets from the user's umask (temporary files start at 0600)."""
    return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, mode: int | None = None, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success move it to ``target``.

    The temporary file keeps the target's suffix, because some writers (FFmpeg's muxer
    choice, c2pa's format detection) look at it. ``mode`` sets permissions before the move, so
    a private key is never visible with looser ones; without it a replaced file keeps its own,
    a new one gets the umask's. With ``overwrite`` off the move refuses an existing target in
    the same step that makes it (a hard link), so two writers racing for one name cannot both
    succeed. Raises OutputUnwritableError (the folder cannot take the file) or OutputExistsError.
    """
    target = Path(target)
    folder = target.parent
    _remove_stale_partials(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f"{_partial_prefix(target)}{os.getpid()}-",
                                        suffix=f".partial{target.suffix}", dir=folder or ".")
    except OSError as e:
        raise OutputUnwritableError(f"cannot write in this folder ({os_reason(e)})", path=target) from None
    os.close(fd)
    tmp = Path(tmp_name)
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777 if overwrite else default_file_mode()
        except OSError:
            mode = default_file_mode()
    try:
        # mkstemp makes the file 0600; set the final mode before writing (a key is never
        # readable by others) and again after (some writers replace the file).
        os.chmod(tmp, mode)
        yield tmp
        os.chmod(tmp, mode)
        _move(tmp, target, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _move(tmp: Path, target: Path, overwrite: bool) -> None:
    try:
        if overwrite:
            os.replace(tmp, target)
        else:
            _move_new(tmp, target)
    except FileExistsError:
        raise OutputExistsError("already exists (use --force to replace it)", path=target) from None
    except OSError as e:
        raise OutputUnwritableError(f"cannot be written ({os_reason(e)})", path=target) from None


# What link() says on file systems without hard links (FAT, some network mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _move_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless it exists: a hard link makes the name only if it
    is free, in one step; where links are not allowed, check and rename (a narrow race remains)."""
    try:
        os.link(tmp, target)
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
        os.replace(tmp, target)


def _partial_prefix(target: Path) -> str:
    return f".{target.stem[:_STEM_CHARS]}.{_HOST}-"


def _remove_stale_partials(target: Path) -> None:
    """Delete temporary files of earlier writes to ``target`` on this host whose process is gone."""
    prefix = _partial_prefix(target)
    try:
        entries = list(os.scandir(target.parent or "."))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(f".partial{target.suffix}")):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True      # someone else's process
    return True


def output_folder(path: str | os.PathLike) -> Path:
    """Make ``path`` (and its parents) to hold a command's outputs, or say in one line why not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputUnwritableError("exists and is not a folder", path=path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputUnwritableError(f"cannot make the output folder ({os_reason(e)})", path=path) from None
    return path
