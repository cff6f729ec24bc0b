"""Sign → verify on real clips with real c2pa, and every way a signed clip can be broken."""
from __future__ import annotations

import shutil

import pytest

from clipproof.verification import Verifier
from clipproof import sign, verify
from clipproof.bmff import find_box, top_level_boxes
from clipproof.demo import flip_byte, moving_scene
from clipproof.errors import InputMissingError, InvalidMediaError, OutputExistsError, UsageError
from clipproof.media import remux, write_mp4


def test_valid_without_anchors_trusted_with_dev_root(ai_clip, keys):
    untrusted = verify(ai_clip, detector=None)
    assert untrusted.credentials.state == "valid"
    assert "signingCredential.untrusted" in [f.code for f in untrusted.credentials.failures]
    trusted = verify(ai_clip, trust=keys.root, detector=None)
    assert trusted.credentials.state == "trusted" and trusted.credentials.failures == []


def test_declarations(ai_clip, capture_clip, keys):
    ai = verify(ai_clip, trust=keys.root, detector=None)
    assert ai.credentials.ai_generated is True and ai.verdict == "ai-generated-declared" and ai.exit_code == 1
    action = ai.credentials.actions[0]
    assert action.action == "c2pa.created" and action.source_type_name == "trainedAlgorithmicMedia"
    assert ai.credentials.claim_generator.startswith("clipproof ")
    assert ai.credentials.signer.common_name == "clipproof dev signer"
    assert ai.credentials.signer.issuer.startswith("clipproof development root CA")

    cam = verify(capture_clip, trust=keys.root, detector=None)
    assert cam.credentials.ai_generated is False and cam.verdict == "authentic-declared" and cam.exit_code == 0


def test_untrusted_capture_never_authentic(capture_clip):
    report = verify(capture_clip, detector=None)
    assert report.credentials.state == "valid" and report.verdict == "uncertain"
    assert any("not trusted" in r for r in report.reasons)


def test_anchors_from_environment_and_config(capture_clip, keys, monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPPROOF_TRUST_ANCHORS", str(keys.root))
    assert verify(capture_clip, detector=None).credentials.state == "trusted"
    monkeypatch.delenv("CLIPPROOF_TRUST_ANCHORS")
    config = tmp_path / "config.toml"
    config.write_text(f'[trust]\nanchors = ["{keys.root}"]\n')
    monkeypatch.setenv("CLIPPROOF_CONFIG", str(config))
    assert verify(capture_clip, detector=None).credentials.state == "trusted"


def test_unsigned_clip_is_absent(clip):
    report = verify(clip, detector=None)
    assert report.credentials.state == "absent" and report.verdict == "uncertain"
    assert any("No detector" in r or "turned off" in r for r in report.reasons)


# ---------------------------------------------------------------------------------------------
# Tampering
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("box", ["mdat", "moov"])
def test_flipped_byte_is_tampered(ai_clip, keys, tmp_path, box):
    broken = flip_byte(ai_clip, tmp_path / f"{box}.mp4", box)
    report = verify(broken, trust=keys.root, detector=None)
    assert report.credentials.state == "invalid" and report.verdict == "tampered" and report.exit_code == 1
    assert "assertion.bmffHash.mismatch" in [f.code for f in report.credentials.failures]
    assert any("hard binding" in r for r in report.reasons)


def test_a_small_file_read_once_gets_the_report_a_streamed_one_gets(ai_clip, clip, keys, tmp_path, monkeypatch):
    # Below SIDE_THREAD_BYTES the file is read into memory once, and the hash and the C2PA read
    # share those bytes; above it both stream the file. Either way the report must be the same.
    import hashlib

    import clipproof.verification as verification
    files = [ai_clip, flip_byte(ai_clip, tmp_path / "tampered.mp4", "mdat"), clip]
    verifier = Verifier(trust=keys.root, detector=None, watermark=False)
    in_memory = [verifier.verify(f).to_dict() for f in files]
    monkeypatch.setattr(verification, "SIDE_THREAD_BYTES", 0)
    streamed = [verifier.verify(f).to_dict() for f in files]
    assert in_memory == streamed
    assert [r["credentials"]["state"] for r in in_memory] == ["trusted", "invalid", "absent"]
    assert [r["sha256"] for r in in_memory] == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]


