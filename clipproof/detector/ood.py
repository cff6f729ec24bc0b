"""Is this clip like anything the detector was trained on? A distance in its feature space.

At the end of training, the embeddings of the training clips (each segment's backbone features
averaged over its frames) give a mean and a shrunk covariance (Ledoit–Wolf); the threshold is the
99th percentile of the Mahalanobis distances of the *real validation* clips — held-out camera and
rendered footage the detector handles. (Not of every validation clip: in the bundled corpus one
generated validation clip, an almost flat underwater LaVie scene, sat at 66 where real ones stay
within 25, and its crops set the percentile at 94 — far enough out that a flat rendered test
scene at 29–34 passed as familiar and was flagged.) A clip whose segments sit further out than
that, at the median, is unlike the training data: its score is not evidence, and ``verify`` says
"uncertain" with that reason.

Stored as ``ood.safetensors`` beside the weights and read with numpy alone (``verify`` on ONNX
Runtime never imports torch). An export whose convolutions are int8 moves the embeddings (a
re-uploaded clip of our own generator went from 24.1 to 24.7 against a threshold of 24.5), so it
has a check of its own, fitted the same way on its own embeddings: ``ood.int8.safetensors``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OOD_FILE = "ood.safetensors"
INT8_OOD_FILE = "ood.int8.safetensors"    # the check of an int8 ONNX export (tools.export_onnx --quantize)
QUANTILE = 0.99


@dataclass(frozen=True)
class OodCheck:
    mean: np.ndarray          # (D,)
    precision: np.ndarray     # (D, D): the inverse of the shrunk covariance
    threshold: float          # the validation clips' 99th-percentile distance

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``embeddings`` (N, D)."""
        d = np.asarray(embeddings, np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, self.precision, d), 0.0))

    def save(self, folder: str | os.PathLike, name: str = OOD_FILE) -> None:
        from safetensors.numpy import save_file

        from clipproof.atomic import atomic_output
        with atomic_output(Path(folder) / name) as tmp:
            save_file({"mean": self.mean, "precision": self.precision, "threshold": np.array([self.threshold])},
                      str(tmp))


def fit(train_embeddings: np.ndarray, val_embeddings: np.ndarray) -> OodCheck:
    from sklearn.covariance import LedoitWolf
    lw = LedoitWolf().fit(np.asarray(train_embeddings, np.float64))
    check = OodCheck(lw.location_, lw.precision_, 0.0)
    threshold = float(np.quantile(check.distances(val_embeddings), QUANTILE))
    return OodCheck(lw.location_, lw.precision_, threshold)


def load(folder: str | os.PathLike, name: str = OOD_FILE) -> OodCheck | None:
    """The folder's check, or None for weights trained before it existed."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    from safetensors.numpy import load_file
    t = load_file(str(path))
    return OodCheck(t["mean"], t["precision"], float(t["threshold"][0]))
