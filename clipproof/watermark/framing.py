"""Where the picture lies inside letterbox or pillarbox bars.

Re-uploads often put a clip inside a frame of another shape: a landscape clip in a 9:16 frame
for a vertical feed, or in a square. The mark's chips are sized from the picture's short side
(``pattern.CHIPS_PER_SHORT_SIDE``), and the search looks for them at sizes relative to the
frame's: inside such a frame they are a half or a third of what the search expects, outside
the sizes it covers. The bars are flat — the same level in every pixel and every frame — or,
as vertical feeds fill them, a blurred and enlarged copy of the clip, with a small fraction of
the picture's fine detail; either way the picture between them can be found, and searched at
its own size.

Memes and reaction posts put the clip under a caption band (text on a plain ground), or inside a
larger canvas; the bands are then of any size, on one side or several, and not flat. What they
share is that they are dead still — the same pixels in every frame, without a camera's noise —
and mostly plain (a flat ground, a line of text), and that the picture starts along a straight
line, where pixels begin to move. A camera on a tripod also has still rows at its edges (a
table, a wall): they carry the sensor's noise (measured on the sample and wild-dev footage: a
median temporal deviation of 0.20–0.46 grey levels in such rows, against under 0.1 in bars and
caption bands), and where a re-upload's encoder has smoothed the noise away, their texture
still tells them from a plain band.
"""
from __future__ import annotations

import math

import numpy as np

BAR_STD = 2.5      # grey levels: a bar row or column varies less than this over space and time
SOFT = 0.3         # a blurred bar's detail (mean step between neighbours) is below this share of the picture's
STEP = 3.0         # and the picture's edge has this many times the bar's detail: a cut, not a gradual softening
MIN_BAR = 0.04     # of the side: thinner borders are left alone
MARGIN = 1         # pixels inside the bars' edge, where scaling blends bar and picture
STILL = 1.0        # grey levels: a pixel whose level varies less than this over the frames read stands still
BAND_NOISE = 0.1   # the median of a band's rows' mean deviation over the frames read (grey levels)
CUT_SHARE = 0.15   # the picture's rows past a band have at least this share of moving pixels
EDGE_MOVING = 0.25 # an edge strip with more of its pixels moving holds no band


def content_box(luma: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the picture inside bars in grey frames (N, H, W), in
    their pixels (bottom and right exclusive); None where there are no bars. Flat or blurred
    bars come in pairs of about the same size, as a player centres a picture: a flat sky at the
    top alone is picture, not a bar. Bands of any size, on one side or several, are dead still
    up to where the picture's motion starts (``_between_still_bands``)."""
    _, h, w = luma.shape
    rows = _between_bars(luma.std(axis=(0, 2)), np.abs(np.diff(luma, axis=2)).mean(axis=(0, 2)))
    cols = _between_bars(luma.std(axis=(0, 1)), np.abs(np.diff(luma, axis=1)).mean(axis=(0, 1)))
    if rows is None and cols is None:
        if not _still_rim(luma):
            return None
        deviation = luma.std(axis=0)
        rows, cols = _between_still_bands(luma, deviation, 1), _between_still_bands(luma, deviation, 2)
        if rows is None and cols is None:
            return None
    top, bottom = rows if rows is not None else (0, h)
    left, right = cols if cols is not None else (0, w)
    return top, bottom, left, right


def _still_rim(luma: np.ndarray) -> bool:
    """Whether an edge strip as wide as the thinnest band has at most ``EDGE_MOVING`` of its
    pixels moving. Most clips move up to their edges: then there is no still band, and the whole
    frames' deviation over time (tens of milliseconds) is not taken."""
    _, h, w = luma.shape
    rim_h, rim_w = math.ceil(MIN_BAR * h), math.ceil(MIN_BAR * w)
    rims = (luma[:, :rim_h], luma[:, h - rim_h:], luma[:, :, :rim_w], luma[:, :, w - rim_w:])
    return any(np.mean(rim.std(axis=0) >= STILL) <= EDGE_MOVING for rim in rims)


def _between_still_bands(luma: np.ndarray, deviation: np.ndarray, axis: int) -> tuple[int, int] | None:
    """(start, end) of the picture past still bands across rows (``axis`` 1) or columns (2) of
    grey frames, from each pixel's ``deviation`` over the frames (H, W); None where no band of
    ``MIN_BAR`` or more is dead still (``_band``) and plain: most of its rows (columns) hold
    one level along them, as a plain ground with a line of text does and a still wall does not."""
    along = 3 - axis                                   # the axis a row (column) runs along
    size = luma.shape[axis]
    moving, noise = (deviation >= STILL).mean(axis=along - 1), deviation.mean(axis=along - 1)

    def plain(part: slice) -> bool:
        spreads = luma[(slice(None),) * axis + (part,)].std(axis=along)          # (N, rows)
        return spreads.size > 0 and float(np.median(spreads.mean(axis=0))) < BAR_STD

    lead, trail = _band(moving, noise), _band(moving[::-1], noise[::-1])
    lead, trail = lead if plain(slice(0, lead)) else 0, trail if plain(slice(size - trail, size)) else 0
    if max(lead, trail) < MIN_BAR * size:
        return None
    return lead and lead + MARGIN, size - (trail and trail + MARGIN)


def _band(moving: np.ndarray, noise: np.ndarray) -> int:
    """How many rows from the start may make a band: those before the picture's motion starts
    (the first three rows in a row with ``CUT_SHARE`` of their pixels moving each), when most
    of them are dead still. A caption's text flickers a little where the encoder refreshes it,
    so the band's rows are judged together, by their median."""
    starts = np.flatnonzero(np.convolve(moving >= CUT_SHARE, np.ones(3), "valid") == 3)
    if not len(starts) or not starts[0] or np.median(noise[:starts[0]]) > BAND_NOISE:
        return 0
    return int(starts[0])


def _between_bars(spread: np.ndarray, detail: np.ndarray) -> tuple[int, int] | None:
    """Where the picture lies along one axis, from each row's (or column's) spread of levels and
    detail: between flat bars, or else between blurred ones that end in a cut."""
    found = _bars(spread < BAR_STD)
    if found is None:
        found = _bars(detail < SOFT * np.percentile(detail, 90))
        if found is not None and not _cut(detail, found[0] - MARGIN, len(detail) - found[1] - MARGIN):
            found = None
    return found


def _cut(detail: np.ndarray, lead: int, trail: int, width: int = 3) -> bool:
    """Whether the picture's first rows past each bar hold ``STEP`` times the bar's last rows'
    detail."""
    inner = detail[lead:lead + width].mean(), detail[len(detail) - trail - width:len(detail) - trail].mean()
    outer = detail[max(lead - width, 0):lead].mean(), detail[len(detail) - trail:len(detail) - trail + width].mean()
    return all(i >= STEP * max(o, 1e-6) for i, o in zip(inner, outer))


def _bars(flat: np.ndarray) -> tuple[int, int] | None:
    """(start, end) of what lies between flat runs at both ends of ``flat``, or None where the
    runs are missing, thin or unequal."""
    size = len(flat)
    lead = int(np.argmin(flat)) if not flat.all() else size
    trail = int(np.argmin(flat[::-1])) if not flat.all() else size
    if lead == size or min(lead, trail) < MIN_BAR * size or abs(lead - trail) > max(2, 0.1 * max(lead, trail)):
        return None
    return lead + MARGIN, size - trail - MARGIN
