"""The c2pa-python context and the process-wide lock around its native calls.

c2pa-python's native handles have crashed under concurrent use upstream (c2pa-python PR #314),
so every call into the library from clipproof holds ``NATIVE_LOCK``: the public API is
thread-safe, and pipelines that need parallel throughput scale out with processes.
"""
from __future__ import annotations

import functools
import threading

import c2pa

NATIVE_LOCK = threading.Lock()

# Signing keeps its output in memory below this size and spills to a temp file above it;
# the library's default (512 MB) nearly doubles peak memory when signing large video.
_SIGN_MEMORY_THRESHOLD_MB = 16


@functools.lru_cache(maxsize=16)
def context(trust_anchors_pem: str | None) -> c2pa.Context:
    """A Context for these anchors: offline (no remote manifest fetch), trust checked."""
    settings: dict = {
        "verify": {"verify_trust": True, "remote_manifest_fetch": False},
        "core": {"backing_store_memory_threshold_in_mb": _SIGN_MEMORY_THRESHOLD_MB},
    }
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    with NATIVE_LOCK:
        return c2pa.Context(c2pa.Settings.from_dict(settings))
