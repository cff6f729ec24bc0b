"""media.py on real encodes: probe, frame reading, MP4 writing, remuxing, bad input."""
from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from clipproof.demo import moving_scene
from clipproof.errors import InputMissingError, InvalidMediaError, UsageError
from clipproof.media import probe, read_frames, read_windows, remux, write_mp4
from conftest import FIXTURES, write_phone_clip


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def test_probe_reports_what_was_written(clip):
    info = probe(clip)
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 128, 96)
    assert info.fps == 12 and info.frames == 24 and info.duration_s == pytest.approx(2.0, abs=0.1)
    assert not info.has_audio and not info.is_image


def test_probe_of_fixture_with_audio_and_still():
    video = probe(FIXTURES / "video1.mp4")
    assert video.has_audio and (video.width, video.height) == (720, 1280)
    still = probe(FIXTURES / "C.jpg")
    assert still.is_image and still.container == "jpeg" and still.frames == 1


def test_write_then_read_round_trips_within_h264_error(tmp_path):
    frames = moving_scene(16, 128, 96, seed=3)
    path = write_mp4(frames, tmp_path / "x.mp4", fps=8, crf=18)
    back, times = read_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert psnr(back, frames) >= 30
    assert times == pytest.approx([i / 8 for i in range(16)])


def test_write_is_deterministic(tmp_path):
    frames = moving_scene(8, 64, 48)
    a = write_mp4(frames, tmp_path / "a.mp4").read_bytes()
    b = write_mp4(frames, tmp_path / "b.mp4").read_bytes()
    assert a == b


def test_uniform_frames_resized_and_cropped(clip):
    frames, times = read_frames(clip, 4, size=(32, 32), crop=True)
    assert frames.shape == (4, 32, 32, 3)
    # Uniformly spaced over 2 s: centres of four equal windows.
    assert times == pytest.approx([0.25, 0.75, 1.25, 1.75], abs=1 / 12)
    stretched, _ = read_frames(clip, 2, size=(40, 20))
    assert stretched.shape == (2, 20, 40, 3)


@pytest.mark.parametrize("source", ["clip", "test.avi", "video1.mp4"])
def test_windows_in_one_pass_match_separate_reads(source, clip):
    path = clip if source == "clip" else FIXTURES / source
    duration = probe(path).duration_s
    # Out of order, overlapping, adjacent, and one far ahead (past a keyframe where the file has several).
    windows = [(0.5 * duration, 0.6 * duration), (0.1, 0.4), (0.3, 0.5), (0.5, 0.7), (0.9 * duration, duration)]
    together = read_windows(path, windows, size=(24, 16), crop=True)
    for (start, end), (frames, times) in zip(windows, together):
        alone, alone_times = read_frames(path, start_s=start, end_s=end, size=(24, 16), crop=True)
        assert times == pytest.approx(alone_times) and np.array_equal(frames, alone)


def test_window_read(clip):
    frames, times = read_frames(clip, start_s=0.5, end_s=1.0)
    assert len(frames) == 6 and times[0] == pytest.approx(0.5) and times[-1] < 1.0


def test_seeking_reads_the_right_frames(clip):
    every, all_times = read_frames(clip)
    some, times = read_frames(clip, 3)
    for frame, t in zip(some, times):
        assert np.array_equal(frame, every[all_times.index(t)])


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(UsageError):
        write_mp4(np.zeros((4, 33, 32, 3), np.uint8), tmp_path / "odd.mp4")
    assert list(tmp_path.iterdir()) == []


def test_remux_keeps_pictures(clip, tmp_path):
    out = remux(clip, tmp_path / "r.mp4")
    assert np.array_equal(read_frames(out)[0], read_frames(clip)[0])


@pytest.mark.parametrize("content, error", [
    (b"", InvalidMediaError),
    (b"hello, this is text and not a video\n" * 20, InvalidMediaError),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), InvalidMediaError),
])
def test_probe_rejects_non_video(tmp_path, content, error):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(error, match="bad.mp4"):
        probe(path)


