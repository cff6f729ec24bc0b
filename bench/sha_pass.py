"""Does verify's second pass over a file (the report's sha256) cost what one pass would save?

    python -m bench.sha_pass [--runs 20]

Issue 16 asks for the sha256 without a second pass over the file, or a measurement of why not.
On a signed 10 s 720p clip and a signed 2 s 128x96 clip, CPU milliseconds per file (user +
system, one thread) of:
- the bare C2PA Reader (validation and the manifest JSON): the baseline;
- the Reader, then sha256 over the file (what ``verify`` does from 4 MiB on, the hash beside
  the read);
- the file read into memory once, the Reader fed from those bytes and the sha256 taken of them
  (what ``verify`` does below 4 MiB);
- the Reader fed through a stream that hashes the bytes as the Reader reads them, catching up on
  what it seeks past (one pass over the file);
- sha256 alone, and reading the file alone (what a second pass costs in I/O).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path


class _HashingReader(io.RawIOBase):
    """A file that hashes itself in file order while the C2PA library reads it."""

    def __init__(self, path):
        self._f = open(path, "rb", buffering=0)
        self._hash, self._hashed = hashlib.sha256(), 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self._f.seek(offset, whence)

    def tell(self):
        return self._f.tell()

    def readinto(self, buf):
        pos = self._f.tell()
        self._catch_up(pos)
        n = self._f.readinto(buf) or 0
        if pos <= self._hashed < pos + n:
            self._hash.update(memoryview(buf)[self._hashed - pos:n])
            self._hashed = pos + n
        return n

    def _catch_up(self, end):
        while end is None or self._hashed < end:
            data = os.pread(self._f.fileno(), 1 << 20 if end is None else min(1 << 20, end - self._hashed),
                            self._hashed)
            if not data:
                return
            self._hash.update(data)
            self._hashed += len(data)

    def hexdigest(self):
        self._catch_up(None)
        return self._hash.hexdigest()

    def close(self):
        self._f.close()
        super().close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sha_pass", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args(argv)
    import c2pa
    from clipproof.demo import moving_scene
    from clipproof.digest import sha256_file
    from clipproof.media import write_mp4
    from clipproof.provenance.keys import init_dev_keys
    from clipproof.provenance.native import context
    from clipproof.provenance.sign import sign
    ctx = context(None)

    def reader(stream):
        with c2pa.Reader("video/mp4", stream, context=ctx) as r:
            r.json()
            r.get_validation_state()

    def bare(path):
        with open(path, "rb") as f:
            reader(f)

    def two_passes(path):
        bare(path)
        return sha256_file(path)

    def in_memory(path):
        content = Path(path).read_bytes()
        reader(io.BytesIO(content))
        return hashlib.sha256(content).hexdigest()

    def one_pass(path):
        with _HashingReader(path) as f:
            reader(f)
            return f.hexdigest()

    def read_only(path):
        buf = bytearray(1 << 20)
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass

    cases = [("bare C2PA Reader (baseline)", bare), ("Reader, then sha256 (verify, >= 4 MiB)", two_passes),
             ("read once, Reader and sha256 in memory (verify, < 4 MiB)", in_memory),
             ("Reader hashing its own reads (one pass)", one_pass), ("sha256 alone", sha256_file),
             ("reading the file alone", read_only)]
    with tempfile.TemporaryDirectory(prefix="bench-sha-") as tmp:
        root = Path(tmp)
        keys = init_dev_keys(root / "keys")
        clips = {
            "10 s 720p": write_mp4((f for i in range(10) for f in moving_scene(30, 1280, 720, seed=i)),
                                   root / "hd.mp4", fps=30, crf=18, preset="veryfast", reproducible=False),
            "2 s 128x96": write_mp4(moving_scene(24, 128, 96), root / "small.mp4", fps=12),
        }
        signed = {name: sign(clip, root / f"signed-{i}.mp4", key=keys.key, cert=keys.chain, watermark=False)
                  for i, (name, clip) in enumerate(clips.items())}
        for path in signed.values():
            assert one_pass(path) == sha256_file(path) == in_memory(path), "every digest must be the file's"
        results = {}
        for name, path in signed.items():
            for _, fn in cases:
                fn(path)
            # Round by round, every case in each: this machine's speed drifts by a third within minutes.
            spent = {label: 0.0 for label, _ in cases}
            for _ in range(args.runs):
                for label, fn in cases:
                    start = time.process_time()
                    fn(path)
                    spent[label] += time.process_time() - start
            for label, total in spent.items():
                results[label, name] = total / args.runs * 1000
        sizes = {name: os.path.getsize(path) / 1e6 for name, path in signed.items()}
    names = list(signed)
    print("CPU ms per file, one thread, " + ", ".join(f"{n} = {sizes[n]:.2f} MB" for n in names))
    print(f"{'':>58} " + " ".join(f"{n:>18}" for n in names))
    for label, _ in cases:
        base = [results[cases[0][0], n] for n in names]
        print(f"{label:>58} " + " ".join(f"{results[label, n]:>9.2f} ({results[label, n] / b:4.2f}x)"
                                          for n, b in zip(names, base)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
