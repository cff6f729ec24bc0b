"""Where the picture lies inside letterbox or pillarbox bars.

Re-uploads often put a clip inside a frame of another shape: a landscape clip in a 9:16 frame
for a vertical feed, or in a square. The mark's chips are sized from the picture's short side
(``pattern.CHIPS_PER_SHORT_SIDE``), and the search looks for them at sizes relative to the
frame's: inside such a frame they are a half or a third of what the search expects, outside
the sizes it covers. The bars are flat — the same level in every pixel and every frame — so
the picture between them can be found, and searched at its own size.
"""
from __future__ import annotations

import numpy as np

BAR_STD = 2.5      # grey levels: a bar row or column varies less than this over space and time
MIN_BAR = 0.04     # of the side: thinner flat borders are left alone
MARGIN = 1         # pixels inside the bars' edge, where scaling blends bar and picture


def content_box(luma: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the picture inside bars in grey frames (N, H, W), in
    their pixels (bottom and right exclusive); None where there are no bars. Bars come in
    pairs of about the same size, as a player centres a picture: a flat sky at the top alone
    is picture, not a bar."""
    _, h, w = luma.shape
    rows = _bars(luma.std(axis=(0, 2)) < BAR_STD, h)
    cols = _bars(luma.std(axis=(0, 1)) < BAR_STD, w)
    if rows is None and cols is None:
        return None
    top, bottom = rows if rows is not None else (0, h)
    left, right = cols if cols is not None else (0, w)
    return top, bottom, left, right


def _bars(flat: np.ndarray, size: int) -> tuple[int, int] | None:
    """(start, end) of what lies between flat runs at both ends of ``flat``, or None where the
    runs are missing, thin or unequal."""
    lead = int(np.argmin(flat)) if not flat.all() else size
    trail = int(np.argmin(flat[::-1])) if not flat.all() else size
    if lead == size or min(lead, trail) < MIN_BAR * size or abs(lead - trail) > max(2, 0.1 * max(lead, trail)):
        return None
    return lead + MARGIN, size - trail - MARGIN