def test_probe_rejects_truncated_and_hostile(clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(InvalidMediaError):
        probe(cut)
    with pytest.raises(InvalidMediaError):
        probe(FIXTURES / "nested_moov_1000.mp4")


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputMissingError, match="no such file"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(InputMissingError, match="folder"):
        probe(tmp_path)


def test_bad_requests():
    with pytest.raises(UsageError):
        write_mp4(np.zeros((2, 8, 8), np.uint8), "/tmp/never.mp4")
    with pytest.raises(UsageError):
        write_mp4(np.zeros((2, 8, 8, 3), np.uint8), "/tmp/never.mp4", crf=99)


def test_outputs_get_the_umask_permissions(tmp_path):
    import os
    import stat
    path = write_mp4(moving_scene(2, 32, 32), tmp_path / "p.mp4")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


# ---------------------------------------------------------------------------------------------
# The formats clips arrive in (each file made here, as the world makes them)
# ---------------------------------------------------------------------------------------------

def _frames(n: int = 12, w: int = 64, h: int = 48) -> np.ndarray:
    from clipproof.demo import moving_scene
    return moving_scene(n, w, h)


def test_animated_gif_is_a_video(tmp_path):
    from PIL import Image
    frames = _frames(12)
    path = tmp_path / "anim.gif"
    Image.fromarray(frames[0]).save(path, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                    duration=100, loop=0)                  # 10 fps, 1.2 s
    info = probe(path)
    assert not info.is_image and info.frames == 12 and info.fps == pytest.approx(10, rel=0.05)
    assert info.duration_s == pytest.approx(1.2, abs=0.11)
    got, times = read_frames(path, 4)
    assert got.shape == (4, 48, 64, 3) and times == sorted(times)
    (window, _), = read_windows(path, [(0.3, 0.7)])
    assert len(window) == 4
    still = tmp_path / "still.gif"
    Image.fromarray(frames[0]).save(still)
    assert probe(still).is_image


def test_webm_without_duration_in_its_header(tmp_path):
    import av
    path = tmp_path / "live.webm"
    with av.open(str(path), "w", format="webm", options={"live": "1"}) as out:     # as a live recorder writes
        stream = out.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for f in _frames(20):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))
    with av.open(str(path)) as c:
        assert c.duration is None and c.streams.video[0].duration is None      # the case at hand
    info = probe(path)
    assert not info.is_image and info.frames == 20 and info.duration_s == pytest.approx(2.0, abs=0.11)
    (window, times), = read_windows(path, [(0.5, 1.5)])
    assert len(window) == 10 and times[0] == pytest.approx(0.5)


@pytest.mark.parametrize("encoder, suffix, codec", [("libsvtav1", "mp4", "av1"), ("libsvtav1", "webm", "av1"),
                                                   ("libx265", "mp4", "hevc"), ("libvpx-vp9", "webm", "vp9"),
                                                   ("mpeg4", "mp4", "mpeg4"), ("flv", "flv", "flv1")])
def test_probe_names_the_codec_not_its_decoder(tmp_path, encoder, suffix, codec):
    """FFmpeg decodes AV1 with libdav1d: the report must still say the clip is AV1. (MPEG-4
    Part 2 and FLV1 state their frame size only to a decoder, which a probe opens just for them.)"""
    import av
    path = tmp_path / f"clip.{suffix}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        if encoder == "libx265":
            stream.options = {"x265-params": "log-level=error"}
        for f in _frames(8, 64, 64):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))
    info = probe(path)
    assert (info.codec, info.frames, info.width) == (codec, 8, 64)
    assert read_frames(path)[0].shape == (8, 64, 64, 3)


