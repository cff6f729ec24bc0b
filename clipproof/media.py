"""The one place that touches PyAV: probe a file, read frames, write an H.264 MP4.

Frames cross this boundary as uint8 arrays shaped (T, H, W, 3), RGB.
Every FFmpeg failure becomes a ``clipproof.errors`` type with a one-line message.
"""
from __future__ import annotations

import bisect
import contextlib
import itertools
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import av
from av.video.reformatter import VideoReformatter

# numpy is imported inside the functions that use frames: probing (all that `verify
# --no-detector` needs) then starts without it, 40 ms sooner.
if TYPE_CHECKING:
    import numpy as np

from clipproof.atomic import atomic_output
from clipproof.errors import DecodeLimitError, InputMissingError, InvalidMediaError, UsageError
from clipproof.findings import merge_spans
from clipproof.inputs import require_readable_file
from clipproof.limits import (MAX_CONCURRENT_DECODES, MAX_COUNTED_PACKETS, MAX_DECODE_SECONDS,
                              MAX_DECODED_FRAMES, MAX_PIXELS, MAX_SIDE)
from clipproof.media_types import IMAGE_SUFFIXES

# Upper bound on what we decode to find one frame after a seek; a file whose keyframes are
# further apart than this is read sequentially instead.
_MAX_SEEK_DECODE = 600
# Decoding holds the decoder's reference frames: a few files at a time per process (see limits).
_DECODE_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
_FRAME_THREADS_MAX_PIXELS = 3840 * 2160
_REFORMATTERS = threading.local()

# FFmpeg format names for still images (the image2 demuxer and friends).
_IMAGE_FORMATS = {"image2", "jpeg_pipe", "png_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe",
                  "gif", "gif_pipe", "j2k_pipe", "heif"}
# ISO BMFF major brands of still images (AVIF, HEIC; MIAF's generic one): FFmpeg opens them with
# its MP4 demuxer, as one-frame "videos". Their image-sequence brands (avis, msf1, hevc) are video.
_STILL_BRANDS = {"avif", "heic", "heix", "heim", "heis", "mif1", "mif2"}


@dataclass(frozen=True)
class MediaInfo:
    """What a file is, from its headers (the ``media`` part of a Report)."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    has_audio: bool
    # The display rotation (counter-clockwise degrees, a quarter turn's multiple) a phone stores
    # beside sideways frames; ``width`` and ``height`` are the picture as shown, already turned.
    rotation: int = 0
    # Where the file ends inside its own structure ("it ends at byte 300,000, 292,629 bytes into
    # its 'mdat' box of 506,101 bytes"): a download or a recording that stopped. ``frames`` and
    # ``duration_s`` are what its headers declare; the frames past the cut are not there.
    cut_short: str | None = None

    @property
    def is_image(self) -> bool:
        return self.frames == 1 and self.duration_s == 0

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _open(path: str | os.PathLike, *, headers_only: bool = False,
          stream_templates: bool = False) -> Iterator[av.container.InputContainer]:
    """The open container. To learn a stream's parameters, FFmpeg decodes its first frames
    while opening and reads up to 5 s of packets through the parser; the decoders here are told
    to skip every picture and FFmpeg to stop after the first packet. What a probe reports comes
    from the headers alone, and a decoder learns the rest from the pictures it decodes (an 8K
    frame decoded at the open costs 300 MB; a phone's 1080p clip took 15-45 ms of CPU an open,
    a small MP4 0.46 ms a probe against 0.38 now; the same MediaInfo and the same decoded frames
    on 105 files of every container at hand). ``stream_templates``: the full analysis, for a
    stream copied into another container as a template (what it learns is written there). The
    decoders are told ``MAX_PIXELS``, so an image whose header declares a huge picture is refused
    before its frame is allocated. An open that will decode (not ``headers_only``) holds one of
    the process's decode slots (``MAX_CONCURRENT_DECODES``)."""
    path = require_readable_file(path)
    options = {"max_pixels": str(MAX_PIXELS)}
    if not stream_templates:
        options["skip_frame"] = "all"
        options["analyzeduration"] = "1"    # 1 µs: 0 means the default
    with contextlib.nullcontext() if headers_only else _DECODE_SLOTS:
        try:
            container = _open_headers(path, options) if headers_only else _open_as_named(path, options)
        except PermissionError as e:
            raise InputMissingError("permission denied", path=path) from e
        except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as e:
            raise InvalidMediaError(f"not a readable video or image ({_reason(e)})", path=path) from e
        with container:
            yield container


