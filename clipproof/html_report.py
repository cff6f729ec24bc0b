"""``verify --html report.html``: one self-contained page a journalist can read, print and share.

No network, no script: CSS inline, thumbnails as JPEG data URIs, the detector's plot as inline
SVG drawn by matplotlib. The batch summary at the top filters the cards by verdict with radio
buttons and CSS alone (keyboard-reachable). Light and dark (``prefers-color-scheme``), a
single column on a phone, a print stylesheet that drops the filter and keeps cards whole.

Every text that comes from a file (signer names, titles, paths, parser messages) goes through
``html.escape``: a signer called ``<script>…`` is shown, never run.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from clipproof.atomic import atomic_output
from clipproof.display import safe_text
from clipproof.provenance.report import SOURCE_TYPE_LABELS, Report, media_summary, score_text
from clipproof.verification import Outcome
from clipproof.version import __version__

VERDICT_WORDS = {
    "ai-generated-declared": ("AI-generated, by its own declaration", "red"),
    "authentic-declared": ("Camera capture, declared by a trusted signer", "green"),
    "tampered": ("Changed after it was signed", "red"),
    "likely-synthetic": ("Likely made by a generative model (detector)", "red"),
    "likely-real": ("Likely real footage (detector)", "green"),
    "uncertain": ("Uncertain: nothing here can say where it came from", "amber"),
}
NEXT_STEP = {
    "ai-generated-declared": "Treat as AI-generated. If it is presented as real footage, that claim is false.",
    "authentic-declared": "The signer vouches for a capture: check that the signer is who the story says.",
    "tampered": "Do not use this copy: ask the source for the original file.",
    "likely-synthetic": "Treat the detector's call as a lead, not proof: ask the source for the original file "
                        "and look for other footage of the event.",
    "likely-real": "Treat the detector's call as a lead, not proof: corroborate with other sources.",
    "uncertain": "Ask the source for the original file (with its Content Credentials) and corroborate "
                 "with other footage.",
}
THUMBNAILS = 6


def write_html(outcomes: Iterable[Outcome], path: str | os.PathLike, *, thumbnails: bool = True) -> Path:
    """Write the report page for ``outcomes`` to ``path`` atomically; returns the path."""
    outcomes = list(outcomes)
    page = render_page(outcomes, thumbnails=thumbnails)
    path = Path(path)
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def render_page(outcomes: list[Outcome], *, thumbnails: bool = True, thumbnails_from: str | os.PathLike | None = None) -> str:
    """The page. Keyframes are read from each report's path, or from ``thumbnails_from`` (one
    file: an upload whose report names the file as the user called it)."""
    counts = Counter(map(_verdict, outcomes))
    filters = [("all", f"All ({len(outcomes)})")] + [(v, f"{_words(v)} ({n})") for v, n in sorted(counts.items())]
    radios = "".join(
        f'<input type="radio" name="show" id="show-{v}" value="{v}"{" checked" if v == "all" else ""}>'
        for v, _ in filters)
    labels = "".join(f'<label for="show-{v}">{_e(text)}</label>' for v, text in filters)
    rows = "".join(
        f'<tr class="v-{_verdict(o)}"><td><a href="#clip-{i}">{_e(o.path)}</a></td>'
        f'<td><span class="badge {_colour(o)}">{_e(_verdict(o))}</span></td><td>{o.exit_code}</td></tr>'
        for i, o in enumerate(outcomes))
    cards = "".join(_card(i, o, thumbnails, thumbnails_from) for i, o in enumerate(outcomes))
    hide = "".join(f"#show-{v}:checked ~ main .card:not(.v-{v}), #show-{v}:checked ~ main tr:not(.v-{v}):not(.head) "
                   f"{{display:none}}\n" for v, _ in filters if v != "all")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clipproof report — {len(outcomes)} file{'s' if len(outcomes) != 1 else ''}</title>
<style>{_CSS}
{hide}</style></head>
<body>
{radios}
<header><h1>Where did these clips come from?</h1>
<p class="meta">clipproof {__version__} · {when} · {len(outcomes)} file{'s' if len(outcomes) != 1 else ''}</p>
<nav class="filter" aria-label="Show clips by verdict">{labels}</nav></header>
<main>
<table class="summary"><caption>Summary</caption>
<tr class="head"><th scope="col">File</th><th scope="col">Verdict</th><th scope="col">Exit code</th></tr>
{rows}</table>
{cards}
</main>
<footer><p>Verdict rules: invalid credentials → tampered; valid credentials declaring a generative
source → AI-generated; trusted credentials declaring a capture → authentic; otherwise the detector,
whose calls are leads, not proof. Exit codes: 0 no red flag, 1 red flag, 2 uncertain, 64–78 errors.</p></footer>
</body></html>
"""


