"""How fast is `verify` on a large signed video, against the C2PA library alone and SHA-256?

    python -m bench.verify_speed [--mb 200] [--runs 5]

Builds (once, cached in .bench/) a ~200 MB H.264 MP4 signed with development keys, then times
several runs each of: `verify --json --no-detector` (the whole command, process start included),
a bare `c2pa.Reader` in a fresh Python process (the library alone), and `openssl dgst -sha256`
(the physical floor: binding verification must hash every byte). Prints medians, ratios and
peak memory (max RSS of each process).
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.timing import bench_parser, in_fresh_parent

CACHE = Path(".bench")


def build_video(mb: int) -> Path:
    """A signed 1080p30 H.264 MP4 of about ``mb`` MB (built once, then cached)."""
    signed = CACHE / f"verify_speed_{mb}mb.signed.mp4"
    if signed.exists():
        return signed
    import itertools

    from clipproof.demo import moving_scene
    from clipproof.media import write_mp4
    from clipproof.provenance.keys import init_dev_keys
    from clipproof.provenance.sign import sign

    CACHE.mkdir(exist_ok=True)
    keys_dir = CACHE / "keys"
    if not (keys_dir / "signer.key").exists():
        init_dev_keys(keys_dir)
    # A second of rendered scene with sensor noise, cycled: real-footage bit rates at CRF 12
    # (about 0.5 MB a frame) without rendering thousands of frames.
    scene = moving_scene(30, 1920, 1080)
    probe_clip = write_mp4(scene, CACHE / "rate.mp4", fps=30, crf=12, preset="ultrafast", reproducible=False)
    per_frame = probe_clip.stat().st_size / len(scene)
    probe_clip.unlink()
    count = max(30, round(mb * 1e6 / per_frame))
    print(f"building {count} frames of 1920x1080 (~{mb} MB) in {CACHE}/ ...", file=sys.stderr)
    frames = itertools.islice(itertools.cycle(scene), count)
    raw = write_mp4(frames, CACHE / f"verify_speed_{mb}mb.mp4", fps=30, crf=12, preset="ultrafast",
                    reproducible=False)
    # No watermark: it would re-encode the clip (at x264's medium preset, a fifth of the size).
    sign(raw, signed, key=keys_dir / "signer.key", cert=keys_dir / "signer.pem",
         source_type="trainedAlgorithmicMedia", watermark=False)
    raw.unlink()
    return signed


def measure(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and the largest peak RSS (MB) over ``runs`` runs of ``cmd``."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
        peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return statistics.median(times), max(peaks)


def main(argv: list[str] | None = None) -> int:
    p = bench_parser("bench.verify_speed", __doc__)
    p.add_argument("--mb", type=int, default=200, help="size of the test video (default 200 MB)")
    p.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    args = p.parse_args(argv)
    if shutil.which("openssl") is None:
        raise SystemExit("openssl not found: it is the baseline of this benchmark")

    video = build_video(args.mb)
    if not args.measure_only:
        return in_fresh_parent("bench.verify_speed", argv)
    size_mb = video.stat().st_size / 1e6
    verify_bin = str(Path(sys.executable).parent / "verify")
    reader = ("import c2pa, sys; r = c2pa.Reader(sys.argv[1]); r.json(); "
              "print(r.get_validation_state())")
    commands = {
        "openssl dgst -sha256": ["openssl", "dgst", "-sha256", str(video)],
        "bare c2pa.Reader": [sys.executable, "-c", reader, str(video)],
        "verify --json --no-detector": [verify_bin, "--json", "--no-detector", str(video)],
    }
    for cmd in commands.values():  # warm the page cache: every run reads from memory
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {name: measure(cmd, args.runs) for name, cmd in commands.items()}

    base_t, base_mem = results["bare c2pa.Reader"]
    floor_t = results["openssl dgst -sha256"][0]
    print(f"\nverify speed: {video} ({size_mb:.0f} MB), median of {args.runs} runs, {os.cpu_count()} CPUs\n")
    print("| command | median s | vs bare Reader | vs OpenSSL | peak MB | vs Reader peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (t, mem) in results.items():
        print(f"| {name} | {t:.3f} | {t / base_t:.2f}x | {t / floor_t:.2f}x | {mem:.0f} | {mem - base_mem:+.0f} MB |")
    v_t, v_mem = results["verify --json --no-detector"]
    ok_t, ok_mem = v_t <= 1.2 * base_t, v_mem <= base_mem + 100
    print(f"\ntargets: verify <= 1.2x bare Reader: {'met' if ok_t else 'MISSED'} ({v_t / base_t:.2f}x); "
          f"peak <= Reader + 100 MB: {'met' if ok_mem else 'MISSED'} ({v_mem - base_mem:+.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
