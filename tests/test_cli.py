"""The command lines, run as users run them: exit codes, text and JSON output, bad input."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from clipproof.provenance.report import SCHEMA
from conftest import BIN, FIXTURES, index_first, run_cli, run_process


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_help_and_version():
    for args in (["verify", "--help"], ["clipproof", "--help"], ["clipproof", "sign", "--help"],
                 ["clipproof", "keys", "init", "--help"]):
        out = run_cli(*args)
        assert out.returncode == 0 and "usage:" in out.stdout
    assert "exit codes" in run_cli("verify", "--help").stdout
    assert run_cli("verify", "--version").stdout.startswith("clipproof ")


def test_usage_errors_exit_64():
    assert run_cli("verify").returncode == 64
    assert run_cli("verify", "--bogus", "x.mp4").returncode == 64
    assert run_cli("clipproof", "sign", "x.mp4").returncode == 64
    out = run_cli("verify", "--jobs", "0", "x.mp4")
    assert out.returncode == 64 and out.stderr.count("\n") == 1
    out = run_cli("verify", "--no-detector", "--whole-clip", "x.mp4")
    assert out.returncode == 64 and "contradict" in out.stderr


def test_a_file_name_that_is_not_utf8(clip, tmp_path):
    """Linux names are bytes: `verify --html` of caf\xe9.mp4 (Latin-1) was an internal error, and
    the text report printed the raw byte. Shown escaped, as the byte, everywhere."""
    import shutil
    folder = tmp_path / "names"
    folder.mkdir()
    shutil.copy(clip, folder / os.fsdecode(b"caf\xe9.mp4"))
    out = run_cli("verify", "--no-detector", "--html", str(tmp_path / "r.html"), str(folder))
    assert out.returncode == 2 and out.stdout.splitlines()[0] == f"{folder}/caf\\xe9.mp4", out.stderr
    assert "caf\\xe9.mp4" in (tmp_path / "r.html").read_text(encoding="utf-8")
    (row,) = records(run_cli("verify", "--no-detector", "--json", str(folder)).stdout)
    assert row["verdict"] == "uncertain"


def test_an_empty_path_is_refused_not_read_as_the_working_folder(tmp_path, monkeypatch):
    """`verify "$CLIP"` with CLIP unset: Path("") is ".", and the whole working folder was
    verified, recursively."""
    from clipproof import verify
    from clipproof.demo import moving_scene
    from clipproof.errors import InputMissingError
    from clipproof.media import write_mp4
    monkeypatch.chdir(tmp_path)
    write_mp4(moving_scene(4, 32, 32), tmp_path / "here.mp4")
    for args in (("verify", ""), ("verify", "--no-detector", str(tmp_path / "here.mp4"), ""),
                 ("clipproof", "batch", "", "--out", str(tmp_path / "out"))):
        out = run_cli(*args)
        assert (out.returncode, out.stdout) == (64, ""), args
        assert out.stderr.endswith(": an empty path names no file (an unset variable?)\n")
    # An empty --store was the user's default store (the command line refuses it as it parses;
    # the library too).
    out = run_cli("verify", "--no-detector", "--store", "", str(tmp_path / "here.mp4"))
    assert out.returncode == 64 and "argument --store: is empty (an unset variable?)" in out.stderr
    from clipproof.errors import UsageError
    from clipproof.provenance.store import open_store
    with pytest.raises(UsageError, match="an empty --store names no store"):
        open_store("")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputMissingError, match="an empty path"):
        verify("", detector=None)


@pytest.mark.parametrize("args", [
    ("verify", "--trust", "", "x.mp4"), ("verify", "--weights", "", "x.mp4"),
    ("clipproof", "batch", "x.mp4", "--out", ""), ("clipproof", "generate", "--out", ""),
    ("clipproof", "keys", "init", ""), ("clipproof", "sign", "x.mp4", "-o", "", "--key", "k", "--cert", "c", "--capture"),
    ("clipproof", "serve", "--host", ""), ("clipproof", "serve", "--token-env", ""), ("clipproof", "serve", "--allow", ""),
])
def test_an_empty_option_is_refused(args, tmp_path, monkeypatch):
    """An unset variable (`--out "$DIR"`) was the working folder (results, clips and keys written
    there; `--allow ''` opened it to path requests), every network interface (`--host ''`) or
    no bearer token at all (`--token-env ''`)."""
    monkeypatch.chdir(tmp_path)
    out = run_cli(*args)
    assert out.returncode == 64 and "is empty (an unset variable?)" in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, said", [
    (("clipproof", "batch", "x.mp4", "--workers", "0"), "argument --workers: must be at least 1, got 0"),
    (("clipproof", "batch", "x.mp4", "--gpus-per-actor", "-1"), "argument --gpus-per-actor: must be at least 0, got -1"),
    (("clipproof", "generate", "--seed", "-1"), "argument --seed: must be at least 0, got -1"),
    (("clipproof", "generate", "--threads", "-1"), "argument --threads: must be at least 0, got -1"),
    (("clipproof", "datasets", "build", "detector-native", "--fps", "0"), "argument --fps: must be at least 0.01, got 0"),
    (("clipproof", "datasets", "build", "detector-native", "--workers", "two"), "argument --workers: needs an integer, got 'two'"),
])
def test_numbers_out_of_range_are_usage_errors(args, said, tmp_path):
    """Each was an internal error from deep inside Ray, numpy or torch (exit 70)."""
    out = run_cli(*args, "--out", str(tmp_path / "out"))
    assert out.returncode == 64 and said in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_text_report_verdict_first(ai_clip, keys):
    out = run_process("verify", "--trust", str(keys.root), str(ai_clip))   # end to end: a new process
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == str(ai_clip) and "[ai-generated-declared]" in lines[1]
    assert any(l.strip().startswith("Signer:") for l in lines)
    assert "Traceback" not in out.stderr


def test_json_lines_follow_the_schema(ai_clip, capture_clip, clip, keys):
    out = run_cli("verify", "--json", "--no-detector", "--trust", str(keys.root),
                  str(ai_clip), str(capture_clip), str(clip))
    rows = records(out.stdout)
    assert [r["verdict"] for r in rows] == ["ai-generated-declared", "authentic-declared", "uncertain"]
    assert out.returncode == 1  # a red flag (the AI declaration) outranks the uncertain clip
    assert [r["exit_code"] for r in rows] == [1, 0, 2]
    for r in rows:
        assert r["schema"] == SCHEMA
        assert set(r) == {"schema", "path", "sha256", "media", "credentials", "detector", "verdict", "reasons", "watermark",
                          "exit_code"}
        assert set(r["media"]) == {"container", "codec", "width", "height", "fps", "frames", "duration_s", "has_audio", "rotation",
                                   "cut_short"}
        assert {"state", "signer", "signed_at", "claim_generator", "actions", "ai_generated",
                "ingredients", "failures"} <= set(r["credentials"])
        assert r["detector"] is None and len(r["sha256"]) == 64
    assert rows[0]["credentials"]["actions"][0]["digital_source_type"].endswith("trainedAlgorithmicMedia")


def test_exit_code_0_for_trusted_capture(capture_clip, keys):
    assert run_cli("verify", "--trust", str(keys.root), str(capture_clip)).returncode == 0


@pytest.fixture()
def bad_inputs(tmp_path, clip):
    files = {
        "empty.mp4": b"",
        "random.mp4": bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
        "text.mp4": b"this is a text file, not a video\n" * 30,
        "truncated.mp4": clip.read_bytes()[:1500],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for name in ("nested_moov_1000.mp4", "dash1.m4s"):
        shutil.copyfile(FIXTURES / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("name", ["empty.mp4", "random.mp4", "text.mp4", "truncated.mp4",
                                  "nested_moov_1000.mp4", "dash1.m4s"])
def test_bad_input_one_line_exit_65(bad_inputs, name):
    out = run_cli("verify", str(bad_inputs / name))
    assert out.returncode == 65
    assert out.stdout == "" and out.stderr.count("\n") == 1 and name in out.stderr
    assert "Traceback" not in out.stderr


def test_a_clip_cut_short_is_scored_up_to_the_cut_and_said_so(tmp_path):
    from clipproof.bmff import find_box
    from clipproof.demo import moving_scene
    from clipproof.media import write_mp4
    written = write_mp4(moving_scene(48, 128, 96), tmp_path / "written.mp4", fps=12)    # 4 s, index last
    whole = index_first(written, tmp_path / "whole.mp4")
    mdat = find_box(whole, "mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:mdat.offset + mdat.size // 2])
    rows = records(run_cli("verify", "--json", str(whole), str(cut)).stdout)
    assert [r["exit_code"] for r in rows] == [2, 2]
    healthy, short = rows
    assert healthy["media"]["cut_short"] is None and not any("cut short" in r for r in healthy["reasons"])
    assert short["media"]["frames"] == 48                           # what the index declares
    assert f"it ends at byte {cut.stat().st_size:,}" in short["media"]["cut_short"]
    assert "into its 'mdat' box" in short["media"]["cut_short"]
    assert any(r.startswith("The file is cut short: it ends at byte") for r in short["reasons"])
    # The detector scores the segments that decode, and says the others do not (they failed the
    # whole verify before: "zero frames in the requested window", exit 65).
    planned, scored = len(healthy["detector"]["segments"]), len(short["detector"]["segments"])
    assert 1 <= scored < planned
    assert f"the frames of {planned - scored} of its {planned} segments" in " ".join(short["detector"]["shortfalls"])
    assert short["watermark"]["lookup"] == "not-found"               # searched on the frames there are

    # Cut before its index: nothing can be read, and the one line says why.
    late = tmp_path / "late.mp4"
    late.write_bytes(written.read_bytes()[:written.stat().st_size // 2])
    out = run_cli("verify", str(late))
    assert out.returncode == 65 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "cut short: it ends at byte" in out.stderr and "before any 'moov' box" in out.stderr


def test_a_link_is_refused_as_a_link(clip, keys):
    from clipproof.batch import list_inputs
    link = "https://example.com/clip.mp4"
    out = run_cli("verify", "--json", "--no-detector", link, str(clip))
    bad, good = records(out.stdout)
    assert out.returncode == 66 and good["exit_code"] == 2
    assert bad["path"] == link and bad["error"]["message"].startswith(f"{link}: a URL: clipproof reads files")
    out = run_cli("clipproof", "sign", link, "--key", str(keys.key), "--cert", str(keys.chain), "--capture")
    assert out.returncode == 66 and "a URL" in out.stderr and out.stderr.count("\n") == 1
    assert list_inputs([link, "s3://bucket/a.mp4"]) == [link, "s3://bucket/a.mp4"]      # batch names them so too


def test_missing_path_exit_66(tmp_path):
    out = run_cli("verify", str(tmp_path / "nope.mp4"))
    assert out.returncode == 66 and "no such file" in out.stderr and out.stderr.count("\n") == 1


def test_unreadable_file_exit_66(clip, tmp_path):
    if sys.platform == "win32" or __import__("os").geteuid() == 0:
        pytest.skip("root reads every file")
    locked = tmp_path / "locked.mp4"
    shutil.copyfile(clip, locked)
    locked.chmod(0)
    assert run_cli("verify", str(locked)).returncode == 66


def test_cloud_manifest_offline_is_uncertain():
    out = run_cli("verify", "--json", str(FIXTURES / "cloud.jpg"))
    (row,) = records(out.stdout)
    assert out.returncode == 2 and row["credentials"]["state"] == "error"
    assert row["credentials"]["failures"][0]["code"] == "manifest.remoteNotFetched"


def test_batch_goes_on_after_bad_files(bad_inputs, ai_clip, tmp_path):
    out = run_cli("verify", "--json", str(bad_inputs / "text.mp4"), str(ai_clip),
                  str(tmp_path / "missing.mp4"), str(bad_inputs / "nested_moov_1000.mp4"))
    rows = records(out.stdout)
    assert len(rows) == 4
    assert rows[0]["error"]["exit_code"] == 65 and rows[2]["error"]["exit_code"] == 66
    assert [r["error"]["kind"] for r in rows if "error" in r] == ["invalid-media", "missing", "invalid-media"]
    assert [r["exit_code"] for r in rows] == [65, 1, 66, 65]
    assert rows[1]["verdict"] == "ai-generated-declared"
    assert out.returncode == 1          # the AI-declared clip is not hidden behind the unreadable files


def test_folder_recursion_skips_non_media(ai_clip, clip, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub dir").mkdir(parents=True)
    shutil.copyfile(ai_clip, folder / "sub dir" / "ünïcode clip.mp4")
    shutil.copyfile(clip, folder / "plain.mp4")
    (folder / "notes.txt").write_text("hello")
    (folder / ".hidden.mp4").write_bytes(b"")
    out = run_cli("verify", "--json", "--no-detector", str(folder))
    rows = records(out.stdout)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in rows) == ["plain.mp4", "ünïcode clip.mp4"]
    assert "skipping" in out.stderr and "notes.txt" in out.stderr
    assert out.returncode == 1      # the AI-declared clip in the sub-folder


def test_folder_walks_take_camcorder_and_broadcast_files(tmp_path):
    # A camcorder's card holds AVCHD as .MTS (upper case, as cameras name them), an archive MXF.
    from clipproof.folders import expand_paths
    for name in ("00001.MTS", "00002.m2ts", "news.mxf", "old.ogv", "phone.3g2", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    skipped = {f.path.name: f.skipped for f in expand_paths([tmp_path])}
    assert skipped == {"00001.MTS": None, "00002.m2ts": None, "news.mxf": None, "notes.txt": "not a media file",
                       "old.ogv": None, "phone.3g2": None}


def test_paths_with_spaces_and_non_ascii(ai_clip, tmp_path):
    odd = tmp_path / "a folder with spaces" / "клип 🎬.mp4"
    odd.parent.mkdir()
    shutil.copyfile(ai_clip, odd)
    out = run_cli("verify", "--json", str(odd))
    (row,) = records(out.stdout)
    assert row["path"] == str(odd) and row["verdict"] == "ai-generated-declared"


def test_bad_trust_anchor(ai_clip, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("nope")
    assert run_cli("verify", "--trust", str(junk), str(ai_clip)).returncode == 64
    missing = run_cli("verify", "--trust", str(tmp_path / "none.pem"), str(ai_clip))
    assert missing.returncode == 64 and "none.pem" in missing.stderr


@pytest.mark.slow
def test_no_detector_never_imports_torch(ai_clip):
    code = ("import sys; from clipproof.cli import verify_main; "
            f"rc = verify_main(['--no-detector', '--json', {str(ai_clip)!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS starts one thread on one core anyway")
def test_verify_starts_numpy_with_one_blas_thread_unless_told_otherwise(clip):
    """A clip without credentials is searched for a watermark (numpy): OpenBLAS's spare threads
    spin at import for nothing. A user's own OPENBLAS_NUM_THREADS is kept."""
    code = ("import sys; from clipproof.cli import verify_main; "
            f"rc = verify_main(['--no-detector', '--quiet', {str(clip)!r}]); "
            "import numpy; from threadpoolctl import threadpool_info; "
            "print([i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas'])")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    told = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "OPENBLAS_NUM_THREADS": "2"})
    assert default.stdout.strip() == "[1]", default.stderr
    assert told.stdout.strip() == "[2]", told.stderr


