"""What clipproof writes into a manifest (DESIGN.md, "The manifest on every generated clip")."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from clipproof.errors import InputMissingError, UsageError
from clipproof.provenance.read import CAPTURE_SOURCE_TYPES, GENERATIVE_SOURCE_TYPES, IPTC
from clipproof.version import __version__

TRAINED_ALGORITHMIC_MEDIA = "trainedAlgorithmicMedia"
DIGITAL_CAPTURE = "digitalCapture"
KNOWN_SOURCE_TYPES = GENERATIVE_SOURCE_TYPES | CAPTURE_SOURCE_TYPES | {
    "minorHumanEdits", "humanEdits", "composite", "compositeCapture", "compositeSynthetic",
    "dataDrivenMedia", "digitalCreation", "screenCapture", "virtualRecording"}

# Extensions we sign, with the MIME type c2pa-python expects.
MIME_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime", ".avi": "video/avi",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
}


def mime_type(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in MIME_TYPES:
        raise UsageError(f"cannot sign {ext or 'extensionless'} files; "
                         f"supported: {', '.join(sorted(MIME_TYPES))}", path=path)
    return MIME_TYPES[ext]


def source_type_uri(name: str) -> str:
    """Accept the IPTC term or its full URI; refuse anything else."""
    term = name.rsplit("/", 1)[-1]
    if term not in KNOWN_SOURCE_TYPES:
        raise UsageError(f"unknown digital source type {name!r}; e.g. {TRAINED_ALGORITHMIC_MEDIA}, {DIGITAL_CAPTURE}")
    return IPTC + term


def build_manifest(
    *,
    title: str,
    mime: str,
    source_type: str,
    software_agent: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    assertions: list[dict] | None = None,
) -> dict:
    """The manifest definition c2pa-python's Builder takes.

    The first action is ``c2pa.created`` with its digitalSourceType (the C2PA rule), the agent
    that made the content and, for generated clips, the parameters needed to reproduce it.
    """
    created: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": source_type_uri(source_type),
        "softwareAgent": software_agent or {"name": "clipproof", "version": __version__},
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if parameters:
        created["parameters"] = parameters
    return {
        "claim_generator_info": [{"name": "clipproof", "version": __version__}],
        "title": title,
        "format": mime,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [created]}}, *(assertions or [])],
    }


def load_assertions(path: str | os.PathLike) -> list[dict]:
    """Extra assertions from a JSON file: one ``{"label", "data"}`` object or a list of them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputMissingError("assertion file not found", path=path) from e
    except OSError as e:
        raise InputMissingError(f"cannot read assertion file ({e.strerror})", path=path) from e
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"not valid JSON ({e})", path=path) from e
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("label"), str) and item["label"].strip()
                and "data" in item):
            raise UsageError("each assertion needs a non-empty string 'label' and a 'data' field", path=path)
        if item["label"].startswith("c2pa.actions"):
            raise UsageError("actions are written by clipproof; add other assertions only", path=path)
    return items