def test_avif_and_animated_webp_are_still_images_of_their_own_size(tmp_path):
    """An AVIF opens in FFmpeg's MP4 demuxer as a one-frame "video" (the detector scored one at
    0.99 before), and FFmpeg learns no size for an animated WebP (the report said 0x0)."""
    from PIL import Image
    frames = [Image.fromarray(f) for f in _frames(6, 80, 48)]
    frames[0].save(tmp_path / "still.avif")
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100, loop=0)
    avif, webp = probe(tmp_path / "still.avif"), probe(tmp_path / "anim.webp")
    assert (avif.container, avif.codec, avif.width, avif.height, avif.is_image) == ("avif", "av1", 80, 48, True)
    assert (webp.container, webp.width, webp.height, webp.is_image) == ("webp", 80, 48, True)
    # An MP4 of one frame is still a video.
    one = write_mp4(_frames(1, 80, 48), tmp_path / "one.mp4")
    assert not probe(one).is_image


def test_a_cover_picture_is_not_the_video(tmp_path):
    """An MP3's album art is a one-picture "video stream" to FFmpeg; reading it failed with
    "video data does not decode (Operation not permitted)"."""
    import av
    path = tmp_path / "song.mp3"
    with av.open(str(path), "w") as out:
        audio = out.add_stream("libmp3lame", rate=44100)
        cover = out.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        out.mux(cover.encode(av.VideoFrame.from_ndarray(_frames(1, 64, 64)[0], format="rgb24").reformat(format="yuvj420p")))
        out.mux(cover.encode(None))
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1152
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    with pytest.raises(InvalidMediaError, match=r"no video stream \(audio with a cover picture\)"):
        probe(path)


