"""A content fingerprint kept beside each stored manifest: difference hashes of frames.

A watermark says which manifest a clip claims; the fingerprint checks that the clip shows what
the signed original showed, so a mark copied onto other footage (a forgery pointing at someone
else's manifest) is reported as a mismatch. Hashes are taken on the centre of the frame, small
and grey, so re-encoding, scaling and a modest crop keep them close.

A feed that re-frames a clip crops it about its centre, to 9:16, 1:1 or 4:5: the copy's centre
is then another region of the original, and a 9:16 copy of a marked landscape clip — its mark
read bit for bit — was called a forgery. So a signed original keeps a ``reference``: the hashes
of each crop a copy may be (the frame, an 80 % centre crop, each feed shape), in groups, and a
copy matches when its frames agree with one group (``match``): with the whole frame as before,
with a crop more tightly, since several chances are several chances for other footage too.
Frames without detail (black, a fade) carry no evidence either way and are left out.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from clipproof.watermark.embedding import luma

HASH_BITS = 64
MATCH_BITS = 14            # median Hamming distance (of 64) at or below which frames agree
CENTRE = 0.6               # the central fraction of each side that is hashed


def frame_hash(luma: np.ndarray) -> int:
    """dHash of one grey frame (H, W): 8×8 signs of horizontal gradients on a 9×8 thumbnail."""
    h, w = luma.shape
    dy, dx = int(h * (1 - CENTRE) / 2), int(w * (1 - CENTRE) / 2)
    centre = np.ascontiguousarray(luma[dy:h - dy, dx:w - dx], np.float32)
    small = np.asarray(Image.fromarray(centre, mode="F").resize((9, 8), Image.Resampling.BOX))
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def fingerprint(frames: np.ndarray, step: int = 1) -> list[int]:
    """Hashes of every ``step``-th grey frame (N, H, W) or RGB frame (N, H, W, 3)."""
    frames = frames[::step]
    return [frame_hash(f) for f in (luma(frames) if frames.ndim == 4 else frames)]


# A reference is a flat list of integers, as stores and the resolver API keep fingerprints:
# this tag, the number of groups, then each group's hashes one after another. A list without it
# is a fingerprint of whole frames (stores written before references).
REFERENCE_TAG = int.from_bytes(b"cpREF\x00\x00\x01", "big")
ZOOM = 0.8                                  # a centre crop of the frame's own shape
FEED_ASPECTS = (9 / 16, 1.0, 4 / 5)         # width:height of vertical, square and portrait feeds
CROP_MATCH_BITS = 10                        # for a copy that matches a crop, not the whole frame
FLAT = 2.0                                  # grey levels of standard deviation: no detail to hash


def reference(frames: np.ndarray, step: int = 1) -> list[int]:
    """What a signed original keeps of every ``step``-th frame (N, H, W[, 3]): the hashes of the
    whole frame, then of each crop (``ZOOM``, then each of ``FEED_ASPECTS`` that is not the
    frame's own shape), group by group."""
    return pack(reference_groups(frames, step))


def reference_groups(frames: np.ndarray, step: int = 1) -> list[list[int]]:
    grey = luma(frames[::step]) if frames.ndim == 4 else frames[::step]
    _, h, w = grey.shape
    dy, dx = round(h * (1 - ZOOM) / 2), round(w * (1 - ZOOM) / 2)
    views = [grey, grey[:, dy:h - dy, dx:w - dx]]
    for aspect in FEED_ASPECTS:
        if aspect < w / h * 0.95:              # narrower than the frame: its sides are cut
            cut = round(w - h * aspect) // 2
            views.append(grey[:, :, cut:w - cut])
        elif aspect > w / h * 1.05:            # wider: its top and bottom are cut
            cut = round(h - w / aspect) // 2
            views.append(grey[:, cut:h - cut])
    return [fingerprint(v) for v in views]


def pack(groups: list[list[int]]) -> list[int]:
    return [REFERENCE_TAG, len(groups)] + [x for g in groups for x in g]


def _groups(stored: list[int]) -> list[list[int]]:
    if len(stored) < 2 or stored[0] != REFERENCE_TAG:
        return [stored]
    count, hashes = stored[1], stored[2:]
    size = len(hashes) // count if count > 0 else 0
    return [hashes[i * size:(i + 1) * size] for i in range(count)] if size else [hashes]


def match(frames: np.ndarray, stored: list[int]) -> tuple[int | None, bool]:
    """(the distance between grey frames (N, H, W) and a stored fingerprint or reference, and
    whether they agree). The distance is the best group's ``distance``; the whole frame agrees
    up to ``MATCH_BITS``, a crop up to ``CROP_MATCH_BITS``. None (and agreement) where nothing
    can be compared: no detail in the frames, or nothing stored."""
    detailed = frames[[float(np.std(f)) > FLAT for f in frames]]
    if not len(detailed):
        return None, True
    probe = fingerprint(detailed)
    gaps = [(gap, gap <= (MATCH_BITS if i == 0 else CROP_MATCH_BITS))
            for i, group in enumerate(_groups(stored)) if (gap := distance(probe, group)) is not None]
    # The closest group that agrees, else the closest.
    return min(gaps, key=lambda g: (not g[1], g[0]), default=(None, True))


def distance(probe: list[int], stored: list[int]) -> int | None:
    """Median over the probe's frames of the Hamming distance to the nearest stored frame."""
    if not probe or not stored:
        return None
    ref = np.array(stored, np.uint64)
    nearest = [int(min(bin(int(x)).count("1") for x in (ref ^ np.uint64(p)))) for p in probe]
    return int(np.median(nearest))