def _card(i: int, o: Outcome, thumbnails: bool, source: str | os.PathLike | None = None) -> str:
    if o.report is None:
        e = o.error
        return (f'<section class="card v-error" id="clip-{i}" aria-labelledby="h-{i}">'
                f'<h2 id="h-{i}">{_e(o.path)}</h2>'
                f'<div class="verdict red"><strong>Could not be verified</strong>'
                f'<p>{_e(getattr(e, "reason", str(e)))}</p>'
                f'<p class="next">Exit code {o.exit_code} ({_e(getattr(e, "kind", "internal"))}). '
                f'Check the file is a complete video or image, and ask the source for the original.</p></div></section>')
    r = o.report
    words, colour = VERDICT_WORDS[r.verdict]
    reason = r.reasons[0] if r.reasons else ""
    parts = [f'<section class="card v-{r.verdict}" id="clip-{i}" aria-labelledby="h-{i}">',
             f'<h2 id="h-{i}">{_e(r.path)}</h2>',
             f'<div class="verdict {colour}"><strong>{_e(words)}</strong> <code>{_e(r.verdict)}</code>'
             f'<p>{_e(reason)}</p><p class="next">{_e(NEXT_STEP[r.verdict])}</p></div>']
    if len(r.reasons) > 1:
        parts.append("<details open><summary>All reasons</summary><ul>"
                     + "".join(f"<li>{_e(x)}</li>" for x in r.reasons) + "</ul></details>")
    parts.append(_credentials(r))
    if thumbnails and r.media is not None:
        parts.append(_thumbnails(r, source or r.path))
    if r.detector is not None:
        parts.append(_detector(r))
    if r.watermark is not None:
        w = r.watermark
        extra = (f" Payload <code>{_e(w.payload)}</code>, bit agreement {w.bit_accuracy:.3f}"
                 f"{', read ' + w.orientation if w.orientation else ''}." if w.found else "")
        parts.append(f"<h3>Watermark</h3><p>{_e(w.note)}{extra}</p>")
    parts.append(_media(r))
    parts.append("</section>")
    return "".join(parts)


