"""The frame table of a video (how many frames, where the keyframes are, how to seek to them) and
the plan of which indices to return. Part of tinyr1.video.
"""
from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Sequence

from tinyr1.video.inputs import _ffmpeg_message, _Probe
from tinyr1.video.types import VideoError, VideoLimits, sample_indices


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
