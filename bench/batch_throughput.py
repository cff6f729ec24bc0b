"""Throughput of `clipproof batch` against the bare C2PA reader, on this machine.

    python -m bench.batch_throughput [--files 1000] [--workers 2]

Makes ``--files`` small signed clips (copies of one signed 2 s clip, each its own file), then:
- the baseline: c2pa-python's Reader (validation and the manifest JSON) over the same files in
  ``--workers`` processes, files/s;
- clipproof's ``Verifier.verify`` (credentials only) in the same plain processes, no Ray: what
  verification itself costs against the Reader, apart from what Ray adds;
- `clipproof batch --no-detector` over them on local Ray (files/s of the verification itself,
  after the first results came back — workers started and imports done: a long batch's rate —
  and including Ray's start);
- CPU seconds per file (user + system) of credentials-only verification in one process against
  the bare Reader's (target ≤ 1.2×);
- with the bundled detector (actors holding the weights), clips/s over ``--detector-clips``
  unsigned 10 s 720p clips.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _read_all(paths: list[str]) -> float:
    import c2pa
    start = time.process_time()
    for p in paths:
        with open(p, "rb") as f, c2pa.Reader("video/mp4", f) as r:
            r.json()
            r.get_validation_state()
    return time.process_time() - start


def _verify_all(paths: list[str]) -> float:
    from clipproof.verification import Verifier
    v = Verifier(detector=None)
    start = time.process_time()
    for p in paths:
        v.verify(p)
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.batch_throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--detector-clips", type=int, default=8)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        from clipproof.demo import moving_scene
        from clipproof.media import write_mp4
        from clipproof.provenance.keys import init_dev_keys
        from clipproof.provenance.sign import sign
        keys = init_dev_keys(root / "keys")
        clip = write_mp4(moving_scene(24, 128, 96), root / "clip.mp4", fps=12)
        signed = sign(clip, root / "signed.mp4", key=keys.key, cert=keys.chain, watermark=False)
        (root / "in").mkdir()
        paths = []
        for i in range(args.files):
            paths.append(str(shutil.copy(signed, root / "in" / f"{i:05d}.mp4")))
        chunks = [paths[i::args.workers] for i in range(args.workers)]
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_read_all, chunks))
        reader_s = time.perf_counter() - start
        # Between the two: clipproof's own verification in the same plain processes, no Ray: what
        # verifying costs beyond the Reader, apart from what scheduling on Ray adds.
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_verify_all, chunks))
        plain_s = time.perf_counter() - start
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "clipproof.cli", "batch", str(root / "in"), "--out",
                               str(root / "out"), "--no-detector", "--workers", str(args.workers), "--json"],
                              capture_output=True, text=True)
        batch_wall = time.perf_counter() - start
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        sample = paths[: min(200, len(paths))]
        verify_cpu, bare_cpu = _verify_all(sample), _read_all(sample)
        detector = None
        if args.detector_clips:
            (root / "hd").mkdir()
            first = write_mp4((f for i in range(10) for f in moving_scene(30, 1280, 720, seed=i)), root / "hd" / "000.mp4",
                              fps=30, crf=23, preset="veryfast", reproducible=False)
            for i in range(1, args.detector_clips):
                shutil.copy(first, root / "hd" / f"{i:03d}.mp4")
            done = subprocess.run([sys.executable, "-m", "clipproof.cli", "batch", str(root / "hd"), "--out",
                                   str(root / "hd-out"), "--workers", str(args.workers), "--json"],
                                  capture_output=True, text=True)
            detector = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.files} signed 2 s clips (128x96), {args.workers} workers")
    print(f"{'':>44} {'files/s':>8}")
    print(f"{'bare c2pa Reader, ' + str(args.workers) + ' processes (baseline)':>44} {args.files / reader_s:>8.1f}")
    print(f"{'Verifier.verify, ' + str(args.workers) + ' processes, no Ray':>44} {args.files / plain_s:>8.1f}   "
          f"({reader_s / plain_s:.2f}x)")
    print(f"{'clipproof batch, verification only':>44} {summary['files_per_s']:>8.1f}   "
          f"({summary['files_per_s'] / (args.files / reader_s):.2f}x)")
    print(f"{'clipproof batch, after the first results':>44} {summary['steady_files_per_s']:>8.1f}   "
          f"({summary['steady_files_per_s'] / (args.files / reader_s):.2f}x)")
    print(f"{'clipproof batch, whole command (Ray start)':>44} {args.files / batch_wall:>8.1f}")
    print(f"CPU s per file, one process: verify --no-detector {verify_cpu / len(sample) * 1000:.1f} ms, "
          f"bare Reader {bare_cpu / len(sample) * 1000:.1f} ms ({verify_cpu / bare_cpu:.2f}x)")
    if detector:
        print(f"with the detector: {detector['files_per_s']:.2f} clips/s over {detector['verified']} unsigned 10 s "
              f"720p clips ({args.workers} actors; Ray started in {detector['startup_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
