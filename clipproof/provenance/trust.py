"""Where trust anchors come from: ``--trust PEM``, the config file, ``CLIPPROOF_TRUST_ANCHORS``.

All three are combined (an explicit ``--trust`` adds to the configured anchors rather than
replacing them, so a desk's standing anchors are never silently dropped). A signer that chains
to none of them is reported as untrusted: valid credentials from an unknown signer never make a
clip authentic.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Iterable

from clipproof.errors import CredentialError

ENV_VAR = "CLIPPROOF_TRUST_ANCHORS"


def config_dir() -> Path:
    """The user's clipproof config folder (``$XDG_CONFIG_HOME/clipproof``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "clipproof"


def config_file() -> Path:
    return Path(os.environ.get("CLIPPROOF_CONFIG") or config_dir() / "config.toml")


def anchor_paths(explicit: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Anchor files from every source, explicit first, without duplicates."""
    paths: list[Path] = [Path(p) for p in explicit]
    env = os.environ.get(ENV_VAR, "")
    paths += [Path(p) for p in env.split(os.pathsep) if p]
    cfg = config_file()
    if cfg.is_file():
        try:
            data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise CredentialError(f"{cfg}: not a valid TOML config ({e})") from e
        listed = data.get("trust", {}).get("anchors", [])
        if isinstance(listed, str):
            listed = [listed]
        paths += [(cfg.parent / Path(p).expanduser()) for p in listed]
    seen: dict[Path, None] = {}
    for p in paths:
        seen.setdefault(p.expanduser(), None)
    return list(seen)


def load_anchors(explicit: Iterable[str | os.PathLike] = ()) -> str | None:
    """One PEM bundle of every configured anchor certificate, or None when there are none.

    Raises CredentialError (unparseable) or InputMissingError (missing file) with the path.
    """
    paths = anchor_paths(explicit)
    if not paths:
        return None
    # cryptography loads only when there are anchors to check: verify starts faster without.
    from cryptography.hazmat.primitives import serialization
    from clipproof.provenance.keys import load_certificates
    pems: list[bytes] = []
    for path in paths:
        for cert in load_certificates(path, "trust anchor"):
            pems.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(pems).decode("ascii") if pems else None
