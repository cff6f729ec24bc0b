"""clipproof: where did this video come from?

The public API (see README.md):

    from clipproof import verify, Verifier, sign
    report = verify("clip.mp4", trust="root.pem")      # -> Report
    report.verdict, report.to_dict()

Imports are lazy, so ``import clipproof`` is cheap and never loads torch by itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clipproof.version import __version__

if TYPE_CHECKING:
    from clipproof.provenance.keys import init_dev_keys
    from clipproof.provenance.read import Credentials, read_credentials
    from clipproof.provenance.report import Report
    from clipproof.provenance.sign import sign
    from clipproof.verification import Outcome, Verifier, verify

# name -> module that defines it
_EXPORTS = {
    "verify": "clipproof.verification",
    "Verifier": "clipproof.verification",
    "Outcome": "clipproof.verification",
    "Report": "clipproof.provenance.report",
    "Credentials": "clipproof.provenance.read",
    "read_credentials": "clipproof.provenance.read",
    "sign": "clipproof.provenance.sign",
    "init_dev_keys": "clipproof.provenance.keys",
    # diffusers' from_pretrained finds a pipeline's classes as attributes of their top package.
    "VideoDiT": "clipproof.generator.model",
    "ClipproofVideoPipeline": "clipproof.generator.pipeline",
}

__all__ = ["__version__", *_EXPORTS]


def __dir__() -> list[str]:
    # The exports are lazy: without this, dir() and tab completion would show none of them.
    return sorted({*globals(), *_EXPORTS})


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clipproof' has no attribute {name!r}")
