"""Detector models by name: ``@register_model`` on a constructor, ``create_model(name)``,
``list_models()`` (as timm's registry does).

Each model lives in ``models/<name>.py`` (dashes as underscores), so the names are known from
the file names without importing torch; creating a model imports its file, which registers it.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from clipproof.errors import UsageError

_MODELS: dict[str, Callable] = {}
_PACKAGE = "clipproof.detector.models"


def register_model(fn: Callable) -> Callable:
    _MODELS[fn.__name__.replace("_", "-")] = fn
    return fn


def list_models() -> list[str]:
    """The registered model names (cheap: read from the model files' names)."""
    from clipproof.detector import models
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(models.__path__) if m.name != "base")


def create_model(name: str, **kwargs):
    if name not in list_models():
        raise UsageError(f"unknown detector model {name!r}; known: {', '.join(list_models())}")
    importlib.import_module(f"{_PACKAGE}.{name.replace('-', '_')}")
    return _MODELS[name](**kwargs)
