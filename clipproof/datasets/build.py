"""The corpus builder: a recipe in, a folder of H.264 clips and ``manifest.jsonl`` out.

    corpus/
      recipe.json        the resolved recipe (a rebuild into the folder must match it)
      clips/<group>/<id>.mp4
      manifest.jsonl     one ClipRecord a line, sorted by id, splits assigned
      build.log          every skipped input and why, duplicates dropped, counts
      .progress.jsonl    finished sources, so an interrupted build resumes where it stopped

Splits are made by *group* (the footage a clip shows: a source video with all its windows and
all their variants), within strata (real video, real stills, each synthetic source), so no
footage crosses splits and every split sees every kind of source.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from clipproof.atomic import atomic_output, output_folder
from clipproof.datasets.clips import ClipSpec, cut_windows
from clipproof.datasets.recipe import Recipe
from clipproof.datasets.reconstructed import MODE as RECONSTRUCT, require_trained
from clipproof.datasets.sources import (Skipped, Source, default_sample_cache, fetch_samples, folder_sources,
                                        labelled_sources, labelled_stratum, sample_sources, still_sources)
from clipproof.datasets.variants import Variant
from clipproof.digest import sha256_file
from clipproof.errors import ClipproofError, UsageError
from clipproof.records import MANIFEST, ClipRecord, stable_seed, write_manifest

PROGRESS = ".progress.jsonl"
BUILD_LOG = "build.log"
RECIPE_COPY = "recipe.json"


@dataclass
class BuildResult:
    corpus: Path
    records: list[ClipRecord]
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: int = 0
    resumed: int = 0              # sources taken from an earlier, interrupted build


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ---------------------------------------------------------------------------------------------
# One clip, with its variants, the same way for every source (real or synthetic)
# ---------------------------------------------------------------------------------------------

def store_clip(frames: np.ndarray, fps: float, corpus: Path, template: ClipRecord,
               spec: ClipSpec, variants: Iterable[Variant]) -> list[ClipRecord]:
    """Encode ``frames`` as the clip ``template.id`` (at the spec's CRF), then each variant made
    from the decoded clip. Every clip of a corpus goes through here, so real and generated clips
    share size, codec, CRF, frame rate and frame count: nothing but content tells them apart."""
    from clipproof.media import read_frames, write_mp4

    def write(arr: np.ndarray, record_id: str, crf: int) -> tuple[str, str]:
        rel = Path("clips") / slug(template.group or template.source) / f"{record_id}.mp4"
        (corpus / rel.parent).mkdir(parents=True, exist_ok=True)
        write_mp4(arr, corpus / rel, fps=fps, crf=crf)
        return rel.as_posix(), sha256_file(corpus / rel)

    path, sha = write(frames, template.id, spec.crf)
    t, h, w, _ = frames.shape
    base = replace(template, path=path, sha256=sha, frames=t, fps=fps, width=w, height=h, codec="h264",
                   crf=spec.crf, variant="original", parent_id=None)
    out = [base]
    variants = list(variants)
    if variants:
        decoded, _ = read_frames(corpus / path)
        for v in variants:
            arr = v.apply(decoded)
            crf = v.crf if v.crf is not None else spec.crf
            vid = f"{template.id}-{slug(v.name)}"
            vpath, vsha = write(arr, vid, crf)
            out.append(replace(base, id=vid, path=vpath, sha256=vsha, width=arr.shape[2], height=arr.shape[1],
                               crf=crf, variant=v.name, parent_id=template.id))
    return out


def _source_clips(source: Source, spec: ClipSpec, variants: tuple[Variant, ...], corpus: Path, seed: int,
                  autoencoders: tuple[str, ...] = ()) -> dict:
    """Worker: every clip of one footage source (real, or a labelled folder's generator output),
    with its reconstructions through ``autoencoders`` when it is real, or the reason it was
    skipped (nothing left behind)."""
    from clipproof.datasets.reconstructed import CONTEXT, load_reconstructor, middle

    records: list[ClipRecord] = []
    try:
        reconstructors = [load_reconstructor(a) for a in autoencoders] if source.label == "real" else []
        margin = CONTEXT if reconstructors else 0
        cut = replace(spec, width=spec.width + 2 * margin, height=spec.height + 2 * margin)
        for window in cut_windows(source, cut, seed):
            template = ClipRecord(
                id=f"{slug(source.name)}-w{window.index}", path="", sha256="", label=source.label,
                source=source.name, generator=source.generator, mode=None, split=None, frames=0, fps=0.0,
                width=0, height=0, codec="", crf=None, parent_id=None, seed=seed, group=source.group,
                start_s=window.start_s)
            records += store_clip(middle(window.frames, margin), window.fps, corpus, template, spec, variants)
            for ae in reconstructors:
                twin = replace(template, id=f"{template.id}-ae-{ae.name}", label="synthetic", source=ae.source,
                               generator=f"ae:{ae.name}", mode=RECONSTRUCT)
                records += store_clip(middle(ae(window.frames), margin), window.fps, corpus, twin, spec, variants)
    except ClipproofError as e:
        for r in records:
            (corpus / r.path).unlink(missing_ok=True)
        return {"source": source.name, "skipped": str(e).split(": ", 1)[-1], "path": source.path}
    return {"source": source.name, "records": [r.to_dict() for r in records]}


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------

def resolve_sources(recipe: Recipe, log: Callable[[str], None]) -> tuple[list[Source], list[Skipped]]:
    sources: list[Source] = []
    skipped: list[Skipped] = []
    for entry in recipe.real:
        if entry.kind == "folder":
            found, bad = folder_sources(entry.path)
        elif entry.kind == "stills":
            found, bad = still_sources(entry.names)
        else:
            cache = Path(entry.path) if entry.path else default_sample_cache()
            if not (cache / "samples.json").is_file():
                log(f"sample footage not in {cache}; fetching it")
                fetch_samples(cache, log=log)
            found, bad = sample_sources(cache), []
        sources += found
        skipped += bad
    for entry in recipe.labelled:
        sources += labelled_sources(entry.path)
    names = [s.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise UsageError(f"two sources share a name: {', '.join(sorted(dupes))}")
    return sorted(sources, key=lambda s: s.name), skipped


def build_corpus(recipe: Recipe, out: str | os.PathLike, *, workers: int = 1, show_progress: bool | None = None,
                 log: Callable[[str], None] | None = None) -> BuildResult:
    """Build (or finish building) the corpus of ``recipe`` in ``out``."""
    corpus = output_folder(out)
    say = log or (lambda m: print(m, file=sys.stderr))
    _check_recipe(corpus, recipe)
    for entry in recipe.reconstructed:     # here, not in each worker: a wrong path stops the build
        require_trained(entry.autoencoder)
    started = time.time()

    sources, skipped = resolve_sources(recipe, say)
    done = _load_progress(corpus)
    todo = [s for s in sources if s.name not in done]
    resumed = len(sources) - len(todo)
    if resumed:
        say(f"resuming: {resumed} of {len(sources)} sources already built")

    with open(corpus / PROGRESS, "a", encoding="utf-8") as progress_file:
        def finished(result: dict) -> None:
            progress_file.write(json.dumps(result, sort_keys=True) + "\n")
            progress_file.flush()
            os.fsync(progress_file.fileno())
            done[result["source"]] = result

        _run_sources(todo, recipe, corpus, workers, finished, say, show_progress)
        real = [ClipRecord.from_dict(r) for result in done.values() for r in result.get("records", [])
                if r["label"] == "real"]
        for i, entry in enumerate(recipe.synthetic):
            key = f"synthetic[{i}]:{entry.generator}+{entry.sampler}"
            if key not in done:
                from clipproof.datasets.synthetic import synthetic_clips
                records = synthetic_clips(entry, recipe, corpus, store_clip, say, sorted(real, key=lambda r: r.id))
                finished({"source": key, "records": [r.to_dict() for r in records]})

    records: list[ClipRecord] = []
    for name in sorted(done):
        result = done[name]
        if "skipped" in result:
            skipped.append(Skipped(result.get("path", name), result["skipped"]))
        else:
            records += [ClipRecord.from_dict(r) for r in result["records"]]
    records, duplicates = _drop_duplicates(records, corpus)
    splits = assign_splits(records, recipe.splits, recipe.seed)
    records = sorted((replace(r, split=splits[r.group or r.id]) for r in records), key=lambda r: r.id)
    write_manifest(records, corpus / MANIFEST)
    _write_log(corpus, records, skipped, duplicates, time.time() - started, resumed)
    return BuildResult(corpus, records, skipped, len(duplicates), resumed)


def _run_sources(todo: list[Source], recipe: Recipe, corpus: Path, workers: int,
                 finished: Callable[[dict], None], say, show_progress: bool | None) -> None:
    if not todo:
        return
    show = sys.stderr.isatty() if show_progress is None else show_progress
    from rich.progress import Progress
    with Progress(disable=not show, transient=False) as bar:
        task = bar.add_task("building clips", total=len(todo))

        def report(result: dict) -> None:
            finished(result)
            what = (f"skipped ({result['skipped']})" if "skipped" in result
                    else f"{len(result['records'])} clips")
            if not show:
                say(f"{result['source']}: {what}")
            bar.advance(task)

        args = (recipe.clip, recipe.variants, corpus, recipe.seed,
                tuple(e.autoencoder for e in recipe.reconstructed))
        if workers <= 1:
            for source in todo:
                report(_source_clips(source, *args))
            return
        import multiprocessing
        # spawn: workers start clean, without this process's threads (rich's refresher, c2pa).
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            futures = [pool.submit(_source_clips, s, *args) for s in todo]
            for future in as_completed(futures):
                report(future.result())


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _check_recipe(corpus: Path, recipe: Recipe) -> None:
    current = json.loads(json.dumps(recipe.to_dict()))
    copy = corpus / RECIPE_COPY
    if copy.is_file():
        if json.loads(copy.read_text(encoding="utf-8")) != current:
            raise UsageError("holds a corpus of another recipe; build into a new folder", path=corpus)
        return
    if any(corpus.iterdir()):
        raise UsageError("not empty and not a corpus; build into a new folder", path=corpus)
    with atomic_output(copy) as tmp:
        tmp.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _load_progress(corpus: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    path = corpus / PROGRESS
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            result = json.loads(line)
        except ValueError:
            continue  # the line being written when the build was stopped
        if all((corpus / r["path"]).is_file() for r in result.get("records", [])):
            done[result["source"]] = result
    return done


def _drop_duplicates(records: list[ClipRecord], corpus: Path) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """Keep the first clip of each sha256 (by id); delete the files of the others."""
    seen: dict[str, str] = {}
    kept, dropped = [], []
    for r in sorted(records, key=lambda r: r.id):
        if r.sha256 in seen:
            dropped.append(r)
            if (corpus / r.path).is_file() and r.path not in {k.path for k in kept}:
                (corpus / r.path).unlink()
        else:
            seen[r.sha256] = r.id
            kept.append(r)
    return kept, dropped


def _stratum(r: ClipRecord) -> str:
    if r.mode == RECONSTRUCT:
        # A reconstruction shares its real clip's footage group: dealt out with the real clips.
        return "real:still" if (r.group or "").startswith("still-pan:") else "real:video"
    if r.label == "synthetic":
        # A labelled folder's clips are each a source of their own: dealt out by generator.
        return f"synthetic:{labelled_stratum(r.source) or r.source}"
    return "real:still" if r.source.startswith("still-pan:") else "real:video"


def assign_splits(records: list[ClipRecord], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Group → split. Within each stratum the groups are shuffled by seed and dealt out by the
    fractions; with three or more groups, every split with a non-zero fraction gets at least one."""
    strata: dict[str, set[str]] = defaultdict(set)
    for r in records:
        strata[_stratum(r)].add(r.group or r.id)
    out: dict[str, str] = {}
    for stratum, groups in sorted(strata.items()):
        order = sorted(groups, key=lambda g: stable_seed(seed, stratum, g))
        n = len(order)
        counts = {k: round(n * fractions[k]) for k in ("test", "val")}
        if n >= 3:
            counts = {k: max(1, c) if fractions[k] > 0 else 0 for k, c in counts.items()}
        while counts["test"] + counts["val"] >= n and n > 0 and fractions["train"] > 0:
            counts["val" if counts["val"] >= counts["test"] else "test"] -= 1
        for i, g in enumerate(order):
            out[g] = "test" if i < counts["test"] else "val" if i < counts["test"] + counts["val"] else "train"
    return out


def _write_log(corpus: Path, records: list[ClipRecord], skipped: list[Skipped], duplicates: list[ClipRecord],
               seconds: float, resumed: int) -> None:
    lines = [f"clipproof corpus build: {len(records)} clips, {len(skipped)} inputs skipped, "
             f"{len(duplicates)} duplicate clips dropped, {seconds:.1f} s"
             + (f", resumed after {resumed} sources" if resumed else "")]
    lines += [f"skipped {s.path}: {s.reason}" for s in sorted(skipped, key=lambda s: s.path)]
    lines += [f"duplicate {d.id}: same content as another clip (sha256 {d.sha256[:12]})" for d in duplicates]
    with atomic_output(corpus / BUILD_LOG) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