def test_ftyp_is_outside_the_hard_binding(ai_clip, keys, tmp_path):
    # By the C2PA design /ftyp is excluded from the BMFF hash: the manifest stays valid.
    report = verify(flip_byte(ai_clip, tmp_path / "ftyp.mp4", "ftyp"), trust=keys.root, detector=None)
    assert report.credentials.state == "trusted"


def test_corrupt_manifest_box(ai_clip, keys, tmp_path):
    report = verify(flip_byte(ai_clip, tmp_path / "uuid.mp4", "uuid"), trust=keys.root, detector=None)
    assert report.credentials.state == "invalid" and report.verdict == "tampered"


def test_truncated_signed_file(ai_clip, keys, tmp_path):
    half = tmp_path / "half.mp4"
    half.write_bytes(ai_clip.read_bytes()[: ai_clip.stat().st_size // 2])
    assert verify(half, trust=keys.root, detector=None).verdict == "tampered"
    # Cut inside the final moov box: neither C2PA nor FFmpeg can parse what is left.
    tail = tmp_path / "tail.mp4"
    tail.write_bytes(ai_clip.read_bytes()[:-100])
    with pytest.raises(InvalidMediaError):
        verify(tail, trust=keys.root, detector=None)


def test_remux_strips_the_manifest(ai_clip, keys, tmp_path):
    stripped = remux(ai_clip, tmp_path / "stripped.mp4")
    assert find_box(stripped, "uuid") is None
    # Without a store to look its watermark up in, nothing says where it came from.
    report = Verifier(trust=keys.root, detector=None, stores=[]).verify(stripped)
    assert report.credentials.state == "absent" and report.verdict == "uncertain" and report.exit_code == 2
    assert report.watermark.lookup in ("no-store", "not-found")     # looked for; recovery is tested in test_watermark


def test_resigned_by_another_key_is_untrusted(ai_clip, keys, other_keys, tmp_path):
    # Someone re-signs the AI clip as a "capture" with their own key.
    forged = sign(ai_clip, tmp_path / "forged.mp4", key=other_keys.key, cert=other_keys.chain,
                  source_type="digitalCapture")
    report = verify(forged, trust=keys.root, detector=None)
    assert report.credentials.state == "valid"
    assert report.credentials.signer.common_name == "someone else"
    assert report.verdict != "authentic-declared"


# ---------------------------------------------------------------------------------------------
# Signing: formats, atomicity, refusals
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mov", ".jpg", ".png"])
def test_signs_mov_and_stills(suffix, keys, tmp_path):
    src = tmp_path / f"in{suffix}"
    if suffix == ".mov":
        remux(write_mp4(moving_scene(8, 64, 48), tmp_path / "x.mp4"), src)
    else:
        import av
        frame = av.VideoFrame.from_ndarray(moving_scene(1, 64, 48)[0], format="rgb24")
        frame.to_image().save(src)
    out = sign(src, None, key=keys.key, cert=keys.chain, source_type="digitalCapture")
    assert out.name == f"in.signed{suffix}"
    report = verify(out, trust=keys.root, detector=None)
    assert report.verdict == "authentic-declared" and report.media is not None


def test_a_signed_animated_png_is_still_an_animation(keys, tmp_path):
    """The manifest's caBX chunk lands ahead of the APNG's acTL, past where FFmpeg looks for it:
    the signed animation read as a still, and the detector never saw it."""
    from PIL import Image
    frames = [Image.fromarray(f) for f in moving_scene(6, 64, 48)]
    src = tmp_path / "anim.png"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = sign(src, None, key=keys.key, cert=keys.chain, source_type="trainedAlgorithmicMedia")
    report = verify(out, trust=keys.root, detector=None)
    assert report.verdict == "ai-generated-declared"
    assert (report.media.container, report.media.frames, report.media.is_image) == ("apng", 6, False)


def test_a_folder_or_missing_input_is_said_before_its_type(keys, tmp_path):
    """A folder given to sign was "cannot sign extensionless files"."""
    with pytest.raises(InputMissingError, match="is a folder, not a file"):
        sign(tmp_path, tmp_path / "out.mp4", key=keys.key, cert=keys.chain)
    with pytest.raises(InputMissingError, match="no such file"):
        sign(tmp_path / "gone", tmp_path / "out.mp4", key=keys.key, cert=keys.chain)


def test_failed_signing_leaves_nothing(keys, tmp_path):
    bad = tmp_path / "text.mp4"
    bad.write_text("not a video at all\n" * 50)
    with pytest.raises(InvalidMediaError):
        sign(bad, tmp_path / "out.mp4", key=keys.key, cert=keys.chain)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.mp4"]


def test_sign_refuses_overwrite_and_wrong_type(ai_clip, keys, tmp_path):
    target = tmp_path / "t.mp4"
    shutil.copyfile(ai_clip, target)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        sign(ai_clip, target, key=keys.key, cert=keys.chain)
    assert target.read_bytes() == before
    with pytest.raises(UsageError):
        sign(ai_clip, tmp_path / "t.txt", key=keys.key, cert=keys.chain)


def test_manifest_carries_parameters_and_extra_assertions(clip, keys, tmp_path):
    out = sign(clip, tmp_path / "p.mp4", key=keys.key, cert=keys.chain,
               parameters={"model": "test", "seed": 7},
               assertions=[{"label": "org.clipproof.test", "data": {"note": "hello"}}])
    assert verify(out, detector=None).credentials.state == "valid"
    import c2pa
    import json
    store = json.loads(c2pa.Reader(str(out)).json())
    manifest = store["manifests"][store["active_manifest"]]
    labels = [a["label"] for a in manifest["assertions"]]
    assert "org.clipproof.test" in labels
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))
    assert actions["data"]["actions"][0]["parameters"] == {"model": "test", "seed": 7}


