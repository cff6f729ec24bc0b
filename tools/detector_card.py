"""Write a detector's MODEL_CARD.md from its config, its evaluation and the leave-one-out runs.

    python -m tools.detector_card --weights clipproof/detector/weights/st-attention-npr \\
        --baseline .train/det-frame/eval/eval.json --loo .train/loo/loo.json --metadata .train/metadata.json \\
        --folder-eval .train/wild-dev-eval/eval.json --corpus-command "..." --train-command "..."
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clipproof.atomic import atomic_output
from clipproof.detector.evaluate import metric as _f
from clipproof.detector.evaluate import table
from clipproof.detector.folder_eval import folder_table
from clipproof.detector.weights import load_weights, segment_crops
from clipproof.errors import ClipproofError, InputMissingError, one_line


INTENDED_USE = [
    "## Intended use", "",
    "- A second opinion for a verification desk or a moderation queue on clips that carry no valid Content "
    "Credentials: a `likely-synthetic` verdict says *look closer*, with the time range that scored high.",
    "- Ranking and triage of many clips (`clipproof batch`): its scores order clips by how synthetic they look.", "",
    "## Not for", "",
    "- Proof. A score is a measurement on the pixels, not a provenance record; signed credentials and the "
    "watermark decide before it, and a verdict on its own must not decide a takedown or an accusation.",
    "- Calling a clip authentic. `uncertain` is the honest answer for most clips it cannot place; it says "
    "`likely-real` only where leave-one-generator-out measured a recall that makes it mean something.",
    "- Footage far from what it was trained on (see the out-of-distribution check: such clips are `uncertain`), "
    "images (never scored) or clips of a few frames (scored on what there is, and said so).", ""]


def card(weights: Path, baseline: dict | None, loo: list[dict], metadata: dict | None, corpus_cmd: str,
         train_cmd: str, loo_cmd: str = "", known_limits: list[str] | None = None,
         folder_eval: dict | None = None, folder_cmd: str = "") -> str:
    model, config, cal = load_weights(weights)
    if not (weights / "eval" / "eval.json").is_file():
        raise InputMissingError("not evaluated yet (no eval/eval.json; run "
                                f"`clipproof detector eval --corpus CORPUS --weights {weights} --out {weights / 'eval'}`)",
                                path=weights)
    result = json.loads((weights / "eval" / "eval.json").read_text())
    o = result["overall"]
    w, h = config["size"]
    if config.get("input") == "native":
        seen = (f"{config['frames']} frames of {segment_crops(config)} crops of {w}×{h} pixels spread over the frame, "
                f"at the clip's own resolution (nothing is scaled down, so the pixels are seen as they are)")
    else:
        seen = f"{config['frames']} frames scaled down to {w}×{h}"
    lines = [f"# {config['model']}: clipproof's bundled detector", "",
             f"Per-frame features from a timm ResNet-10-T (half width, random init, input: {model.looks_at}"
             f"{', beside its difference from the previous frame' if getattr(model, 'temporal_diff', False) else ''}"
             f"), a transformer over time, a linear head; it sees {seen}, upsampled 2× nearest inside the model. "
             f"Output: calibrated P(synthetic) per segment (the mean logit of its crops); a clip's is its most "
             f"synthetic segment's, discounted for the number of segments.", "",
             "Chosen over torchvision's R(2+1)D-18 and MC3-18 on measurements (`python -m bench.detector_models`): "
             "a similar training step, 3–4× faster inference per segment, and 2.3 M parameters against 31 M / 11 M, "
             "which keeps the weights small enough to ship in the package.", "",
             "## Training", "",
             f"- Corpus: `{corpus_cmd}`; split by footage. Trained on {config.get('trained_on', '?')}.",
             f"- Command: `{train_cmd}`",
             f"- {config['train_clips']} training clips, {config['val_clips']} validation clips; best epoch "
             f"{config['best_epoch']} of {len(config['history'])} (validation AUC {config['best_val_auc']:.3f}); "
             f"{config['seconds'] / 60:.1f} min on CPU.",
             f"- Calibration on the validation split's segments: temperature {cal.temperature:.3f}, low {cal.low:.3f}, "
             f"high {cal.high:.3f} (true-negative rate ≥ 0.99 on real validation segments)"
             + (f"; real segments' logits {cal.real_mean:.2f} ± {cal.real_std:.2f} (the discount for many segments)"
                if cal.real_std else "") + ".",
             f"- Calls clips likely real: {'yes' if cal.calls_real else 'no'} — {cal.calls_real_note}.", "",
             "## Evaluation (test split, never seen in training; one crop or clip at a time)", "", table(result), "",
             "![ROC](eval/roc.png) ![reliability](eval/reliability.png)", ""]
    if baseline:
        b = baseline["overall"]
        lines += ["## Temporal model vs frame-only baseline (same backbone, frame logits averaged)", "",
                  "| model | AUC | AP | AUC at CRF 35 | AUC at 0.5× | TNR@high |", "|---|---:|---:|---:|---:|---:|",
                  f"| {config['model']} | {_f(o['auc'])} | {_f(o['ap'])} | {_f(result['robustness'].get('crf35', {}).get('auc'))} | "
                  f"{_f(result['robustness'].get('down0.5', {}).get('auc'))} | {_f(o['tnr_at_high'])} |",
                  f"| frame-avg | {_f(b['auc'])} | {_f(b['ap'])} | {_f(baseline['robustness'].get('crf35', {}).get('auc'))} | "
                  f"{_f(baseline['robustness'].get('down0.5', {}).get('auc'))} | {_f(b['tnr_at_high'])} |", ""]
    if folder_eval:
        lines += ["## On footage from elsewhere, scored as `verify` scores it", ""]
        if folder_cmd:
            lines += [f"`{folder_cmd}`", ""]
        lines += [folder_table(folder_eval), ""]
    if loo:
        lines += ["## Leave one generator out (trained without it, tested on all its clips vs held-out real)", ""]
        if loo_cmd:
            lines += [f"`{loo_cmd}`", ""]
        lines += ["| left out | training | AUC | AP | TNR@high | TPR@high | generated at or below low |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for run in loo:
            recipe = f"{run['epochs']} epochs, patience {run['patience']}" if "epochs" in run else "–"
            for value, m in run["results"].items():
                lines.append(f"| {run['axis']} = {value} | {recipe} | {_loo_auc(m)} | {_f(m['ap'])} | "
                             f"{_f(m['tnr_at_high'])} | {_f(m['tpr_at_high'])} | "
                             f"{_f(m.get('synthetic_at_or_below_low'))} |")
        lines.append("")
    if metadata:
        lines += ["## No shortcuts", "",
                  f"A gradient-boosted classifier on container metadata alone ({', '.join(metadata['features'])}) "
                  f"reaches accuracy {metadata['accuracy']:.3f} (majority rate {metadata['majority_rate']:.3f}, AUC "
                  f"{_f(metadata['auc'])}) on the test split: at chance. `clipproof detector check-metadata`.", ""]
    bullets = _shortfalls(result, loo) + [f"- {text}" for text in known_limits or []]
    lines += ["## Limits", "", *bullets, *([""] if bullets else []),
              "Generators change faster than any training set: treat its scores on a generator that is not in the "
              "tables above as untested until measured.", "", *INTENDED_USE]
    return "\n".join(lines)


def _loo_auc(m: dict) -> str:
    """A left-out value's AUC; of several training runs, their mean and range, and the runs'
    as one ensemble where the record has it."""
    if not m.get("auc_range"):
        return _f(m["auc"])
    low, high = m["auc_range"]
    together = f"; together {_f(m['ensemble']['auc'])}" if (m.get("ensemble") or {}).get("auc") is not None else ""
    return f"{_f(m['auc'])} (runs: {_f(low)}–{_f(high)}, {len(m['runs'])} runs{together})"


def _shortfalls(result: dict, loo: list[dict]) -> list[str]:
    """Where the figures above fall short of the detector issue's targets, said in words."""
    out = []
    o = result["overall"]
    if o.get("tpr_at_high") is not None and o["tpr_at_high"] < 0.95:
        weak = [f"{name} {m['tpr_at_high']:.2f}" for name, m in result["per_generator"].items()
                if m.get("tpr_at_high") is not None and m["tpr_at_high"] < 0.95]
        out.append(f"- At `high` (chosen for ≤ 1 % false positives on real clips) it flags {o['tpr_at_high']:.0%} of "
                   f"generated test clips; the rest land in `uncertain` or below (per source: {', '.join(weak)}).")
    missed = [f"{run['axis']} = {value} (AUC {_loo_auc(m)}, {run.get('epochs', '?')} epochs)" for run in loo
              for value, m in run["results"].items() if m.get("auc") is not None and m["auc"] < 0.95]
    if missed:
        out.append(f"- Unseen generator variants below AUC 0.95: {', '.join(missed)}.")
    real = result.get("held_out_real") or {}
    fpr = real.get("false_positive_rate_at_high")
    if fpr is not None and fpr > 0.01:
        flagged = round(fpr * real["clips"])
        out.append(f"- Held-out real footage: {flagged} of {real['clips']} clips score above `high` "
                   f"(true-negative rate {1 - fpr:.3f}, target ≥ 0.99).")
    crf35 = result["robustness"].get("crf35", {}).get("auc")
    if crf35 is not None and crf35 < 0.95:
        out.append(f"- Re-encoded at CRF 35: AUC {crf35:.3f}, below 0.95.")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.detector_card", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--baseline", type=Path)
    p.add_argument("--loo", type=Path, nargs="*", default=[])
    p.add_argument("--metadata", type=Path)
    p.add_argument("--corpus-command", required=True)
    p.add_argument("--train-command", required=True)
    p.add_argument("--loo-command", default="", help="the leave-one-out command, for the card")
    p.add_argument("--folder-eval", type=Path, help="eval.json of `detector eval --folder` on footage from elsewhere")
    p.add_argument("--folder-command", default="", help="the command that made --folder-eval, for the card")
    p.add_argument("--known-limit", action="append", default=[], metavar="TEXT",
                   help="a failure measured outside the eval (e.g. on footage from elsewhere); repeatable")
    args = p.parse_args(argv)
    try:
        text = card(args.weights, _read_json(args.baseline), [_read_json(path) for path in args.loo],
                    _read_json(args.metadata), args.corpus_command, args.train_command, args.loo_command,
                    args.known_limit, _read_json(args.folder_eval), args.folder_command)
        with atomic_output(args.weights / "MODEL_CARD.md") as tmp:
            tmp.write_text(text, encoding="utf-8")
    except ClipproofError as e:
        print(f"{p.prog}: {e}", file=sys.stderr)
        return e.exit_code
    print(text)
    return 0


def _read_json(path: Path | None) -> dict | None:
    """A results file named on the command line: a misspelt one is an error, not a missing table."""
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputMissingError("no such file", path=path) from None
    except (OSError, ValueError) as e:
        raise InputMissingError(f"unreadable results file ({one_line(e)})", path=path) from None


if __name__ == "__main__":
    sys.exit(main())
