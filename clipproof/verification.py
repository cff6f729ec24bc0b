"""Verification: one file in, one Report out: credentials, media, detector, verdict.

A ``Verifier`` holds what is loaded once (trust anchors, detector weights) and is safe to share
between threads: it keeps no per-call state, and the C2PA library's native calls are
serialised inside ``clipproof.provenance``. ``verify(path)`` is the one-shot form.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator, Protocol

from clipproof.digest import sha256_file
from clipproof.errors import (EXIT_RED_FLAG, ClipproofError, DecodeLimitError, InputMissingError, InvalidMediaError,
                              OutputUnwritableError, exit_code, one_line, os_reason)
from clipproof.findings import DetectorFindings
from clipproof.inputs import require_readable_file
from clipproof.provenance.read import read_credentials
from clipproof.provenance.report import Report, decide
from clipproof.provenance.trust import load_anchors
from clipproof.structure import check_structure

SIDE_THREAD_BYTES = 4 << 20    # from this size on, the report's hash runs beside the C2PA read; below it
                               # the file is read into memory once, for both
# Up to this frame size the watermark search runs beside the detector. Past it they read one
# after the other: both readers' frames at once took an 8192x8192 clip's `verify` from 510 to
# 896 MB at the peak (for 4.8 s instead of 8.1).
SIDE_BY_SIDE_MAX_PIXELS = 3840 * 2160

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

    @property
    def exit_code(self) -> int:
        return self.report.exit_code if self.report else exit_code(self.error)

    def to_dict(self) -> dict:
        """The ``verify --json`` row: the report, or the error record."""
        from clipproof.provenance.report import error_record
        return self.report.to_dict() if self.report else error_record(self.path, self.error)


class Verifier:
    """Reusable, thread-safe verification with fixed anchors and detector.

    ``trust``: extra anchor PEM files, combined with the config file and
    ``CLIPPROOF_TRUST_ANCHORS``. ``detector``: ``"auto"`` (the bundled detector when installed),
    ``None`` (credentials only, torch is never imported), a weights path, or a ``Detector``.
    ``watermark``: look for a clipproof watermark in videos whose own credentials are absent or
    broken, and look it up in ``stores`` (paths or URLs; default: the user's store, when it
    exists).
    """

    def __init__(self, trust: Iterable[str | os.PathLike] | str | os.PathLike | None = None,
                 detector: Any = "auto", *, watermark: bool = True,
                 stores: Iterable[str | os.PathLike] | None = None):
        if isinstance(trust, (str, os.PathLike)):
            trust = [trust]
        self.anchors_pem = load_anchors(trust or ())
        self.detector, self.no_detector_reason = _load_detector(detector)
        self.watermark = watermark
        self.stores = _open_stores(stores)

    def verify(self, path: str | os.PathLike) -> Report:
        """Verify one file. Raises InputMissingError (missing/unreadable) or InvalidMediaError
        (neither a readable video/image nor a carrier of Content Credentials, or a structure
        beyond ``clipproof.limits``)."""
        path = require_readable_file(path)
        try:
            return self._verify(path)
        except OSError as e:     # the file went away or turned unreadable while being read
            raise InputMissingError(f"cannot be read ({os_reason(e)})", path=path) from e

    def _verify(self, path: Path) -> Report:
        large = path.stat().st_size >= SIDE_THREAD_BYTES
        # A small file is read once, and every pass over it below reads those bytes.
        content = None if large else path.read_bytes()
        cut = check_structure(path, content=content)
        if large:
            # On a large file the C2PA read and the report's own SHA-256 each take tens of
            # milliseconds and both release the GIL: hashing (then probing) beside the read
            # halves the wall time on two cores. On a small one the thread costs more CPU than
            # it saves (its start and the GIL hand-offs: 2.7 vs 2.1 ms a file, measured), and a
            # busy pipeline pays in CPU.
            with ThreadPoolExecutor(max_workers=1) as pool:
                side = pool.submit(_hash_and_probe, path)
                credentials = read_credentials(path, self.anchors_pem)
                sha, (media, media_error) = side.result()
        else:
            # Read once: the hash and the C2PA read take the same bytes, so the report's sha256
            # is the hash of what was validated even if the file changes meanwhile.
            credentials = read_credentials(path, self.anchors_pem, content=content)
            sha, (media, media_error) = hashlib.sha256(content).hexdigest(), _probe(path, content)
        if cut is not None:
            # A stopped download or recording: say so, rather than FFmpeg's "invalid data".
            if media is None:
                media_error = InvalidMediaError(f"cut short: {cut}; {media_error.reason}", path=path)
            else:
                media = dataclasses.replace(media, cut_short=str(cut))
        if media is None and not credentials.present:
            # Nothing to report on: not media, and no credentials that say otherwise. The C2PA
            # parser's reason is often the sharper one ("boxes are too deeply nested").
            if credentials.unreadable_asset:
                c2pa_says = credentials.failures[0].detail or credentials.failures[0].explanation
                raise InvalidMediaError(f"{media_error.reason}; C2PA reader: {c2pa_says}", path=path)
            raise media_error
        search = self.watermark and media is not None and not media.is_image and credentials.state in ("absent", "error", "invalid")
        scores = self.detector is not None and media is not None and not media.is_image
        findings, reason, unreadable = None, self.no_detector_reason, None
        watermark, recovered = None, None
        if media is not None and media.is_image and self.detector is not None:
            reason = "The detector scores video only; this is a still image."
        beside = search and scores and media.width * media.height <= SIDE_BY_SIDE_MAX_PIXELS
        with ThreadPoolExecutor(max_workers=1) if beside else contextlib.nullcontext() as pool:
            # The watermark search and the detector read the clip each on its own, the search
            # mostly on one thread: side by side they fill two cores (a whole `verify` of a 10 s
            # 1080p clip: 1.31-1.40 s to 1.19-1.28 s at a low bit rate, 3.28 to 2.79 s at a
            # phone's; the same CPU, 30 MB more at the peak).
            searching = pool.submit(self._recover, path, media) if pool else None
            if search and not pool:
                watermark, recovered = self._recover(path, media)
            if scores:
                try:
                    findings = self.detector.score(path, media)
                except DecodeLimitError as e:
                    reason = f"The detector did not score this clip: {e.reason}."
                except InvalidMediaError as e:
                    unreadable = e
            if searching:
                watermark, recovered = searching.result()
        if recovered is not None and credentials.state != "invalid":
            credentials = recovered
        if unreadable is not None:
            if not credentials.present:
                raise unreadable
            reason = f"The detector did not score this clip: its frames do not decode ({unreadable.reason})."
        verdict, reasons = decide(credentials, findings, reason)
        if media is None:
            reasons.append(f"The media itself cannot be decoded: {media_error.reason}.")
        elif media.cut_short:
            reasons.append(f"The file is cut short: {media.cut_short} (a download or a recording that stopped, "
                           f"or a size in it that lies); what it holds was read.")
        if watermark is not None and watermark.found:
            reasons.insert(0 if credentials.state == "recovered" else len(reasons), watermark.note)
        return Report(path=str(path), sha256=sha, media=media, credentials=credentials,
                      detector=findings, verdict=verdict, reasons=reasons, watermark=watermark)

    def _recover(self, path: Path, media: MediaInfo):
        from clipproof.provenance.durable import WatermarkFindings, recover
        from clipproof.watermark.pattern import too_small
        # Pictures too small for a mark (sign leaves them unmarked): "not found" would suggest
        # that one was possible.
        small = too_small(media.width, media.height)
        if small is not None:
            return WatermarkFindings(False, "too-small", f"No clipproof watermark was looked for: {small}."), None
        try:
            return recover(path, self.anchors_pem, self.stores)
        except InvalidMediaError as e:
            return WatermarkFindings(False, "not-found", f"The watermark could not be looked for: {e.reason}."), None

    def verify_stream(self, stream: BinaryIO, name: str = "-") -> Report:
        """Verify a file read from ``stream`` (e.g. standard input); the Report's path is ``name``.

        The bytes are spooled to a temporary file first: the C2PA reader and the decoder seek."""
        with tempfile.TemporaryDirectory(prefix="clipproof-") as tmp:
            spooled = Path(tmp) / "input"
            with open(spooled, "wb") as f:
                while True:
                    try:
                        chunk = stream.read(1 << 20)
                    except OSError as e:
                        raise InputMissingError(f"cannot be read ({os_reason(e)})", path=name) from None
                    if not chunk:
                        break
                    try:
                        f.write(chunk)
                    except OSError as e:    # a full temporary folder (`cat /dev/zero | verify -`); the spool goes with it
                        raise OutputUnwritableError(f"cannot keep it in the temporary folder {tempfile.gettempdir()} "
                                                    f"({os_reason(e)})", path=name) from None
            if spooled.stat().st_size == 0:
                raise InvalidMediaError("empty input", path=name)
            try:
                return dataclasses.replace(self.verify(spooled), path=name)
            except ClipproofError as e:
                raise type(e)(e.reason, path=name) from None

    def verify_many(self, paths: Iterable[str | os.PathLike], *, workers: int = 1) -> Iterator[Outcome]:
        """Verify each path, in order; a bad file becomes an Outcome with its error, and the
        others are still verified. ``workers`` > 1 verifies that many files at a time. The path
        ``-`` reads standard input."""
        def one(p) -> Outcome:
            try:
                report = self.verify_stream(sys.stdin.buffer) if str(p) == "-" else self.verify(p)
                return Outcome(str(p), report, None)
            except ClipproofError as e:
                return Outcome(str(p), None, e)
            except Exception as e:
                # A bug, met on this file: it is this file's row (exit 70), and the batch goes on.
                if os.environ.get("CLIPPROOF_DEBUG"):
                    traceback.print_exc()
                return Outcome(str(p), None, ClipproofError(f"internal error (a bug): {type(e).__name__}: "
                                                            f"{one_line(e)}", path=p))
        if workers <= 1:
            yield from map(one, paths)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(one, paths)


def verify(path: str | os.PathLike, *, trust: Iterable[str | os.PathLike] | str | os.PathLike | None = None,
           detector: Any = "auto") -> Report:
    """Verify one file and return its Report.

    Args:
        path: a video or image file.
        trust: trust anchor PEM file(s), added to ``CLIPPROOF_TRUST_ANCHORS`` and the config file;
            a signer chaining to none of them is reported as untrusted.
        detector: ``"auto"`` (the bundled detector), ``None`` (credentials only; torch is never
            imported), a detector weights folder, or an object with ``score(path, media)``.

    Raises ``InputMissingError`` (missing or unreadable: exit code 66) or ``InvalidMediaError``
    (not a readable video or image: 65); both carry ``path`` and ``reason``. For many files,
    build one ``Verifier`` and call ``verify_many``.
    """
    return Verifier(trust=trust, detector=detector).verify(path)


def batch_exit_code(codes: Iterable[int]) -> int:
    """The exit code of a batch: 1 when any file has a red flag (a red flag is never hidden
    behind an unreadable file or an uncertain one), otherwise the highest code; 0 for none."""
    codes = list(codes)
    if EXIT_RED_FLAG in codes:
        return EXIT_RED_FLAG
    return max(codes, default=0)


# ---------------------------------------------------------------------------------------------

def _hash_and_probe(path: Path) -> tuple[str, tuple[MediaInfo | None, InvalidMediaError | None]]:
    return sha256_file(path), _probe(path)


def _probe(path: Path, content: bytes | None = None) -> tuple[MediaInfo | None, InvalidMediaError | None]:
    from clipproof.media import probe  # PyAV loads on first use, off the critical path
    try:
        return probe(path, content=content), None
    except InvalidMediaError as e:
        return None, e


def _open_stores(stores: Iterable[str | os.PathLike] | None) -> list:
    """Stores to look watermarks up in; verifying never creates one (a missing path is reported
    as a store that could not be asked)."""
    from clipproof.provenance.store import SqliteStore, default_store_path, open_store
    if stores is None:
        default = default_store_path()
        return [SqliteStore(default, create=False)] if default.is_file() else []
    return [open_store(s, create=False) for s in stores]


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
