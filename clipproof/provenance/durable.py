"""Durable Content Credentials: a watermark that leads back to the manifest in a store.

Signing a video with a watermark (``watermark_video``, or ``watermark_frames`` for frames in
memory) embeds a fresh 64-bit payload; the manifest records it as a C2PA soft binding
(``c2pa.soft-binding`` with clipproof's algorithm name) and, once signed, goes into a manifest
store with the payload and a content fingerprint (``remember``).

``recover`` is what ``verify`` runs on a video whose own credentials are absent or broken: look
for the watermark, look its payload up in the stores, check the stored manifest's signature and
trust with c2pa-python against this file (its hard binding will not match: the file is a changed
copy), check the soft binding and the fingerprint agree with the clip, and say what was found.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

from clipproof.errors import StoreError
from clipproof.provenance.read import HARD_BINDING_MISMATCH, SOFT_BINDING
from clipproof.provenance.store import ManifestStore, StoredManifest

# Every `verify` imports this module (the report carries WatermarkFindings). numpy, the
# fingerprint and the watermark are imported by the functions that use them: a signed clip never
# needs a watermark search, and loading them all the same took 0.25 s of a 0.45 s `verify
# --no-detector` (tests/test_sign_verify.py keeps them out).
if TYPE_CHECKING:
    import numpy as np

FINGERPRINT_EVERY = 8           # frames between fingerprinted frames

Lookup = Literal["not-found", "too-small", "no-store", "not-in-store", "store-unavailable", "recovered", "mismatch",
                 "invalid-manifest"]


@dataclass(frozen=True)
class SoftBinding:
    """A watermark embedded in a clip: its payload (hex) and the clip's fingerprint."""

    payload: str
    fingerprint: list[int] = field(default_factory=list)

    def assertion(self) -> dict:
        from clipproof.watermark import ALGORITHM
        return {"label": SOFT_BINDING, "data": {"alg": ALGORITHM, "blocks": [{"scope": {}, "value": self.payload}]}}


def watermark_video(src: str | os.PathLike, dst: str | os.PathLike) -> SoftBinding:
    """Re-encode ``src`` to ``dst`` (H.264 MP4, audio copied) with a new watermark."""
    from clipproof.media import transcode_video
    from clipproof.provenance.fingerprint import pack, reference_groups
    from clipproof.watermark import Embedder, new_payload
    payload = new_payload()
    embed, groups, count = Embedder(payload), [], [0]

    def change(frame: np.ndarray) -> np.ndarray:
        marked = embed(frame)
        if count[0] % FINGERPRINT_EVERY == 0:
            views = reference_groups(marked[None])
            groups.extend([] for _ in views[len(groups):])       # the first frame sets the groups
            for group, hashes in zip(groups, views):
                group.extend(hashes)
        count[0] += 1
        return marked

    transcode_video(src, dst, change)
    return SoftBinding(payload.hex(), pack(groups))


def watermark_frames(frames: np.ndarray) -> tuple[np.ndarray, SoftBinding]:
    """Frames (T, H, W, 3) uint8 with a new watermark, and its soft binding."""
    import numpy as np

    from clipproof.provenance.fingerprint import reference
    from clipproof.watermark import Embedder, new_payload
    payload = new_payload()
    marked = np.stack(list(map(Embedder(payload), frames)))
    return marked, SoftBinding(payload.hex(), reference(marked, FINGERPRINT_EVERY))


def remember(store: ManifestStore, manifest_bytes: bytes, binding: SoftBinding, mime: str, sha256: str) -> str:
    """Put a just-signed file's manifest into ``store``; returns the manifest's id (label)."""
    from clipproof.watermark import ALGORITHM
    manifest_id = active_manifest_label(manifest_bytes)
    store.put(StoredManifest(manifest_id, ALGORITHM, binding.payload, manifest_bytes, mime, sha256, binding.fingerprint))
    return manifest_id


def active_manifest_label(manifest_bytes: bytes) -> str:
    import c2pa
    from clipproof.provenance.native import NATIVE_LOCK, context
    ctx = context(None)
    with NATIVE_LOCK, c2pa.Reader("application/c2pa", io.BytesIO(manifest_bytes), context=ctx) as reader:
        return json.loads(reader.json())["active_manifest"]