def _credentials(r: Report) -> str:
    c = r.credentials
    out = ["<h3>Content Credentials</h3>"]
    state = {"absent": "None: the file carries no C2PA manifest.",
             "error": "Unreadable.", "invalid": "Present but invalid: the file changed after signing, "
             "or the signature does not check out.", "valid": "Valid, but the signer is not trusted here.",
             "trusted": "Valid, and the signer chains to a trusted anchor.",
             "recovered": "Recovered through the watermark from the manifest store: this file is a changed "
                          "copy of a signed original."}[c.state]
    out.append(f"<p><strong>{_e(state)}</strong></p>")
    if c.signer:
        chain = [c.signer.common_name or "?", c.signer.issuer or "issuer unknown",
                 "a trusted anchor" if c.trusted_signer else "no trusted anchor"]
        out.append('<ol class="chain" aria-label="Certificate chain">'
                   + "".join(f"<li>{_e(x)}</li>" for x in chain) + "</ol>")
        if c.signer.organization:
            out.append(f"<p>Organisation: {_e(c.signer.organization)}</p>")
    if c.present:
        out.append(f"<p>Signed with {_e(c.claim_generator or 'an unknown tool')}; "
                   f"{_e(c.signed_at) if c.signed_at else 'not time-stamped'}.</p>")
    if c.actions:
        out.append('<ol class="timeline" aria-label="Actions">' + "".join(
            f"<li><code>{_e(a.action)}</code> {_e(SOURCE_TYPE_LABELS.get(a.source_type_name or '', a.source_type_name or ''))}"
            f"{' by ' + _e(a.software_agent) if a.software_agent else ''}"
            f"{' <time>' + _e(a.when) + '</time>' if a.when else ''}</li>" for a in c.actions) + "</ol>")
    if c.ingredients:
        out.append('<ul class="tree" aria-label="Ingredients">' + "".join(
            f"<li>{_e(i.title or '?')} ({_e(i.relationship or 'ingredient')}) — "
            f"{'its own credentials' if i.has_credentials else 'no credentials'}"
            f"{'; ' + '; '.join(_e(f.explanation) for f in i.failures) if i.failures else '; valid'}</li>"
            for i in c.ingredients) + "</ul>")
    problems = [f for f in c.failures if f.code != "manifest.notFound"]
    if problems:
        out.append('<ul class="failures">' + "".join(f"<li>{_e(f.explanation)} <code>{_e(f.code)}</code></li>"
                                                     for f in problems) + "</ul>")
    return "".join(out)


def _thumbnails(r: Report, source: str | os.PathLike) -> str:
    from PIL import Image

    from clipproof.errors import ClipproofError
    from clipproof.media import read_frames
    try:
        # A file cut short shows the frames it holds.
        frames, times = read_frames(source, 1 if r.media.is_image else THUMBNAILS, partial=True)
    except (ClipproofError, OSError):
        return "<p>Thumbnails: the frames do not decode.</p>"
    cells = []
    for frame, t in zip(frames, times):
        image = Image.fromarray(frame)
        image.thumbnail((240, 240))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        data = base64.b64encode(buf.getvalue()).decode()
        cells.append(f'<figure><img src="data:image/jpeg;base64,{data}" alt="frame at {t:.1f} s" '
                     f'width="{image.width}" height="{image.height}"><figcaption>{t:.1f} s</figcaption></figure>')
    return '<h3>Keyframes</h3><div class="thumbs">' + "".join(cells) + "</div>"


def _detector(r: Report) -> str:
    d = r.detector
    return (f"<h3>Detector</h3><p>{_e(d.model)} {_e(d.version)}: P(synthetic) {score_text(d.p_synthetic)} "
            f"(uncertain between {d.thresholds['low']:.2f} and {d.thresholds['high']:.2f}); "
            f"{d.seconds_scored:g} s of {d.duration_s:g} s scored. Trained on: {_e(d.trained_on)}</p>"
            f'<figure class="plot">{_segment_plot(r)}<figcaption>P(synthetic) per segment over time; '
            f"the dashed lines are the thresholds, red segments drove the verdict.</figcaption></figure>")


def _segment_plot(r: Report) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    d = r.detector
    fig, ax = plt.subplots(figsize=(6.4, 2.0), dpi=100)
    high, low = d.thresholds["high"], d.thresholds["low"]
    for s in d.segments:
        colour = "#c0392b" if s.p_synthetic >= high else "#7f8c8d"
        ax.plot([s.start_s, s.end_s], [s.p_synthetic, s.p_synthetic], color=colour, linewidth=4, solid_capstyle="butt")
    ax.axhline(high, color="#c0392b", linestyle="--", linewidth=1, label=f"likely synthetic ≥ {high:.2f}")
    ax.axhline(low, color="#27ae60", linestyle="--", linewidth=1, label=f"low ≤ {low:.2f}")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, max(d.duration_s, max((s.end_s for s in d.segments), default=1.0)))
    ax.set_xlabel("seconds")
    ax.set_ylabel("P(synthetic)")
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]          # no XML prolog inside HTML


