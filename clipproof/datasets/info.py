"""What a corpus holds: clip counts per split × label × source × variant."""
from __future__ import annotations

import os
from collections import Counter

from clipproof.records import ClipRecord, read_manifest

SPLITS = ("train", "val", "test")


def corpus_counts(corpus: str | os.PathLike) -> Counter:
    """Counter keyed by (split, label, source, variant)."""
    return count_records(read_manifest(corpus))


def count_records(records: list[ClipRecord]) -> Counter:
    return Counter((r.split or "-", r.label, r.source, r.variant) for r in records)


def render_counts(counts: Counter) -> str:
    """A table: one row per label × source × variant, one column per split, and totals."""
    rows = sorted({(label, source, variant) for _, label, source, variant in counts})
    head = ("label", "source", "variant", *SPLITS, "total")
    body = []
    for label, source, variant in rows:
        per = [counts.get((s, label, source, variant), 0) for s in SPLITS]
        body.append((label, source, variant, *map(str, per), str(sum(per))))
    totals = [sum(n for (s, *_), n in counts.items() if s == split) for split in SPLITS]
    body.append(("all", "", "", *map(str, totals), str(sum(totals))))
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, body)])
