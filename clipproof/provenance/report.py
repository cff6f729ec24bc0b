"""The Report (schema ``clipproof.report/1``), the verdict rules and the text a desk reads.

The verdict rules are DESIGN.md's, in order:
1. credentials present but invalid → ``tampered``;
2. valid or trusted credentials declaring a generative source type → ``ai-generated-declared``;
3. trusted credentials declaring a capture and no generative step → ``authentic-declared``;
4. otherwise the detector decides with its calibrated thresholds, or ``uncertain`` without one.

Credentials *recovered* through a watermark (the file's own are absent or broken) count as the
original's: their declaration decides by rules 2 and 3, and the reasons say the file is a
changed copy.

This module knows nothing of models: the detector's findings arrive as plain data.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from clipproof.display import safe_text
from clipproof.errors import exit_code, kind
from clipproof.findings import DetectorFindings, Segment, merge_spans
from clipproof.limits import MAX_FIELD_CHARS
from clipproof.provenance.durable import WatermarkFindings
from clipproof.provenance.read import Action, Credentials, Failure, Ingredient, Signer

if TYPE_CHECKING:
    from clipproof.media import MediaInfo

SCHEMA = "clipproof.report/1"

Verdict = Literal["ai-generated-declared", "authentic-declared", "tampered", "likely-synthetic",
                  "likely-real", "uncertain"]

# The exit code of `verify` for each verdict (DESIGN.md): 0 no red flag, 1 red flag, 2 uncertain.
VERDICT_EXIT = {
    "authentic-declared": 0, "likely-real": 0,
    "tampered": 1, "ai-generated-declared": 1, "likely-synthetic": 1,
    "uncertain": 2,
}

# Labels by IPTC source type, in the C2PA UX guidance's wording.
SOURCE_TYPE_LABELS = {
    "trainedAlgorithmicMedia": "AI-generated",
    "compositeWithTrainedAlgorithmicMedia": "AI-edited",
    "algorithmicMedia": "Algorithmically generated",
    "digitalCapture": "Camera-captured",
    "computationalCapture": "Camera-captured (computational)",
    "compositeCapture": "Composite of captures",
    "negativeFilm": "Scanned film negative",
    "positiveFilm": "Scanned film",
    "print": "Scanned print",
    "minorHumanEdits": "Captured, minor human edits",
    "humanEdits": "Human-edited",
    "digitalCreation": "Created digitally (not AI)",
    "screenCapture": "Screen capture",
}

# How far the detector must disagree with a declared capture before the report says so.
_STRONG_DISAGREEMENT = 0.9


@dataclass(frozen=True)
class Report:
    path: str
    sha256: str
    media: MediaInfo | None
    credentials: Credentials
    detector: DetectorFindings | None
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    watermark: WatermarkFindings | None = None    # looked for when the file's own credentials fail

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT[self.verdict]

    def to_dict(self) -> dict:
        """The JSON object of ``verify --json`` (schema clipproof.report/1)."""
        return {
            "schema": SCHEMA,
            "path": self.path,
            "sha256": self.sha256,
            "media": self.media.to_dict() if self.media else None,
            "credentials": self.credentials.to_dict(),
            "detector": asdict(self.detector) if self.detector else None,
            "watermark": self.watermark.to_dict() if self.watermark else None,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "exit_code": self.exit_code,
        }

    def to_json(self) -> str:
        """``to_dict`` as one line of JSON (a row of ``verify --json``)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        """The Report a ``to_dict`` object (or a ``verify --json`` row) describes.

        Raises ValueError for an object of another schema, or for an error row (which has no
        report: see ``error_record``)."""
        from clipproof.media import MediaInfo
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} object (schema {data.get('schema')!r})")
        if "error" in data:
            raise ValueError(f"{data.get('path')}: an error row, not a report")
        c = data["credentials"]
        credentials = Credentials(
            state=c["state"], signer=Signer(**c["signer"]) if c.get("signer") else None,
            signed_at=c.get("signed_at"), claim_generator=c.get("claim_generator"),
            actions=[Action(**a) for a in c.get("actions", [])], ai_generated=c.get("ai_generated"),
            ingredients=[Ingredient(**{**i, "failures": [Failure(**f) for f in i.get("failures", [])]})
                         for i in c.get("ingredients", [])],
            failures=[Failure(**f) for f in c.get("failures", [])], soft_binding=c.get("soft_binding"))
        d = data.get("detector")
        detector = DetectorFindings(**{**d, "segments": [Segment(**s) for s in d["segments"]]}) if d else None
        return cls(path=data["path"], sha256=data["sha256"],
                   media=MediaInfo(**data["media"]) if data.get("media") else None,
                   credentials=credentials, detector=detector, verdict=data["verdict"],
                   reasons=list(data.get("reasons", [])),
                   watermark=WatermarkFindings(**data["watermark"]) if data.get("watermark") else None)


