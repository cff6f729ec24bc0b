"""Detector models by name: ``@register_model`` on a constructor, ``create_model(name)``
(as timm's registry does)."""
from __future__ import annotations

from typing import Callable

from clipproof.errors import UsageError

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    _MODELS[fn.__name__.replace("_", "-")] = fn
    return fn


def list_models() -> list[str]:
    _load_all()
    return sorted(_MODELS)


def create_model(name: str, **kwargs):
    _load_all()
    if name not in _MODELS:
        raise UsageError(f"unknown detector model {name!r}; known: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)


def _load_all() -> None:
    # Importing the model files registers them.
    from clipproof.detector.models import frame_baseline, temporal_attention  # noqa: F401
