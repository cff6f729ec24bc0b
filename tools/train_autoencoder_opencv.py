"""``clipproof datasets train-autoencoder`` on a machine without PyAV, footage read through OpenCV:
``python -m tools.train_autoencoder_opencv FOOTAGE... --arch kl-sd --out DIR [its options]``.

The GPU machine lent to some sessions has torch and OpenCV but no PyAV and no package index
(diffusers travels as a wheel); this runs the same command, the same training code and the same
output folder there. OpenCV decodes the same footage with its own FFmpeg build (its conversion to
RGB may differ from PyAV's by a level here and there).
"""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np

from clipproof.cli import main
from clipproof.datasets import autoencoders
from clipproof.errors import InvalidMediaError


def read_with_opencv(video: Path, max_frames: int) -> np.ndarray:
    """The first ``max_frames`` frames of ``video``, (T, H, W, 3) uint8 RGB."""
    import cv2
    capture, frames = cv2.VideoCapture(str(video)), []
    while len(frames) < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise InvalidMediaError("OpenCV could not decode a frame", path=video)
    return np.stack(frames)


if __name__ == "__main__":
    autoencoders.train_autoencoder = partial(autoencoders.train_autoencoder, read=read_with_opencv)
    sys.exit(main(["datasets", "train-autoencoder", *sys.argv[1:]]))
