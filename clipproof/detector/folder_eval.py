"""Evaluate the detector as ``verify`` runs it on any folder of labelled clips (labels as
``datasets.labelled`` reads them; rendered animation is reported apart).

Each clip is scored by the same ``Detector.score`` that ``verify`` calls (whole-clip
P(synthetic), segments and all). Reported, overall and per generator or source: AUC, AP, recall
at 1 % and 5 % false-positive rate, ECE, and how often the verdict ``verify`` would give without
credentials flags the clip, calls it real, or is uncertain.

With ``parity``, each clip is also scored in the other label's format, since public generators'
samples are mostly published as palette GIFs (wild-dev's are: 256 colours, at most 512 px, 16–48
frames) and camera footage is not: every real or rendered clip also as a generator's sample is
published (its first 2 s, at most 512 px on the long side, a GIF round trip with a 256-colour
palette and error diffusion and one with 64 colours and ordered dithering — the checkerboard some
published samples carry — then H.264 CRF 18 as wild-dev's GIFs were converted), and every
synthetic clip upscaled to 720p as a player or a re-upload shows it. A detector that scores the
format flips on these pairs.
Beside them, the floor a format-only classifier reaches on the same clips (size, length, rate,
codec, bit rate; cross-validated): a detector no better than that has learned the format.
"""
from __future__ import annotations

import json
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from clipproof.atomic import atomic_output, output_folder
from clipproof.datasets.labelled import LabelledClip, labelled_clips
from clipproof.errors import ClipproofError, UsageError

FPR_POINTS = (0.01, 0.05)
PARITY_SECONDS = 2.0         # a generator's published sample: 16–48 frames
PARITY_GIF_SIDE = 512        # ... at most 512 px on its long side
PARITY_HEIGHT = 720          # a synthetic clip as a player shows it


# The other label's format: how public generators' samples are published (GIFs, some with an
# adaptive 256-colour palette and error diffusion, some with a small palette and ordered
# dithering), and how a player or a re-upload shows a small clip (720p).
PARITY_FORMS = {"gif": ("palette", 256, "diffusion"), "gif-ordered": ("palette", 64, "ordered"),
                "720p": ("height", PARITY_HEIGHT, None)}


def parity_clips(clips: list[LabelledClip], work: Path, log: Callable[[str], None] = print) -> list[LabelledClip]:
    """Each clip in the other label's format, written under ``work`` (see the module's text): a
    real or rendered clip in each GIF form, a synthetic clip at 720p."""
    from clipproof.datasets.variants import Variant
    from clipproof.media import probe, read_frames, write_mp4
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for i, clip in enumerate(clips):
        forms = [f for f, (kind, _, _) in PARITY_FORMS.items() if (kind == "palette") == (clip.label == 0)]
        try:
            info = probe(clip.path)
            frames, _ = read_frames(clip.path, end_s=PARITY_SECONDS if clip.label == 0 else None)
            for form in forms:
                kind, amount, dither = PARITY_FORMS[form]
                if kind == "palette":
                    scale = min(1.0, PARITY_GIF_SIDE / max(frames.shape[1:3]))
                    fitted = Variant("fit", scale=scale).apply(frames) if scale < 1 else frames
                    made = Variant(form, palette=amount, dither=dither).apply(fitted)
                else:
                    made = Variant(form, scale=amount / frames.shape[1]).apply(frames) if frames.shape[1] < amount else frames
                path = write_mp4(made, work / f"{i:04d}-{form}.mp4", fps=info.fps or 8.0, crf=18)
                out.append(LabelledClip(path, clip.label, clip.group, clip.kind, form, source=clip.path))
        except ClipproofError as e:
            log(f"note: no {'/'.join(forms)} form of {clip.path} ({e.reason})")
    return out


def evaluate_folder(folder: str | os.PathLike, weights: str | os.PathLike | None = None,
                    out: str | os.PathLike | None = None, log: Callable[[str], None] = print,
                    parity: bool = False) -> dict:
    """Score every labelled clip of ``folder`` as verify would (with ``parity``, also each in
    the other label's format); the figures as a dict."""
    from clipproof.detector.inference import load_detector

    clips = labelled_clips(folder, log)
    if out is not None:
        output_folder(out)
    detector = load_detector(weights)
    if detector is None:
        raise UsageError("no detector weights: give --weights")
    if not parity:
        return _evaluate(folder, clips, detector, out, log)
    with tempfile.TemporaryDirectory(prefix="clipproof-parity-") as work:
        return _evaluate(folder, clips + parity_clips(clips, Path(work), log), detector, out, log)


