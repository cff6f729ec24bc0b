"""`clipproof batch` on a local 2-worker Ray: resume, exactly one row per input when a worker is
killed mid-run, Parquet and JSON Lines results."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipproof.batch import list_inputs
from clipproof.demo import moving_scene
from clipproof.media import write_mp4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory, ai_clip) -> Path:
    """200 small clips (copies, each its own file), one signed clip and one broken file."""
    root = tmp_path_factory.mktemp("batch-in")
    first = write_mp4(moving_scene(6, 48, 32), root / "c000.mp4", fps=6)
    for i in range(1, 200):
        shutil.copy(first, root / f"c{i:03d}.mp4")
    shutil.copy(ai_clip, root / "signed.mp4")
    (root / "broken.mp4").write_bytes(b"\0\0\0\x18ftypisom" + b"junk" * 50)
    return root


def run_batch(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "clipproof.cli", "batch", *args, "--no-detector", "--workers", "2",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def test_inputs_from_lists_and_manifests(folder, tmp_path):
    paths = sorted(str(p) for p in folder.iterdir())
    (tmp_path / "list.txt").write_text("\n".join(paths[:5]) + "\n")
    (tmp_path / "list.jsonl").write_text("".join(json.dumps({"path": p}) + "\n" for p in paths[5:8]))
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"path": paths[8:10]}), tmp_path / "list.parquet")
    got = list_inputs([tmp_path / "list.txt", tmp_path / "list.jsonl", tmp_path / "list.parquet"])
    assert got == paths[:10]
    assert len(list_inputs([folder])) == 202


def test_a_broken_input_list_is_a_usage_error(tmp_path):
    """Each was an internal error (a bug), or a row per null or number looked up as a file
    named "None" or "1"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipproof.errors import UsageError
    (tmp_path / "broken.jsonl").write_text('{"path": "a.mp4"}\n{broken\n')
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9.mp4\n")
    (tmp_path / "fake.parquet").write_text("not parquet")
    pq.write_table(pa.table({"path": ["a.mp4", None]}), tmp_path / "nulls.parquet")
    pq.write_table(pa.table({"path": [1, 2]}), tmp_path / "numbers.parquet")
    for name, said in (("broken.jsonl", "line 2 is not JSON"), ("latin1.txt", "not UTF-8 text"),
                       ("fake.parquet", "not a readable Parquet file"), ("nulls.parquet", "non-empty strings"),
                       ("numbers.parquet", "non-empty strings")):
        with pytest.raises(UsageError, match=said):
            list_inputs([tmp_path / name])


def test_resume_finishes_the_rest_and_a_killed_worker_loses_nothing(folder, tmp_path):
    """A run stopped after 20 inputs, then the same command over the whole folder: the 20 are
    skipped and the rest finished — with one of Ray's workers killed while it runs, and still
    exactly one row per input (Ray runs the dead worker's batch again)."""
    out = tmp_path / "out"
    some = tmp_path / "some.txt"
    some.write_text("\n".join(str(folder / f"c{i:03d}.mp4") for i in range(20)) + "\n")
    first = run_batch(str(some), "--out", str(out))
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 2, stderr
    assert json.loads(stdout)["verified"] == 20
    again = run_batch(str(folder), "--out", str(out))
    killed = None
    deadline = time.monotonic() + 120
    # The first worker seen running a batch is killed while the run is under way.
    while killed is None and time.monotonic() < deadline and again.poll() is None:
        for pid in _ray_workers():
            try:
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
            except ProcessLookupError:
                continue
        time.sleep(0.05)
    stdout, stderr = again.communicate(timeout=300)
    assert killed is not None, "no Ray worker was found to kill"
    assert "worker died" in stderr.lower(), stderr[-2000:]        # Ray saw it, and ran its work again
    summary = json.loads(stdout)
    assert again.returncode == 1, stderr          # the signed clip is AI-declared: a red flag
    assert (summary["inputs"], summary["skipped"], summary["verified"]) == (202, 20, 182)
    assert summary["verdicts"] == {"uncertain": 200, "ai-generated-declared": 1}
    assert summary["errors"] == {"invalid-media": 1}
    paths = [r["path"] for r in rows(out)]
    assert len(paths) == len(set(paths)) == 202
    assert sorted(paths) == sorted(str(p) for p in folder.iterdir())
    import pyarrow.parquet as pq
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == 202 and set(table.column("error_kind").to_pylist()) == {None, "invalid-media"}


