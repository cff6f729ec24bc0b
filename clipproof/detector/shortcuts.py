"""The no-shortcut check: can container metadata alone tell real clips from generated ones?

Every clip of a corpus goes through the same encode path (same size, codec, CRF distribution,
frame count; frame rates drawn from the real clips'), so a classifier that sees only what the
container says — frame rate, frame count, duration, width, height, CRF, codec — should be at
chance on held-out clips. If it is not, the detector could learn the container, not the pixels.
"""
from __future__ import annotations

import os
import zlib

import numpy as np

from clipproof.records import read_manifest

FEATURES = ("fps", "frames", "duration_s", "width", "height", "crf", "codec")


def metadata_check(corpus: str | os.PathLike, seed: int = 0) -> dict:
    """Held-out accuracy and AUC of a gradient-boosted classifier on metadata only
    (train split → test split, originals), with the majority-class rate for reference."""
    from clipproof.media import probe
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    records = [r for r in read_manifest(corpus) if r.variant == "original"]
    root = os.fspath(corpus)

    def features(r) -> list[float]:
        info = probe(os.path.join(root, r.path))
        return [info.fps, info.frames, info.duration_s, info.width, info.height, float(r.crf or -1),
                float(zlib.crc32(info.codec.encode()) % 997)]       # stable, unlike str hash()

    split = {s: [r for r in records if r.split == s] for s in ("train", "test")}
    x = {s: np.array([features(r) for r in rs]) for s, rs in split.items()}
    y = {s: np.array([1 if r.label == "synthetic" else 0 for r in rs]) for s, rs in split.items()}
    # sklearn's default leaf (20 clips) cannot split a small corpus at all, which reads as "at
    # chance" whatever the metadata says (the leaky-corpus test caught it): 5 clips per leaf.
    clf = HistGradientBoostingClassifier(random_state=seed, max_iter=100, min_samples_leaf=5).fit(x["train"], y["train"])
    p = clf.predict_proba(x["test"])[:, 1]
    majority = max(y["test"].mean(), 1 - y["test"].mean())
    auc = float(roc_auc_score(y["test"], p)) if len(set(y["test"].tolist())) == 2 else None
    return {"features": list(FEATURES), "train_clips": len(y["train"]), "test_clips": len(y["test"]),
            "accuracy": float(((p >= 0.5) == y["test"]).mean()), "majority_rate": float(majority), "auc": auc}
