"""``clipproof batch``: verify many files on Ray Data, resumably.

Inputs are folders (walked as ``verify`` walks them), text files of paths (one a line), JSON
Lines or Parquet manifests (a ``path`` column). Results go to ``OUT/results.jsonl`` as they come
(one ``clipproof.report/1`` row a line, plus ``path``, ``size``, ``mtime_ns``, ``seconds`` and,
for a file that got no report, its ``error``) and, at the end, to ``OUT/results.parquet``
(flat columns, the whole row as ``report_json``).

Resuming: an input whose key (path, size, mtime) already has a row in ``results.jsonl`` is
skipped, so re-running the same command finishes what a stopped run left. Rows are written by
the driver only, as Ray hands them back, and Ray retries the work of a worker that died: each
input gets exactly one row.

Ray runs locally by default (``ray.init`` with ``workers`` CPUs) or joins a cluster
(``address``). Credentials-only work runs as plain tasks; with the detector, actors hold the
weights once each (and take a GPU each when the cluster has them).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from clipproof.atomic import atomic_output, output_folder
from clipproof.errors import ClusterError, InputMissingError, UsageError, one_line
from clipproof.inputs import require_named

RESULTS = "results.jsonl"
STEADY_SHARE = 0.25     # of a batch's time that must follow its first results for a steady rate
PARQUET = "results.parquet"
BATCH_ROWS = 8            # rows per call with the detector (an actor's batch)
TASK_ROWS = 64            # rows per credentials-only task: fewer, larger tasks (Ray's overhead is per task)


@dataclass(frozen=True)
class BatchSettings:
    out: Path
    address: str | None = None         # a Ray cluster ("auto", "ray://host:10001"); None: local
    workers: int = 2                   # local CPUs (or actors with the detector)
    detector: Any = "auto"
    trust: tuple[str, ...] = ()
    stores: tuple[str, ...] | None = None
    watermark: bool = True
    gpus_per_actor: float = 0.0


@dataclass
class BatchSummary:
    inputs: int
    skipped: int                       # done in an earlier run
    verified: int = 0
    seconds: float = 0.0               # verifying, from Ray's start to the last row
    startup_s: float = 0.0             # starting (or joining) Ray
    first_rows: int = 0                # rows in the first results to come back
    first_s: float = 0.0               # ... and when they came: workers started, imports done
    verdicts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    exit_codes: Counter = field(default_factory=Counter)

    @property
    def files_per_s(self) -> float:
        return self.verified / self.seconds if self.seconds else 0.0

    @property
    def steady_files_per_s(self) -> float:
        """Files/s once the first results are back (workers up, imports done): the rate a long
        batch runs at. A batch too short to have such a stretch (under a quarter of its time
        after the first results) gets its whole rate: 200 files in 2 workers' batches of 64 all
        came back within milliseconds of the first, a "rate" of 14,760 files/s."""
        rows, seconds = self.verified - self.first_rows, self.seconds - self.first_s
        if rows <= 0 or seconds < STEADY_SHARE * self.seconds:
            return self.files_per_s
        return rows / seconds


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def list_inputs(sources: Iterable[str | os.PathLike]) -> list[str]:
    """Paths to verify from folders, path lists (.txt), JSON Lines (.jsonl) or Parquet files."""
    from clipproof.folders import expand_paths
    out: list[str] = []
    for raw in sources:
        source = require_named(raw)
        suffix = source.suffix.lower()
        if source.is_file() and suffix in (".txt", ".list"):
            out += [line.strip() for line in _read_text(source).splitlines() if line.strip()]
        elif source.is_file() and suffix in (".jsonl", ".ndjson"):
            out += [_path_of(_json_line(line, number, source), source)
                    for number, line in enumerate(_read_text(source).splitlines(), 1) if line.strip()]
        elif source.is_file() and suffix == ".parquet":
            out += _parquet_paths(source)
        else:
            # Named as the walk names them: a link pasted here stays as given, to be said to be one.
            out += [f.name for f in expand_paths([raw]) if f.skipped is None]
    return list(dict.fromkeys(out))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputMissingError(f"cannot read the input list ({e.strerror})", path=path) from None
    except UnicodeDecodeError:
        raise UsageError("the input list is not UTF-8 text", path=path) from None


def _json_line(line: str, number: int, source: Path) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise UsageError(f"line {number} is not JSON ({e.msg})", path=source) from None


def _path_of(row: Any, source: Path) -> str:
    if not isinstance(row, dict) or not isinstance(row.get("path"), str) or not row["path"]:
        raise UsageError("every JSON line needs a non-empty string 'path'", path=source)
    return row["path"]


def _parquet_paths(source: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError) as e:
        raise UsageError(f"not a readable Parquet file ({e})", path=source) from None
    if "path" not in table.column_names:
        raise UsageError("a Parquet manifest needs a 'path' column", path=source)
    paths = table.column("path").to_pylist()
    if not all(isinstance(p, str) and p for p in paths):
        raise UsageError("the 'path' column must hold non-empty strings (no nulls)", path=source)
    return paths


def input_key(path: str) -> tuple[str, int | None, int | None]:
    """What makes an input the same input on a re-run — its path, size and modification time —
    as (key, size, mtime_ns); a file that cannot be seen has no size."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}\tmissing", None, None
    return f"{path}\t{st.st_size}\t{st.st_mtime_ns}", st.st_size, st.st_mtime_ns


