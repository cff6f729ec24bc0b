"""The c2pa-python context and the process-wide lock around its native calls.

c2pa-python's native handles have crashed under concurrent use upstream (c2pa-python PR #314),
so every call into the library from clipproof holds ``NATIVE_LOCK``: the public API is
thread-safe, and pipelines that need parallel throughput scale out with processes.

Processes made by fork (multiprocessing's default on Linux, pre-forking servers) inherit the
parent's cached Context, which c2pa-python refuses in a child ("Context is not valid": every
file came back as a reader error); the cache is emptied in the child, and the lock is held across
the fork so that no other thread's call leaves it locked there.
"""
from __future__ import annotations

import functools
import os
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


def _fresh_in_child() -> None:
    context.cache_clear()
    NATIVE_LOCK.release()


os.register_at_fork(before=NATIVE_LOCK.acquire, after_in_parent=NATIVE_LOCK.release, after_in_child=_fresh_in_child)
