"""The library API: one shared Verifier across threads, batches with bad files, the demo."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import clipproof
from clipproof import Verifier, verify
from clipproof.demo import run as run_demo
from clipproof.errors import InputMissingError, InvalidMediaError, OutputUnwritableError
from conftest import FIXTURES


def test_public_api_names():
    for name in ("verify", "Verifier", "Report", "sign", "init_dev_keys", "Credentials"):
        assert getattr(clipproof, name)
    # The exports load lazily; dir() and tab completion must still list them.
    assert set(clipproof.__all__) <= set(dir(clipproof))


def test_shared_verifier_is_thread_safe(ai_clip, capture_clip, clip, keys):
    files = [ai_clip, capture_clip, clip, FIXTURES / "C.jpg", FIXTURES / "video1.mp4",
             FIXTURES / "XCA.jpg", FIXTURES / "cloud.jpg"] * 6
    verifier = Verifier(trust=keys.root, detector=None)
    expected = [verifier.verify(f).to_dict() for f in files]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda f: verifier.verify(f).to_dict(), files))
    assert got == expected


_FORKED: dict = {}


def _verify_in_child(path) -> dict:
    return _FORKED["verifier"].verify(path).to_dict()


def test_a_verifier_made_before_a_fork_works_in_the_children(ai_clip, capture_clip, keys):
    # Pre-forking servers and multiprocessing's fork start build the Verifier once, use it, then
    # fork workers: the C2PA library refuses a parent's objects in a child, and every file came
    # back as a reader error there.
    verifier = Verifier(trust=keys.root, detector=None)
    expected = [verifier.verify(f).to_dict() for f in (ai_clip, capture_clip)]
    _FORKED["verifier"] = verifier
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        got = list(pool.map(_verify_in_child, [ai_clip, capture_clip]))
    assert got == expected and got[0]["credentials"]["state"] == "trusted"


def test_verify_many_keeps_order_and_errors(ai_clip, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    outcomes = list(Verifier(detector=None).verify_many(
        [ai_clip, bad, tmp_path / "missing.mp4", FIXTURES / "nested_moov_1000.mp4"], workers=3))
    assert outcomes[0].report.verdict == "ai-generated-declared"
    assert isinstance(outcomes[1].error, InvalidMediaError)
    assert isinstance(outcomes[2].error, InputMissingError)
    assert isinstance(outcomes[3].error, InvalidMediaError)


def test_a_stream_that_fails_is_said_and_leaves_nothing(ai_clip, tmp_path, monkeypatch):
    """A read error on standard input, or a temporary folder that fills (`cat /dev/zero |
    verify -`), surfaced as an internal error; the spool is removed either way."""
    import errno
    import io
    import tempfile

    class Failing(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = data

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if not self.data:
                raise OSError(errno.EIO, "Input/output error")
            chunk, self.data = self.data[:n], self.data[n:]
            return chunk
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    verifier = Verifier(detector=None)
    with pytest.raises(InputMissingError, match="-: cannot be read \\(input/output error\\)"):
        verifier.verify_stream(Failing(ai_clip.read_bytes()))
    assert list(tmp_path.iterdir()) == []
    assert verifier.verify_stream(io.BytesIO(ai_clip.read_bytes())).verdict == "ai-generated-declared"
    # The spool's file is /dev/full: every write fails as on a full disk.
    import contextlib

    @contextlib.contextmanager
    def full_folder(prefix: str = ""):
        folder = tmp_path / "full"
        folder.mkdir()
        (folder / "input").symlink_to("/dev/full")
        try:
            yield str(folder)
        finally:
            (folder / "input").unlink()
            folder.rmdir()
    monkeypatch.setattr(tempfile, "TemporaryDirectory", full_folder)
    with pytest.raises(OutputUnwritableError, match="-: cannot keep it in the temporary folder .* \\(no space left on device\\)"):
        verifier.verify_stream(io.BytesIO(ai_clip.read_bytes()))


@pytest.mark.slow
def test_demo_runs_and_every_case_gets_its_verdict(tmp_path):
    from clipproof.detector.inference import load_detector
    summary = dict((name, verdict) for name, verdict, _ in run_demo(tmp_path / "demo"))
    assert summary["clip.ai.mp4 (unknown signer)"] == "ai-generated-declared"
    assert summary["clip.capture.mp4 (dev root trusted)"] == "authentic-declared"
    assert summary["clip.ai.tampered.mp4 (dev root trusted)"] == "tampered"
    # Where credentials cannot decide, the detector does: the demo clip is a real photograph, and
    # it is never called generated. The bundled detector does not call clips "likely real" (its
    # recall on unseen generators is too low for that to mean anything): uncertain.
    detector = load_detector()
    undecided = "likely-real" if detector is not None and detector.calibration.calls_real else "uncertain"
    assert summary["clip.capture.mp4 (unknown signer)"] == undecided
    assert summary["clip.mp4 (dev root trusted)"] == undecided
    # The stripped copy and the re-upload lost the manifest, not the watermark: recovered.
    assert summary["clip.ai.stripped.mp4 (dev root trusted)"] == "ai-generated-declared"
    assert summary["clip.ai.reupload.mp4 (dev root trusted)"] == "ai-generated-declared"
    from clipproof.generator.generate import bundled_configs
    generated = [v for k, v in summary.items() if "-t2v-" in k and "stripped" not in k]
    assert generated == (["ai-generated-declared"] if bundled_configs() else [])
    stripped = [v for k, v in summary.items() if "-t2v-" in k and "stripped" in k]
    assert len(stripped) == len(generated) and "ai-generated-declared" not in stripped


def test_report_round_trips_through_json(ai_clip, keys):
    import json

    from clipproof import Report
    from clipproof.findings import DetectorFindings, Segment
    report = verify(ai_clip, trust=keys.root, detector=None)
    again = Report.from_dict(json.loads(report.to_json()))
    assert again == report and again.to_dict() == report.to_dict()
    with_detector = Report(**{**report.__dict__, "detector": DetectorFindings(
        "m", "1", 0.3, {"low": 0.2, "high": 0.8}, [Segment(0.0, 1.0, 0.3)], 16)})
    assert Report.from_dict(with_detector.to_dict()) == with_detector
    with pytest.raises(ValueError):
        Report.from_dict({"schema": "other/1"})
    assert "trust" in verify.__doc__ and "detector" in verify.__doc__
