"""Refit detector weights' calibration as training now fits it: on the validation split with
its re-upload variants (``python -m tools.recalibrate WEIGHTS --corpus CORPUS``, the corpus the
weights were trained on). Keeps ``calls_real`` and its note."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from clipproof.datasets.dataset import ClipDataset
from clipproof.detector.train import fit_calibration
from clipproof.detector.weights import CALIBRATION_FILE, load_weights


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.recalibrate", description=__doc__)
    p.add_argument("weights", type=Path, help="detector weights folder")
    p.add_argument("--corpus", type=Path, required=True, help="the corpus the weights were trained on")
    args = p.parse_args(argv)
    model, config, old = load_weights(args.weights)
    fitted = fit_calibration(model, ClipDataset(args.corpus, "val", size=tuple(config["size"])))
    new = dataclasses.replace(fitted, calls_real=old.calls_real, calls_real_note=old.calls_real_note)
    new.save(args.weights / CALIBRATION_FILE)
    print(f"temperature {old.temperature:.3f} -> {new.temperature:.3f}, low {old.low:.3f} -> {new.low:.3f}, "
          f"high {old.high:.3f} -> {new.high:.3f} ({new.val_clips} validation clips)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
