"""Checking a video file and opening it with PyAV (the cheap probe every file goes through), and
reading its orientation (display matrix) with or without decoding. Part of tinyr1.video.
"""
from __future__ import annotations

import errno
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tinyr1.video.types import VideoError, VideoLimits, VideoMeta

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