def error_record(path: str | os.PathLike, error: BaseException) -> dict:
    """The ``verify --json`` row of a file that got no report: its error's exit code, kind and
    one-line message, read from the error's fields."""
    return {"schema": SCHEMA, "path": os.fspath(path),
            "error": {"exit_code": exit_code(error), "kind": kind(error), "message": str(error)},
            "exit_code": exit_code(error)}


# ---------------------------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------------------------

def decide(credentials: Credentials, detector: DetectorFindings | None,
           no_detector_reason: str | None = None) -> tuple[Verdict, list[str]]:
    """Apply the verdict rules; return the verdict and the reasons a person reads."""
    reasons = _credential_reasons(credentials)
    c = credentials
    if c.state == "invalid":
        return "tampered", reasons
    if c.state in ("valid", "trusted", "recovered") and c.ai_generated:
        return "ai-generated-declared", reasons
    if c.trusted_signer and c.declares_capture:
        if detector and detector.p_synthetic >= max(detector.thresholds["high"], _STRONG_DISAGREEMENT):
            reasons.append(f"The detector disagrees strongly (p_synthetic {score_text(detector.p_synthetic)}) "
                           "with the declared capture: inspect the clip.")
        return "authentic-declared", reasons
    if c.state in ("valid", "recovered") and c.declares_capture:
        reasons.append("The credentials declare a capture, but their signer is not trusted, "
                       "so they cannot make the clip authentic.")
    if detector is None:
        reasons.append(no_detector_reason or "No detector is installed, and nothing else decides.")
        return "uncertain", reasons
    return _detector_verdict(detector, reasons)


def _detector_verdict(d: DetectorFindings, reasons: list[str]) -> tuple[Verdict, list[str]]:
    """The verdict the detector gives: driven by the clip's most synthetic stretch."""
    low, high, p = d.thresholds["low"], d.thresholds["high"], d.p_synthetic
    if d.duration_s:
        reasons.append(f"The detector scored {d.seconds_scored:g} s of {d.duration_s:g} s "
                       f"({len(d.segments)} segment{'s' if len(d.segments) != 1 else ''}).")
    reasons += [f"Scored on what there is: {s}." for s in d.shortfalls]
    if d.out_of_distribution:
        reasons.append(f"The clip is unlike anything the detector was trained on (feature distance "
                       f"{d.ood_distance:g}; 99% of held-out clips it knows stay within {d.ood_threshold:g}), "
                       f"so its score (p_synthetic {score_text(p)}) is no evidence either way.")
        return "uncertain", reasons
    if p >= high:
        stretches = _stretches(d.segments, high)
        where = "the clip" if len(d.segments) == 1 else ", ".join(f"{a:g}–{b:g} s" for a, b in stretches)
        reasons.append(f"The detector scores {where} as likely synthetic (p_synthetic {score_text(p)}, threshold {high:.2f}).")
        return "likely-synthetic", reasons
    # "Likely real" asks more than "not synthetic": every segment low, not a clip score that the
    # discount for many segments has lowered.
    top = max((s.p_synthetic for s in d.segments), default=p)
    if top <= low:
        if not d.calls_real:
            reasons.append(f"Every segment scores low (highest p_synthetic {score_text(top)}), but this detector "
                           f"does not call clips likely real: {d.calls_real_note or 'its recall is unmeasured'}.")
            return "uncertain", reasons
        reasons.append(f"The detector scores every segment as likely real (highest p_synthetic {score_text(top)}, "
                       f"threshold {low:.2f}).")
        return "likely-real", reasons
    if top == p:
        reasons.append(f"The detector is undecided (p_synthetic {score_text(p)}; the uncertain band is "
                       f"{low:.2f} to {high:.2f}).")
    else:
        # The clip's score is its highest segment's, discounted for the number of segments: it
        # may fall below the band while the segment that keeps the verdict open is inside it.
        n = len(d.segments)
        where = (f"inside the uncertain band {low:.2f} to {high:.2f}" if top < high else
                 f"above {high:.2f}, but real clips of {n} segments often hold one such segment")
        reasons.append(f"The detector is undecided: its highest segment scores {score_text(top)}, {where} "
                       f"(p_synthetic {score_text(p)} for the clip, discounted for its {n} segments).")
    return "uncertain", reasons


