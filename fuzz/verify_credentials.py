"""Fuzz the credentials-only verify path (``verify --no-detector``) with atheris.

Every input is written to a file and verified as one row of a batch would be: the row may be
any verdict or any documented error, but never exit 70 (a bug), and never slower than
``-timeout`` seconds (a stall). libFuzzer keeps the input that breaks either rule.

    make fuzz                              # 10 minutes from the seeds in tests/fixtures
    python -m fuzz.verify_credentials -max_total_time=60 -timeout=10 CORPUS_DIR SEED_DIR...

``one_input`` runs without atheris too: the test suite feeds it the hostile corpus.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# What a name may tell the readers (the C2PA library breaks ties by extension): the last byte
# of the input picks one (the first belongs to the file's magic number).
SUFFIXES = (".mp4", ".mov", ".jpg", ".png", ".avi", ".webm", ".gif", ".m4s")
_VERIFIER = None
_TMP = Path(tempfile.mkdtemp(prefix="clipproof-fuzz-"))


def one_input(data: bytes) -> None:
    """Verify ``data`` as a file; raise on a bug (exit 70), as the batch would report it."""
    global _VERIFIER
    from clipproof.verification import Verifier
    if _VERIFIER is None:
        _VERIFIER = Verifier(detector=None)
    if not data:
        return
    path = _TMP / f"input{SUFFIXES[data[-1] % len(SUFFIXES)]}"
    path.write_bytes(data)
    outcome, = _VERIFIER.verify_many([path])
    if outcome.exit_code == 70:
        raise RuntimeError(f"exit 70: {outcome.error}")
    outcome.to_dict()          # the JSON row must build too


def main(argv: list[str]) -> None:
    import atheris
    with atheris.instrument_imports():
        import clipproof.media  # noqa: F401  (instrumented: coverage guides the mutations)
        import clipproof.provenance.read  # noqa: F401
        import clipproof.structure  # noqa: F401
        import clipproof.verification  # noqa: F401
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("CLIPPROOF_TRUST_ANCHORS", "")
    main(sys.argv)