def _media(r: Report) -> str:
    m = r.media
    facts = [media_summary(m, quote=_e)] if m else []
    facts.append(f"sha256 <code class=\"hash\">{_e(r.sha256)}</code>")
    return "<h3>File</h3><p>" + "<br>".join(facts) + "</p>"


def _verdict(o: Outcome) -> str:
    return o.report.verdict if o.report else "error"


def _colour(o: Outcome) -> str:
    return VERDICT_WORDS[o.report.verdict][1] if o.report else "red"


def _words(verdict: str) -> str:
    return verdict if verdict == "error" else verdict.replace("-", " ")


def _e(text) -> str:
    """Escaped for HTML; control and bidi characters shown as code points (``display.safe_text``),
    so a file's text can neither become markup nor reorder what is around it."""
    return html.escape(safe_text(text, limit=None), quote=True)


_CSS = """
:root{--bg:#fff;--fg:#1b1b1b;--muted:#555;--card:#f6f6f4;--line:#ccc;--red:#a61b1b;--green:#1d6b35;--amber:#8a5a00;
--redbg:#fde8e8;--greenbg:#e6f4ea;--amberbg:#fff4db}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#ececec;--muted:#b0b0b0;--card:#1e1e1e;--line:#444;
--red:#ff8a80;--green:#8fd19e;--amber:#ffd180;--redbg:#3b1515;--greenbg:#12301c;--amberbg:#3a2c0c}
svg{filter:invert(0.88) hue-rotate(180deg)}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--fg)}
header,main,footer{max-width:960px;margin:0 auto;padding:0 16px}h1{font-size:1.6rem;margin:1rem 0 .2rem}
.meta{color:var(--muted);margin:0 0 .6rem}
input[name=show]{position:absolute;opacity:0;width:1px;height:1px}
.filter label{display:inline-block;border:1px solid var(--line);border-radius:16px;padding:2px 12px;margin:2px;cursor:pointer}
#show-all:checked~header label[for=show-all]""" + "".join(
    f",#show-{v}:checked~header label[for=show-{v}]" for v in (*VERDICT_WORDS, "error")) + """{background:var(--fg);color:var(--bg)}
input[name=show]:focus-visible~header .filter{outline:3px solid #2962ff;outline-offset:2px}
table.summary{width:100%;border-collapse:collapse;margin:1rem 0}
.summary caption{text-align:left;font-weight:600}.summary th,.summary td{border-bottom:1px solid var(--line);
padding:4px 6px;text-align:left;word-break:break-all}
a{color:inherit}.badge{border-radius:4px;padding:0 6px;font-size:.85rem;white-space:nowrap}
.badge.red{background:var(--redbg);color:var(--red)}.badge.green{background:var(--greenbg);color:var(--green)}
.badge.amber{background:var(--amberbg);color:var(--amber)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:16px 0;
break-inside:avoid}
.card h2{font-size:1.05rem;word-break:break-all;margin:0 0 8px}.card h3{font-size:1rem;margin:14px 0 4px}
.verdict{border-left:6px solid;padding:6px 10px;border-radius:4px}.verdict p{margin:.3rem 0}
.verdict.red{border-color:var(--red);background:var(--redbg)}.verdict.green{border-color:var(--green);
background:var(--greenbg)}.verdict.amber{border-color:var(--amber);background:var(--amberbg)}
.verdict strong{font-size:1.1rem}.next{font-weight:600}
.chain{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px}.chain li+li:before{content:"→ ";color:var(--muted)}
.timeline{padding-left:1.2rem}.failures li{color:var(--red)}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs figure{margin:0}.thumbs img{max-width:100%;height:auto;
border-radius:4px;display:block}
figcaption{font-size:.8rem;color:var(--muted)}.plot svg{width:100%;height:auto;max-width:640px}
code{font-size:.85em}.hash{word-break:break-all}footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
@media (max-width:600px){body{font-size:15px}.summary td:nth-child(3),.summary th:nth-child(3){display:none}}
@media print{.filter,input{display:none}body{background:#fff;color:#000}.card{border-color:#999}
a{text-decoration:none}svg{filter:none}}
"""
