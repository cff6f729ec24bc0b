"""The small exception hierarchy of clipproof.

Library code raises these with a one-line message that a person can act on; only ``cli.py``
turns them into exit codes (see ``EXIT_CODES`` there and the README's table).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


class ClipproofError(Exception):
    """Base class: every error clipproof raises on purpose."""


class UsageError(ClipproofError):
    """The call itself is wrong: bad arguments, conflicting options, an unknown name."""


class InputMissingError(ClipproofError):
    """The input does not exist or cannot be opened (permissions, a folder where a file is due)."""


class InvalidMediaError(ClipproofError):
    """The input exists but is not a readable video or image: empty, truncated, corrupt,
    unsupported, or hostile (absurd dimensions, pathological nesting)."""


class CredentialError(ClipproofError):
    """A key, certificate or trust anchor is unusable: unreadable, malformed, mismatched,
    or missing what C2PA requires."""


class OutputExistsError(ClipproofError):
    """Refusing to overwrite something that already exists (keys, a signed output)."""


class OutputUnwritableError(ClipproofError):
    """An output cannot be made where asked: a file stands where a folder is due, or the
    place is read-only."""


class SigningError(ClipproofError):
    """The C2PA library refused to sign this input with this identity."""


@contextmanager
def loading_weights(folder: str | os.PathLike, kind: str) -> Iterator[None]:
    """Weights that exist but do not load — a truncated or foreign file, a config that does not
    fit its tensors — become one line naming the folder, not a library's traceback."""
    from safetensors import SafetensorError
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as e:
        raise InputMissingError(f"{folder}: unreadable {kind} weights ({one_line(e)})") from None


def one_line(error: BaseException, limit: int = 200) -> str:
    """A library's error message as one line of at most ``limit`` characters, for our own."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_settings(rules: dict[str, bool]) -> None:
    """Training settings checked where they are made, so a bad number is one line naming the
    option rather than an error from deep inside torch: ``{message: holds}``, first failure wins."""
    for message, holds in rules.items():
        if not holds:
            raise UsageError(message)
