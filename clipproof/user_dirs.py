"""The user's folders, as the XDG Base Directory spec places them: ``$XDG_CONFIG_HOME`` (trust
anchors, development keys), ``$XDG_DATA_HOME`` (the manifest store), ``$XDG_CACHE_HOME`` (fetched
sample footage), each under ``clipproof/``. A relative value is ignored, as the spec asks: one
(``XDG_DATA_HOME=data``) put the store wherever the command happened to run.
"""
from __future__ import annotations

import os
from pathlib import Path


def _home(variable: str, *default: str) -> Path:
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home().joinpath(*default)


def config_home() -> Path:
    return _home("XDG_CONFIG_HOME", ".config") / "clipproof"


def data_home() -> Path:
    return _home("XDG_DATA_HOME", ".local", "share") / "clipproof"


def cache_home() -> Path:
    return _home("XDG_CACHE_HOME", ".cache") / "clipproof"