def test_top_level_boxes_of_a_signed_clip(ai_clip):
    kinds = [b.type for b in top_level_boxes(ai_clip)]
    assert kinds[0] == "ftyp" and "uuid" in kinds and "mdat" in kinds and "moov" in kinds


def test_verifying_a_signed_clip_loads_neither_numpy_nor_scipy(ai_clip):
    """Valid credentials mean no watermark search: `verify --no-detector` must not pay for the
    imports the search needs (numpy and scipy took 0.25 s of a 0.4 s process)."""
    import subprocess
    import sys
    code = ("import sys; from clipproof.cli import verify_main; "
            "code = verify_main(['--json', '--no-detector', sys.argv[1]]); "
            "print(sorted(m for m in ('numpy', 'scipy', 'PIL') if m in sys.modules), code)")
    out = subprocess.run([sys.executable, "-c", code, str(ai_clip)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[] 1", out.stderr


def test_a_file_cut_short_is_not_signed(tmp_path, keys):
    # 128x128: big enough to be watermarked, so the generated case takes the re-encoding path.
    clip = write_mp4(moving_scene(24, 128, 128), tmp_path / "clip.mp4", fps=12)
    mdat = find_box(clip, "mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:mdat.offset + mdat.size // 2])
    for source_type in ("digitalCapture", "trainedAlgorithmicMedia"):
        with pytest.raises(InvalidMediaError, match="cut short: it ends at byte .* into its 'mdat' box"):
            sign(cut, tmp_path / "out.mp4", key=keys.key, cert=keys.chain, source_type=source_type,
                 store=tmp_path / "store.sqlite")
        assert not (tmp_path / "out.mp4").exists()
    assert sign(clip, tmp_path / "out.mp4", key=keys.key, cert=keys.chain, source_type="digitalCapture").exists()
