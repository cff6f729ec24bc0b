"""The two smoothing filters the watermark needs, in numpy: scipy.ndimage's ``gaussian_filter``
and ``uniform_filter`` over a frame's last two axes, with its default edges (``mode="reflect"``:
d c b a | a b c d | d c b a) and kernel (a Gaussian truncated at 4 sigma).

Why not scipy.ndimage itself: importing it (with its array-API layer and scipy's own OpenBLAS)
took 0.17 s of wall and 0.24 s of CPU in every `verify` process that searched a clip for the
mark, a sixth of a whole `verify` with the detector. These filters are short sums of shifted
copies; ``tests/test_watermark.py`` checks them against scipy.ndimage.
"""
from __future__ import annotations

import numpy as np

TRUNCATE = 4.0       # sigmas, as scipy.ndimage's default


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalised 1-D kernel scipy.ndimage uses: radius ``int(4 * sigma + 0.5)``."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma)`` over the last two axes (each frame of a
    stack on its own), in the image's float dtype."""
    kernel = gaussian_kernel(sigma)
    return _correlate(_correlate(image, kernel, -2), kernel, -1)


def uniform_filter(image: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.uniform_filter(image, size)`` over the last two axes, for an odd ``size``."""
    if size % 2 != 1:
        raise ValueError(f"an odd box size is needed, got {size}")
    kernel = np.full(size, 1.0 / size)
    return _correlate(_correlate(image, kernel, -2), kernel, -1)


def _correlate(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """``image`` correlated with the odd, symmetric ``kernel`` along ``axis``, edges reflected.
    Pairs of samples the same distance either side share a weight: half the multiplications."""
    image = np.asarray(image)
    dtype = image.dtype if image.dtype.kind == "f" else np.dtype(np.float64)
    radius = len(kernel) // 2
    n = image.shape[axis]
    # Reflection repeats the edge sample; past a whole period of a short axis it keeps folding.
    index = np.mod(np.arange(-radius, n + radius), 2 * n)
    index = np.where(index >= n, 2 * n - 1 - index, index)
    padded = np.moveaxis(np.take(image, index, axis=axis).astype(dtype, copy=False), axis, 0)
    out = dtype.type(kernel[radius]) * padded[radius:radius + n]
    pair = np.empty_like(out)
    for k in range(radius):
        np.add(padded[k:k + n], padded[2 * radius - k:2 * radius - k + n], out=pair)
        pair *= dtype.type(kernel[k])
        out += pair
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))
