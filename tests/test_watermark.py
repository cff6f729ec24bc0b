"""The watermark and the manifest store: embed → strip → re-encode → recover, no false alarms,
forged marks, stores shared by processes, the HTTP resolver."""
from __future__ import annotations

import json
import multiprocessing
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipproof import sign
from clipproof.cli import main as clipproof_main
from clipproof.cli import verify_main
from clipproof.datasets.variants import Variant
from clipproof.demo import moving_scene, real_clip
from clipproof.errors import StoreError
from clipproof.html_report import render_page
from clipproof.media import read_frames, remux, write_mp4
from clipproof.provenance.report import render_text
from clipproof.provenance.store import SqliteStore, StoredManifest, open_store
from clipproof.verification import Outcome, Verifier
from clipproof.watermark import Embedder, detect, payload
from clipproof.watermark.detection import Orientation
from tests.conftest import free_port, serving

PAYLOAD = bytes.fromhex("c11bb00f5eedface")
# x264 preset of the footage, the marked clips and the copies made here (as bench.watermark's: a
# platform's re-encode is rarely slower): a third of "medium"'s time at 960×540; what `sign`
# writes keeps its own.
FAST = "veryfast"


@pytest.fixture(scope="module")
def photo_clip(tmp_path_factory) -> Path:
    """A camera moving over a real photograph, 960×540, 3 s, unsigned."""
    return write_mp4(real_clip(36, 960, 540, seed=3), tmp_path_factory.mktemp("wm") / "photo.mp4", fps=12, crf=18,
                     preset=FAST, reproducible=False)


@pytest.fixture(scope="module")
def marked(photo_clip, tmp_path_factory) -> tuple[Path, np.ndarray]:
    frames, _ = read_frames(photo_clip)
    out = write_mp4(list(map(Embedder(PAYLOAD), frames)), tmp_path_factory.mktemp("wm") / "marked.mp4", fps=12,
                    crf=18, preset=FAST, reproducible=False)
    decoded, _ = read_frames(out)
    return out, decoded


def test_the_code_corrects_errors_and_refuses_noise():
    bits = payload.encode(PAYLOAD)
    assert bits.size == payload.CODED_BITS
    hard = bits.astype(np.float64) * 2 - 1
    flipped = hard.copy()
    flipped[np.random.default_rng(0).choice(bits.size, 12, replace=False)] *= -1
    assert payload.decode(flipped, chase=False) == (PAYLOAD, 12)
    # More errors than BCH corrects, on the least reliable bits: Chase decoding finds them.
    weak = hard.copy()
    weak[np.random.default_rng(1).choice(bits.size, 17, replace=False)] *= -0.2
    assert payload.decode(weak, chase=False) is None and payload.decode(weak)[0] == PAYLOAD
    rng = np.random.default_rng(2)
    assert not any(payload.decode(rng.normal(size=bits.size)) for _ in range(60))
    assert payload.FALSE_MATCH_PER_CLIP <= 1e-9