def test_a_file_named_for_another_container_is_read_as_what_it_is(clip, tmp_path):
    """MP4 and MOV files are opened with the demuxer their name says (FFmpeg's probe of every
    demuxer costs a quarter of a small file's probe); one that is something else, or a GIF named
    .mov, is still found out by the probe, and an MP4 named .mov is read as the MP4 it is."""
    import shutil

    import av
    from PIL import Image
    frames = _frames(12)
    mkv = tmp_path / "really-matroska.mp4"
    with av.open(str(mkv), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))
    info = probe(mkv)
    assert info.container == "matroska" and info.frames == 12 and read_frames(mkv)[0].shape == (12, 48, 64, 3)
    gif = tmp_path / "really-gif.mov"
    Image.fromarray(frames[0]).save(gif, format="GIF", save_all=True, duration=100, loop=0,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    assert probe(gif).container == "gif" and probe(gif).frames == 12
    as_mov = shutil.copy(clip, tmp_path / "clip.mov")
    assert probe(as_mov) == dataclasses.replace(probe(clip), container="mov")
    assert probe(clip).container == "mp4"


def test_stream_that_starts_late(tmp_path):
    import av
    path = tmp_path / "late.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 12000)
        for i, f in enumerate(_frames(24)):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts, frame.time_base = 12900 + i * 1000, Fraction(1, 12000)        # starts at 1.075 s
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe(path)
    assert info.frames == 24 and info.duration_s == pytest.approx(2.0, abs=0.1)
    (window, times), = read_windows(path, [(0.0, 1.0)])          # seconds from the first frame
    assert len(window) == 12 and times[0] == pytest.approx(0.0)
    got, _ = read_frames(path, 4)
    assert len(got) == 4


def test_rotated_phone_video_is_read_upright(tmp_path):
    band = np.zeros((48, 64, 3), np.uint8)
    band[:8] = (255, 0, 0)                          # a red band along the stored frame's top edge
    # Shown turned a quarter counter-clockwise.
    path = write_phone_clip([band] * 6, tmp_path / "phone.mp4", 90, fps=10)
    frames, _ = read_frames(path)
    assert frames.shape == (6, 64, 48, 3)           # upright: taller than wide
    red = frames[0, :, :, 0].astype(int) - frames[0, :, :, 1]
    assert red[:, :6].mean() > 150 and red[:, 12:].mean() < 30      # the band is now the left edge
    (small, _), = read_windows(path, [(0.0, 1.0)], size=(24, 32), crop=True)
    assert small.shape[1:] == (32, 24, 3) and (small[0, :, :3, 0].astype(int) - small[0, :, :3, 1]).mean() > 150


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_probe_gives_a_rotated_clip_the_size_it_is_shown_at(tmp_path, rotation):
    # A phone's portrait clip: landscape frames stored with a display rotation. The report's size
    # is the picture's as shown — the frames the detector reads have it — and the rotation.
    from clipproof.provenance.report import media_summary
    path = write_phone_clip(np.zeros((3, 48, 64, 3), np.uint8), tmp_path / "phone.mp4", rotation)
    info = probe(path)
    frames, _ = read_frames(path, 1)
    assert (info.height, info.width) == frames.shape[1:3]
    assert info.rotation == rotation and (info.width, info.height) == ((48, 64) if rotation % 180 else (64, 48))
    assert ("stored 64x48, shown turned" in media_summary(info)) == bool(rotation % 180)
    # `verify` hands a small file's bytes to the probe, which reads the track headers from them.
    assert probe(path, content=path.read_bytes()) == info


def test_display_rotation_is_read_from_the_video_track_and_survives_cut_headers(tmp_path):
    # The video stream's own track header decides (FFmpeg gives a stream its track's ID; here the
    # audio track comes first), and a file cut inside its moov gives no rotation, not an error.
    from clipproof.bmff import display_rotations, find_box
    path = write_phone_clip(np.zeros((1, 48, 64, 3), np.uint8), tmp_path / "rotated.mp4", 270, audio=True)
    assert display_rotations(path) == {1: 0, 2: 270}
    info = probe(path)
    assert info.has_audio and info.rotation == 270 and (info.width, info.height) == (48, 64)
    moov = find_box(path, "moov")
    data = path.read_bytes()
    short = tmp_path / "short.mp4"
    for cut in range(moov.offset + 1, moov.offset + moov.size, 7):
        short.write_bytes(data[:cut])
        assert display_rotations(short) == {}          # the moov runs past the end: not read
    mangled = bytearray(data)
    mangled[moov.offset + 8:moov.offset + 12] = b"\x00\x00\x00\x01"     # a 64-bit size, cut off
    short.write_bytes(bytes(mangled[:moov.offset + moov.size]))
    assert display_rotations(short) == {}


@pytest.mark.parametrize("gop", [250, 12])
def test_mpeg_ts_frames_are_found_where_a_seek_lands_past_them(tmp_path, gop):
    # MPEG-TS (broadcast captures, camcorders' .m2ts, HLS segments) has no index: a seek lands on
    # a packet, and the decoder drops every frame up to the next keyframe. With one keyframe
    # (x264's default GOP on a short clip) every read came back empty — "zero frames", exit 65 for
    # a good clip — and with a keyframe a second, windows lost their first frames.
    import av
    path = tmp_path / "broadcast.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=12, options={"g": str(gop)})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for frame in moving_scene(72, 96, 64):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")))
        out.mux(stream.encode(None))
    every, times = read_frames(path)
    assert len(every) == 72 and times[0] == pytest.approx(0.0)
    windows = [(0.0, 1.0), (2.5, 3.0), (4.2, 4.6), (1.0, 1.5)]
    for (frames, got), (start, end) in zip(read_windows(path, windows), windows):
        assert got == pytest.approx([t for t in times if start - 1e-3 <= t < end - 1e-3], abs=1e-3)
    picked, at = read_frames(path, 3, start_s=2.0, end_s=5.0)
    assert at == pytest.approx([2.5, 3.5, 4.5], abs=0.05)
    assert np.abs(picked.astype(int) - every[[round(t * 12) for t in at]]).mean() < 1