# ---------------------------------------------------------------------------------------------
# Recovery
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WatermarkFindings:
    """The ``watermark`` part of a Report: what the detector found and where it led."""

    found: bool
    lookup: Lookup
    note: str                                  # one sentence a desk reads
    payload: str | None = None
    bit_accuracy: float | None = None          # the watermark's confidence: agreement of the read bits
    sync_score: float | None = None
    false_match_odds: float | None = None      # per clip, from the detection threshold
    stores: list[str] = field(default_factory=list)
    manifest_id: str | None = None
    fingerprint_distance: int | None = None    # median bits of 64 between the clip and the original
    mirrored: bool = False                     # the copy is mirrored left to right against the original,
    quarter_turns: int = 0                     # then turned this many quarter turns clockwise

    @property
    def orientation(self) -> str:
        """How the copy lies against the original, as a report says it ("" as the original)."""
        from clipproof.watermark.detection import Orientation
        return Orientation(self.mirrored, self.quarter_turns).text

    def to_dict(self) -> dict:
        return asdict(self)


def recover(path: Path, anchors_pem: str | None, stores: Sequence[ManifestStore]):
    """Look for the watermark in the video at ``path``; returns (WatermarkFindings, recovered
    Credentials or None). Media errors propagate; store errors become the findings' note."""
    from clipproof.provenance.fingerprint import match
    from clipproof.provenance.read import read_credentials
    from clipproof.watermark import ALGORITHM
    from clipproof.watermark.detection import search

    det, luma = search(path)
    if not det.found:
        return WatermarkFindings(False, "not-found", "No clipproof watermark was found in the pictures.",
                                 sync_score=det.sync_score, false_match_odds=det.false_match_odds), None
    seen = dict(payload=det.payload, bit_accuracy=round(det.bit_accuracy or 0.0, 4), sync_score=det.sync_score,
                false_match_odds=det.false_match_odds, stores=[s.location for s in stores], mirrored=det.mirrored,
                quarter_turns=det.quarter_turns)
    if not stores:
        return WatermarkFindings(True, "no-store", f"A clipproof watermark was found (payload {det.payload}), "
                                 "but no manifest store is configured to look it up (--store).", **seen), None
    matches, unavailable = [], []
    for store in stores:
        try:
            matches += store.by_binding(ALGORITHM, det.payload)
        except StoreError as e:
            unavailable.append(e.reason)
    if not matches:
        if unavailable:
            return WatermarkFindings(True, "store-unavailable", f"A clipproof watermark was found (payload {det.payload}), "
                                     f"but a manifest store could not be asked: {unavailable[0]}.", **seen), None
        return WatermarkFindings(True, "not-in-store", f"A clipproof watermark was found (payload {det.payload}), "
                                 "but no store holds a manifest for it.", **seen), None
    probe = luma[::4]
    for entry in matches:
        gap, agrees = match(probe, entry.fingerprint)
        if not agrees:
            findings = WatermarkFindings(True, "mismatch", f"A clipproof watermark points at manifest {entry.manifest_id}, "
                                         f"but this clip does not show what that manifest's original showed "
                                         f"(fingerprint {gap} of 64 bits apart): a copied or forged mark.",
                                         manifest_id=entry.manifest_id, fingerprint_distance=gap, **seen)
            continue
        credentials = read_credentials(path, anchors_pem, manifest_data=entry.manifest_store)
        other = [f for f in credentials.failures if f.code not in HARD_BINDING_MISMATCH
                 and f.code != "signingCredential.untrusted"]
        bound = (credentials.soft_binding or {}).get("value") == det.payload
        if credentials.state not in ("invalid", "valid", "trusted") or other or not bound:
            findings = WatermarkFindings(True, "invalid-manifest", f"The manifest stored for watermark {det.payload} "
                                         "does not validate or does not carry this soft binding.",
                                         manifest_id=entry.manifest_id, fingerprint_distance=gap, **seen)
            continue
        recovered = replace(credentials, state="recovered",
                            failures=[f for f in credentials.failures if f.code not in HARD_BINDING_MISMATCH])
        turned = det.orientation.text
        return WatermarkFindings(True, "recovered", "This file is a changed copy of a signed original"
                                 f"{', ' + turned if turned else ''}: its own bytes "
                                 "no longer match, and its watermark led to the original's manifest "
                                 f"({entry.manifest_id}), whose signature checks out.",
                                 manifest_id=entry.manifest_id, fingerprint_distance=gap, **seen), recovered
    return findings, None

