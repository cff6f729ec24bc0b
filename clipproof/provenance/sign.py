"""Sign a media file with a C2PA manifest, atomically, offline."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import c2pa

from clipproof.atomic import atomic_output
from clipproof.digest import sha256_file
from clipproof.errors import InvalidMediaError, OutputExistsError, OutputUnwritableError, SigningError, UsageError
from clipproof.inputs import require_readable_file
from clipproof.provenance.keys import SigningIdentity, load_identity
from clipproof.provenance.manifest import build_manifest, load_assertions, mime_type
from clipproof.provenance.read import GENERATIVE_SOURCE_TYPES
from clipproof.provenance.durable import SoftBinding, remember, watermark_video
from clipproof.provenance.native import NATIVE_LOCK, context
from clipproof.provenance.store import ManifestStore, open_store
from clipproof.structure import check_structure


# A watermarked video is re-encoded as H.264 in its own container: every video type sign takes.
WATERMARKED_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi")


def marks_by_default(path: str | os.PathLike, source_type: str) -> bool:
    """Whether ``sign`` watermarks ``path`` unless told: generated video (left unmarked all the
    same where its pictures are too small to carry a mark: ``unmarkable``)."""
    return (Path(path).suffix.lower() in WATERMARKED_SUFFIXES
            and source_type.rsplit("/", 1)[-1] in GENERATIVE_SOURCE_TYPES)


def unmarkable(path: str | os.PathLike) -> str | None:
    """Why the video at ``path`` cannot carry a watermark (its pictures are too small), or None."""
    from clipproof.media import probe
    from clipproof.watermark.pattern import too_small
    info = probe(path)
    return too_small(info.width, info.height)


def default_output(path: str | os.PathLike) -> Path:
    """``clip.mp4`` → ``clip.signed.mp4`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.signed{path.suffix}")


def sign_file(
    src: str | os.PathLike,
    dst: str | os.PathLike | None,
    identity: SigningIdentity,
    *,
    source_type: str,
    software_agent: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    assertions: list[dict] | None = None,
    overwrite: bool = False,
    soft_binding: SoftBinding | None = None,
    store: ManifestStore | None = None,
) -> Path:
    """Write ``src`` with a signed manifest to ``dst`` (default ``<stem>.signed<ext>``).

    The output appears only once signing succeeded, and never over an existing file (the input
    included) unless ``overwrite``; a replaced file keeps its permissions. No time-stamp
    authority is contacted: signing works offline. ``soft_binding`` (a watermark already in
    ``src``'s pixels) is recorded as a ``c2pa.soft-binding`` assertion, and the signed manifest
    goes into ``store`` before the output appears.
    """
    src, dst = _check_paths(src, dst, overwrite)
    mime = mime_type(src)
    if mime_type(dst) != mime:
        raise SigningError(f"output type must match the input's ({mime})", path=dst)
    if soft_binding is not None:
        assertions = [*(assertions or []), soft_binding.assertion()]
    manifest = build_manifest(title=dst.name, mime=mime, source_type=source_type,
                              software_agent=software_agent, parameters=parameters, assertions=assertions)
    info = c2pa.C2paSignerInfo(alg=identity.alg.encode(), sign_cert=identity.chain_pem,
                               private_key=identity.key_pem, ta_url=None)
    ctx = context(None)  # takes NATIVE_LOCK itself, so before we hold it
    with atomic_output(dst, overwrite=overwrite) as tmp, open(src, "rb") as source, open(tmp, "w+b") as dest:
        # The destination must be readable too: BMFF signing re-reads what it wrote.
        with NATIVE_LOCK:
            try:
                with c2pa.Signer.from_info(info) as signer, \
                        c2pa.Builder(manifest, context=ctx) as builder:
                    manifest_bytes = builder.sign(signer, mime, source, dest)
            except c2pa.C2paError as e:
                raise _signing_error(src, e) from e
        if soft_binding is not None and store is not None:
            dest.flush()
            remember(store, manifest_bytes, soft_binding, mime, sha256_file(tmp))
    return dst


def _check_paths(src: str | os.PathLike, dst: str | os.PathLike | None, overwrite: bool) -> tuple[Path, Path]:
    src = Path(src)
    dst = Path(dst) if dst is not None else default_output(src)
    require_readable_file(src)
    if dst.exists() and not overwrite:
        same = " (it is the input)" if dst.resolve() == src.resolve() else ""
        raise OutputExistsError(f"already exists{same}; use --force to replace it", path=dst)
    if not dst.parent.is_dir():
        raise OutputUnwritableError("the output folder does not exist", path=dst.parent)
    return src, dst


def _signing_error(src: Path, e: c2pa.C2paError) -> Exception:
    text = str(e).split(": ", 1)[-1] if ": " in str(e) else str(e)
    if isinstance(e, (c2pa.C2paError.Signature,)) or "certificate" in text.lower() or "key" in text.lower():
        return SigningError(f"the C2PA library refused the signing identity ({text})", path=src)
    return InvalidMediaError(f"cannot be signed, not a well-formed {src.suffix.lstrip('.')} file ({text})", path=src)


def sign(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    *,
    key: str | os.PathLike,
    cert: str | os.PathLike,
    source_type: str = "trainedAlgorithmicMedia",
    software_agent: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    assertions: list[dict] | str | os.PathLike | None = None,
    overwrite: bool = False,
    watermark: bool | None = None,
    store: str | os.PathLike | None = None,
) -> Path:
    """Sign ``src`` with the key and certificate chain at these paths; return the output path.

    ``source_type`` is an IPTC digital source type term or URI ("trainedAlgorithmicMedia" for
    generated media, "digitalCapture" for camera footage). ``assertions`` are extra assertions
    (a list, or a JSON file holding them). ``watermark`` (default: on for generated video)
    re-encodes the video with an invisible watermark (H.264 in the output's container, MP4, MOV
    or AVI; audio copied) and keeps the signed
    manifest in ``store`` (a path; default the user's store), so a stripped or re-encoded copy
    leads back to it.
    """
    require_readable_file(src)      # a missing input or a folder is said as such, before its name's type
    # A file cut short (or a box flood, as `verify` refuses) is refused before its frames are
    # probed or re-encoded into a whole file: the C2PA library hashes whatever bytes there are,
    # and a download that stopped would verify as a trusted capture with none of its pictures.
    # (``sign_file``'s other callers hand it files they have just written whole.)
    cut = check_structure(src)
    if cut is not None:
        raise InvalidMediaError(f"cut short: {cut}; signed, it would be vouched for as if whole", path=src)
    identity = load_identity(key, cert)
    if isinstance(assertions, (str, os.PathLike)):
        assertions = load_assertions(assertions)
    is_video = mime_type(src).startswith("video/")
    requested, watermark = watermark, marks_by_default(src, source_type) if watermark is None else watermark
    if watermark and is_video and (reason := unmarkable(src)) is not None:
        if requested:
            raise UsageError(f"{reason}; sign it with --no-watermark", path=src)
        watermark = False
    if not watermark:
        return sign_file(src, dst, identity, source_type=source_type, software_agent=software_agent,
                         parameters=parameters, assertions=assertions, overwrite=overwrite)
    if not is_video:
        raise UsageError("watermarks are embedded in video only; sign images with --no-watermark", path=src)
    src, dst = _check_paths(src, dst, overwrite)
    if dst.suffix.lower() not in WATERMARKED_SUFFIXES:
        raise UsageError(f"a watermarked video is written as {', '.join(WATERMARKED_SUFFIXES)}, not "
                         f"{dst.suffix or 'a name without an extension'}", path=dst)
    repository = open_store(store)
    with tempfile.TemporaryDirectory(prefix="clipproof-mark-") as tmp:
        marked = Path(tmp) / f"marked{dst.suffix}"
        binding = watermark_video(src, marked)
        return sign_file(marked, dst, identity, source_type=source_type, software_agent=software_agent,
                         parameters=parameters, assertions=assertions, overwrite=overwrite,
                         soft_binding=binding, store=repository)