def test_the_watermark_runs_on_one_blas_thread_and_gives_the_setting_back():
    from threadpoolctl import threadpool_info, threadpool_limits

    from clipproof.watermark import detect_frames
    from clipproof.watermark.blas import one_blas_thread

    def blas_threads() -> set[int]:
        # numpy's BLAS: the only one the watermark calls (scipy's may be loaded by other tests).
        return {lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas" and "numpy" in lib["filepath"]}

    with threadpool_limits(2, user_api="blas"):
        if blas_threads() != {2}:
            pytest.skip("this machine's BLAS runs one thread at most")
        with one_blas_thread():
            assert blas_threads() == {1}
        assert blas_threads() == {2}
        marked = np.stack([Embedder(b"\x01" * 8)(f) for f in moving_scene(3, 96, 64)])
        detect_frames(marked[..., 1].astype(np.float32))
        assert blas_threads() == {2}


@pytest.mark.parametrize("shape", [(96, 171), (5, 3), (1, 1), (4, 40, 30)])
def test_the_filters_are_scipy_ndimage_s(shape):
    """The watermark's own Gaussian and box filters give scipy.ndimage's results (reflected
    edges, 4-sigma kernels), on frames shorter than a kernel and on stacks of frames too."""
    from scipy import ndimage

    from clipproof.watermark.filters import gaussian_filter, uniform_filter
    image = np.random.default_rng(0).normal(scale=50, size=shape).astype(np.float32)
    axes = (-2, -1) if len(shape) == 2 else (1, 2)
    for sigma in (1.5, 2.0):
        assert np.allclose(gaussian_filter(image, sigma), ndimage.gaussian_filter(image, sigma, axes=axes), atol=1e-4)
    for size in (3, 5):
        assert np.allclose(uniform_filter(image, size), ndimage.uniform_filter(image, size, axes=axes), atol=1e-4)
    assert gaussian_filter(image, 1.5).dtype == np.float32


def test_a_fold_is_the_mean_of_each_half_chip_bin():
    """The detector's fold, against its definition: pixel (y, x) belongs to half-chip bin
    (floor(2y / chip), floor(2x / chip)) modulo the tile; chips under 2 px leave bins empty.
    Sizes of every kind are folded in one call, as the search folds them: under 2 px, under a
    tile's width, one lap and a part, several laps."""
    from clipproof.watermark.detection import BINS, _folds, _Residual
    chips = [1.3, 2.0, 2.7, 5.55, 0.9]
    residual = np.random.default_rng(1).normal(size=(70, 123))
    folds = _folds(_Residual.of(residual), np.array(chips))
    for chip, fold in zip(chips, folds):
        rows = np.floor(np.arange(70) * 2 / chip).astype(int) % BINS
        cols = np.floor(np.arange(123) * 2 / chip).astype(int) % BINS
        flat = (rows[:, None] * BINS + cols[None, :]).ravel()
        sums = np.bincount(flat, residual.ravel(), BINS * BINS)
        expected = sums / np.maximum(np.bincount(flat, minlength=BINS * BINS), 1)
        assert np.allclose(fold, expected.reshape(BINS, BINS), atol=1e-5), chip


def test_searching_for_the_mark_loads_no_scipy(marked):
    """The search runs in every `verify` of a clip without credentials: scipy (its array-API
    layer and its own OpenBLAS) took 0.17 s of each such process before the watermark's own filters."""
    import subprocess
    import sys
    code = ("import sys; from clipproof.watermark import detect; found = detect(sys.argv[1]); "
            "print('scipy' in sys.modules, found.found)")
    out = subprocess.run([sys.executable, "-c", code, str(marked[0])], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False True", out.stderr


def test_marked_clip_is_close_to_the_original(photo_clip, marked):
    original, _ = read_frames(photo_clip)
    luma = np.array([0.299, 0.587, 0.114])
    mse = np.mean(((marked[1].astype(np.float64) - original) @ luma) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) >= 40.0


def _attack(frames: np.ndarray, name: str) -> tuple[np.ndarray, int, float]:
    if name == "crf28":
        return frames, 28, 12
    if name == "down0.5+crf23":
        return Variant("d", scale=0.5).apply(frames), 23, 12
    if name == "crop0.8":
        return Variant("c", crop=0.8).apply(frames), 18, 12
    if name == "gif":
        return Variant("g", palette=256).apply(frames), 18, 12
    if name == "fps12to10":
        return frames[np.round(np.arange(0, len(frames), 1.2)).astype(int)], 18, 10
    if name == "trim":
        return frames[len(frames) // 2:], 18, 12
    if name in TURNED:
        return _laid(frames, TURNED[name]), 23, 12
    return frames, 18, 12


def _laid(frames: np.ndarray, orientation: Orientation) -> np.ndarray:
    """RGB frames (N, H, W, 3) laid as a copy in ``orientation`` shows them."""
    return np.ascontiguousarray(orientation.apply(frames.transpose(3, 0, 1, 2)).transpose(1, 2, 3, 0))


# Copies laid another way: mirrored (a common dodge), or turned as a phone clip is when a
# re-encoder drops its display rotation, or flipped top to bottom.
TURNED = {"mirror+crf23": Orientation(mirrored=True), "turn90+crf23": Orientation(quarter_turns=1),
          "turn270+crf23": Orientation(quarter_turns=3), "turn180+crf23": Orientation(quarter_turns=2),
          "flip+crf23": Orientation(mirrored=True, quarter_turns=2)}


@pytest.mark.parametrize("attack", ["none", "crf28", "down0.5+crf23", "mirror+crf23", "turn90+crf23",
                                    *(pytest.param(a, marks=pytest.mark.slow) for a in
                                      ("crop0.8", "gif", "fps12to10", "trim", "turn270+crf23", "turn180+crf23", "flip+crf23"))])
def test_the_payload_survives(marked, attack, tmp_path):
    frames, crf, fps = _attack(marked[1], attack)
    found = detect(write_mp4(frames, tmp_path / "attacked.mp4", fps=fps, crf=crf, preset=FAST, reproducible=False))
    assert found.found and found.payload == PAYLOAD.hex(), found
    assert found.orientation == TURNED.get(attack, Orientation()), found


def test_a_picture_that_repeats_with_the_tile_does_not_hide_the_mark(tmp_path, monkeypatch):
    """A 128-px picture with a 4×4 ordered dither (as many public generators' GIFs have), shown
    at 512 px: the dither's period (16 px) divides the tile's, so it folds as coherently as the
    mark. Clipping the fold's spectral lines finds the mark; without it the sync peak is lost."""
    from scipy import ndimage

    from clipproof.watermark import detection

    bayer = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) / 16 - 0.5
    base = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(128, 128)), 6)
    base = 128 + 60 * base / base.std()
    frames = []
    for i in range(12):
        picture = np.clip(np.roll(base, i, axis=1) + 32 * np.tile(bayer, (32, 32)), 0, 255).astype(np.uint8)
        big = np.asarray(Image.fromarray(picture).resize((512, 512), Image.Resampling.BICUBIC))
        frames.append(Embedder(PAYLOAD)(np.repeat(big[..., None], 3, axis=2)))
    clip = write_mp4(frames, tmp_path / "dithered.mp4", fps=12, preset=FAST, crf=18, reproducible=False)
    found = detect(clip)
    assert found.found and found.payload == PAYLOAD.hex(), found
    monkeypatch.setattr(detection, "SPECTRUM_CLIP", np.inf)
    assert not detect(clip).found


