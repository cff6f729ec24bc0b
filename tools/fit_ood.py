"""Fit the out-of-distribution check for detector weights trained before it existed:
``python -m tools.fit_ood WEIGHTS --corpus CORPUS`` (the corpus the weights were trained on).

Writes ``WEIGHTS/ood.safetensors`` from the embeddings of the corpus' train split (the variants
the weights were trained on, as stored) and the 99th-percentile distance of its real validation
clips, as training now does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipproof.datasets.dataset import ClipDataset
from clipproof.detector import ood
from clipproof.detector.train import fit_ood
from clipproof.detector.weights import load_weights, read_info


def fit_for(weights: Path, corpus: Path, model=None, name: str = ood.OOD_FILE) -> ood.OodCheck:
    """Fit and save the check of ``weights`` (of ``model`` when given: anything that returns the
    model's outputs, such as an ONNX export's session) as ``name``."""
    if model is None:
        model, config, _ = load_weights(weights)
    else:
        config, _ = read_info(weights)
    size = tuple(config["size"])
    # The variants it was trained on (GIF forms, re-encodes): the distribution it was fitted to.
    variants = tuple(config.get("settings", {}).get("train_variants", ("original",)))
    check = fit_ood(model, ClipDataset(corpus, "train", size=size, variants=variants),
                    ClipDataset(corpus, "val", size=size, variants=variants))
    check.save(weights, name)
    return check


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.fit_ood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, help="detector weights folder")
    p.add_argument("--corpus", type=Path, required=True, help="the corpus the weights were trained on")
    args = p.parse_args(argv)
    check = fit_for(args.weights, args.corpus)
    print(f"{args.weights / ood.OOD_FILE}: {len(check.mean)} features, threshold {check.threshold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