def _open_headers(path: Path, options: dict) -> av.container.InputContainer:
    """The file opened to read its headers, with no decoder: to learn the streams FFmpeg
    otherwise opens each one's decoder and gives it the first packet, which a probe never
    decodes (a probe of a 720p clip and of a phone's took 2.2 ms of CPU with it, 0.7-0.9
    without: initialising and zeroing the decoder's context; a small MP4's difference is in the
    noise). The demuxer and the parsers learn the rest for H.264, HEVC, VP8/9, AV1 and MJPEG in
    every container at hand (the same MediaInfo and the same errors on 408 files: fixtures,
    samples, wild-dev, the hostile corpus). Older codecs (MPEG-2, MPEG-4 Part 2, FLV1) and still
    images state their size only to a decoder: where a video stream comes back without one, or
    the open fails, the file is opened again with them; a file named as a still image is opened
    with them at once."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        try:
            container = _open_as_named(path, {**options, "codec_whitelist": "none"})
        except (av.FFmpegError, UnicodeDecodeError, ValueError):
            pass
        else:
            if all(s.codec_context is not None and s.codec_context.width > 0 for s in container.streams.video):
                return container
            container.close()
    return _open_as_named(path, options)


# Demuxers named by a file's extension. FFmpeg otherwise asks every demuxer it has whether it
# knows the first bytes: a quarter of a probe of a small MP4 (0.50-0.56 ms against 0.36-0.38,
# measured), which `verify` pays on every file.
# (PyAV then reports the name asked for, not the family: each maps to the name the report gave.)
_DEMUXER_BY_SUFFIX = {".mp4": "mp4", ".mov": "mov", ".m4v": "mov"}


def _open_as_named(path: Path, options: dict) -> av.container.InputContainer:
    """The file opened with the demuxer its name says, or, when that fails (a file named
    .mp4 that is something else), as FFmpeg's probe finds it."""
    hint = _DEMUXER_BY_SUFFIX.get(path.suffix.lower())
    if hint is not None:
        try:
            return av.open(str(path), mode="r", format=hint, metadata_errors="ignore", options=options)
        except (av.FFmpegError, UnicodeDecodeError, ValueError):
            pass
    container = av.open(str(path), mode="r", metadata_errors="ignore", options=options)
    if container.format.name == "png_pipe" and _is_animated_png(path):
        # FFmpeg looks for an animated PNG's acTL chunk in the first bytes only: a C2PA manifest
        # (a caBX chunk of hundreds of kB) ahead of it makes a signed APNG a still to the probe.
        container.close()
        container = av.open(str(path), mode="r", format="apng", metadata_errors="ignore", options=options)
    return container


def _is_animated_png(path: Path) -> bool:
    from PIL import Image
    try:
        with Image.open(path) as image:
            return bool(getattr(image, "is_animated", False))
    except Exception:   # Pillow raises many types for what it cannot read: then FFmpeg's view stands
        return False


@contextlib.contextmanager
def _open_video(path: str | os.PathLike):
    """(container, its video stream) ready to decode. Frame threading keeps a picture per thread
    in flight: past 4K, slice threading decodes as fast at half the memory (measured on 8K)."""
    with _open(path) as container:
        stream = _video_stream(container, path)
        large = stream.codec_context.width * stream.codec_context.height > _FRAME_THREADS_MAX_PIXELS
        stream.thread_type = "SLICE" if large else "AUTO"
        yield container, stream


def _reason(e: BaseException) -> str:
    msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return msg.split(":")[-1].strip() if ": '" in msg else msg.strip()


def _video_stream(container, path) -> av.VideoStream:
    return _checked_stream(container, path)[0]


def _checked_stream(container, path) -> tuple[av.VideoStream, tuple[int, int]]:
    """The first video stream and its frame size, from the codec or, where FFmpeg learns none
    without decoding (an animated WebP), from the image's own header."""
    # A cover picture (an MP3's or M4A's album art) is a "video stream" to FFmpeg: one picture.
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not moving:
        covered = container.streams.video and container.streams.audio
        raise InvalidMediaError("no video stream" + (" (audio with a cover picture)" if covered else ""), path=path)
    stream = moving[0]
    if stream.codec_context is None:
        raise InvalidMediaError("the video stream has no decoder (corrupt header or unknown codec)", path=path)
    w, h = stream.codec_context.width, stream.codec_context.height
    if w <= 0 or h <= 0:
        w, h = _declared_image_size(path)
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise InvalidMediaError(f"absurd frame size {w}x{h}", path=path)
    if w <= 0 or h <= 0:
        raise InvalidMediaError("video stream has no frame size (corrupt header)", path=path)
    return stream, (w, h)


def _declared_image_size(path) -> tuple[int, int]:
    """What a still image's header declares, read without decoding: FFmpeg learns an image's
    size only by decoding it, which ``max_pixels`` stops for a bomb."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            return image.size
    except Image.DecompressionBombError:
        raise InvalidMediaError(f"absurd frame size: the header declares more than {2 * Image.MAX_IMAGE_PIXELS:,} "
                                "pixels", path=path) from None
    except Exception:   # Pillow raises many types for what it cannot read; the size is then unknown
        return 0, 0


# ---------------------------------------------------------------------------------------------
# Probe
# ---------------------------------------------------------------------------------------------

def probe(path: str | os.PathLike, *, content: bytes | None = None) -> MediaInfo:
    """Read a file's headers (no picture is decoded) and check video data is there.
    ``content``: the file's bytes, when the caller has read them (FFmpeg still reads the file;
    the track headers' rotation is then read from memory).

    Raises InputMissingError or InvalidMediaError with a one-line reason.
    """
    with _open(path, headers_only=True) as container:
        stream, (width, height) = _checked_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration_s = _duration_s(container, stream)
        frames = stream.frames or (round(duration_s * fps) if fps and duration_s else 0)
        fmt = _container_name(container, path)
        still_format = container.format.name.split(",")[0] in _IMAGE_FORMATS or _still_brand(container) is not None
        try:
            if still_format or not duration_s:
                # An animated GIF, or a stream whose header has no duration (a live WebM): the
                # packets say how many frames and how long (demuxed, not decoded).
                frames, duration_s = _count_packets(container, stream)
                if frames > 1 and duration_s:
                    fps = fps if not still_format and fps else frames / duration_s
                elif still_format:
                    frames, duration_s, fps = 1, 0.0, 0.0
            # Headers can lie: insist that the first packet of video is really there (it is not
            # decoded: a probe reads headers, and the detector's reads find data that lies).
            elif next((p for p in container.demux(stream) if p.size), None) is None:
                frames = 0
        except (av.FFmpegError, ValueError) as e:
            raise InvalidMediaError(f"video data cannot be read ({_reason(e)})", path=path) from e
        if frames == 0:
            raise InvalidMediaError("zero frames", path=path)
        rotation = _display_rotation(container, stream, path, content)
        if rotation % 180:
            width, height = height, width
        return MediaInfo(
            container=fmt,
            codec=_codec_name(stream),
            width=width,
            height=height,
            fps=round(fps, 3),
            frames=max(int(frames), 1),
            duration_s=round(duration_s, 3),
            has_audio=bool(container.streams.audio),
            rotation=rotation,
        )


def _display_rotation(container, stream, path, content: bytes | None = None) -> int:
    """The stream's display rotation, from its MP4/MOV track header (FFmpeg's mov demuxer gives
    the stream its track's ID); 0 for other containers, where phones do not store one."""
    if not _is_mov(container):
        return 0
    from clipproof.bmff import display_rotations
    try:
        return display_rotations(path, content=content).get(stream.id, 0)
    except OSError:     # the file went away since FFmpeg read it: shown as stored
        return 0