@pytest.mark.slow
def test_keys_init_and_sign_cli(clip, tmp_path):
    kdir = tmp_path / "keys"
    out = run_process("clipproof", "keys", "init", str(kdir))             # end to end: a new process
    assert out.returncode == 0 and "NOT FOR PRODUCTION" in out.stdout
    assert run_cli("clipproof", "keys", "init", str(kdir)).returncode == 73

    signed = tmp_path / "out.mp4"
    args = ["clipproof", "sign", str(clip), "-o", str(signed), "--key", str(kdir / "signer.key"),
            "--cert", str(kdir / "signer.pem")]
    assert run_cli(*args, "--capture").returncode == 0
    assert run_cli(*args, "--capture").returncode == 73          # exists, no --force
    assert run_cli(*args, "--ai-generated", "--force").returncode == 0
    assert run_cli("verify", "--trust", str(kdir / "root.pem"), str(signed)).returncode == 1

    wrong = run_cli("clipproof", "sign", str(clip), "-o", str(tmp_path / "w.mp4"), "--capture",
                    "--key", str(kdir / "signer.key"), "--cert", str(kdir / "root.pem"))
    assert wrong.returncode == 78 and wrong.stderr.count("\n") == 1
    assert not (tmp_path / "w.mp4").exists()
    missing = run_cli("clipproof", "sign", str(tmp_path / "none.mp4"), "--capture",
                      "--key", str(kdir / "signer.key"), "--cert", str(kdir / "signer.pem"))
    assert missing.returncode == 66