def test_a_small_original_is_found_and_one_too_small_is_not_marked(keys, tmp_path, capsys):
    # Under 148 pixels an original's 3-pixel chips lay past the ratios the search covered (a
    # 128x96 clip's mark was never looked for); under MIN_MARKED_SIDE none can be found at all,
    # so `sign` leaves it out by default and refuses it when asked.
    for size in [(128, 96), (64, 64)]:
        clip = write_mp4(list(map(Embedder(PAYLOAD), moving_scene(24, *size))), tmp_path / "small.mp4", fps=12,
                         crf=18, preset=FAST, reproducible=False)
        found = detect(clip)
        assert found.found and found.payload == PAYLOAD.hex() and found.chip_px == pytest.approx(3, abs=0.05), (size, found)
    tiny = write_mp4(moving_scene(24, 48, 48), tmp_path / "tiny.mp4", fps=12, preset=FAST)
    store = tmp_path / "s.sqlite"
    assert clipproof_main(["sign", str(tiny), "-o", str(tmp_path / "a.mp4"), "--key", str(keys.key), "--cert",
                           str(keys.chain), "--ai-generated", "--store", str(store), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["watermark"] is None and "48x48 pictures are too small" in row["watermark_note"] and not store.exists()
    assert Verifier(detector=None).verify(tmp_path / "a.mp4").credentials.soft_binding is None
    # Stripped, it is not searched for a mark it could not carry, and the report says why.
    stripped = Verifier(detector=None).verify(remux(tmp_path / "a.mp4", tmp_path / "stripped.mp4")).watermark
    assert stripped.lookup == "too-small" and not stripped.found
    assert stripped.note.startswith("No clipproof watermark was looked for: 48x48 pictures are too small")
    assert clipproof_main(["sign", str(tiny), "-o", str(tmp_path / "b.mp4"), "--key", str(keys.key), "--cert",
                           str(keys.chain), "--ai-generated", "--watermark"]) == 64
    assert "too small" in capsys.readouterr().err and not (tmp_path / "b.mp4").exists()


def test_unmarked_clips_carry_no_payload(photo_clip, tmp_path):
    clips = [photo_clip, write_mp4(moving_scene(24, 320, 240), tmp_path / "scene.mp4", fps=12, preset=FAST)]
    clips += [write_mp4(real_clip(24, 480, 270, seed=s), tmp_path / f"photo{s}.mp4", fps=12, preset=FAST,
                        reproducible=False) for s in (5, 6)]
    for clip in clips:
        result = detect(clip)
        assert not result.found and result.payload is None, clip


def test_sign_strip_reencode_recover(photo_clip, keys, tmp_path):
    store = tmp_path / "store.sqlite"
    signed = sign(photo_clip, tmp_path / "ai.mp4", key=keys.key, cert=keys.chain, store=store)
    stripped = remux(signed, tmp_path / "stripped.mp4")
    frames, _ = read_frames(stripped)
    reencoded = write_mp4(frames, tmp_path / "reencoded.mp4", fps=12, preset=FAST, crf=26, reproducible=False)
    verifier = Verifier(trust=keys.root, detector=None, stores=[store])
    for copy in (stripped, reencoded):
        report = verifier.verify(copy)
        assert report.credentials.state == "recovered" and report.credentials.trusted_signer
        assert report.verdict == "ai-generated-declared" and report.exit_code == 1
        assert report.watermark.lookup == "recovered" and report.watermark.fingerprint_distance <= 14
        assert "changed copy of a signed original" in report.reasons[0]
    # The same through the CLI, as JSON.
    code = verify_main([str(reencoded), "--json", "--no-detector", "--trust", str(keys.root), "--store", str(store)])
    assert code == 1
    # Without the store, the mark is still found and reported, and nothing is recovered.
    alone = Verifier(trust=keys.root, detector=None, stores=[]).verify(reencoded)
    assert alone.credentials.state == "absent" and alone.watermark.lookup == "no-store" and alone.exit_code == 2
    # A store that does not hold it.
    SqliteStore(tmp_path / "empty.sqlite").count()
    other = Verifier(trust=keys.root, detector=None, stores=[tmp_path / "empty.sqlite"]).verify(reencoded)
    assert other.watermark.lookup == "not-in-store" and other.verdict == "uncertain"
    # A store path that does not exist is never created by verifying: it could not be asked.
    missing = Verifier(trust=keys.root, detector=None, stores=[tmp_path / "nope.sqlite"]).verify(reencoded)
    assert missing.watermark.lookup == "store-unavailable" and not (tmp_path / "nope.sqlite").exists()


def test_the_picture_inside_bars_is_found_and_bars_are_told_from_flat_picture():
    from clipproof.watermark.framing import content_box
    rng = np.random.default_rng(0)
    picture = rng.normal(120, 30, (6, 90, 160)).astype(np.float32)
    letterboxed = np.zeros((6, 160, 160), np.float32)
    letterboxed[:, 35:125] = picture
    assert content_box(letterboxed) == (36, 124, 0, 160)
    pillarboxed = np.full((6, 90, 300), 16.0, np.float32)              # video black, not 0
    pillarboxed[:, :, 70:230] = picture
    assert content_box(pillarboxed) == (0, 90, 71, 229)
    # A flat sky at the top alone, still over the frames but for the camera's noise, above a
    # moving scene: picture, not a bar.
    sky = picture.copy()
    sky[:, :30] = 200.0 + rng.normal(0, 0.4, (6, 30, 160))
    assert content_box(sky) is None and content_box(picture) is None
    # Still rows whose noise a re-encode smoothed away (a wall seen from a tripod) are not plain.
    wall = picture.copy()
    wall[:, :30] = picture[0, :30]
    assert content_box(wall) is None
    # A meme's caption band (text on a plain ground, on one side only) and a canvas around a
    # smaller clip, off centre: dead still while the picture moves, which starts along a line.
    caption = np.full((6, 120, 160), 255.0, np.float32)
    caption[:, 8:22, 10:150] = np.where(rng.random((14, 140)) < 0.3, 0.0, 255.0)      # the text
    caption[:, 30:] = picture
    assert content_box(caption) == (31, 120, 0, 160)
    canvas = np.full((6, 140, 240), 40.0, np.float32)
    canvas[:, 4:94, 6:166] = picture
    assert content_box(canvas) == (5, 93, 7, 165)
    # A vertical feed fills its bars with the clip blurred and enlarged: not flat, but without
    # fine detail, and cut off where the picture starts. A picture that softens gradually
    # towards its top and bottom edges (defocus, haze) has no bars.
    from clipproof.watermark.filters import gaussian_filter
    blurred = np.stack([gaussian_filter(np.kron(f, np.ones((4, 1)))[:160], 6.0) for f in picture])
    blurred[:, 35:125] = picture
    assert content_box(blurred) == (36, 124, 0, 160)
    fading = np.stack([gaussian_filter(f, 1.0) for f in rng.normal(120, 100, (6, 160, 160)).astype(np.float32)])
    edge = np.minimum(np.arange(160), np.arange(160)[::-1])
    weight = (0.15 + 0.85 * np.minimum(1.0, edge / 50))[None, :, None]                # detail falls off gradually
    assert content_box(fading * weight + 120 * (1 - weight)) is None


def test_a_clip_placed_in_a_frame_of_another_shape_or_under_a_caption_still_leads_back(keys, tmp_path):
    # A landscape clip letterboxed into a 9:16 frame for a vertical feed (or into a square): the
    # chips, sized from the picture's short side, were outside the sizes searched for the frame's.
    w, h = 640, 1138
    src = write_mp4(real_clip(24, 640, 360, seed=9), tmp_path / "landscape.mp4", fps=12, preset=FAST, crf=18,
                    reproducible=False)
    store = tmp_path / "store.sqlite"
    signed = sign(src, key=keys.key, cert=keys.chain, store=store)
    frames, _ = read_frames(signed)
    placed = np.zeros((len(frames), h, w, 3), np.uint8)
    top = (h - 360) // 2 // 2 * 2
    placed[:, top:top + 360] = frames
    reupload = write_mp4(placed, tmp_path / "reupload.mp4", fps=12, preset=FAST, crf=23, reproducible=False)
    verifier = Verifier(trust=keys.root, detector=None, stores=[store])
    report = verifier.verify(reupload)
    assert report.watermark.lookup == "recovered" and report.watermark.fingerprint_distance <= 14
    assert report.watermark.false_match_odds == pytest.approx(2 * payload.FALSE_MATCH_PER_CLIP)    # searched twice
    # A meme: the clip under a caption band of a fifth of its height, text on white.
    meme = np.full((len(frames), 360 + 72, 640, 3), 255, np.uint8)
    meme[:, 20:52, 40:600] = np.where(np.random.default_rng(1).random((32, 560, 1)) < 0.3, 0, 255)
    meme[:, 72:] = frames
    report = verifier.verify(write_mp4(meme, tmp_path / "meme.mp4", fps=12, preset=FAST, crf=23, reproducible=False))
    assert report.watermark.lookup == "recovered" and report.watermark.fingerprint_distance <= 14


@pytest.mark.slow      # signs and re-encodes clips end to end: make test, not the edit loop
@pytest.mark.parametrize("suffix, audio", [(".mov", "aac"), (".avi", "pcm_s16le")])
def test_generated_mov_and_avi_are_watermarked_by_default_in_their_own_container(keys, tmp_path, suffix, audio):
    # Only MP4 was: an AI-generated MOV or AVI was signed without a mark (and --watermark was
    # refused), so its stripped copy led nowhere.
    import av
    from clipproof.media import probe
    src = tmp_path / f"generated{suffix}"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        sound = out.add_stream(audio, rate=8000, layout="mono")
        for frame in real_clip(24, 640, 360, seed=6):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")))
        out.mux(video.encode(None))
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32 if audio == "aac" else np.int16),
                                             format="fltp" if audio == "aac" else "s16", layout="mono")
        silence.sample_rate = 8000
        out.mux(sound.encode(silence))
        out.mux(sound.encode(None))
    store = tmp_path / "store.sqlite"
    signed = sign(src, key=keys.key, cert=keys.chain, store=store)
    assert signed.suffix == suffix and probe(signed).has_audio and probe(signed).container == suffix[1:]
    verifier = Verifier(trust=keys.root, detector=None, stores=[store])
    assert verifier.verify(signed).credentials.soft_binding["value"] is not None
    stripped = verifier.verify(remux(signed, tmp_path / f"stripped{suffix}"))
    assert stripped.credentials.state == "recovered" and stripped.verdict == "ai-generated-declared"