# ---------------------------------------------------------------------------------------------
# Work (runs in Ray workers)
# ---------------------------------------------------------------------------------------------

class _Worker:
    """Verifies a batch of paths; built once per worker process (an actor holds the detector)."""

    def __init__(self, trust, detector, stores, watermark):
        from clipproof.verification import Verifier
        self.verifier = Verifier(trust=list(trust), detector=detector, watermark=watermark, stores=stores)

    def __call__(self, batch: dict) -> dict:
        rows = []
        for path, key in zip(batch["path"], batch["key"]):
            start = time.perf_counter()
            outcome = next(iter(self.verifier.verify_many([path])))
            row = outcome.to_dict()
            row.update(path=path, seconds=round(time.perf_counter() - start, 4), worker_pid=os.getpid())
            rows.append(json.dumps(row))
        return {"key": list(batch["key"]), "row": rows}


_VERIFIERS: dict = {}


def _verify_task(batch: dict, trust, stores, watermark) -> dict:
    """Credentials-only work as a plain task: the Verifier (anchors only, no model) is made once
    per worker process and reused."""
    key = (tuple(trust), tuple(stores) if stores is not None else None, watermark)
    if key not in _VERIFIERS:
        _VERIFIERS[key] = _Worker(trust, None, stores, watermark)
    return _VERIFIERS[key](batch)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def done_keys(out: Path) -> dict[str, dict]:
    """Rows already written (the last line of a killed run may be cut: ignored)."""
    done: dict[str, dict] = {}
    path = out / RESULTS
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            done.setdefault(row.get("key", ""), row)
    return done


def run_batch(inputs, settings: BatchSettings,
              progress: Callable[[int, int], None] | None = None) -> BatchSummary:
    """Verify ``inputs`` — paths, URIs of mounted files, or a Ray Dataset with a ``path`` column —
    into ``settings.out``, skipping those already done there."""
    if not isinstance(inputs, (list, tuple)):
        inputs = _paths_of_dataset(inputs)
    out = output_folder(settings.out)
    done = done_keys(out)
    keyed = {p: input_key(p) for p in inputs}
    todo = {p: facts for p, facts in keyed.items() if facts[0] not in done}
    summary = BatchSummary(inputs=len(keyed), skipped=len(keyed) - len(todo))
    if todo:
        _run_on_ray(todo, settings, out, summary, done, progress)
    rows = [done[key] for key, _, _ in keyed.values() if key in done]
    _tally(summary, rows)
    write_parquet(out, rows)
    return summary


def _paths_of_dataset(dataset) -> list[str]:
    if "path" not in (dataset.schema().names if dataset.schema() else []):
        raise UsageError("a Ray Dataset of inputs needs a 'path' column")
    return list(dict.fromkeys(str(row["path"]) for row in dataset.select_columns(["path"]).iter_rows()))


