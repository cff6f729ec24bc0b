"""Shared test material: real clips made here, development keys, the reference fixtures."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clipproof.demo import moving_scene
from clipproof.media import write_mp4
from clipproof.provenance.keys import init_dev_keys
from clipproof.provenance.sign import sign

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "c2pa-fixtures"
CERTS = FIXTURES / "certs"
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch, tmp_path_factory):
    """Tests see no trust anchors but those they give: no user config, no environment."""
    monkeypatch.delenv("CLIPPROOF_TRUST_ANCHORS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
    monkeypatch.delenv("CLIPPROOF_CONFIG", raising=False)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    return init_dev_keys(tmp_path_factory.mktemp("keys") / "dev")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory):
    return init_dev_keys(tmp_path_factory.mktemp("keys") / "other", common_name="someone else")


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A 2-second H.264 clip, never signed."""
    return write_mp4(moving_scene(24, 128, 96), tmp_path_factory.mktemp("clips") / "clip.mp4", fps=12)


@pytest.fixture(scope="session")
def ai_clip(clip, keys, tmp_path_factory) -> Path:
    return sign(clip, tmp_path_factory.mktemp("signed") / "ai.mp4", key=keys.key, cert=keys.chain,
                source_type="trainedAlgorithmicMedia")


@pytest.fixture(scope="session")
def capture_clip(clip, keys, tmp_path_factory) -> Path:
    return sign(clip, tmp_path_factory.mktemp("signed") / "capture.mp4", key=keys.key, cert=keys.chain,
                source_type="digitalCapture")


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a console script of this environment (``verify`` or ``clipproof``)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)