def test_a_phone_clip_keeps_its_rotation_and_its_mark_survives_a_platform_turning_it(keys, tmp_path):
    # A portrait phone clip is stored sideways with a display rotation. Signing re-encodes it
    # with the mark and must keep the rotation (it was dropped: the signed clip played sideways);
    # the mark lives in the picture as shown, so a copy whose platform turned the pixels upright
    # and dropped the rotation leads back to the manifest as a copy that kept it does.
    from clipproof.media import probe
    from tests.conftest import write_phone_clip
    phone = write_phone_clip(real_clip(24, 640, 360, seed=5), tmp_path / "phone.mp4", 90)
    store = tmp_path / "store.sqlite"
    signed = sign(phone, tmp_path / "signed.mp4", key=keys.key, cert=keys.chain, store=store)
    info = probe(signed)
    assert (info.rotation, info.width, info.height) == (90, 360, 640)
    stripped = remux(signed, tmp_path / "stripped.mp4")
    upright, _ = read_frames(signed)
    assert upright.shape[1:3] == (640, 360)
    baked = write_mp4(upright, tmp_path / "baked.mp4", fps=12, preset=FAST, crf=23, reproducible=False)
    assert probe(baked).rotation == 0
    verifier = Verifier(trust=keys.root, detector=None, stores=[store])
    for copy in (stripped, baked):
        report = verifier.verify(copy)
        assert report.watermark.lookup == "recovered", (copy.name, report.watermark)
        assert report.verdict == "ai-generated-declared" and report.watermark.fingerprint_distance <= 14


