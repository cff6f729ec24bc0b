"""The checks every input file gets before anything opens it, with one-line reasons."""
from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from clipproof.errors import InputMissingError, InvalidMediaError, UsageError, os_reason


# Path("") is "." (the working folder), so an unset shell variable (`verify "$CLIP"`) would
# verify everything under it: refused wherever a path is taken.
EMPTY_PATH = "an empty path names no file (an unset variable?)"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def require_named(path: str | os.PathLike) -> Path:
    """``path`` as a Path, refusing the empty one (a usage error: the call is wrong)."""
    if os.fspath(path) == "":
        raise UsageError(EMPTY_PATH)
    return Path(path)


def url_refused(text: str | os.PathLike) -> InputMissingError | None:
    """The error for a link pasted where a file is named (``https://…``, ``s3://…``), which as a
    path is "no such file" and loses a slash ("https:/host/…"); None for anything else."""
    text = os.fspath(text)
    if not isinstance(text, str) or not _URL.match(text):
        return None
    return InputMissingError("a URL: clipproof reads files on this machine and fetches nothing; "
                             "download the clip first", path=text)


def require_readable_file(path: str | os.PathLike) -> Path:
    """Raise InputMissingError (missing, a folder, no permission, a name the system refuses) or
    InvalidMediaError (empty)."""
    text = os.fspath(path)
    if text == "":     # Path("") is ".", the working folder: say what was given
        raise InputMissingError(EMPTY_PATH)
    path = Path(path)
    try:
        info = path.stat()
    except OSError as e:
        if e.errno == errno.ENOENT and (not_fetched := url_refused(text)) is not None:
            raise not_fetched from None
        reason = "no such file" if e.errno in (errno.ENOENT, errno.ENOTDIR) else os_reason(e)
        raise InputMissingError(reason, path=path) from None
    except ValueError:      # a NUL byte in the name
        raise InputMissingError("the name holds a NUL byte", path=path) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputMissingError("is a folder, not a file", path=path)
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block or never end; stdin is read with `-` instead.
        raise InputMissingError("not a regular file (a pipe, socket or device)", path=path)
    if not os.access(path, os.R_OK):
        raise InputMissingError("permission denied", path=path)
    if info.st_size == 0:
        raise InvalidMediaError("empty file", path=path)
    return path