def _ray_workers() -> list[int]:
    """Ray worker processes running our batch function (their title starts with ray::)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("ray::") and "MapBatches" in cmd:
            found.append(int(entry.name))
    return found


def test_a_cluster_that_cannot_be_joined_is_one_line(folder, tmp_path):
    """`--address auto` with no cluster running, or an address Ray does not take, was an internal
    error with Ray's traceback text; now exit 69 (documented). (Before ``local_ray``'s tests: a Ray
    already started in this process would be used whatever the address.)"""
    from conftest import run_cli
    out = run_cli("clipproof", "batch", str(next(folder.iterdir())), "--out", str(tmp_path / "out"), "--no-detector",
                  "--address", "not an address")
    assert out.returncode == 69 and out.stdout == ""
    assert out.stderr == ("clipproof batch: cannot join the Ray cluster at not an address "
                          "(Invalid address format: not an address)\n")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the tests that call the library in this process (each start costs
    seconds); ``run_batch`` uses a Ray already started, as a pipeline's own would be."""
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_a_ray_dataset_of_paths_is_an_input(folder, tmp_path, local_ray):
    import ray.data

    from clipproof.batch import BatchSettings, run_batch
    paths = [str(folder / f"c{i:03d}.mp4") for i in range(6)] + [str(folder / "signed.mp4")]
    summary = run_batch(ray.data.from_items([{"path": p} for p in paths]),
                        BatchSettings(out=tmp_path / "out", detector=None, stores=()))
    assert (summary.inputs, summary.verified) == (7, 7)
    assert summary.verdicts == {"uncertain": 6, "ai-generated-declared": 1}


def test_a_steady_rate_needs_a_steady_stretch():
    """The rate "after the first results" of a batch whose rows all came back at once was
    14,760 files/s for 200 files; it is then the whole rate."""
    from clipproof.batch import BatchSummary
    short = BatchSummary(inputs=200, skipped=0, verified=200, seconds=2.0, first_rows=128, first_s=1.99)
    assert short.steady_files_per_s == short.files_per_s == 100.0
    long = BatchSummary(inputs=4000, skipped=0, verified=4000, seconds=12.0, first_rows=128, first_s=5.0)
    assert long.steady_files_per_s == pytest.approx((4000 - 128) / 7.0)


def test_a_file_name_that_is_not_utf8_gets_its_row(folder, tmp_path, local_ray):
    """Parquet holds UTF-8 only: a Latin-1 file name (caf\xe9.mp4) failed the whole batch after
    verifying it. Its row shows the byte escaped; a re-run finds it done."""
    import shutil

    import pyarrow.parquet as pq

    from clipproof.batch import BatchSettings, run_batch
    names = tmp_path / "names"
    names.mkdir()
    shutil.copy(next(folder.iterdir()), names / os.fsdecode(b"caf\xe9.mp4"))
    summary = run_batch(list_inputs([names]), BatchSettings(out=tmp_path / "out", detector=None))
    assert summary.verified == 1 and not summary.errors
    assert pq.read_table(tmp_path / "out" / "results.parquet").column("path").to_pylist() == [f"{names}/caf\\xe9.mp4"]
    again = run_batch(list_inputs([names]), BatchSettings(out=tmp_path / "out", detector=None))
    assert (again.skipped, again.verified) == (1, 0)