def _run_on_ray(todo: dict[str, tuple], settings: BatchSettings, out: Path, summary: BatchSummary, done: dict,
                progress) -> None:
    """Verify ``todo`` (path → its input_key facts) on Ray, appending each row as it comes."""
    started = time.perf_counter()
    import ray
    import ray.data
    if not ray.is_initialized():
        if settings.address:
            try:
                ray.init(address=settings.address, log_to_driver=False)
            except (ConnectionError, TimeoutError, ValueError) as e:
                raise ClusterError(f"cannot join the Ray cluster at {settings.address} ({one_line(e)})") from None
        else:
            # No worker_process_setup_hook to import the verifier as workers start: a job-level
            # runtime env delayed the first rows by about a second (A/B, 6 runs of 1,000 files).
            ray.init(num_cpus=settings.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    import logging
    logging.getLogger("ray.data").setLevel(logging.ERROR)     # our own progress and summary instead
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    summary.startup_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = TASK_ROWS if settings.detector is None else BATCH_ROWS
    facts = {key: (size, mtime) for key, size, mtime in todo.values()}
    items = ray.data.from_items([{"path": p, "key": key} for p, (key, _, _) in todo.items()],
                                override_num_blocks=max(1, min(-(-len(todo) // rows), 8 * settings.workers)))
    # Ray Data runs a task again when its worker dies, and restarts a dead actor and retries its
    # batch (its defaults: unlimited retries for system failures), so each input gets one row.
    if settings.detector is None:
        results = items.map_batches(_verify_task, batch_size=TASK_ROWS,
                                    fn_kwargs=dict(trust=settings.trust, stores=settings.stores,
                                                   watermark=settings.watermark))
    else:
        results = items.map_batches(_Worker, batch_size=BATCH_ROWS, concurrency=settings.workers,
                                    num_gpus=settings.gpus_per_actor or None,
                                    fn_constructor_kwargs=dict(trust=settings.trust, detector=settings.detector,
                                                               stores=settings.stores, watermark=settings.watermark))
    with open(out / RESULTS, "a", encoding="utf-8") as log:
        count = 0
        for batch in results.iter_batches(batch_size=rows, batch_format="numpy"):
            for key, row in zip(batch["key"], batch["row"]):
                key = str(key)
                if key in done:
                    continue      # a retried batch's twin (never expected: kept out all the same)
                record = json.loads(str(row))
                record.update(key=key, size=facts[key][0], mtime_ns=facts[key][1])
                log.write(json.dumps(record) + "\n")
                done[key] = record
                count += 1
            log.flush()
            os.fsync(log.fileno())
            summary.verified = count
            summary.seconds = time.perf_counter() - started
            if not summary.first_rows:
                summary.first_rows, summary.first_s = count, summary.seconds
            if progress:
                progress(count, len(todo))


def _tally(summary: BatchSummary, rows: list[dict]) -> None:
    for row in rows:
        summary.exit_codes[row.get("exit_code")] += 1
        if "error" in row:
            summary.errors[row["error"]["kind"]] += 1
        else:
            summary.verdicts[row["verdict"]] += 1


def write_parquet(out: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({
        "path": [_utf8(r.get("path")) for r in rows],
        "size": [r.get("size") for r in rows],
        "seconds": [r.get("seconds") for r in rows],
        "verdict": [r.get("verdict") for r in rows],
        "exit_code": [r.get("exit_code") for r in rows],
        "error_kind": [(r.get("error") or {}).get("kind") for r in rows],
        "error_message": [_utf8((r.get("error") or {}).get("message")) for r in rows],
        "sha256": [r.get("sha256") for r in rows],
        "credentials_state": [(r.get("credentials") or {}).get("state") for r in rows],
        "p_synthetic": [(r.get("detector") or {}).get("p_synthetic") for r in rows],
        "report_json": [json.dumps(r) for r in rows],
    })
    with atomic_output(out / PARQUET, overwrite=True) as tmp:
        pq.write_table(table, tmp)
    return out / PARQUET


def _utf8(text: str | None) -> str | None:
    """``text`` as Parquet can hold it: a file name that is not UTF-8 reaches Python with its
    stray bytes as lone surrogates, shown here as the bytes (``caf\\xe9.mp4``)."""
    return None if text is None else text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def print_summary(summary: BatchSummary, out: Path, file=sys.stdout) -> None:
    print(f"{summary.inputs} inputs: {summary.verified} verified now, {summary.skipped} done before; "
          f"{summary.files_per_s:.1f} files/s, {summary.steady_files_per_s:.1f} after the first results "
          f"(Ray started in {summary.startup_s:.1f} s)", file=file)
    for verdict, n in sorted(summary.verdicts.items()):
        print(f"  {verdict:<24} {n}", file=file)
    for kind, n in sorted(summary.errors.items()):
        print(f"  error: {kind:<17} {n}", file=file)
    print(f"results: {out / RESULTS}, {out / PARQUET}", file=file)