def test_sign_with_assertion_file(clip, keys, tmp_path):
    extra = tmp_path / "a.json"
    extra.write_text(json.dumps({"label": "org.example.note", "data": {"desk": "B"}}))
    out = run_cli("clipproof", "sign", str(clip), "-o", str(tmp_path / "s.mp4"), "--ai-generated",
                  "--key", str(keys.key), "--cert", str(keys.chain), "--assertion", str(extra), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["output"].endswith("s.mp4")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run_cli("clipproof", "sign", str(clip), "-o", str(tmp_path / "t.mp4"), "--ai-generated",
                  "--key", str(keys.key), "--cert", str(keys.chain), "--assertion", str(bad))
    assert out.returncode == 64
    # An assertion without a label, and an empty source type, were signed (the latter as AI-generated).
    bad.write_text(json.dumps([{"label": " ", "data": 5}]))
    for extra in (["--ai-generated", "--assertion", str(bad)], ["--source-type", ""]):
        out = run_cli("clipproof", "sign", str(clip), "-o", str(tmp_path / "u.mp4"), "--key", str(keys.key),
                      "--cert", str(keys.chain), *extra)
        assert out.returncode == 64 and not (tmp_path / "u.mp4").exists(), out.stderr


def test_batch_exit_rule(ai_clip, clip, tmp_path):
    from clipproof.verification import batch_exit_code
    assert batch_exit_code([65, 1, 66]) == 1 and batch_exit_code([2, 1]) == 1
    assert batch_exit_code([0, 2, 65]) == 65 and batch_exit_code([0, 0]) == 0 and batch_exit_code([]) == 0
    tampered = tmp_path / "tampered.mp4"
    data = bytearray(ai_clip.read_bytes())
    data[-100] ^= 0xFF                                       # inside mdat: the hash no longer matches
    tampered.write_bytes(bytes(data))
    out = run_cli("verify", "--json", "--no-detector", str(tampered), str(clip))
    assert [r["verdict"] for r in records(out.stdout)] == ["tampered", "uncertain"] and out.returncode == 1
    assert run_cli("verify", "--json", "--no-detector", str(clip), str(tmp_path / "gone.mp4")).returncode == 66


@pytest.mark.slow
def test_broken_pipe_stops_quietly(clip):
    # `verify ... | head -1`: the reader goes away; verify stops without a traceback or "internal error".
    files = [str(clip)] * 40
    out = subprocess.run(f"{BIN / 'verify'} --no-detector {' '.join(files)} | head -1", shell=True,
                         capture_output=True, text=True, executable="/bin/bash")
    assert out.stdout == f"{clip}\n"
    assert out.stderr == "", out.stderr
    piped = subprocess.run(["bash", "-c", f"set -o pipefail; {BIN / 'verify'} --json --no-detector "
                            f"{' '.join(files)} | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}"],
                           capture_output=True, text=True)
    assert piped.stdout.strip() == "141" and "Traceback" not in piped.stderr


def test_standard_input(ai_clip, keys):
    out = run_cli("verify", "--json", "--no-detector", "--trust", str(keys.root), "-", input=ai_clip.read_bytes())
    (row,) = records(out.stdout)
    assert row["path"] == "-" and row["verdict"] == "ai-generated-declared" and out.returncode == 1
    assert row["media"]["container"] == "mp4"      # from the file's brand: standard input has no name
    empty = run_cli("verify", "-", input=b"")
    assert empty.returncode == 65 and empty.stderr == "verify: -: empty input\n"


def test_quiet_prints_nothing_and_answers_by_exit_code(ai_clip, tmp_path):
    out = run_cli("verify", "--quiet", "--no-detector", str(ai_clip), str(tmp_path / "gone.mp4"))
    assert out.stdout == "" and out.returncode == 1
    assert out.stderr.count("\n") == 1 and "gone.mp4: no such file" in out.stderr


def test_config_file_rejects_unknown_keys_and_env_urls(ai_clip, keys, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[trust]\nanchor = "root.pem"\n')            # misspelt: would drop the anchors
    out = run_cli("verify", "--no-detector", str(ai_clip), env={"CLIPPROOF_CONFIG": str(cfg)})
    assert out.returncode == 64 and "trust.anchor" in out.stderr
    cfg.write_text(f'[trust]\nanchors = ["{keys.root}"]\n')
    assert run_cli("verify", "--no-detector", str(ai_clip), env={"CLIPPROOF_CONFIG": str(cfg)}).returncode == 1
    url = run_cli("verify", "--no-detector", str(ai_clip),
                  env={"CLIPPROOF_TRUST_ANCHORS": f"{keys.root}{os.pathsep}https://example.com/root.pem"})
    assert url.returncode == 64 and "URL" in url.stderr and url.stderr.count("\n") == 1


def test_every_option_has_help():
    from clipproof.cli import build_parser

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from walk(sub, f"{name} {sub_name}")
            elif action.help is None and action.option_strings:
                yield f"{name} {action.option_strings[0]}"
    assert list(walk(build_parser(), "clipproof")) == []


def test_errors_carry_their_code_kind_and_fields(tmp_path):
    import pickle

    from clipproof.errors import InputMissingError, InvalidMediaError, exit_code_table
    from clipproof.media import probe
    with pytest.raises(InputMissingError) as e:
        probe(tmp_path / "gone.mp4")
    assert (e.value.exit_code, e.value.kind, e.value.reason) == (66, "missing", "no such file")
    assert e.value.path == str(tmp_path / "gone.mp4") and str(e.value) == f"{tmp_path / 'gone.mp4'}: no such file"
    again = pickle.loads(pickle.dumps(InvalidMediaError("zero frames", path="a.mp4")))
    assert (type(again), again.reason, again.path) == (InvalidMediaError, "zero frames", "a.mp4")
    codes = {code for code, _, _ in exit_code_table()}
    assert {64, 65, 66, 69, 70, 73, 74, 78} == codes
