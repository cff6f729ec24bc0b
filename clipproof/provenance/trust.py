"""Where trust anchors come from: ``--trust PEM``, the config file, ``CLIPPROOF_TRUST_ANCHORS``.

All three are combined (an explicit ``--trust`` adds to the configured anchors rather than
replacing them, so a desk's standing anchors are never silently dropped). A signer that chains
to none of them is reported as untrusted: valid credentials from an unknown signer never make a
clip authentic.
"""
from __future__ import annotations

import os
import re
import tomllib
import warnings
from pathlib import Path
from typing import Iterable

from clipproof.display import safe_text
from clipproof.errors import CredentialError, InputMissingError, UsageError
from clipproof.user_dirs import config_home

ENV_VAR = "CLIPPROOF_TRUST_ANCHORS"
# What the config file may hold: {table: {key, ...}}. Anything else is refused, so a misspelt
# key (which would silently drop a desk's anchors) is an error, not a no-op.
CONFIG_KEYS = {"trust": {"anchors"}}


def config_file() -> Path:
    return Path(os.environ.get("CLIPPROOF_CONFIG") or config_home() / "config.toml")


def anchor_paths(explicit: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Anchor files from every source, explicit first, without duplicates."""
    paths: list[Path] = [Path(p) for p in explicit]
    env = os.environ.get(ENV_VAR, "")
    # Looked for before splitting: os.pathsep (":" here) would cut "https://..." in two.
    url = re.search(r"[A-Za-z][A-Za-z0-9+.-]*://\S*", env)
    if url:
        raise UsageError(f"{ENV_VAR} holds a URL ({url.group(0)}); anchors are local PEM files, never fetched")
    paths += [Path(p) for p in env.split(os.pathsep) if p]
    cfg = config_file()
    if cfg.is_file():
        paths += _config_anchors(cfg)
    seen: dict[Path, None] = {}
    for p in paths:
        seen.setdefault(p.expanduser(), None)
    return list(seen)


def _config_anchors(cfg: Path) -> list[Path]:
    try:
        data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CredentialError(f"not a valid TOML config ({e})", path=cfg) from e
    for table, value in data.items():
        if table not in CONFIG_KEYS or not isinstance(value, dict):
            raise UsageError(f"unknown setting {table!r} in the config (known: [trust] anchors)", path=cfg)
        unknown = sorted(set(value) - CONFIG_KEYS[table])
        if unknown:
            raise UsageError(f"unknown key {table}.{unknown[0]} in the config (known: [trust] anchors)", path=cfg)
    listed = data.get("trust", {}).get("anchors", [])
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise UsageError("[trust] anchors must be a path or a list of paths", path=cfg)
    return [cfg.parent / Path(p).expanduser() for p in listed]


def load_anchors(explicit: Iterable[str | os.PathLike] = ()) -> str | None:
    """One PEM bundle of every configured anchor certificate, or None when there are none.

    Raises CredentialError (unparseable; a private key in the file, which is never echoed; a
    certificate that is not a CA) or UsageError (an anchor file that is not there: the setting
    is wrong, not the clip) with the path. An expired anchor is kept, with a ``TrustWarning``
    (signatures made while it was valid may still chain to it).
    """
    paths = anchor_paths(explicit)
    if not paths:
        return None
    # cryptography loads only when there are anchors to check: verify starts faster without.
    from cryptography.hazmat.primitives import serialization
    from clipproof.provenance.keys import parse_certificates, read_pem_file
    pems: list[bytes] = []
    for path in paths:
        try:
            data = read_pem_file(path, "trust anchor")
        except InputMissingError as e:
            raise UsageError(e.reason, path=e.path) from None
        if b"PRIVATE KEY-----" in data:
            # Someone pointed the anchors at a signer's key file: say so without a byte of it.
            raise CredentialError("holds a private key; an anchor file holds CA certificates only "
                                  "(nothing of the key is shown)", path=path)
        certs = parse_certificates(data, path, "trust anchor")
        _check_anchors(path, certs)
        pems += [cert.public_bytes(serialization.Encoding.PEM) for cert in certs]
    return b"".join(pems).decode("ascii") if pems else None


class TrustWarning(UserWarning):
    """A trust anchor that is used, but that its owner should look at (expired)."""


def _check_anchors(path: Path, certs: list) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from clipproof.provenance.keys import subject_attribute
    now = dt.datetime.now(dt.timezone.utc)
    for i, cert in enumerate(certs, 1):
        name = safe_text(subject_attribute(cert.subject, NameOID.COMMON_NAME) or cert.subject.rfc4514_string(),
                         limit=80)
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise CredentialError(f"certificate {i} ({name}) is not a CA certificate; a trust anchor must be "
                                  "one (basicConstraints CA:TRUE)", path=path)
        if cert.not_valid_after_utc < now:
            warnings.warn(f"{path}: trust anchor {i} ({name}) expired on {cert.not_valid_after_utc:%Y-%m-%d}",
                          TrustWarning, stacklevel=3)