def _evaluate(folder, clips: list[LabelledClip], detector, out, log) -> dict:
    from clipproof.media import probe
    from clipproof.provenance.read import Credentials
    from clipproof.provenance.report import decide
    scores, verdicts, media, sizes, kept = [], [], [], [], []
    for clip in clips:
        try:
            info = probe(clip.path)
            findings = detector.score(clip.path, info)
        except ClipproofError as e:
            log(f"note: skipping {clip.path} ({e.reason})")
            continue
        scores.append(findings.p_synthetic)
        # The verdict verify would give the clip without credentials (thresholds, the
        # out-of-distribution check and whether the detector calls clips real all count).
        verdicts.append(decide(Credentials(state="absent"), findings)[0])
        media.append(info)
        sizes.append(clip.path.stat().st_size)
        kept.append(clip)
    p, v = np.array(scores, float), np.array(verdicts)
    y, forms = np.array([c.label for c in kept]), np.array([c.form for c in kept])
    scored = _Scored(kept, p, v, media, sizes)
    original = forms == "original"
    result = {"folder": str(folder), "weights": str(detector.folder),
              "thresholds": {"low": detector.calibration.low, "high": detector.calibration.high},
              **scored.figures(original)}
    if not original.all():
        # Each label in the other's format against the other label as it is: the pairs that a
        # detector of formats gets backwards.
        result["parity"] = {
            "real_as_gif": scored.figures((forms == "gif") | (original & (y == 1))),
            "real_as_ordered_gif": scored.figures((forms == "gif-ordered") | (original & (y == 1))),
            "synthetic_at_720p": scored.figures((forms == "720p") | (original & (y == 0)))}
    if out is not None:
        out = Path(out)
        with atomic_output(out / "eval.json") as tmp:
            tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        with atomic_output(out / "eval.md") as tmp:
            tmp.write_text(folder_table(result) + "\n", encoding="utf-8")
    return result


@dataclass
class _Scored:
    clips: list[LabelledClip]
    p: np.ndarray
    verdicts: np.ndarray
    media: list
    sizes: list[int]

    def figures(self, keep: np.ndarray) -> dict:
        """The figures of the clips ``keep`` selects: overall, per generator and real source,
        rendered, the format-only floor, and each clip's score."""
        clips = [c for c, k in zip(self.clips, keep) if k]
        p, v = self.p[keep], self.verdicts[keep]
        y, groups = np.array([c.label for c in clips]), np.array([c.group for c in clips])
        kinds = np.array([c.kind for c in clips])
        return {
            "overall": figures(p, y, v),
            "per_generator": {g: figures(p[(groups == g) | (y == 0)], y[(groups == g) | (y == 0)],
                                         v[(groups == g) | (y == 0)]) for g in sorted(set(groups[y == 1]))},
            "per_real_source": {g: verdict_rates(v[groups == g]) for g in sorted(set(groups[y == 0]))},
            "rendered": verdict_rates(v[kinds == "rendered"]),
            "format_only": format_only_auc([m for m, k in zip(self.media, keep) if k],
                                           [s for s, k in zip(self.sizes, keep) if k], y),
            "clips": [{"path": str(c.source or c.path), "label": c.kind, "group": c.group, "form": c.form,
                       "p_synthetic": float(s), "verdict": str(w)} for c, s, w in zip(clips, p, v)],
        }