def _stretches(segments: list[Segment], high: float) -> list[tuple[float, float]]:
    """Runs of adjacent segments scoring at least ``high``, as (start, end) seconds."""
    spans = merge_spans((s.start_s, s.end_s) for s in segments if s.p_synthetic >= high)
    return [(round(a, 2), round(b, 2)) for a, b in spans]


def score_text(p: float) -> str:
    """A probability with two significant digits where they matter — 0.53, 0.0031, 0.99986 —
    and a bound in the far tails (< 0.0001, > 0.9999): never 0.00 or 1.00, which would say
    "certain" of a model that is merely confident."""
    if 0.01 <= p <= 0.99:
        return f"{p:.2f}"
    if p < 0.01:
        return f"{p:.2g}" if p >= 1e-4 else "< 0.0001"
    if 1.0 - p < 1e-4:
        return "> 0.9999"
    return f"{p:.{1 - math.floor(math.log10(1.0 - p)) + 1}f}".rstrip("0")


def _credential_reasons(c: Credentials) -> list[str]:
    out: list[str] = []
    if c.state in ("absent", "error"):
        out += [f.explanation for f in c.failures]
        return out
    declared = _declaration(c)
    if c.state == "invalid":
        out += [f.explanation for f in c.failures if f.code != "signingCredential.untrusted"]
        if declared:
            out.append(f"Before the change, the credentials declared: {declared}.")
        return out
    whose = "The original's Content Credentials (recovered through its watermark)" if c.state == "recovered" \
        else "The Content Credentials"
    if declared:
        out.append(f"{whose} declare: {declared}.")
    else:
        out.append(f"{whose} declare no digital source type: neither generated nor captured.")
    if c.trusted_signer:
        out.append("The signer chains to a trusted anchor.")
    else:
        out.append("Signed by an unknown source: the signer's certificate does not chain to a "
                   "trusted anchor (give one with --trust).")
    bad = [f.explanation for i in c.ingredients for f in i.failures]
    out += bad
    return out


def _declaration(c: Credentials) -> str | None:
    for a in c.actions:
        if a.source_type_name:
            # The file's words, inside our sentence: escaped and cut (see clipproof.display).
            label = SOURCE_TYPE_LABELS.get(a.source_type_name, safe_text(a.source_type_name))
            by = f" by {safe_text(a.software_agent)}" if a.software_agent else ""
            return f"{label} ({safe_text(a.source_type_name)}){by}"
    return None


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

_HEADLINES = {
    "ai-generated-declared": "AI-GENERATED (declared by its Content Credentials)",
    "authentic-declared": "AUTHENTIC CAPTURE (declared by trusted Content Credentials)",
    "tampered": "TAMPERED (Content Credentials do not match the file)",
    "likely-synthetic": "LIKELY SYNTHETIC (detector)",
    "likely-real": "LIKELY REAL (detector)",
    "uncertain": "UNCERTAIN",
}


