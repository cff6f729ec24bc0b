"""One BLAS thread for the watermark's matrix products, whatever the process's setting.

Its products are thin (a frame's rows against the tile's 32 or 64 columns): OpenBLAS's worker
threads cost more there than they save, and on a busy machine, as a pipeline's is, they wait for
a core. Measured on this project's 2-core machine with the other core busy: detection on a 10 s
1080p clip took 0.95-1.0 s of CPU with two threads and 0.51-0.65 s with one; embedding one second
of 1080p frames 1.53-1.59 s and 0.72-0.93 s.

As scikit-learn limits BLAS around its own thin products (threadpoolctl, per call): the setting
is put back when the call returns.
"""
from __future__ import annotations

import functools


@functools.cache
def _controller():
    # Made once (listing the loaded libraries takes milliseconds; a limit through it, 20 µs),
    # on first use, by when numpy and scipy, whose OpenBLAS it limits, are loaded.
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS runs on one thread."""
    return _controller().limit(limits=1, user_api="blas")