def figures(p: np.ndarray, y: np.ndarray, verdicts: np.ndarray) -> dict:
    """AUC, AP, recall at 1 % / 5 % false-positive rate and ECE of the scores; and how often
    verify's verdict flags each label (or calls a generated clip real)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    from clipproof.detector.metrics import ece
    both = len(set(y.tolist())) == 2
    out = {"real": int((y == 0).sum()), "synthetic": int((y == 1).sum()),
           "auc": float(roc_auc_score(y, p)) if both else None,
           "ap": float(average_precision_score(y, p)) if both else None, "ece": ece(p, y),
           "synthetic_flagged": _share(verdicts[y == 1], "likely-synthetic"),
           "real_flagged": _share(verdicts[y == 0], "likely-synthetic"),
           "synthetic_called_real": _share(verdicts[y == 1], "likely-real"),
           "uncertain": _share(verdicts, "uncertain")}
    if both:
        fpr, tpr, _ = roc_curve(y, p)
        for point in FPR_POINTS:
            out[f"recall_at_fpr_{point:g}"] = float(tpr[fpr <= point].max())
    return out


def verdict_rates(verdicts: np.ndarray) -> dict:
    return {"clips": int(len(verdicts)), "flagged": _share(verdicts, "likely-synthetic"),
            "called_real": _share(verdicts, "likely-real"), "uncertain": _share(verdicts, "uncertain")}


def _share(verdicts: np.ndarray, verdict: str) -> float | None:
    return float((verdicts == verdict).mean()) if len(verdicts) else None


# What a format-only classifier sees: the container's numbers and the bit rate per pixel.
FORMAT_FEATURES = ("width", "height", "fps", "frames", "duration_s", "codec", "container", "bits_per_pixel")


def format_only_auc(media: list, sizes: list[int], y: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated AUC of a gradient-boosted classifier that sees only the format."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    def row(m, size: int) -> list[float]:
        pixels = max(m.width * m.height * max(m.frames, 1), 1)
        # Names become stable numbers (crc32: Python's str hash changes from run to run).
        return [m.width, m.height, m.fps, m.frames, m.duration_s, zlib.crc32(m.codec.encode()) % 997,
                zlib.crc32(m.container.encode()) % 997, 8 * size / pixels]
    x = np.array([row(m, size) for m, size in zip(media, sizes)], float)
    folds = min(folds, int(min((y == 0).sum(), (y == 1).sum())))
    if folds < 2:
        return {"auc": None, "features": list(FORMAT_FEATURES)}
    clf = HistGradientBoostingClassifier(random_state=seed, max_iter=100, min_samples_leaf=3)
    p = cross_val_predict(clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                          method="predict_proba")[:, 1]
    return {"auc": float(roc_auc_score(y, p)), "folds": folds, "features": list(FORMAT_FEATURES)}


def folder_table(result: dict) -> str:
    from clipproof.detector.evaluate import metric

    def row(name: str, m: dict) -> str:
        return (f"| {name} | {m['real']}/{m['synthetic']} | {metric(m['auc'])} | {metric(m['ap'])} | "
                f"{metric(m.get('recall_at_fpr_0.01'))} | {metric(m.get('recall_at_fpr_0.05'))} | "
                f"{metric(m['ece'])} | {metric(m['synthetic_flagged'])} | {metric(m['real_flagged'])} | "
                f"{metric(m['uncertain'])} |")
    lines = ["| subset | clips (real/synth) | AUC | AP | recall@1%FPR | recall@5%FPR | ECE | synth flagged | real flagged | uncertain |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [row("overall", result["overall"])]
    lines += [row(f"generator {k}", v) for k, v in result["per_generator"].items()]
    parity = result.get("parity", {})
    names = {"real_as_gif": "real clips as GIFs vs synthetic", "real_as_ordered_gif": "real clips as ordered-dither GIFs vs synthetic",
             "synthetic_at_720p": "synthetic at 720p vs real"}
    lines += [row(names[k], v["overall"]) for k, v in parity.items()]
    lines.append("\n| real source | clips | flagged synthetic | called likely real | uncertain |\n|---|---:|---:|---:|---:|")
    sources = list(result["per_real_source"].items()) + [("(all rendered)", result["rendered"])]
    for form, label in (("real_as_gif", "GIF"), ("real_as_ordered_gif", "ordered-dither GIF")):
        if form in parity:
            sources += [(f"{k} as {label}", v) for k, v in parity[form]["per_real_source"].items()]
    for name, m in sources:
        lines.append(f"| {name} | {m['clips']} | {metric(m['flagged'])} | {metric(m['called_real'])} | {metric(m['uncertain'])} |")
    fo = result["format_only"]
    lines.append(f"\nFormat-only classifier (cross-validated, {', '.join(fo['features'])}): AUC {metric(fo['auc'])}"
                 + "".join(f"; {names[k]} {metric(v['format_only']['auc'])}" for k, v in parity.items()) + ".")
    return "\n".join(lines)
