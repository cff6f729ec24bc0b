"""Read and validate a file's Content Credentials with c2pa-python.

``read_credentials(path, trust_anchors_pem)`` returns the ``credentials`` part of a Report:
state, signer, signing time, claim generator, actions, the AI declaration, ingredients and every
failure with an explanation a verification desk can read.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import c2pa

from clipproof.provenance.explanations import explain, library_detail
from clipproof.provenance.native import NATIVE_LOCK, context

# "recovered": the file carries no valid credentials of its own, but its watermark led to its
# original's manifest in a store (clipproof.provenance.durable).
CredentialState = Literal["absent", "valid", "trusted", "invalid", "error", "recovered"]

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# Source types that declare generative-model output (DESIGN.md, verdict rule 2).
GENERATIVE_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                           "algorithmicMedia"}
# Source types that declare a capture of the physical world (verdict rule 3).
CAPTURE_SOURCE_TYPES = {"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm",
                        "print"}

SOFT_BINDING = "c2pa.soft-binding"     # the assertion a watermark's value is recorded in

# Codes our reader adds for conditions the library reports as exceptions, not status entries.
NO_MANIFEST = "manifest.notFound"
REMOTE_NOT_FETCHED = "manifest.remoteNotFetched"
UNSUPPORTED_FORMAT = "asset.unsupportedFormat"
UNPARSEABLE = "asset.unparseable"
LIBRARY_ERROR = "general.error"


@dataclass(frozen=True)
class Failure:
    code: str
    explanation: str
    detail: str | None = None      # the library's own words, when it gave any


@dataclass(frozen=True)
class Signer:
    common_name: str | None
    organization: str | None
    issuer: str | None


@dataclass(frozen=True)
class Action:
    action: str
    digital_source_type: str | None
    software_agent: str | None
    when: str | None

    @property
    def source_type_name(self) -> str | None:
        """The IPTC term alone ("trainedAlgorithmicMedia"), without its URI prefix."""
        return self.digital_source_type.rsplit("/", 1)[-1] if self.digital_source_type else None


@dataclass(frozen=True)
class Ingredient:
    title: str | None
    format: str | None
    relationship: str | None
    has_credentials: bool
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class Credentials:
    """The ``credentials`` part of a Report (schema clipproof.report/1)."""

    state: CredentialState
    signer: Signer | None = None
    signed_at: str | None = None
    claim_generator: str | None = None
    actions: list[Action] = field(default_factory=list)
    ai_generated: bool | None = None
    ingredients: list[Ingredient] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    soft_binding: dict | None = None       # {"alg", "value"} of a c2pa.soft-binding assertion

    @property
    def present(self) -> bool:
        return self.state in ("valid", "trusted", "invalid", "recovered")

    @property
    def trusted_signer(self) -> bool:
        """Signed by a certificate chaining to a trust anchor (for recovered credentials, whose
        state says only that they were recovered)."""
        return self.state == "trusted" or (
            self.state == "recovered" and not any(f.code.startswith("signingCredential.") for f in self.failures))

    @property
    def declares_capture(self) -> bool:
        types = {a.source_type_name for a in self.actions}
        return bool(types & CAPTURE_SOURCE_TYPES) and not self.ai_generated

    @property
    def unreadable_asset(self) -> bool:
        """The C2PA parser could not read the file as any format it knows."""
        return self.state == "error" and any(f.code in (UNPARSEABLE, UNSUPPORTED_FORMAT) for f in self.failures)

    def to_dict(self) -> dict:
        return asdict(self)


def read_credentials(path: str | os.PathLike, trust_anchors_pem: str | None = None,
                     manifest_data: bytes | None = None, *, content: bytes | None = None) -> Credentials:
    """Validate ``path``'s manifest store against the given anchors (PEM bundle or None); with
    ``manifest_data``, validate that manifest store (kept apart from the file) against the file.
    ``content``: the file's bytes, when the caller has already read them; ``path`` then only
    names the format.

    Never raises for what is in the file: a missing, broken or unreachable manifest is a
    state with failures. File-system errors (missing, unreadable) propagate as OSError.
    """
    ctx = context(trust_anchors_pem)
    # The library seeks through the asset stream about 350 times for a small signed clip, each a
    # call back into Python: on a file object each is a system call, in memory it is not (1.35
    # against 1.1 ms of CPU per 49 kB clip, measured).
    with io.BytesIO(content) if content is not None else open(path, "rb") as stream, NATIVE_LOCK:
        return _read_stream(_format_hint(path), stream, ctx, manifest_data)[0]


def _read_stream(fmt: str, stream, ctx, manifest_data: bytes | None = None) -> tuple[Credentials, dict]:
    """The credentials c2pa-python validates in ``stream`` (``NATIVE_LOCK`` held by the caller),
    and the library's validation results ({} where it read no manifest)."""
    try:
        reader = c2pa.Reader(fmt, stream, manifest_data=manifest_data, context=ctx)
    except c2pa.C2paError.ManifestNotFound:
        return Credentials(state="absent", failures=[Failure(NO_MANIFEST, explain(NO_MANIFEST))]), {}
    except c2pa.C2paError as e:
        code = _error_code(e)
        return Credentials(state="error", failures=[Failure(code, explain(code, str(e)), library_detail(str(e)))]), {}
    with reader:
        store = json.loads(reader.json())
        state = reader.get_validation_state()
        results = reader.get_validation_results() or {}
        cert_info = _certificate_info(reader, store.get("active_manifest"))
    return _credentials(store, state, results, cert_info), results


