"""The signing identity used when none is given: development keys made on first use.

They live in the user's config folder (``~/.config/clipproof/dev-keys``); the first time they
are made, one line on stderr says so and how to trust or replace them. Such a signer verifies as
"unknown" unless its root is given as a trust anchor.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from clipproof.errors import OutputExistsError
from clipproof.provenance.keys import SIGNER_CHAIN, SIGNER_KEY, SigningIdentity, init_dev_keys, load_identity
from clipproof.user_dirs import config_home

_LOCK = threading.Lock()


def dev_keys_dir() -> Path:
    return config_home() / "dev-keys"


def default_identity(key: str | os.PathLike | None = None, cert: str | os.PathLike | None = None) -> SigningIdentity:
    """``key``/``cert`` when given (both), else the development identity (made if missing)."""
    if key is not None or cert is not None:
        if key is None or cert is None:
            from clipproof.errors import UsageError
            raise UsageError("give both --key and --cert, or neither (for the development identity)")
        return load_identity(key, cert)
    folder = dev_keys_dir()
    with _LOCK:
        if not (folder / SIGNER_KEY).is_file():
            try:
                paths = init_dev_keys(folder, common_name="clipproof generator (development)")
                print(f"clipproof: made development signing keys in {folder} (NOT for production; "
                      f"trust them with --trust {paths.root}, or sign with --key/--cert)", file=sys.stderr)
            except OutputExistsError:
                pass  # another process made them meanwhile
    return load_identity(folder / SIGNER_KEY, folder / SIGNER_CHAIN)