def test_the_decoding_clock_runs_while_a_decoder_waits_for_a_keyframe(tmp_path, monkeypatch):
    # Past a seek that missed the only keyframe, the decoder takes every packet to the end and
    # gives no frame: the time limit must still be checked (it was, only between frames).
    import av
    from clipproof import media
    from clipproof.errors import DecodeLimitError
    path = tmp_path / "one-keyframe.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=24, options={"g": "1000", "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in moving_scene(240, 64, 48):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(round(5.0 / stream.time_base), stream=stream, backward=True)
        assert list(media._DecodeBudget(container, stream)()) == []         # no frame: all packets taken
        monkeypatch.setattr(media, "MAX_DECODE_SECONDS", -1.0)
        container.seek(round(5.0 / stream.time_base), stream=stream, backward=True)
        with pytest.raises(DecodeLimitError):
            list(media._DecodeBudget(container, stream)())


def test_variable_frame_rate_is_read_by_time(tmp_path):
    # Phones and screen recorders write frames when they have them: here 8 frames over 2 s with
    # gaps of 50 ms to 1 s. Frames are picked by their timestamps, not by index at a fixed rate.
    import av
    times_ms = [0, 50, 100, 500, 550, 1500, 1600, 2000]
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        # No B-frames: with them this muxer would end the stream at the last decode timestamp.
        stream = out.add_stream("libx264", rate=20, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 + 25 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe(path)
    assert info.frames == 8 and 2.0 <= info.duration_s <= 2.1
    assert info.fps == pytest.approx(info.frames / info.duration_s, rel=0.1)     # the average rate
    frames, times = read_frames(path)
    assert times == pytest.approx([t / 1000 for t in times_ms], abs=1e-3)
    got, picked = read_frames(path, 4, start_s=0.0, end_s=2.0)                  # targets 0.25, 0.75, 1.25, 1.75 s
    assert picked == pytest.approx([0.5, 1.5, 1.5, 2.0], abs=1e-3)               # the first frame at or after each
    levels = [20 + 25 * times_ms.index(round(t * 1000)) for t in picked]
    assert np.abs(got.mean(axis=(1, 2, 3)) - levels).max() < 4
    (window, wtimes), = read_windows(path, [(0.4, 1.55)])
    assert wtimes == pytest.approx([0.5, 0.55, 1.5], abs=1e-3) and len(window) == 3


@pytest.mark.parametrize("rotation,pix_fmt", [(0, "yuv420p"), (90, "yuv420p"), (180, "yuvj420p"), (270, "yuvj420p")])
def test_native_crops_are_the_pieces_of_the_upright_frame(tmp_path, rotation, pix_fmt):
    # Only the crops are converted to RGB; they must be exactly what cutting them out of the
    # whole converted frame gives, whatever the display rotation, colour space and range.
    import av
    from clipproof.media import _crop_origin
    path = tmp_path / "noisy.mp4"
    rng = np.random.default_rng(rotation)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 96, 66, pix_fmt
        stream.codec_context.colorspace = 1 if pix_fmt == "yuvj420p" else 2     # BT.709 for the full-range one
        stream.set_display_rotation(rotation)
        for _ in range(4):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rng.integers(0, 256, (66, 96, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode(None))
    centres = [(0.0, 0.0), (0.5, 0.5), (0.31, 0.77), (1.0, 1.0)]
    crops, _ = read_frames(path, native_crops=centres, size=(32, 16))
    whole, _ = read_frames(path)
    fh, fw = whole.shape[1:3]
    assert (fh, fw) == ((96, 66) if rotation % 180 else (66, 96))
    for k, (cx, cy) in enumerate(centres):
        x0, y0 = _crop_origin(cx, cy, fw, fh, 32, 16)
        np.testing.assert_array_equal(crops[:, k], whole[:, y0:y0 + 16, x0:x0 + 32])


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_keyframe_times_come_from_the_index(container, tmp_path, monkeypatch):
    # An MP4 lists its keyframes when opened; FFmpeg reads a Matroska file's cues only at a seek.
    import av

    from clipproof import media
    from clipproof.media import keyframe_times
    path = tmp_path / f"k.{'mkv' if container == 'matroska' else 'mp4'}"
    if container == "mp4":
        write_mp4(moving_scene(90, 64, 64), path, fps=30, keyint=30, preset="ultrafast", reproducible=False)
    else:
        with av.open(str(path), "w", format=container) as out:
            stream = out.add_stream("mpeg4", rate=30)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            stream.codec_context.gop_size = 30
            for frame in moving_scene(90, 64, 64):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode(None))
    assert keyframe_times(path) == pytest.approx([0.0, 1.0, 2.0], abs=1e-3)
    # The reader seeks by the same index: after the first half second, the last second's window
    # is read from its keyframe, not by decoding on through the 45 frames between them.
    monkeypatch.setattr(media, "MAX_DECODED_FRAMES", 40)
    first, last = read_windows(path, [(0.0, 0.5), (2.0, 2.5)])
    assert len(first[0]) == len(last[0]) == 15 and last[1][0] == pytest.approx(2.0, abs=1e-3)


def test_keyframe_times_are_display_times_when_frames_are_reordered(tmp_path, monkeypatch):
    # An MP4's index lists decoding times; with B-frames (x264 past ultrafast, most cameras' HEVC)
    # each frame is shown two frames later. Taken as display times, a long clip's detector segment
    # meant to start at a keyframe asked for a time just before it and decoded from the keyframe
    # before that: a whole keyframe interval more for every segment.
    import av
    from clipproof import media
    from clipproof.media import iter_windows, keyframe_times
    path = write_mp4(moving_scene(120, 64, 64), tmp_path / "b.mp4", fps=30, keyint=30, preset="veryfast",
                     reproducible=False)
    with av.open(str(path)) as c:
        shown = [f.time for f in c.decode(video=0) if f.key_frame]
    assert len(shown) >= 3 and keyframe_times(path) == pytest.approx(shown, abs=1e-3)
    starts = [round(k, 3) for k in keyframe_times(path)[1:]]
    monkeypatch.setattr(media, "MAX_DECODED_FRAMES", len(starts) * 4 + 6)
    got = [times for _, (_, times) in iter_windows(path, [(k, k + 0.5) for k in starts], max_frames=4)]
    assert [t[0] for t in got] == pytest.approx(starts, abs=1e-3) and {len(t) for t in got} == {4}


@pytest.mark.parametrize("encoder", ["libx264", "libx265"])
def test_frames_no_other_frame_refers_to_are_skipped_between_windows(tmp_path, monkeypatch, encoder):
    # Between two windows of a long-GOP clip every frame must be decoded to reach the second,
    # except B-frames nothing is predicted from (about 40 % of x264's and x265's here): the
    # decoder skips those, and the windows' frames come out bit for bit as a full decode gives them.
    import av
    from clipproof import media
    path = tmp_path / "b.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"preset": "veryfast"} if encoder == "libx264" else {"x265-params": "bframes=4:log-level=0"}
        for frame in moving_scene(120, 64, 64):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    every, times = read_frames(path)
    assert len(every) == 120 and media.keyframe_times(path) == [0.0]
    monkeypatch.setattr(media, "MAX_DECODED_FRAMES", 100)          # 117 frames to the second window's end
    windows = [(0.0, 0.3), (3.5, 3.9)]
    for (frames, got), (start, end) in zip(read_windows(path, windows), windows):
        at = [i for i, t in enumerate(times) if start - 1e-3 <= t < end]
        assert got == pytest.approx([times[i] for i in at], abs=1e-6) and np.array_equal(frames, every[at])
    # A window cut short at so many frames decodes no frame past them.
    (frames, got), = [w for _, w in media.iter_windows(path, [(3.5, 3.9)], max_frames=5)]
    assert len(frames) == 5 and np.array_equal(frames, every[105:110])