# A manifest validated against bytes that are not its asset (a stripped or re-encoded copy, or
# no asset at all) fails its hard binding and nothing else, when it is sound.
HARD_BINDING_MISMATCH = {"assertion.bmffHash.mismatch", "assertion.dataHash.mismatch", "assertion.boxesHash.mismatch",
                         "assertion.collectionHash.mismatch"}


def read_stored_manifest(manifest_store: bytes, trust_anchors_pem: str | None = None) -> Credentials:
    """A manifest store kept apart from its asset (an entry of a manifest repository), validated
    on its own: the claim's signature, the certificate chain and trust. Without the asset its hard
    binding cannot hold, so that mismatch is left out; any other failure makes it ``invalid``."""
    ctx = context(trust_anchors_pem)
    with NATIVE_LOCK:
        found, results = _read_stream("application/c2pa", io.BytesIO(manifest_store), ctx)
    if found.state in ("absent", "error"):
        return found
    failures = [f for f in found.failures if f.code not in HARD_BINDING_MISMATCH]
    # Trusted only where the library says the chain reached an anchor (its own state is Invalid
    # here, for the binding), valid where nothing but trust failed.
    active = results.get("activeManifest") or {}
    trusted = any(s.get("code") == "signingCredential.trusted" for s in active.get("success", []))
    if any(f.code != "signingCredential.untrusted" for f in failures):
        state = "invalid"
    elif trusted:
        state = "trusted"
    else:
        state = "valid"
        if not any(f.code == "signingCredential.untrusted" for f in failures):
            failures.append(Failure("signingCredential.untrusted", explain("signingCredential.untrusted")))
    return replace(found, state=state, failures=failures)


def _error_code(e: c2pa.C2paError) -> str:
    # Some library errors arrive as the base class with a "Kind: message" text, so the text
    # decides as well as the class.
    text = str(e)
    if isinstance(e, c2pa.C2paError.RemoteManifest) or text.startswith("Remote"):
        return REMOTE_NOT_FETCHED
    if isinstance(e, c2pa.C2paError.NotSupported) or text.startswith("NotSupported"):
        return UNSUPPORTED_FORMAT
    if "could not be parsed" in text or "JUMBF" in text or isinstance(e, c2pa.C2paError.Decoding):
        return UNPARSEABLE
    return LIBRARY_ERROR


def _format_hint(path) -> str | None:
    # The library sniffs the bytes anyway; the extension only breaks ties, and an unknown one
    # must not stop a read, so None (detect) is the fallback.
    ext = Path(path).suffix.lower().lstrip(".")
    return ext if ext in _READER_FORMATS else None


_READER_FORMATS = {"mp4", "mov", "m4v", "avi", "jpg", "jpeg", "png", "webp", "heic", "heif",
                   "avif", "tif", "tiff", "gif", "dng"}


