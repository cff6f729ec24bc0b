"""The user's folders (``clipproof.user_dirs``): where the store, the config and the cache live."""
from __future__ import annotations

from pathlib import Path


def test_a_relative_xdg_folder_is_ignored(monkeypatch, tmp_path):
    """The XDG spec: a relative value is invalid. XDG_DATA_HOME=data put the manifest store (and
    XDG_CONFIG_HOME the trust config and development keys) wherever the command ran."""
    from clipproof.datasets.sources import default_sample_cache
    from clipproof.provenance.store import default_store_path
    from clipproof.user_dirs import config_home
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, "relative")
    home = tmp_path / "home"
    assert (default_store_path(), config_home(), default_sample_cache()) == (
        home / ".local/share/clipproof/manifests.sqlite", home / ".config/clipproof", home / ".cache/clipproof/samples")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data/clipproof/manifests.sqlite" and isinstance(default_store_path(), Path)
