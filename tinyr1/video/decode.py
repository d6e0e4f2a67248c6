"""Decoding the planned frames: PyAV guided by the frame table (with its fallbacks), decord, and
the output array. Part of tinyr1.video; ``load_frames`` (tinyr1/video/__init__.py) calls these.
"""
from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyr1.video.inputs import (Orientation, _ffmpeg_message, _first_frame_orientation, _frame_orientation,
                                 _meta, _orientation_without_decoding, _Probe)
from tinyr1.video.table import _frame_table, _FrameTable, _plan
from tinyr1.video.types import Frames, VideoError, VideoLimits


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
