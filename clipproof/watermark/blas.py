"""One BLAS thread for the watermark's matrix products, whatever the process's setting.

Its products are thin (a frame's rows against the tile's 32 or 64 columns): OpenBLAS's worker
threads cost more there than they save, and on a busy machine, as a pipeline's is, they wait for
a core. Measured on this project's 2 cores (bench.watermark, bench.verify_side_by_side; the
README's watermark section): embedding took half the CPU with one thread (1.8 s against 3.6-3.7 s
for 3 s of 1080p), detection on a 10 s 1080p clip 0.57-0.71 s of CPU instead of 0.70-0.85, and
two `verify` processes searching 12 clips for a watermark side by side 5.8 s instead of 26.2 s,
where the threads fought for the cores.

As scikit-learn limits BLAS around its own thin products (threadpoolctl, per call): the setting
is put back when the call returns.
"""
from __future__ import annotations

import functools


@functools.cache
def _controller():
    # Made once (listing the loaded libraries takes milliseconds; a limit through it, 20 µs).
    # It limits the libraries loaded when it is made: numpy's OpenBLAS, the only BLAS the
    # watermark calls (it uses no scipy).
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS runs on one thread."""
    return _controller().limit(limits=1, user_api="blas")