def render_text(report: Report) -> str:
    """The short report a person reads: verdict first, then reasons, signer, declarations.

    Every text that comes from the file (or its name) is escaped and cut (``display.safe_text``):
    it cannot move the cursor, retitle the terminal, or start a line of its own."""
    r, f = report, safe_text
    lines = [_line(r.path), f"  Verdict:     {_HEADLINES[r.verdict]}  [{r.verdict}]"]
    lines += [f"  - {_line(reason)}" for reason in r.reasons]
    lines += credential_lines(r.credentials)
    if r.detector:
        d = r.detector
        lines.append(f"  Detector:    {f(d.model)} {f(d.version)}: p_synthetic {score_text(d.p_synthetic)} "
                     f"(low {d.thresholds['low']:.2f}, high {d.thresholds['high']:.2f}), "
                     f"{d.frames_used} frames")
        if d.trained_on:
            lines.append(f"  Trained on:  {f(d.trained_on, limit=4 * MAX_FIELD_CHARS)}")
        lines += [f"    {s.start_s:6.1f}–{s.end_s:6.1f} s  {_bar(s.p_synthetic)} {score_text(s.p_synthetic)}"
                  for s in d.segments]
    if r.media:
        lines.append(f"  Media:       {media_summary(r.media)}")
    if r.watermark:
        w = r.watermark
        if w.found:
            lines.append(f"  Watermark:   {w.lookup}: payload {w.payload}, bit agreement {w.bit_accuracy:.3f}, "
                         f"false-match odds < {w.false_match_odds:.0e} per clip"
                         f"{', read ' + w.orientation if w.orientation else ''}")
        else:
            lines.append(f"  Watermark:   {f(w.note)}")
    lines.append(f"  sha256:      {r.sha256}")
    return "\n".join(lines)


def credential_lines(c: Credentials) -> list[str]:
    """The signer, the signing tool and time, the actions and ingredients of ``c``, one
    indented line each, escaped as ``render_text`` escapes them."""
    f, lines = safe_text, []
    if c.signer:
        who = f(c.signer.common_name or "?")
        if c.signer.organization:
            who += f" ({f(c.signer.organization)})"
        if c.signer.issuer:
            who += f", issued by {f(c.signer.issuer)}"
        lines.append(f"  Signer:      {who}")
    if c.present:
        lines.append(f"  Signed with: {f(c.claim_generator or 'unknown tool')}")
        lines.append(f"  Signed at:   {f(c.signed_at or 'not time-stamped')}")
        for a in c.actions:
            label = SOURCE_TYPE_LABELS.get(a.source_type_name or "", a.source_type_name or "")
            lines.append(f"  Action:      {f(a.action)}" + (f": {f(label)}" if label else "")
                         + (f" by {f(a.software_agent)}" if a.software_agent else "")
                         + (f", {f(a.when)}" if a.when else ""))
        for i in c.ingredients:
            lines.append(f"  Ingredient:  {f(i.title or '?')} ({f(i.relationship or 'ingredient')})"
                         + (" — with its own credentials" if i.has_credentials else ""))
    return lines


def media_summary(m: MediaInfo, quote=safe_text) -> str:
    """"mp4/h264 1280x720, 12 fps, 36 frames, 3 s, audio", the file's own words through ``quote``."""
    timing = "still image" if m.is_image else f"{m.fps:g} fps, {m.frames} frames, {m.duration_s:g} s"
    # A phone's portrait clip is stored sideways: the size shown is the picture's, turned.
    turned = f" (stored {m.height}x{m.width}, shown turned {m.rotation}°)" if m.rotation % 180 else ""
    return (f"{quote(m.container)}/{quote(m.codec)} {m.width}x{m.height}{turned}, {timing}"
            + (", audio" if m.has_audio else "") + (_CUT_SHORT[m.is_image] if m.cut_short else ""))


# A video's frames and duration are what its index declares; a cut still image is only cut.
_CUT_SHORT = {False: " as its headers declare, cut short", True: ", cut short"}


def _line(text: str) -> str:
    """A whole line that may quote the file (a path, a parser's message): escaped, cut long."""
    return safe_text(text, limit=4 * MAX_FIELD_CHARS)


def _bar(p: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, p)) * width)
    return "█" * filled + "·" * (width - filled)