def _certificate_info(reader: c2pa.Reader, label: str | None) -> dict:
    # Only the crJSON view names the certificate's issuer; signature_info gives the subject alone.
    try:
        for m in json.loads(reader.crjson()).get("manifests", []):
            if m.get("label") == label:
                return (m.get("signature") or {}).get("certificateInfo") or {}
    except (c2pa.C2paError, ValueError):
        pass
    return {}


def _credentials(store: dict, state: str | None, results: dict, cert_info: dict) -> Credentials:
    manifest = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    sig = manifest.get("signature_info") or {}
    actions = [_action(a) for a in _actions(manifest)]
    active = results.get("activeManifest") or {}
    failures = [Failure(f.get("code", LIBRARY_ERROR), explain(f.get("code", ""), f.get("explanation")))
                for f in active.get("failure", [])]
    state_name = {"Trusted": "trusted", "Valid": "valid", "Invalid": "invalid"}.get(state or "", "invalid")
    if state_name == "valid" and not any(f.code == "signingCredential.untrusted" for f in failures):
        # The library leaves the code out in some configurations; the state alone decides.
        failures.append(Failure("signingCredential.untrusted", explain("signingCredential.untrusted")))
    source_types = {a.source_type_name for a in actions if a.source_type_name}
    ai = bool(source_types & GENERATIVE_SOURCE_TYPES) if actions else None
    return Credentials(
        state=state_name,
        signer=_signer(sig, cert_info) if sig else None,
        signed_at=sig.get("time"),
        claim_generator=_claim_generator(manifest),
        actions=actions,
        ai_generated=ai,
        ingredients=_ingredients(manifest, results),
        failures=failures,
        soft_binding=_soft_binding(manifest),
    )


def _soft_binding(manifest: dict) -> dict | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == SOFT_BINDING:
            data = assertion.get("data") or {}
            blocks = data.get("blocks") or [{}]
            return {"alg": data.get("alg"), "value": blocks[0].get("value")}
    return None


def _actions(manifest: dict) -> list[dict]:
    out: list[dict] = []
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").split(".v")[0] in ("c2pa.actions",):
            out += assertion.get("data", {}).get("actions", [])
    return out


def _action(a: dict) -> Action:
    agent = a.get("softwareAgent")
    if isinstance(agent, dict):
        agent = " ".join(str(v) for v in (agent.get("name"), agent.get("version")) if v)
    return Action(action=a.get("action", ""), digital_source_type=a.get("digitalSourceType"),
                  software_agent=agent, when=a.get("when"))


def _claim_generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info")
    if info:
        return ", ".join(" ".join(str(v) for v in (i.get("name"), i.get("version")) if v) for i in info)
    return manifest.get("claim_generator")


def _signer(sig: dict, cert_info: dict) -> Signer:
    # c2pa-rs's signature_info calls the leaf's subject organisation "issuer"; the issuing CA
    # comes from the certificate info.
    subject, issuer = cert_info.get("subject") or {}, cert_info.get("issuer") or {}
    issuer_name = ", ".join(v for v in (issuer.get("CN"), issuer.get("O")) if v) or None
    return Signer(common_name=subject.get("CN") or sig.get("common_name"),
                  organization=subject.get("O") or sig.get("issuer"), issuer=issuer_name)


def _ingredients(manifest: dict, results: dict) -> list[Ingredient]:
    deltas = {d.get("ingredientAssertionURI", "").rsplit("/", 1)[-1]: d.get("validationDeltas", {})
              for d in results.get("ingredientDeltas") or []}
    out = []
    for ing in manifest.get("ingredients", []):
        # Failures recorded when the ingredient was added, and those found re-validating it now.
        found = [f for f in ing.get("validation_status") or [] if not f.get("code", "").endswith(_SUCCESS)]
        found += deltas.get(ing.get("label", ""), {}).get("failure", [])
        codes = dict.fromkeys(f.get("code", LIBRARY_ERROR) for f in found)
        out.append(Ingredient(
            title=ing.get("title"), format=ing.get("format"), relationship=ing.get("relationship"),
            has_credentials=bool(ing.get("active_manifest") or ing.get("manifest_data")),
            failures=[Failure(c, f"Ingredient {ing.get('title')!r}: {explain(c)}") for c in codes],
        ))
    return out


_SUCCESS = (".validated", ".match", ".trusted", ".insideValidity")
