"""`verify --html`: one self-contained page, the right card per file, hostile text escaped, and
(with Debian's chromium installed) rendered headless: no console errors, a plot and thumbnails
on screen, offline."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clipproof import sign
from clipproof.cli import verify_main
from clipproof.demo import flip_byte, moving_scene
from clipproof.media import remux, write_mp4
from clipproof.provenance.keys import init_dev_keys
from conftest import index_first

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(tmp_path_factory, ai_clip, capture_clip, keys) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("html")
    tampered = flip_byte(ai_clip, root / "tampered.mp4", "mdat")
    stripped = remux(capture_clip, root / "stripped.mp4")
    broken = root / "broken.mp4"
    broken.write_bytes(b"\0\0\0\x18ftypisom" + b"x" * 40)
    hostile_keys = init_dev_keys(root / "hostile-keys", common_name='<script>alert("x")</script>\u202e\x1b[31m')
    hostile = sign(write_mp4(moving_scene(12, 96, 64), root / "h.mp4", fps=12), root / "hostile.mp4",
                   key=hostile_keys.key, cert=hostile_keys.chain, watermark=False)
    out = root / "report.html"
    code = verify_main([str(ai_clip), str(capture_clip), str(tampered), str(stripped), str(broken), str(hostile),
                        "--trust", str(keys.root), "--html", str(out), "-q"])
    assert code == 1
    return out, out.read_text(encoding="utf-8")


def _cards(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="card v-([a-z-]+)" id="clip-\d+" aria-labelledby="h-\d+"><h2 id="h-\d+">([^<]*)</h2>',
                           text)[i][::-1] for i in range(text.count('<section class="card')))


def test_every_file_gets_its_card(page):
    _, text = page
    cards = _cards(text)
    by_name = {Path(k).name: v for k, v in cards.items()}
    assert by_name == {"ai.mp4": "ai-generated-declared", "capture.mp4": "authentic-declared",
                       "tampered.mp4": "tampered", "stripped.mp4": "uncertain", "broken.mp4": "error",
                       "hostile.mp4": "ai-generated-declared"}
    assert "ask the source for the original file" in text.lower()


def test_the_page_is_self_contained(page):
    _, text = page
    assert "<script" not in text.lower()
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert text.count("<svg") >= 4           # the detector's plot, inline, on every decoded video
    assert 'data:image/jpeg;base64,' in text


def test_hostile_metadata_is_escaped(page):
    _, text = page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert '<script>alert("x")' not in text and "\x1b" not in text and "\u202e" not in text
    assert "\\u202e" in text


def test_a_report_name_that_is_not_html_is_refused_before_anything_is_verified(clip, tmp_path):
    """`verify --html clip.mp4 other.mp4`, the report's name forgotten, replaced clip.mp4 with
    the report; a report into a missing folder failed only after every file was verified."""
    import shutil

    from conftest import run_cli
    mine = shutil.copy(clip, tmp_path / "mine.mp4")
    before = mine.read_bytes()
    out = run_cli("verify", "--no-detector", "--html", str(mine), str(clip))
    assert out.returncode == 64 and out.stdout == "" and "--html needs a file name ending in .html" in out.stderr
    assert mine.read_bytes() == before
    out = run_cli("verify", "--no-detector", "--html", str(tmp_path / "gone" / "r.html"), str(clip))
    assert (out.returncode, out.stdout) == (73, "") and "no such folder" in out.stderr


def test_a_clip_cut_short_shows_the_frames_it_holds(tmp_path):
    from clipproof.bmff import find_box
    from clipproof.html_report import render_page
    from clipproof.verification import Verifier
    whole = index_first(write_mp4(moving_scene(48, 96, 64), tmp_path / "written.mp4", fps=12), tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:find_box(whole, "mdat").middle])
    outcomes = list(Verifier(detector=None).verify_many([cut]))
    assert outcomes[0].report is not None and outcomes[0].report.media.cut_short
    text = render_page(outcomes)
    times = [float(t) for t in re.findall(r'alt="frame at ([0-9.]+) s"', text)]
    assert 1 <= len(times) < 6 and times == sorted(set(times)) and max(times) < 2.0, times
    assert "do not decode" not in text


def test_plots_come_from_matplotlib(tmp_path, keys):
    from clipproof.findings import DetectorFindings, Segment
    from clipproof.html_report import render_page
    from clipproof.provenance.read import Credentials
    from clipproof.provenance.report import Report
    from clipproof.verification import Outcome
    d = DetectorFindings("m", "1", 0.9, {"low": 0.1, "high": 0.5},
                         [Segment(0, 2, 0.2), Segment(2, 4, 0.9), Segment(4, 6, 0.3)], 48, 6.0, 6.0)
    report = Report(str(tmp_path / "gone.mp4"), "0" * 64, None, Credentials(state="absent"), d, "likely-synthetic",
                    ["The detector scores 2–4 s as likely synthetic."])
    text = render_page([Outcome(report.path, report, None)])
    svg = text[text.index("<svg"):text.index("</svg>")]
    assert "matplotlib" in svg.lower() and "#c0392b" in svg       # the red segment that drove the verdict


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_chromium_renders_it_offline_without_console_errors(page, tmp_path):
    out, _ = page
    shot = tmp_path / "shot.png"
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--enable-logging=stderr", "--v=0", "--proxy-server=127.0.0.1:9", "--window-size=1000,3000",
                          f"--screenshot={shot}", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    from PIL import Image
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.std() > 20                         # text, thumbnails and plot, not a blank page
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
                          "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "Changed after it was signed" in dom and "<svg" in dom and dom.count("<img") >= 6