@pytest.mark.parametrize("beside", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_the_search_and_the_detector_both_decide(photo_clip, keys, tmp_path, monkeypatch, beside):
    """With a detector, the watermark search runs beside it (or, past 4K frames, before it):
    either way the report carries both, the recovered declaration decides, and a detector that
    cannot read the frames is no error once the search has recovered credentials (and the
    clip's error where it has not)."""
    from clipproof import verification
    from clipproof.errors import InvalidMediaError
    from clipproof.findings import DetectorFindings, Segment
    monkeypatch.setattr(verification, "SIDE_BY_SIDE_MAX_PIXELS", 3840 * 2160 if beside else 0)

    class Scores:
        def score(self, path, media):
            return DetectorFindings("stand-in", "1", 0.1, {"low": 0.2, "high": 0.8}, [Segment(0.0, 1.0, 0.1)], 12)

    class CannotDecode:
        def score(self, path, media):
            raise InvalidMediaError("the frames are cut short", path=path)

    store = tmp_path / "store.sqlite"
    signed = sign(photo_clip, tmp_path / "ai.mp4", key=keys.key, cert=keys.chain, store=store)
    stripped = remux(signed, tmp_path / "stripped.mp4")
    both = Verifier(trust=keys.root, detector=Scores(), stores=[store]).verify(stripped)
    assert both.credentials.state == "recovered" and both.watermark.lookup == "recovered"
    assert both.detector.model == "stand-in" and both.verdict == "ai-generated-declared"
    unread = Verifier(trust=keys.root, detector=CannotDecode(), stores=[store]).verify(stripped)
    assert unread.verdict == "ai-generated-declared" and unread.detector is None
    with pytest.raises(InvalidMediaError, match="cut short"):
        Verifier(trust=keys.root, detector=CannotDecode(), stores=[]).verify(stripped)


def test_sign_json_names_the_watermark_and_images_refuse_it(photo_clip, keys, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert clipproof_main(["sign", str(photo_clip), "-o", str(tmp_path / "a.mp4"), "--key", str(keys.key), "--cert",
                           str(keys.chain), "--ai-generated", "--store", str(store), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert len(row["watermark"]) == 16 and SqliteStore(store).count() == 1
    assert clipproof_main(["sign", str(photo_clip), "-o", str(tmp_path / "b.mp4"), "--key", str(keys.key), "--cert",
                           str(keys.chain), "--ai-generated", "--no-watermark", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["watermark"] is None
    Image.new("RGB", (64, 64)).save(tmp_path / "still.png")
    assert clipproof_main(["sign", str(tmp_path / "still.png"), "--key", str(keys.key), "--cert", str(keys.chain),
                           "--ai-generated", "--watermark"]) == 64
    assert "video only" in capsys.readouterr().err


@pytest.mark.slow
def test_a_mark_copied_onto_other_footage_is_a_mismatch(photo_clip, keys, tmp_path):
    store = tmp_path / "store.sqlite"
    signed = sign(photo_clip, tmp_path / "ai.mp4", key=keys.key, cert=keys.chain, store=store)
    stolen = bytes.fromhex(Verifier(detector=None, stores=[store]).verify(signed).credentials.soft_binding["value"])
    other = moving_scene(24, 960, 540, seed=9)
    forged = write_mp4(list(map(Embedder(stolen), other)), tmp_path / "forged.mp4", fps=12, preset=FAST,
                       reproducible=False)
    report = Verifier(trust=keys.root, detector=None, stores=[store]).verify(forged)
    assert report.watermark.found and report.watermark.lookup == "mismatch"
    assert report.credentials.state == "absent" and report.verdict != "ai-generated-declared"


@pytest.fixture(scope="module")
def signed_frames(photo_clip, keys, tmp_path_factory) -> tuple[np.ndarray, Verifier]:
    """``photo_clip`` signed as AI-generated into a store of its own: its decoded frames, and a
    verifier that asks that store."""
    store = tmp_path_factory.mktemp("signed") / "store.sqlite"
    signed = sign(photo_clip, store.with_name("ai.mp4"), key=keys.key, cert=keys.chain, store=store)
    return read_frames(signed)[0], Verifier(trust=keys.root, detector=None, stores=[store])


def _forgery(payload_hex: str, change, path: Path) -> Path:
    """Other footage carrying a copied mark, changed as a copy of the original was."""
    other = np.stack(list(map(Embedder(bytes.fromhex(payload_hex)), moving_scene(24, 960, 540, seed=9))))
    return write_mp4(change(other), path, fps=12, preset=FAST, crf=18, reproducible=False)


@pytest.mark.slow      # signs and re-encodes clips end to end: make test, not the edit loop
@pytest.mark.parametrize("orientation", [Orientation(mirrored=True), Orientation(quarter_turns=1)], ids=["mirrored", "turned"])
def test_a_mirrored_or_turned_copy_leads_back_and_such_a_forgery_does_not(signed_frames, orientation, tmp_path):
    # Mirroring a clip left to right is a common way to dodge matching; a phone clip whose
    # display rotation a re-encoder dropped lies turned by a quarter. The mark is read that way,
    # and the fingerprint is compared on the picture laid back as it was signed.
    frames, verifier = signed_frames
    copy = write_mp4(_laid(frames, orientation), tmp_path / "copy.mp4", fps=12, preset=FAST, crf=23, reproducible=False)
    report = verifier.verify(copy)
    w = report.watermark
    assert w.lookup == "recovered" and Orientation(w.mirrored, w.quarter_turns) == orientation, w
    assert w.fingerprint_distance <= 14 and report.verdict == "ai-generated-declared"
    assert orientation.text in report.reasons[0] and f"read {orientation.text}" in render_text(report)
    assert f"read {orientation.text}" in render_page([Outcome(report.path, report, None)], thumbnails=False)
    forged = _forgery(w.payload, lambda f: _laid(f, orientation), tmp_path / "forged.mp4")
    assert verifier.verify(forged).watermark.lookup == "mismatch"


@pytest.mark.slow      # signs and re-encodes clips end to end: make test, not the edit loop
def test_a_feed_crop_of_a_signed_clip_is_recovered_and_a_cropped_forgery_is_not(signed_frames, tmp_path):
    # A feed re-frames a landscape clip by cropping it about its centre: the copy's centre is
    # another region of the original, and a 9:16 copy, its mark read bit for bit, was called a
    # forgery ("mismatch"). Other footage carrying a copied mark, cropped alike, still is one.
    from clipproof.provenance.fingerprint import CROP_MATCH_BITS
    frames, verifier = signed_frames
    for name, width in (("vertical", 304), ("square", 540)):
        left = (960 - width) // 2
        copy = write_mp4(frames[:, :, left:left + width], tmp_path / f"{name}.mp4", fps=12, preset=FAST, crf=23,
                         reproducible=False)
        report = verifier.verify(copy)
        assert report.watermark.lookup == "recovered", (name, report.watermark)
        assert report.watermark.fingerprint_distance <= CROP_MATCH_BITS
    forged = _forgery(report.watermark.payload, lambda f: f[:, :, 328:632], tmp_path / "forged.mp4")
    assert verifier.verify(forged).watermark.lookup == "mismatch"


def test_a_fingerprint_match_uses_one_group_and_leaves_black_frames_out():
    from clipproof.provenance.fingerprint import CROP_MATCH_BITS, MATCH_BITS, fingerprint, match, reference
    rng = np.random.default_rng(4)
    # Smooth random pictures (what dHash sees of footage), 9 frames of each of two "clips".
    a, b = (np.stack([np.kron(rng.normal(128, 40, (9, 16)), np.ones((20, 20))) for _ in range(9)]).astype(np.float32)
            for _ in range(2))
    assert match(a[::2], fingerprint(a))[1] and not match(b[::2], fingerprint(a))[1]     # a plain list, as stores kept
    assert match(np.zeros((3, 180, 320), np.float32), reference(a)) == (None, True)     # black: no evidence
    gap, agrees = match(a[:, :, 110:210], reference(a))                                 # a 9:16 centre crop of a
    assert agrees and gap <= CROP_MATCH_BITS < MATCH_BITS
    assert not match(b[:, :, 110:210], reference(a))[1]


def _put_many(path: str, start: int) -> None:
    store = SqliteStore(path)
    for i in range(start, start + 25):
        store.put(StoredManifest(f"urn:test:{i}", "alg", f"{i:016x}", bytes(100), "video/mp4", "0" * 64, [i]))


@pytest.mark.slow
def test_several_processes_sign_into_one_store(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_put_many, args=(path, k * 25)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    store = SqliteStore(path)
    assert store.count() == 100 and store.by_binding("alg", f"{77:016x}")[0].fingerprint == [77]


def test_a_corrupt_store_is_one_clear_error_and_no_output(photo_clip, keys, tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a manifest store"):
        SqliteStore(bad).count()
    code = clipproof_main(["sign", str(photo_clip), "-o", str(tmp_path / "out.mp4"), "--key", str(keys.key),
                           "--cert", str(keys.chain), "--ai-generated", "--store", str(bad)])
    err = capsys.readouterr().err
    assert code == 74 and "not a manifest store" in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists() and [p.name for p in tmp_path.iterdir()] == ["bad.sqlite"]


@pytest.mark.slow      # signs with a watermark: make test, not the edit loop
def test_store_list_and_show_read_what_sign_wrote_and_check_its_signature(photo_clip, keys, tmp_path, capsys):
    import hashlib
    import sqlite3

    def run(*args: str) -> tuple[int, str]:
        code = clipproof_main(["store", *args, "--store", str(store)])
        return code, capsys.readouterr().out

    store = tmp_path / "store.sqlite"
    signed = sign(photo_clip, tmp_path / "ai.mp4", key=keys.key, cert=keys.chain, store=store)
    binding = Verifier(detector=None).verify(signed).credentials.soft_binding["value"]
    code, out = run("list", "--json")
    row, = json.loads(out)
    assert code == 0 and row["binding"] == binding and row["format"] == "video/mp4"
    assert row["asset_sha256"] == hashlib.sha256(signed.read_bytes()).hexdigest()
    assert run("list")[1].startswith(f"1 manifest in {store}\n")

    # By payload or by manifest id; trusted only with the anchor, the hard binding not asked for.
    for key in (binding, binding.upper(), row["manifest_id"]):
        code, out = run("show", key, "--json", "--trust", str(keys.root))
        shown, = json.loads(out)
        assert code == 0 and shown["manifest_id"] == row["manifest_id"]
        assert shown["credentials"]["state"] == "trusted" and shown["credentials"]["ai_generated"] is True
    code, out = run("show", binding)
    assert code == 0 and "Signature:   checks out; the signer does not chain" in out and "AI-generated" in out

    # A stored manifest whose bytes changed no longer validates, and says so.
    with sqlite3.connect(store) as db:
        blob = bytearray(db.execute("SELECT manifest_store FROM manifests").fetchone()[0])
        blob[-40] ^= 0xFF                   # inside the claim signature, the last box
        db.execute("UPDATE manifests SET manifest_store = ?", (bytes(blob),))
    code, out = run("show", binding, "--trust", str(keys.root))
    assert code == 0 and "Signature:   does not validate" in out
    assert run("show", "0" * 16)[0] == 66


@pytest.mark.slow
def test_the_http_resolver_serves_a_store(photo_clip, keys, tmp_path):
    from clipproof.provenance.resolver import create_app
    store = tmp_path / "store.sqlite"
    signed = sign(photo_clip, tmp_path / "ai.mp4", key=keys.key, cert=keys.chain, store=store)
    stripped = remux(signed, tmp_path / "stripped.mp4")
    with serving(create_app(SqliteStore(store))) as url:
        report = Verifier(trust=keys.root, detector=None, stores=[url]).verify(stripped)
        assert report.credentials.state == "recovered" and report.verdict == "ai-generated-declared"
        assert report.watermark.stores == [url]
        binding = report.credentials.soft_binding["value"]
        assert open_store(url).by_binding("io.clipproof.watermark.luma-tiles.1", "0" * 16) == []
        assert len(open_store(url).by_binding("io.clipproof.watermark.luma-tiles.1", binding)) == 1


@pytest.mark.slow
def test_a_store_that_does_not_answer_times_out(photo_clip, keys, tmp_path):
    signed = sign(photo_clip, tmp_path / "ai.mp4", key=keys.key, cert=keys.chain, store=tmp_path / "s.sqlite")
    stripped = remux(signed, tmp_path / "stripped.mp4")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)                       # accepts connections, never answers
    dead = free_port()                    # nobody listens
    try:
        for url in (f"http://127.0.0.1:{silent.getsockname()[1]}", f"http://127.0.0.1:{dead}"):
            started = time.monotonic()
            report = Verifier(trust=keys.root, detector=None, stores=[url]).verify(stripped)
            assert time.monotonic() - started < 10
            assert report.watermark.lookup == "store-unavailable" and report.exit_code == 2
            assert "could not be asked" in report.watermark.note
    finally:
        silent.close()


def test_the_mark_is_made_stronger_only_where_the_picture_outweighs_it(monkeypatch):
    """Fine texture standing still reads as strongly as the mark on the tile: the strength is
    raised there (at most 1.4 times, luma PSNR still above 40 dB), and a plain moving scene gets
    the nominal strength, bit for bit the mark it had before."""
    from scipy import ndimage

    from clipproof.watermark import embedding

    base = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(256, 256)), 0.7)
    texture = np.repeat(np.clip(128 + 40 * base / base.std(), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    scene = list(moving_scene(6, 256, 256))

    def marks(frames):
        embedder = Embedder(PAYLOAD)
        return [embedder(f).astype(np.float64) - f for f in frames], embedder.strengthening

    (textured, textured_gain), (plain, plain_gain) = marks([texture] * 6), marks(scene)
    monkeypatch.setattr(embedding, "MAX_STRENGTHENING", 1.0)
    (nominal, _), (plain_nominal, _) = marks([texture] * 6), marks(scene)
    assert textured_gain > 1.2 and plain_gain == 1.0
    rms = lambda m: float(np.sqrt(np.mean(m[-1] ** 2)))
    assert rms(textured) > 1.2 * rms(nominal)
    assert 10 * np.log10(255 ** 2 / np.mean(textured[-1][..., 0] ** 2)) > 40
    assert all(np.array_equal(a, b) for a, b in zip(plain, plain_nominal))
