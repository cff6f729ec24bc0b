"""The exception hierarchy of clipproof: one class per kind of failure, each carrying its exit
code and kind, and its ``path`` and ``reason`` as fields.

This is the one table of exit codes: the CLI, the JSON error objects (``verify --json``) and the
README read ``exit_code`` and ``kind`` from here, and nobody parses a message string. A message
reads ``"<path>: <reason>"`` (or the reason alone when no file is involved).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import ClassVar, Iterator


class ClipproofError(Exception):
    """Base class: every error clipproof raises on purpose.

    ``reason`` says what is wrong in one line; ``path`` names the file or folder concerned (None
    when the problem is not a file's).
    """

    exit_code: ClassVar[int] = 70
    kind: ClassVar[str] = "internal"
    meaning: ClassVar[str] = "internal error (a bug)"

    def __init__(self, reason: str, *, path: str | os.PathLike | None = None):
        self.reason = reason
        self.path = os.fspath(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)

    def __reduce__(self):
        # Errors cross process boundaries (DataLoader and corpus workers): keep the fields.
        return _rebuild, (type(self), self.reason, self.path)


def _rebuild(cls: type[ClipproofError], reason: str, path: str | None) -> ClipproofError:
    return cls(reason, path=path)


class UsageError(ClipproofError):
    """The call itself is wrong: bad arguments, conflicting options, an unknown name."""

    exit_code, kind, meaning = 64, "usage", "usage error"


class InvalidMediaError(ClipproofError):
    """The input exists but is not a readable video or image: empty, truncated, corrupt,
    unsupported, or hostile (absurd dimensions, pathological nesting)."""

    exit_code, kind, meaning = 65, "invalid-media", "not a readable video or image"


class DecodeLimitError(InvalidMediaError):
    """Reading the frames asked for would decode more than ``limits`` allow for one file (a
    frame-count bomb): ``verify`` then reports the clip as not scored by the detector."""

    kind, meaning = "decode-limit", "needs more decoding than the limits allow"


class InputMissingError(ClipproofError):
    """The input does not exist or cannot be opened (permissions, a folder where a file is due)."""

    exit_code, kind, meaning = 66, "missing", "input missing or unreadable"


class OutputExistsError(ClipproofError):
    """Refusing to overwrite something that already exists (keys, a signed output)."""

    exit_code, kind, meaning = 73, "output-exists", "output exists (no overwrite without --force)"


class OutputUnwritableError(ClipproofError):
    """An output cannot be made where asked: a file stands where a folder is due, or the
    place is read-only."""

    exit_code, kind, meaning = 73, "output-unwritable", "output cannot be made there"


class CredentialError(ClipproofError):
    """A key, certificate or trust anchor is unusable: unreadable, malformed, mismatched,
    or missing what C2PA requires."""

    exit_code, kind, meaning = 78, "credentials", "unusable key, certificate or trust anchor"


class SigningError(ClipproofError):
    """The C2PA library refused to sign this input with this identity."""

    exit_code, kind, meaning = 78, "signing", "the C2PA library refused to sign"


class StoreError(ClipproofError):
    """A manifest store cannot be used: not a store (corrupt), locked past the wait, unwritable,
    or a remote store that does not answer as one."""

    exit_code, kind, meaning = 74, "store", "manifest store unusable"


class ListenError(ClipproofError):
    """A server cannot listen where asked: the port is taken, the address is not this
    machine's, or the name does not resolve."""

    exit_code, kind, meaning = 69, "listen", "cannot listen on the address and port given"


class ClusterError(ClipproofError):
    """The Ray cluster given to ``batch --address`` cannot be joined: nothing answers there, or
    the address is not one Ray takes."""

    exit_code, kind, meaning = 69, "cluster", "cannot join the Ray cluster given"


# Codes that are not an error class's: what `verify` says of a clip, and an interrupt.
EXIT_OK, EXIT_RED_FLAG, EXIT_UNCERTAIN, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_INTERNAL = ClipproofError.exit_code


def exit_code(error: BaseException) -> int:
    """The exit code for ``error``: its class's, or 70 (internal error) for anything else."""
    return error.exit_code if isinstance(error, ClipproofError) else EXIT_INTERNAL


def kind(error: BaseException) -> str:
    return error.kind if isinstance(error, ClipproofError) else ClipproofError.kind


def exit_code_table() -> list[tuple[int, str, str]]:
    """(code, kind, meaning) of every error class, for help texts and the README."""
    return sorted({(cls.exit_code, cls.kind, cls.meaning) for cls in (ClipproofError, *_subclasses(ClipproofError))})


def _subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in (c, *_subclasses(c))]


@contextmanager
def loading_weights(folder: str | os.PathLike, kind: str) -> Iterator[None]:
    """Weights that exist but do not load — a truncated or foreign file, a config that does not
    fit its tensors — become one line naming the folder, not a library's traceback."""
    from safetensors import SafetensorError
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as e:
        raise InputMissingError(f"unreadable {kind} weights ({one_line(e)})", path=folder) from None


def one_line(error: BaseException, limit: int = 200) -> str:
    """A library's error message as one line of at most ``limit`` characters, for our own."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def os_reason(error: OSError) -> str:
    """What the system says of a file it refused ("permission denied", "file name too long"),
    lower-cased to sit inside our sentence."""
    return (error.strerror or one_line(error)).lower()


def check_settings(rules: dict[str, bool]) -> None:
    """Training settings checked where they are made, so a bad number is one line naming the
    option rather than an error from deep inside torch: ``{message: holds}``, first failure wins."""
    for message, holds in rules.items():
        if not holds:
            raise UsageError(message)