def _container_name(container, path) -> str:
    # FFmpeg names demuxers by family ("mov,mp4,m4a,3gp,3g2,mj2"): the file's own extension,
    # when it is one of them, is the name a person expects.
    names = container.format.name.split(",")
    ext = Path(path).suffix.lower().lstrip(".")
    if ext in names:
        return ext
    if names[0] == "image2":  # the generic still-image demuxer: the codec names the format
        codec = _codec_name(container.streams.video[0])
        return "jpeg" if codec == "mjpeg" else codec
    brand = _still_brand(container)
    if brand is not None:
        return "heif" if brand.startswith("mif") else "heic" if brand.startswith("hei") else brand
    if names[0] == "mov":    # a name without the extension (standard input): the brand tells
        brand = _major_brand(container)
        return "mov" if brand == "qt" else "3gp" if brand.startswith("3g") else "mp4"
    return names[0].removesuffix("_pipe")    # "webp_pipe": FFmpeg's demuxer of one WebP image


def _still_brand(container) -> str | None:
    """The major brand of an ISO BMFF still image (AVIF, HEIC) opened by the MP4 demuxer."""
    if not container.format.name.startswith("mov,"):
        return None
    brand = _major_brand(container)
    return brand if brand in _STILL_BRANDS else None


def _major_brand(container) -> str:
    """An ISO BMFF file's major brand ("isom", "qt", "avif"), lower-cased; "" when there is none."""
    return (container.metadata.get("major_brand") or "").strip().lower()


def _codec_name(stream) -> str:
    # The format's name, not the decoder's: FFmpeg decodes AV1 with libdav1d when it has it,
    # and "libdav1d" is no answer to "what codec is this".
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _duration_s(container, stream) -> float:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _count_packets(container, stream) -> tuple[int, float]:
    """(frames, seconds) of a video stream from its packets: for headers that do not say."""
    frames, first, end = 0, None, 0.0
    for packet in container.demux(stream):
        if not packet.size or packet.pts is None:
            continue
        frames += 1
        t = float(packet.pts * packet.time_base)
        first = t if first is None else min(first, t)
        end = max(end, t + float((packet.duration or 0) * packet.time_base))
        if frames >= MAX_COUNTED_PACKETS:
            break
    return frames, (end - first if first is not None else 0.0)


def keyframe_times(path: str | os.PathLike) -> list[float]:
    """The keyframes' times (seconds from the first frame, sorted) as the container's index lists
    them (an MP4's sync-sample table, a Matroska or WebM file's cues); empty where it lists none.
    Read from the headers: nothing is decoded."""
    with _open(path, headers_only=True) as container:
        stream = _video_stream(container, path)
        return _keyframes(container, stream, _origin(stream))


