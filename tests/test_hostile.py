"""Hostile uploads (issue 13): each attack the audit found, made here, must end in its own row
with its documented code, quickly, in bounded memory — never a bug's exit 70, never a stalled
or dead batch, never a forged line on the reader's terminal."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from clipproof.errors import (DecodeLimitError, InputMissingError, InvalidMediaError, OutputExistsError,
                              OutputUnwritableError)
from clipproof.limits import MAX_BOXES, MAX_DECODED_FRAMES
from clipproof.media import read_windows
from clipproof.provenance.keys import init_dev_keys
from clipproof.provenance.sign import sign
from clipproof.structure import check_structure
from clipproof.verification import Verifier
from conftest import run_cli
from hostile import crafted, frame_count_bomb, free_box_flood, mutations, nested_box_flood, png_bomb


@pytest.fixture(scope="module")
def corpus(ai_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return mutations(ai_clip, root / "mutated") + crafted(root / "crafted", ai_clip)


def _sample(corpus: list) -> list:
    """Every named attack and every fifth mutation: five is prime to the six lies told of each
    box's size, so each lie is told of some boxes (one of them of each ``hdlr`` box, where the
    audit found its bug). For the paths that cost most per file and for the edit loop; the whole
    suite reads every file on the credentials-only path."""
    mutated = ("truncated-", "flipped-", "boxsize-")
    return [c for i, c in enumerate(corpus) if i % 5 == 0 or not c.name.startswith(mutated)]


def _code(verifier: Verifier, path: Path) -> int:
    outcome, = verifier.verify_many([path])
    return outcome.exit_code


@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["sample", "every"])
def test_mutation_corpus_gives_each_file_its_documented_code(corpus, every):
    cases = corpus if every else _sample(corpus)          # the edit loop reads a fifth of them
    verifier = Verifier(detector=None)
    paths = [case.path for case in cases]
    started = time.monotonic()
    outcomes = list(verifier.verify_many(paths, workers=4))
    assert [o.path for o in outcomes] == [str(p) for p in paths]             # one row per input, in order
    wrong = [(case.name, o.exit_code, o.error) for case, o in zip(cases, outcomes) if o.exit_code not in case.codes]
    assert not wrong, wrong[:5]
    assert time.monotonic() - started < 60, "a hostile file stalled the batch"
    # The audit's AttributeError came from a size lie in `hdlr`: such a file is the reader's 65.
    hdlr = [o for case, o in zip(cases, outcomes) if case.name.startswith("boxsize-hdlr-")]
    assert hdlr and all(o.exit_code in (0, 1, 2, 65) for o in hdlr)


@pytest.mark.slow
def test_mutation_corpus_with_the_detector(corpus):
    verifier = Verifier()                       # the bundled detector
    wrong = [(c.name, code) for c in _sample(corpus) if (code := _code(verifier, c.path)) not in c.codes]
    assert not wrong, wrong[:5]


def test_a_bug_on_one_file_is_that_files_row(ai_clip, clip):
    from clipproof.findings import DetectorFindings

    class Flaky:
        """A detector with a bug that only one file triggers."""

        def score(self, path, media):
            if Path(path) == clip:
                raise RuntimeError("boom")
            return DetectorFindings(model="flaky", version="0", p_synthetic=0.9,
                                    thresholds={"low": 0.3, "high": 0.7}, segments=[], frames_used=0)

    outcomes = list(Verifier(detector=Flaky()).verify_many([clip, ai_clip, clip], workers=2))
    assert [o.exit_code for o in outcomes] == [70, 1, 70]
    assert "internal error (a bug): RuntimeError: boom" in str(outcomes[0].error)


def test_names_the_system_refuses_are_input_errors(clip, tmp_path):
    verifier = Verifier(detector=None)
    long_name = tmp_path / ("x" * 300 + ".mp4")
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    outcomes = list(verifier.verify_many([long_name, loop, fifo, clip]))
    assert [o.exit_code for o in outcomes] == [66, 66, 66, 2]
    assert "file name too long" in str(outcomes[0].error)
    assert isinstance(outcomes[1].error, InputMissingError)


# ---------------------------------------------------------------------------------------------
# Structure floods and bombs
# ---------------------------------------------------------------------------------------------

def test_a_million_boxes_is_refused_in_milliseconds_and_blocks_nobody(ai_clip, tmp_path):
    flood = free_box_flood(ai_clip, tmp_path / "flood.mp4", 1_000_000)          # 8 MB
    verifier = Verifier(detector=None)
    started = time.monotonic()
    outcomes = list(verifier.verify_many([flood, ai_clip], workers=2))
    assert time.monotonic() - started < 2.0
    assert [o.exit_code for o in outcomes] == [65, 1]
    assert f"more than {MAX_BOXES:,} boxes" in str(outcomes[0].error)


def test_floods_of_every_container_kind_are_counted(ai_clip, tmp_path):
    import io

    from PIL import Image
    nested_box_flood(ai_clip, tmp_path / "nested.mp4", MAX_BOXES)
    riff = b"AVI " + struct.pack("<4sI", b"JUNK", 0) * (MAX_BOXES + 1)
    (tmp_path / "junk.avi").write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    gif = buf.getvalue()
    (tmp_path / "comments.gif").write_bytes(gif[:-1] + b"\x21\xfe\x01a\x00" * (MAX_BOXES + 1) + gif[-1:])
    for name in ("nested.mp4", "junk.avi", "comments.gif"):
        with pytest.raises(InvalidMediaError, match="a structure no real media file has"):
            check_structure(tmp_path / name)
        with pytest.raises(InvalidMediaError, match="a structure no real media file has"):
            check_structure(tmp_path / name, content=(tmp_path / name).read_bytes())
    assert check_structure(ai_clip) is None          # a real file passes, whole
    (tmp_path / "one.gif").write_bytes(gif)
    assert check_structure(tmp_path / "one.gif") is None


@pytest.mark.parametrize("suffix, entry", [(".mp4", "'mdat' box"), (".mkv", "'Segment' element"),
                                           (".avi", "'LIST movi' chunk")])
def test_where_a_file_ends_inside_its_own_structure_is_found(clip, tmp_path, suffix, entry):
    from clipproof.media import read_frames, remux
    if suffix == ".avi":        # as OpenCV and older cameras write it: MPEG-4 Part 2 in AVI
        import av
        whole = tmp_path / "whole.avi"
        with av.open(str(whole), "w") as out:
            stream = out.add_stream("mpeg4", rate=12)
            stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
            for frame in read_frames(clip)[0]:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode(None))
    else:
        whole = remux(clip, tmp_path / f"whole{suffix}")
    assert check_structure(whole) is None
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[:len(data) * 2 // 3])
    found = check_structure(cut)
    assert found is not None and found.entry == entry and found.size == len(data) * 2 // 3
    assert check_structure(cut, content=cut.read_bytes()) == found     # the bytes `verify` read, walked in memory
    assert found.offset < found.size < found.offset + found.declared
    assert str(found).startswith(f"it ends at byte {found.size:,}, {found.size - found.offset:,} bytes into its {entry}")


def test_a_png_or_gif_cut_short_is_found(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(6)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "a.png")
    said = {}
    for name in ("a.gif", "a.png"):
        data = (tmp_path / name).read_bytes()
        assert check_structure(tmp_path / name) is None
        (tmp_path / f"cut-{name}").write_bytes(data[:len(data) * 6 // 10])
        said[name] = str(check_structure(tmp_path / f"cut-{name}"))
    assert said["a.gif"].endswith("into its image block before that ends")
    assert " bytes into its 'IDAT' chunk of " in said["a.png"]


def test_a_box_name_the_file_made_up_is_quoted_in_hex(clip, tmp_path):
    forged = tmp_path / "forged.mp4"        # bytes after the last box, read as a box that runs past the end
    forged.write_bytes(clip.read_bytes() + struct.pack(">I", 4096) + b"\x1b[31" + b"x" * 100)
    assert "108 bytes into its '0x1b5b3331' box of 4,096 bytes" in str(check_structure(forged))


def test_frame_count_bomb_is_bounded(tmp_path):
    bomb = frame_count_bomb(tmp_path / "bomb.mp4", MAX_DECODED_FRAMES + 2000)
    started = time.monotonic()
    with pytest.raises(DecodeLimitError, match="more than 20,000 frames"):
        read_windows(bomb, [(0.0, 0.5), (700.0, 700.5)])       # the second window lies past the budget
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_frame_count_bomb_is_reported_not_scored(tmp_path):
    bomb = frame_count_bomb(tmp_path / "bomb.mp4", 2 * MAX_DECODED_FRAMES)     # segments reach past the budget
    report = Verifier().verify(bomb)
    assert report.detector is None and report.verdict == "uncertain"
    assert any("did not score this clip" in r and "20,000 frames" in r for r in report.reasons)


# The verify process's own peak (VmHWM: getrusage would count the forking pytest's memory).
_PEAK = """
import sys
from clipproof.cli import verify_main
code = verify_main(sys.argv[1:])
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak_kb // 1024, code, file=sys.stderr)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")
def test_hostile_files_stay_under_300_mb_without_the_detector(corpus, tmp_path):
    # One verify process takes every crafted attack (and a PNG declaring 16000x16000); its peak
    # resident memory, imports included, is what the pipeline pays.
    files = [str(c.path) for c in corpus if c.path.parent.name == "crafted"] + [str(png_bomb(tmp_path / "b.png"))]
    out = subprocess.run([sys.executable, "-c", _PEAK, "--no-detector", "--json", *files],
                         capture_output=True, timeout=120, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(files) and all(r["exit_code"] != 70 for r in rows)
    peak_mb = int(out.stderr.split()[-2])
    assert peak_mb < 300, f"peak {peak_mb} MB"


def test_png_declaring_16000_squared_is_refused_before_decoding(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png")
    with pytest.raises(InvalidMediaError, match="absurd frame size"):
        Verifier(detector=None).verify(bomb)


# ---------------------------------------------------------------------------------------------
# Text from the file on the reader's terminal
# ---------------------------------------------------------------------------------------------

FORGERY = "\x1b[2J\x1b]0;owned\x07\nVerdict: AUTHENTIC CAPTURE\u202e\u2028"     # fits a 64-character name


@pytest.fixture(scope="module")
def forged(clip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("forged")
    keys = init_dev_keys(folder / "keys", common_name=f"evil{FORGERY}")
    name = folder / f"clip{FORGERY.replace('/', '_')}.mp4"
    return sign(clip, name, key=keys.key, cert=keys.chain, source_type="digitalCapture",
                software_agent={"name": f"agent{FORGERY}", "version": "1" * 5000})


def test_control_characters_never_reach_the_terminal(forged):
    result = run_cli("verify", "--no-detector", str(forged))
    text = result.stdout + result.stderr
    assert not any(ch in text for ch in "\x1b\x07\u202e\u2028")
    assert sum(line.startswith("  Verdict:") for line in text.splitlines()) == 1 and "\\x1b[2J" in text
    assert result.returncode == 2          # an unknown signer's capture: uncertain, not authentic
    lines = result.stdout.splitlines()
    assert all(line.startswith("  ") for line in lines[1:] if line)       # no line of the file's own
    assert max(map(len, lines)) < 1200 and "more characters]" in result.stdout


def test_json_rows_stay_one_ascii_line_each(forged, tmp_path):
    result = run_cli("verify", "--no-detector", "--json", str(forged), str(tmp_path / f"gone{FORGERY}.mp4"))
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 2 and all(line.isascii() for line in lines)
    rows = [json.loads(line) for line in lines]
    assert rows[0]["credentials"]["signer"]["common_name"] == f"evil{FORGERY}"   # data kept exactly
    assert rows[1]["exit_code"] == 66
    assert "\x1b" not in result.stderr


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------

def test_sign_never_replaces_its_input_without_force(clip, keys, tmp_path):
    target = tmp_path / "mine.mp4"
    shutil.copyfile(clip, target)
    target.chmod(0o640)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError, match="it is the input"):
        sign(target, target, key=keys.key, cert=keys.chain)
    assert target.read_bytes() == before
    sign(target, target, key=keys.key, cert=keys.chain, overwrite=True)
    assert target.read_bytes() != before and target.stat().st_mode & 0o777 == 0o640


def test_concurrent_signers_to_one_name_only_one_wins(clip, keys, tmp_path):
    out = tmp_path / "race.mp4"
    results: list = []
    barrier = threading.Barrier(4)

    def signer():
        barrier.wait()
        try:
            results.append(sign(clip, out, key=keys.key, cert=keys.chain))
        except OutputExistsError as e:
            results.append(e)
    threads = [threading.Thread(target=signer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, Path) for r in results) == 1
    assert sum(isinstance(r, OutputExistsError) for r in results) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["race.mp4"]


def test_outputs_where_no_file_can_be_made_exit_73(clip, keys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target in (Path("/proc/clipproof-test.mp4"), a_file / "out.mp4", tmp_path / "missing" / "out.mp4"):
        with pytest.raises(OutputUnwritableError):
            sign(clip, target, key=keys.key, cert=keys.chain)
    assert run_cli("clipproof", "keys", "init", str(a_file)).returncode == 73
    assert run_cli("clipproof", "sign", str(clip), "--capture", "-o", "/proc/x.mp4", "--key", str(keys.key),
                   "--cert", str(keys.chain)).returncode == 73


def test_partials_of_a_killed_writer_are_removed_by_the_next(clip, keys, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    from clipproof.atomic import _partial_prefix
    out = tmp_path / "out.mp4"
    stale = tmp_path / f"{_partial_prefix(out)}{dead.pid}-abc123.partial.mp4"
    stale.write_bytes(b"\0" * 1000)
    alive = tmp_path / f"{_partial_prefix(out)}{os.getpid()}-def456.partial.mp4"     # a writer still at work
    alive.write_bytes(b"\0")
    sign(clip, out, key=keys.key, cert=keys.chain)
    assert not stale.exists() and alive.exists()


# ---------------------------------------------------------------------------------------------
# Folders: nothing passed over in silence
# ---------------------------------------------------------------------------------------------

def _deep_folder(root: Path, depth: int = 22) -> None:
    """Folders nested past PATH_MAX (4096 bytes): even root cannot list the deepest by name."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 200, dir_fd=fd)
            nxt = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)


def test_a_folder_that_cannot_be_listed_is_a_row(ai_clip, tmp_path):
    shutil.copyfile(ai_clip, tmp_path / "a.mp4")
    _deep_folder(tmp_path)
    result = run_cli("verify", "--no-detector", "--json", str(tmp_path))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["exit_code"] for r in rows) == [1, 66]
    assert any("cannot be listed" in r.get("error", {}).get("message", "") for r in rows)
    assert result.returncode == 1                     # the red flag is not hidden by the 66


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folders_named_or_met_are_rows(ai_clip, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copyfile(ai_clip, locked / "x.mp4")
    locked.chmod(0)
    try:
        assert run_cli("verify", "--no-detector", str(locked)).returncode == 66
        result = run_cli("verify", "--no-detector", "--json", str(tmp_path))
        assert [json.loads(line)["exit_code"] for line in result.stdout.splitlines()] == [66]
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------------------------------------
# Trust input
# ---------------------------------------------------------------------------------------------

def test_anchor_files_holding_keys_leaf_certificates_or_wrong_types(ai_clip, keys, tmp_path):
    key_text = keys.key.read_text()
    result = run_cli("verify", "--no-detector", "--trust", str(keys.key), str(ai_clip))
    assert result.returncode == 64 and "holds a private key" in result.stderr
    assert "PRIVATE" not in result.stderr.replace("holds a private key", "") and key_text[40:80] not in result.stderr
    mixed = tmp_path / "mixed.pem"
    mixed.write_text(keys.root.read_text() + key_text)
    assert run_cli("verify", "--no-detector", "--trust", str(mixed), str(ai_clip)).returncode == 64
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(keys.chain.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    result = run_cli("verify", "--no-detector", "--trust", str(leaf), str(ai_clip))
    assert result.returncode == 64 and "not a CA certificate" in result.stderr
    config = tmp_path / "config.toml"
    for text in ("[trust]\nanchors = 5\n", "trust = 5\n", "[trust]\nanchors = [1, 2]\n"):
        config.write_text(text)
        assert run_cli("verify", "--no-detector", str(ai_clip), env={"CLIPPROOF_CONFIG": str(config)}).returncode == 64


def test_an_expired_anchor_is_used_with_a_warning(ai_clip, tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old root")])
    past = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(past).not_valid_after(past + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = tmp_path / "old.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = run_cli("verify", "--no-detector", "--trust", str(pem), str(ai_clip))
    assert result.returncode == 1
    assert "verify: warning: " in result.stderr and "expired on 2020-12-31" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# The whole batch
# ---------------------------------------------------------------------------------------------

def test_a_folder_of_good_and_hostile_files_gives_every_file_its_row(corpus, ai_clip, capture_clip, clip, tmp_path):
    batch = tmp_path / "uploads"
    batch.mkdir()
    good = {"good-ai.mp4": 1, "good-capture.mp4": 2, "good-plain.mp4": 2}
    for name, src in zip(good, (ai_clip, capture_clip, clip)):
        shutil.copyfile(src, batch / name)
    hostile = [c for c in corpus if c.path.parent.name == "crafted"] + corpus[::20]
    for i, case in enumerate(hostile):
        shutil.copyfile(case.path, batch / f"h{i:03d}{case.path.suffix}")
    result = run_cli("verify", "--no-detector", "--json", "--workers", "3", str(batch))
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(rows) == len(good) + len(hostile)
    assert all(r["exit_code"] != 70 for r in rows.values())
    assert {n: rows[n]["exit_code"] for n in good} == good
    for i, case in enumerate(hostile):
        assert rows[f"h{i:03d}{case.path.suffix}"]["exit_code"] in case.codes, case.name
    assert result.returncode == 1


@pytest.mark.slow      # the harness's check, files the corpus test above reads too: not the edit loop's
def test_the_fuzz_target_takes_the_hostile_corpus(corpus):
    # `make fuzz` drives this function with atheris; here it gets hostile files of every kind, so
    # the target cannot rot between fuzz runs (it raises on a bug's exit 70).
    from fuzz.verify_credentials import one_input
    for case in _sample(corpus):
        one_input(case.path.read_bytes())


def test_footage_folders_that_cannot_be_listed_are_skipped_with_a_note(tmp_path):
    """`datasets train-autoencoder` and `datasets build --real` walked their folders with rglob,
    which stopped with an internal error (exit 70, a traceback's OSError) at a folder nested past
    the path limit; now such a folder is a note and the walk goes on."""
    from clipproof.datasets.sources import folder_sources
    from clipproof.demo import moving_scene
    from clipproof.media import write_mp4
    write_mp4(moving_scene(8, 32, 32), tmp_path / "cam.mp4", fps=10)
    _deep_folder(tmp_path)
    sources, skipped = folder_sources(tmp_path)
    assert [s.name for s in sources] == ["folder:cam"]
    assert len(skipped) == 1 and "cannot be listed" in skipped[0].reason
    result = run_cli("clipproof", "datasets", "train-autoencoder", str(tmp_path), "--arch", "tiny-kl", "--out", str(tmp_path / "o"),
                     "--steps", "1", "--batch-size", "1", "--crop", "16", "--frames", "1", "--quiet", "--json")
    assert result.returncode == 0, result.stderr
    assert "cannot be listed" in result.stderr and json.loads(result.stdout)["footage"] == ["cam.mp4"]
