"""Verification: one file in, one Report out: credentials, media, detector, verdict.

A ``Verifier`` holds what is loaded once (trust anchors, detector weights) and is safe to share
between threads: it keeps no per-call state, and the C2PA library's native calls are
serialised inside ``clipproof.provenance``. ``verify(path)`` is the one-shot form.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

from clipproof.digest import sha256_file
from clipproof.errors import ClipproofError, InvalidMediaError
from clipproof.inputs import require_readable_file
from clipproof.provenance.read import read_credentials
from clipproof.findings import DetectorFindings
from clipproof.provenance.report import Report, decide
from clipproof.provenance.trust import load_anchors

if TYPE_CHECKING:
    from clipproof.media import MediaInfo


class Detector(Protocol):
    """What verify needs of a detector: score a readable video (frames it samples itself)."""

    def score(self, path: str | os.PathLike, media: MediaInfo) -> DetectorFindings: ...


@dataclass(frozen=True)
class Outcome:
    """One file of a batch: its report, or the error that stopped it."""

    path: str
    report: Report | None
    error: ClipproofError | None


class Verifier:
    """Reusable, thread-safe verification with fixed anchors and detector.

    ``trust``: extra anchor PEM files, combined with the config file and
    ``CLIPPROOF_TRUST_ANCHORS``. ``detector``: ``"auto"`` (the bundled detector when installed),
    ``None`` (credentials only, torch is never imported), a weights path, or a ``Detector``.
    """

    def __init__(self, trust: Iterable[str | os.PathLike] | str | os.PathLike | None = None,
                 detector: Any = "auto"):
        if isinstance(trust, (str, os.PathLike)):
            trust = [trust]
        self.anchors_pem = load_anchors(trust or ())
        self.detector, self.no_detector_reason = _load_detector(detector)

    def verify(self, path: str | os.PathLike) -> Report:
        """Verify one file. Raises InputMissingError (missing/unreadable) or InvalidMediaError
        (neither a readable video/image nor a carrier of Content Credentials)."""
        path = require_readable_file(path)
        # The C2PA read dominates; hashing and then probing run beside it in one worker. The
        # native reader and OpenSSL's SHA-256 release the GIL, so the hash is free on two
        # cores; the probe holds the GIL briefly (PyAV import, container open) and, run after
        # the hash, costs the reader less than run before or after it (measured here).
        with ThreadPoolExecutor(max_workers=1) as pool:
            side = pool.submit(_hash_and_probe, path)
            credentials = read_credentials(path, self.anchors_pem)
            sha, (media, media_error) = side.result()
        if media is None and not credentials.present:
            # Nothing to report on: not media, and no credentials that say otherwise. The C2PA
            # parser's reason is often the sharper one ("boxes are too deeply nested").
            if credentials.unreadable_asset:
                raise InvalidMediaError(f"{media_error}; C2PA reader: {_short_c2pa(credentials)}")
            raise media_error
        findings = None
        if self.detector is not None and media is not None and not media.is_image:
            findings = self.detector.score(path, media)
        reason = self.no_detector_reason
        if media is not None and media.is_image and self.detector is not None:
            reason = "The detector scores video only; this is a still image."
        verdict, reasons = decide(credentials, findings, reason)
        if media is None:
            reasons.append(f"The media itself cannot be decoded ({_short(media_error)}).")
        return Report(path=str(path), sha256=sha, media=media, credentials=credentials,
                      detector=findings, verdict=verdict, reasons=reasons)

    def verify_many(self, paths: Iterable[str | os.PathLike], *, workers: int = 1) -> Iterator[Outcome]:
        """Verify each path, in order; a bad file becomes an Outcome with its error, and the
        others are still verified. ``workers`` > 1 verifies that many files at a time."""
        def one(p) -> Outcome:
            try:
                return Outcome(str(p), self.verify(p), None)
            except ClipproofError as e:
                return Outcome(str(p), None, e)
        if workers <= 1:
            yield from map(one, paths)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(one, paths)


def verify(path: str | os.PathLike, *, trust: Iterable[str | os.PathLike] | str | os.PathLike | None = None,
           detector: Any = "auto") -> Report:
    """Verify one file and return its Report (see ``Verifier`` for the arguments)."""
    return Verifier(trust=trust, detector=detector).verify(path)


# ---------------------------------------------------------------------------------------------

def _hash_and_probe(path: Path) -> tuple[str, tuple[MediaInfo | None, InvalidMediaError | None]]:
    return sha256_file(path), _probe(path)


def _probe(path: Path) -> tuple[MediaInfo | None, InvalidMediaError | None]:
    from clipproof.media import probe  # PyAV loads on first use, off the critical path
    try:
        return probe(path), None
    except InvalidMediaError as e:
        return None, e


def _short(e: Exception | None) -> str:
    # Errors carry "<path>: <reason>"; inside a report the path is already known.
    return str(e).split(": ", 1)[-1] if e else "unknown reason"


def _short_c2pa(credentials) -> str:
    text = credentials.failures[0].explanation
    return text[text.find("(") + 1:text.rfind(")")] if "(" in text else text


def _load_detector(choice: Any) -> tuple[Detector | None, str | None]:
    if choice is None or choice is False:
        return None, "The detector is turned off (--no-detector), and nothing else decides."
    if not isinstance(choice, (str, os.PathLike)):
        return choice, None
    from clipproof.detector.inference import load_detector  # torch is imported only here
    detector = load_detector(None if choice == "auto" else choice)
    if detector is None:
        return None, "No detector weights are bundled with this installation, and nothing else decides."
    return detector, None