def _keyframes(container, stream, origin: float = 0.0) -> list[float]:
    """The index's keyframe times, in seconds minus ``origin``, sorted. FFmpeg reads a Matroska
    or WebM file's cues at its first seek, not when it opens the file: there, one seek (and one
    back to the start) loads them. Only seeking decisions ride on the list: a file that cannot
    seek keeps its short one."""
    if len(stream.index_entries) <= 1 and container.duration and "matroska" in container.format.name:
        with contextlib.suppress(av.FFmpegError, ValueError, OSError):
            container.seek(container.duration // 2)
            container.seek(0)
    shift = _display_delay(container, stream) - origin
    return sorted(float(e.timestamp * stream.time_base) + shift for e in stream.index_entries if e.is_keyframe)


def _display_delay(container, stream) -> float:
    """Seconds from a keyframe's decoding time to its display time, in an MP4 or QuickTime file.

    Their index lists decoding times, and an encoder that may reorder frames (x264 outside
    ``ultrafast``, most cameras' HEVC) shows each frame a frame or two later: taken as display
    times, a segment meant to start at a keyframe asked for a time just before it, and the seek
    went back a whole keyframe interval (10 s of 1080p with a keyframe a second: 318 frames
    decoded for 8 segments' 128). Read from the first packet, which is a keyframe; the reader
    then goes back to the file's start. Other containers' indexes (Matroska's cues) list display
    times already."""
    if not _is_mov(container):
        return 0.0
    try:
        packet = next((p for p in container.demux(stream) if p.pts is not None and p.dts is not None), None)
        container.seek(0)
    except (av.FFmpegError, ValueError, OSError):
        return 0.0
    return float((packet.pts - packet.dts) * stream.time_base) if packet is not None and packet.is_keyframe else 0.0


def _is_mov(container) -> bool:
    """Whether FFmpeg's MP4/QuickTime demuxer reads ``container`` (its family name, or "mp4" or
    "mov" when it was opened by the file's suffix)."""
    return bool({"mov", "mp4"} & set(container.format.name.split(",")))


def _origin(stream) -> float:
    """When the stream's first frame is shown, in seconds: times in this module count from it,
    so a stream that starts late (at 1.075 s, say) still has a frame at 0."""
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


# ---------------------------------------------------------------------------------------------
# Read frames
# ---------------------------------------------------------------------------------------------

def read_frames(
    path: str | os.PathLike,
    n: int | None = None,
    *,
    size: tuple[int, int] | None = None,
    crop: bool = False,
    start_s: float = 0.0,
    end_s: float | None = None,
    native_crops: Sequence[tuple[float, float]] | None = None,
    partial: bool = False,
) -> tuple[np.ndarray, list[float]]:
    """Decode ``n`` frames spaced uniformly over [start_s, end_s) (all frames when n is None).

    Returns (frames uint8 (N, H, W, 3) RGB, timestamps in seconds). ``size`` is (width, height);
    with ``crop`` the frame is scaled to cover that size and centre-cropped (aspect kept),
    otherwise it is stretched. With ``native_crops`` (centres as fractions of the upright frame)
    each frame gives instead one ``size`` crop per centre at the frame's own resolution — no
    scaling, so pixel-level traces survive — shaped (N, K, H, W, 3). Seeks to each target where
    the file allows, so a few frames of a long clip cost a few GOPs, not the whole file.
    ``partial``: where the stream stops decoding part way (a file cut short), the frames up to
    there, each once (fewer than ``n``), instead of an error.
    """
    if n is not None and n <= 0:
        raise UsageError(f"number of frames must be positive, got {n}")
    _check_size(size)
    with _open_video(path) as (container, stream):
        duration = _duration_s(container, stream)
        end = duration if end_s is None or (duration and end_s > duration) else end_s
        origin = _origin(stream)
        convert = _converter(size, crop, origin, native_crops)
        with _decode_errors(path):
            if n is None or not duration or end <= start_s:
                window = (start_s + origin, None if end_s is None else end_s + origin)
                picked = _subsample(next(_decode_windows(container, stream, [window], convert, partial=partial)), n)
            else:
                targets = [origin + start_s + (end - start_s) * (i + 0.5) / n for i in range(n)]
                picked = _decode_targets(container, stream, targets, convert, partial)
    return _as_arrays(path, picked)


def read_windows(
    path: str | os.PathLike,
    windows: Sequence[tuple[float, float]],
    *,
    size: tuple[int, int] | None = None,
    crop: bool = False,
    native_crops: Sequence[tuple[float, float]] | None = None,
) -> list[tuple[np.ndarray, list[float]]]:
    """Every frame of each [start, end) window, as ``read_frames`` returns them, in one pass.

    Windows are read in time order from one open file. Decoding runs forward from one window to
    the next unless the container's index shows a keyframe in between (then a seek is cheaper):
    a seek goes back to the keyframe before the window, which for sparse keyframes (x264's
    default is one per 250 frames) would decode the same frames again for every window.
    """
    out: list = [None] * len(windows)
    for i, frames in iter_windows(path, windows, size=size, crop=crop, native_crops=native_crops):
        out[i] = frames
    return out


def iter_windows(
    path: str | os.PathLike,
    windows: Sequence[tuple[float, float]],
    *,
    size: tuple[int, int] | None = None,
    crop: bool = False,
    native_crops: Sequence[tuple[float, float]] | None = None,
    max_frames: int | None = None,
    partial: bool = False,
) -> Iterator[tuple[int, tuple[np.ndarray, list[float]]]]:
    """``read_windows`` window by window, in time order as each is decoded: (its index in
    ``windows``, what ``read_windows`` gives for it), so that a window can be used while the
    next ones decode. ``max_frames``: a window's first so many frames only (no frame past them is
    decoded to find where the window ends). ``partial``: where the stream stops decoding part way
    (a file cut short, damaged data) the read ends there instead of failing, and the windows that
    got no frame are left out; only a read that gets no frame at all fails."""
    _check_size(size)
    order = sorted(range(len(windows)), key=lambda i: windows[i][0])
    with _open_video(path) as (container, stream):
        origin = _origin(stream)
        with _decode_errors(path):
            picked = _decode_windows(container, stream, [(windows[i][0] + origin, windows[i][1] + origin) for i in order],
                                     _converter(size, crop, origin, native_crops), max_frames, partial)
            given = 0
            for i, frames in zip(order, picked):
                if partial and not frames:
                    continue
                given += 1
                yield i, _as_arrays(path, frames)
            if partial and not given:
                raise InvalidMediaError("zero frames in the requested windows", path=path)


def read_luma(path: str | os.PathLike, n: int | Callable[[int, int], int], *,
              max_short_side: int) -> tuple[np.ndarray, int]:
    """The first ``n`` frames' luma as float32 (N, H, W), scaled down (never up) so the short
    side is at most ``max_short_side``, and the stored short side. ``n`` may be a function of
    the stored (width, height). The scaler reads the Y plane, no RGB is made. Turned upright by
    the display rotation: a watermark lives in the picture as shown, which a platform that bakes
    a phone's rotation into the pixels keeps, while the stored orientation changes."""
    import numpy as np
    out = []
    with _open_video(path) as (container, stream):
        w, h = stream.codec_context.width, stream.codec_context.height
        n = n(w, h) if callable(n) else n
        if n <= 0:
            raise UsageError(f"number of frames must be positive, got {n}")
        scale = min(1.0, max_short_side / max(1, min(w, h)))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        with _decode_errors(path):
            for frame in _DecodeBudget(container, stream, partial=True)():
                small = _reformat(frame, width=size[0], height=size[1], format="gray", interpolation="AREA")
                out.append(np.rot90(small.to_ndarray(), _quarter_turns(frame)).astype(np.float32))
                if len(out) == n:
                    break
    if not out:
        raise InvalidMediaError("no frames decode", path=path)
    return np.stack(out), min(w, h)


def _check_size(size: tuple[int, int] | None) -> None:
    if size is not None and (size[0] <= 0 or size[1] <= 0 or size[0] > MAX_SIDE or size[1] > MAX_SIDE):
        raise UsageError(f"bad frame size {size[0]}x{size[1]}")


@contextlib.contextmanager
def _decode_errors(path):
    try:
        yield
    except (av.FFmpegError, ValueError) as e:
        raise InvalidMediaError(f"video data does not decode ({_reason(e)})", path=path) from e


def _converter(size, crop, origin: float = 0.0, native_crops=None) -> Callable[[av.VideoFrame], tuple[np.ndarray, float]]:
    """Frames become (RGB array, seconds from the stream's first frame) as soon as they are
    picked: holding decoded frames instead would keep the decoder's full-size buffers alive
    (200 MB for 64 frames of 1080p)."""
    if native_crops is not None and size is None:
        raise UsageError("native crops need a crop size")
    picture = ((lambda f: _crops(f, size, native_crops)) if native_crops is not None
               else (lambda f: _to_rgb(f, size, crop)))
    return lambda f: (picture(f), float(f.time) - origin if f.time is not None else 0.0)


def _crops(frame: av.VideoFrame, size, centres) -> np.ndarray:
    """(K, h, w, 3) crops of the upright frame at its own resolution, one centred at each
    fractional (x, y) and kept inside the frame (at even offsets: on the 4:2:0 chroma grid); a
    frame smaller than a crop is first scaled up just enough to hold it.

    Only the crops are made RGB: their pieces of the Y, U and V planes are laid side by side
    and converted in one call, which gives bit for bit the pieces of the converted frame
    (swscale's unscaled path repeats each chroma sample over its 2×2 pixels; the frame's colour
    space and range go along). Other pixel formats and odd sizes convert the whole frame."""
    import numpy as np
    w, h = size
    turns = _quarter_turns(frame)
    fw, fh = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    if fw < w or fh < h or (w | h | fw | fh) % 2 or frame.format.name not in _PLANAR_420:
        return _crops_of_whole_frame(frame, size, centres)
    # Stored-frame rectangles: a quarter turn swaps a crop's sides.
    rects = [_stored_rect(turns, *_crop_origin(cx, cy, fw, fh, w, h), w, h, frame.width, frame.height)
             for cx, cy in centres]
    pw, ph = rects[0][2], rects[0][3]
    planes = []
    for i, plane in enumerate(frame.planes):
        sub = 1 if i == 0 else 2                   # U and V have half the rows and columns
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        planes.append(np.concatenate([rows[y // sub:(y + ph) // sub, x // sub:(x + pw) // sub]
                                      for x, y, _, _ in rects], axis=1))
    strip = np.concatenate([p.reshape(-1) for p in planes]).reshape(ph * 3 // 2, pw * len(rects))
    pieces = av.VideoFrame.from_ndarray(strip, format=frame.format.name)
    pieces.colorspace, pieces.color_range = frame.colorspace, frame.color_range
    rgb = _reformat(pieces, format="rgb24").to_ndarray().reshape(ph, len(rects), pw, 3).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(np.rot90(rgb, turns, axes=(1, 2)) if turns else rgb)


_PLANAR_420 = {"yuv420p", "yuvj420p"}
# Decoders whose skip_frame=NONREF was checked to leave every other frame bit for bit as a full
# decode gives it (an MPEG-4 Part 2 AVI lost frames it was asked for: its packets carry no pts).
_DROPPABLE_CODECS = {"h264", "hevc"}


def _crop_origin(cx: float, cy: float, fw: int, fh: int, w: int, h: int) -> tuple[int, int]:
    """Top-left corner of the w×h crop centred at fractions (cx, cy) of an fw×fh frame, kept
    inside it, at even offsets."""
    x0 = min(max(round(cx * fw - w / 2), 0), fw - w)
    y0 = min(max(round(cy * fh - h / 2), 0), fh - h)
    return x0 & ~1, y0 & ~1


def _stored_rect(turns: int, x0: int, y0: int, w: int, h: int, sw: int, sh: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) in the stored frame (``sw``×``sh``) of the upright rectangle at
    (x0, y0), ``w``×``h``, when the upright frame is the stored one turned ``turns`` quarter
    turns counter-clockwise (``np.rot90``)."""
    if turns == 1:
        return sw - y0 - h, x0, h, w
    if turns == 2:
        return sw - x0 - w, sh - y0 - h, w, h
    if turns == 3:
        return y0, sh - x0 - w, h, w
    return x0, y0, w, h


def _crops_of_whole_frame(frame: av.VideoFrame, size, centres) -> np.ndarray:
    import numpy as np
    w, h = size
    upright = _to_rgb(frame, None, False)
    fh, fw = upright.shape[:2]
    scale = max(w / fw, h / fh)
    if scale > 1:
        upright = _to_rgb(frame, (math.ceil(fw * scale), math.ceil(fh * scale)), False)
        fh, fw = upright.shape[:2]
    out = []
    for cx, cy in centres:
        x0, y0 = _crop_origin(cx, cy, fw, fh, w, h)
        out.append(upright[y0:y0 + h, x0:x0 + w])
    return np.stack(out)


def _as_arrays(path, picked: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, list[float]]:
    import numpy as np
    if not picked:
        raise InvalidMediaError("zero frames in the requested window", path=path)
    return np.stack([a for a, _ in picked]), [t for _, t in picked]


def _subsample(frames: list, n: int | None) -> list:
    import numpy as np
    if n is not None and len(frames) > n:
        idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
        frames = [frames[i] for i in idx]
    return frames


def _decode_windows(container, stream, windows: Sequence[tuple[float, float | None]], convert,
                    max_frames: int | None = None, partial: bool = False) -> Iterator[list]:
    """Frames of each window (windows in time order, at most ``max_frames`` each), seeking only
    where it saves decoding; each window is yielded as soon as its last frame is decoded
    (``partial``: see ``_DecodeBudget``)."""
    decode = _DecodeBudget(container, stream, _within(windows), partial=partial)
    keyframes = _keyframes(container, stream)
    origin = _origin(stream)
    it, pos, pending = None, None, None
    seekable = True             # until a seek finds frames only from the file's start
    kept: list[tuple[float, object]] = []       # (time, converted frame) of the last window
    for start, end in windows:
        start = _at_keyframe(keyframes, start)
        # Forward from where the decoder stands, unless the window starts before the last one
        # did or a seek skips decoding: windows that tile a clip (overlapping by a frame or
        # so) decode it once, reusing the overlap. (Comparing with the last frame's time
        # re-decoded from the keyframe for every window, whatever the overlap.)
        reaches_back = kept and start < kept[0][0] - 1e-6
        if (it is None or reaches_back or (not kept and start < pos)
                or (seekable and _keyframe_between(keyframes, pos, start))):
            if it is None and start <= origin + 1e-6:
                it, pending = decode(), None        # a fresh decoder stands at the first frame
            else:
                it, pending, fell_back = _seek(container, stream, start, origin, decode)
                seekable = seekable and not fell_back
            kept = []
        window = [(t, f) for t, f in kept if t >= start - 1e-6 and (end is None or t < end)][:max_frames]
        while max_frames is None or len(window) < max_frames:
            frame, pending = (pending, None) if pending is not None else (next(it, None), None)
            if frame is None:
                break
            t = frame.time or 0.0
            pos = t
            if t < start - 1e-6:
                continue
            if end is not None and t >= end:
                pending = frame          # may open the next window
                break
            window.append((t, convert(frame)))
        pos = pos if pos is not None else start
        kept = window
        yield [f for _, f in window]


class _DecodeBudget:
    """``decode()`` is ``container.decode(stream)``, counted against one read's budget
    (``MAX_DECODED_FRAMES``, ``MAX_DECODE_SECONDS``) across seeks: past it, DecodeLimitError.

    ``wanted`` (seconds on the stream's clock → bool), when given, names the frames the reader
    keeps: the decoder skips the others where no other frame is predicted from them (FFmpeg's
    ``skip_frame=NONREF``; H.264 and HEVC only, whose pictures say so in every slice). A web
    encode's B-frames are about half its frames; a phone's P-only stream has none to skip.

    ``partial``: once a frame has decoded, an error from the demuxer or the decoder ends the
    frames instead of raising (a file cut short ends in a packet whose data is not all there,
    and the frames before it are good)."""

    def __init__(self, container, stream, wanted: Callable[[float], bool] | None = None, *, partial: bool = False):
        self.container, self.stream = container, stream
        self.used, self.deadline = 0, time.monotonic() + MAX_DECODE_SECONDS
        self.wanted = wanted if stream.codec_context.name in _DROPPABLE_CODECS else None
        self.partial = partial

    def __call__(self) -> Iterator[av.VideoFrame]:
        codec, time_base = self.stream.codec_context, self.stream.time_base
        # Packet by packet (``container.decode`` is this loop): the clock is read between packets
        # too, because a decoder that waits for a keyframe takes packets and gives no frame.
        try:
            for i, packet in enumerate(self.container.demux(self.stream)):
                if i % 64 == 63 and time.monotonic() > self.deadline:
                    raise self._spent()
                if self.wanted is not None:
                    # A packet's pts is its picture's display time: the frame it would give.
                    keep = packet.pts is None or self.wanted(float(packet.pts * time_base))
                    codec.skip_frame = "DEFAULT" if keep else "NONREF"
                for frame in packet.decode():
                    self.used += 1
                    if self.used > MAX_DECODED_FRAMES or (self.used % 64 == 0 and time.monotonic() > self.deadline):
                        raise self._spent()
                    yield frame
        except (av.FFmpegError, ValueError):
            if not (self.partial and self.used):
                raise

    def _spent(self) -> DecodeLimitError:
        return DecodeLimitError(f"reading the frames asked for needs more than {MAX_DECODED_FRAMES:,} frames or "
                                f"{MAX_DECODE_SECONDS:g} s of decoding (the limits for one file)", path=self.container.name)


def _seek(container, stream, start: float, origin: float, decode: _DecodeBudget) -> tuple[Iterator, av.VideoFrame | None, bool]:
    """Frames from the last keyframe at or before ``start`` (seconds on the stream's clock): the
    decoder, its first frame (None past the end), and whether only the file's start gave one.

    A container with an index (MP4, Matroska) seeks straight there. One without (MPEG-TS:
    broadcast, camcorders, HLS segments) lands on a packet, not a keyframe, and the decoder then
    drops every frame up to the next keyframe — often past the window or the end of the clip,
    so the first frame comes later than ``start`` or not at all. Such a seek is taken back
    further, 1, 2, 4… s, and at the clip's start it goes to the file's first byte, where the
    stream's first keyframe is."""
    back = 0.0
    while True:
        target = start - back
        at_start = target <= origin + 1e-6
        if at_start:
            container.seek(0)                       # the file's start, not a timestamp search
        else:
            container.seek(max(round(target / stream.time_base), 0), stream=stream, backward=True)
        it = decode()
        first = next(it, None)
        if at_start or (first is not None and (first.time or 0.0) <= start + 1e-3):
            return it, first, at_start and start > origin + 1.0
        back = max(1.0, 2 * back)


def _within(windows: Sequence[tuple[float, float | None]]) -> Callable[[float], bool]:
    """Whether a time falls in one of ``windows``, give or take a millisecond: window times are
    rounded to milliseconds."""
    spans = merge_spans((a, math.inf if b is None else b) for a, b in windows)
    starts = [a for a, _ in spans]

    def inside(t: float) -> bool:
        i = bisect.bisect_right(starts, t + 1e-3)
        return i > 0 and t < spans[i - 1][1] + 1e-3
    return inside


def _at_keyframe(keyframes: list[float], start: float) -> float:
    """``start``, or the keyframe less than a millisecond from it. Window times are rounded to
    milliseconds, and a window meant to start at a keyframe (a long clip's detector segments do)
    must seek to that keyframe, not to the one before it, and keep its frame."""
    i = bisect.bisect_left(keyframes, start)
    return next((k for k in keyframes[max(i - 1, 0):i + 1] if abs(k - start) < 1e-3), start)


def _keyframe_between(keyframes: list[float], pos: float, start: float) -> bool:
    """True when a seek to ``start`` lands past ``pos`` (or the file has no index to tell)."""
    if not keyframes:
        return start - pos > 1.0
    before = bisect.bisect_right(keyframes, start) - 1
    return before >= 0 and keyframes[before] > pos


def _decode_targets(container, stream, targets: Sequence[float], convert, partial: bool = False):
    """For each target time, the first frame at or after it (seek + decode forward); past the
    end the last frame, once only where the read is ``partial`` (see ``_DecodeBudget``)."""
    decode = _DecodeBudget(container, stream, partial=partial)
    origin = _origin(stream)
    out = []
    it = None
    last = given = None
    seekable = True             # until a seek finds frames only from the file's start
    for t in targets:
        # Decoding forward is cheaper than a seek when the target is near.
        near = last is not None and (last.time or 0.0) <= t and (not seekable or t < (last.time or 0.0) + 1.0)
        first = None
        if not near:
            it, first, fell_back = _seek(container, stream, t, origin, decode)
            seekable = seekable and not fell_back
        frame = None
        for i, f in enumerate(itertools.chain([first] if first is not None else [], it)):
            last = f
            if (f.time or 0.0) >= t - 1e-6:
                frame = f
                break
            if i > _MAX_SEEK_DECODE:
                break
        if frame is None:
            if partial and last is not None and last.time == given:
                continue            # past the cut: its last frame is given once
            frame = last
        if frame is not None:
            out.append(convert(frame))
            given = frame.time
    return out


def _quarter_turns(frame: av.VideoFrame) -> int:
    """The display rotation in counter-clockwise quarter turns (0–3; an older PyAV has no
    rotation: upright)."""
    return round((getattr(frame, "rotation", 0) or 0) / 90) % 4


def _to_rgb(frame: av.VideoFrame, size, crop) -> np.ndarray:
    """The frame as it is meant to be seen: phone video is stored sideways with a display
    rotation (counter-clockwise degrees), applied here after scaling to the rotated size."""
    import numpy as np
    turns = _quarter_turns(frame)
    if size is not None and turns % 2:
        size = (size[1], size[0])
    return np.ascontiguousarray(np.rot90(_scaled(frame, size, crop), turns)) if turns else _scaled(frame, size, crop)


def _reformat(frame: av.VideoFrame, **how) -> av.VideoFrame:
    """``frame.reformat(**how)`` through this thread's one reformatter, on one thread.

    PyAV gives every frame a reformatter of its own, so each conversion built a new swscale
    context (and its worker threads) for one picture: that cost more than converting a strip
    of crops (0.43 ms against 0.05 idle, 2.2 ms a frame in a busy `verify`), and tripled a
    1080p frame's scaling to the watermark's working size. Kept per thread, the context is
    reused while frames keep their shape; the pixels are the same."""
    reformatter = getattr(_REFORMATTERS, "one", None)
    if reformatter is None:
        reformatter = _REFORMATTERS.one = VideoReformatter()
    return reformatter.reformat(frame, threads=1, **how)


def _scaled(frame: av.VideoFrame, size, crop) -> np.ndarray:
    import numpy as np
    if size is None:
        return _reformat(frame, format="rgb24").to_ndarray()
    w, h = size
    if not crop:
        return _reformat(frame, width=w, height=h, format="rgb24").to_ndarray()
    scale = max(w / frame.width, h / frame.height)
    sw, sh = max(w, math.ceil(frame.width * scale)), max(h, math.ceil(frame.height * scale))
    arr = _reformat(frame, width=sw, height=sh, format="rgb24").to_ndarray()
    y0, x0 = (sh - h) // 2, (sw - w) // 2
    return np.ascontiguousarray(arr[y0:y0 + h, x0:x0 + w])


# ---------------------------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------------------------

def write_mp4(
    frames: np.ndarray | Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fps: float = 8.0,
    crf: int = 18,
    preset: str = "medium",
    reproducible: bool = True,
    keyint: int | None = None,
) -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to an H.264 (yuv420p) MP4, atomically.

    ``frames`` is an array or any iterable of (H, W, 3) frames (streamed: a long clip need not
    fit in memory). H and W must be even (4:2:0 chroma). The file appears only once complete.
    ``reproducible`` makes the bytes a function of the frames alone (slower); turn it off for
    large throwaway encodes. ``keyint``: at most this many frames from one keyframe to the next
    (a phone's camera puts one every second or so; None: x264's default, 250).
    """
    import numpy as np
    if not 0 <= crf <= 51:
        raise UsageError(f"CRF must be in 0..51, got {crf}")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise UsageError("no frames to write")
    _check_frame(first)
    h, w, _ = first.shape
    if h % 2 or w % 2:
        raise UsageError(f"H.264 4:2:0 needs even frame sizes, got {w}x{h}")
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_output(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            # Same frames, same bytes (corpora dedupe and reproduce by sha256): one thread,
            # and x264 without its assembly, whose paths gave different bitstreams for
            # identical input here, run to run (about 3x slower; fine for short clips).
            stream.codec_context.thread_count = 1
            if keyint is not None:
                stream.codec_context.gop_size = keyint
            options = {"crf": str(crf), "preset": preset, "threads": "1"}
            if reproducible:
                options["x264-params"] = "asm=0"
            stream.options = options
            for arr in itertools.chain([first], it):
                _check_frame(arr, (h, w))
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    return path


def _check_frame(arr, shape: tuple[int, int] | None = None) -> None:
    import numpy as np
    if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise UsageError(f"frames must be uint8 (H, W, 3) RGB arrays, got {got}")
    if shape is not None and arr.shape[:2] != shape:
        raise UsageError(f"frame size changed mid-clip: {arr.shape[1]}x{arr.shape[0]}, expected {shape[1]}x{shape[0]}")


def remux(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the audio/video streams into a fresh container without re-encoding, atomically.

    What a re-upload pipeline does to a file: the pictures survive bit for bit, boxes that
    FFmpeg does not know (such as a C2PA manifest) do not.
    """
    dst = Path(dst)
    with _open(src, stream_templates=True) as inp, atomic_output(dst) as tmp:
        with av.open(str(tmp), mode="w", format=_muxer_for(dst)) as out:
            mapping = {}
            for s in inp.streams:
                if s.type in ("video", "audio"):
                    mapping[s.index] = out.add_stream_from_template(s)
            if not mapping:
                raise InvalidMediaError("no audio or video streams to copy", path=src)
            try:
                for packet in inp.demux(*[inp.streams[i] for i in mapping]):
                    if packet.dts is None:
                        continue
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
            except av.FFmpegError as e:
                raise InvalidMediaError(f"cannot be remuxed ({_reason(e)})", path=src) from e
    return dst


def transcode_video(src: str | os.PathLike, dst: str | os.PathLike, change: Callable[[np.ndarray], np.ndarray], *,
                    crf: int = 18, preset: str = "medium") -> Path:
    """Re-encode ``src``'s video as H.264 at ``dst`` (atomically; MP4, or the MOV or AVI container
    its name asks for), each frame passed through ``change`` (uint8 RGB in and out, same size)
    as it is shown, upright; the first audio stream is copied as it is.

    Frames keep their display order at the stream's average rate and their stored orientation:
    a phone's display rotation is carried over, and each changed picture is turned back before
    it is encoded. An odd width or height loses its last column or row (4:2:0 chroma needs even
    sizes). Frames stream through: memory stays flat for long clips.
    """
    import numpy as np
    dst = Path(dst)
    with _open_video(src) as (inp, vin), atomic_output(dst) as tmp:
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        w, h = vin.codec_context.width // 2 * 2, vin.codec_context.height // 2 * 2
        if w < 2 or h < 2:
            raise InvalidMediaError(f"frame size {vin.codec_context.width}x{vin.codec_context.height} is too small to encode",
                                    path=src)
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        with av.open(str(tmp), mode="w", format=_muxer_for(dst)) as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
            vout.options = {"crf": str(crf), "preset": preset}
            # One rotation for both: the one written is the one the pictures are turned back by
            # (a frame's own rotation could differ from the track header's).
            rotation = _display_rotation(inp, vin, src)
            turns = rotation // 90
            if rotation:
                vout.set_display_rotation(rotation)
            aout = out.add_stream_from_template(audio_in) if audio_in is not None else None
            count = 0
            with _decode_errors(src):
                for packet in inp.demux(*[s for s in (vin, audio_in) if s is not None]):
                    if packet.stream.type == "audio":
                        if packet.dts is not None:
                            packet.stream = aout
                            out.mux(packet)
                        continue
                    for frame in packet.decode():
                        shown = np.rot90(_reformat(frame, format="rgb24").to_ndarray()[:h, :w], turns)
                        changed = np.rot90(change(np.ascontiguousarray(shown)), -turns)
                        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(changed), format="rgb24")
                        picture.pts = count
                        picture.time_base = Fraction(1) / rate
                        count += 1
                        out.mux(vout.encode(picture))
            if count == 0:
                raise InvalidMediaError("no frames decode", path=src)
            out.mux(vout.encode(None))
    return dst


def _muxer_for(path: Path) -> str:
    return {".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}.get(path.suffix.lower(), "mp4")
