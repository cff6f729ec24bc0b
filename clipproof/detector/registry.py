"""Detector models by name: ``@register_model`` on a model class, ``create_model(name)``,
``model_class(name)``, ``list_models()`` (as timm's registry does).

Each model lives in ``models/<name>.py`` (dashes as underscores), so the names are known from
the file names without importing torch; asking for a model imports its file, which registers it.
"""
from __future__ import annotations

import importlib
import pkgutil

from clipproof.errors import UsageError

_MODELS: dict[str, type] = {}
_PACKAGE = "clipproof.detector.models"


def register_model(cls: type) -> type:
    """Class decorator: the class's ``model_name`` becomes its registry name."""
    _MODELS[cls.model_name] = cls
    return cls


def list_models() -> list[str]:
    """The registered model names (cheap: read from the model files' names)."""
    from clipproof.detector import models
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(models.__path__) if m.name != "base")


def model_class(name: str) -> type:
    if name not in list_models():
        raise UsageError(f"unknown detector model {name!r}; known: {', '.join(list_models())}")
    importlib.import_module(f"{_PACKAGE}.{name.replace('-', '_')}")
    return _MODELS[name]


def create_model(name: str, **kwargs):
    """A new model ``name`` with random weights, built with ``kwargs`` (its config)."""
    return model_class(name)(**kwargs)
