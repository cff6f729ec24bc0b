"""Load on `clipproof serve` over loopback: latency, errors and memory under concurrent clients.

    python -m bench.service_load [--requests 200] [--clients 16] [--soak 1000]

Starts `clipproof serve --no-detector` (and, beside it, the same with the bundled detector when
``--detector``) as a new process, then sends ``--requests`` uploads from ``--clients``
concurrent clients, a mix of good files (signed, stripped, unsigned clips) and hostile ones
(truncated, not a video, oversize). Prints p50/p99 latency per kind, status counts, and the
server's resident memory before and after a soak of ``--soak`` requests (flat = no leak). The
baseline in the same run is the same files verified in-process, one after the other.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files(folder: Path) -> dict[str, bytes]:
    from clipproof.demo import moving_scene
    from clipproof.media import remux, write_mp4
    from clipproof.provenance.keys import init_dev_keys
    from clipproof.provenance.sign import sign
    keys = init_dev_keys(folder / "keys")
    clip = write_mp4(moving_scene(24, 320, 240), folder / "clip.mp4", fps=12)
    signed = sign(clip, folder / "signed.mp4", key=keys.key, cert=keys.chain, store=folder / "store.sqlite")
    stripped = remux(signed, folder / "stripped.mp4")
    return {"signed": signed.read_bytes(), "stripped": stripped.read_bytes(), "unsigned": clip.read_bytes(),
            "truncated": signed.read_bytes()[: signed.stat().st_size // 3], "not-a-video": b"hello " * 5000,
            "oversize": b"\0" * (3 << 20)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(url: str, body: bytes) -> tuple[int, float]:
    """POST ``body``; the server may refuse an oversize one before reading it all, so what is
    left unsent when it closes is dropped and its answer read."""
    import http.client
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.putrequest("POST", parts.path or "/")
        conn.putheader("Content-Type", "video/mp4")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            conn.send(body)
        except OSError:
            pass
        response = conn.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.service_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--soak", type=int, default=1000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        bodies = files(Path(tmp))
        kinds = list(bodies)
        port = _port()
        server = subprocess.Popen([sys.executable, "-m", "clipproof.cli", "serve", "--port", str(port), "--no-detector",
                                   "--max-upload-mb", "2", "--concurrency", "2", "--store", str(Path(tmp) / "store.sqlite")],
                                  stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            # Baseline: the same files verified in this process, one at a time.
            from clipproof.verification import Verifier
            v = Verifier(detector=None, stores=[Path(tmp) / "store.sqlite"])
            base = []
            for kind in kinds:
                path = Path(tmp) / f"b-{kind}.mp4"
                path.write_bytes(bodies[kind])
                t = time.perf_counter()
                try:
                    v.verify(path)
                except Exception:
                    pass
                base.append(time.perf_counter() - t)
            plan = [kinds[i % len(kinds)] for i in range(args.requests)]
            with ThreadPoolExecutor(args.clients) as pool:
                start = time.perf_counter()
                results = list(pool.map(lambda k: (k, *post(url + "/v1/verify", bodies[k])), plan))
                wall = time.perf_counter() - start
            print(f"{args.requests} requests from {args.clients} concurrent clients in {wall:.1f} s "
                  f"({args.requests / wall:.1f} requests/s); server: --no-detector, concurrency 2")
            print(f"{'kind':>12} {'statuses':>14} {'p50 s':>7} {'p99 s':>7} {'in-process s':>13}")
            for kind, b in zip(kinds, base):
                rows = [(s, t) for k, s, t in results if k == kind]
                times = sorted(t for _, t in rows)
                statuses = ",".join(f"{s}x{n}" for s, n in sorted({s: sum(1 for x, _ in rows if x == s) for s, _ in rows}.items()))
                print(f"{kind:>12} {statuses:>14} {np.percentile(times, 50):>7.2f} {np.percentile(times, 99):>7.2f} {b:>13.2f}")
            every = [t for _, _, t in results]
            print(f"{'all':>12} {'':>14} {np.percentile(every, 50):>7.2f} {np.percentile(every, 99):>7.2f}")
            errors = sum(1 for _, s, _ in results if s >= 500)
            print(f"server errors (5xx): {errors}")
            before = rss_mb(server.pid)
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda i: post(url + "/v1/verify", bodies[kinds[i % len(kinds)]]), range(args.soak)))
            after = rss_mb(server.pid)
            print(f"server RSS: {before:.0f} MB before a soak of {args.soak} requests, {after:.0f} MB after")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
