"""Benchmark: peak memory of ``load_frames`` on an 8K clip at 64 frames, with and without the budget.

    .venv/bin/python bench/bench_video_memory.py                      # ~1 minute on 2 busy cores
    .venv/bin/python bench/bench_video_memory.py --frames 16 --repo /path/to/other/checkout

The clip (made once with imageio-ffmpeg's ffmpeg, cached in bench/.cache/, git-ignored): 8 s of
8192x4320 (DCI 8K, the largest frame VideoLimits accepts) at 10 fps, 80 frames, a grey picture
with a small box moving across it, H.264 ``-preset ultrafast``: a few hundred KB, made in seconds,
and every frame is a full 8K frame to decode.

Each measurement is a fresh interpreter (so nothing is shared or cached) that imports
``tinyr1.video`` and PyAV, calls ``load_frames(clip, N)`` once and prints its peak resident set
(VmHWM, Linux); the table also gives that of one that only imports, and the frames' shape. Modes:
  budget     the defaults: VideoLimits().max_decoded_pixels (tinyr1.limits.DECODED_PIXELS: 100M, or env
             TINYR1_MAX_DECODED_PIXELS), frames shrunk while decoding, aspect kept
  no budget  max_decoded_pixels large enough for every frame at full size
``--repo`` measures the default call (``load_frames(clip, N)``) with the ``tinyr1`` of another
checkout instead (e.g. a worktree of a commit before the budget existed); modes then do not apply.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
CLIP = CACHE / "grey_box_8k_8s.mp4"


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip() -> Path:
    if not CLIP.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = CLIP.with_suffix(".tmp.mp4")
        subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "color=c=gray:s=8192x4320:r=10:d=8",
                        "-vf", "drawbox=x=t*900:y=2000:w=400:h=300:color=red:t=fill",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(tmp)], check=True)
        tmp.replace(CLIP)
    return CLIP


def peak(repo: Path, frames: int | None, budget: int | None) -> tuple[float, str]:
    """(VmHWM in MiB, frame shape) of a fresh interpreter that loads the clip once (frames=None:
    imports only)."""
    code = (f"import sys; sys.path.insert(0, {str(repo)!r})\n"
            "import av, numpy as np\nimport tinyr1.video as v\nshape = ''\n")
    if frames is not None:
        kwargs = "" if budget is None else f", limits=v.VideoLimits(max_decoded_pixels={budget})"
        code += f"shape = v.load_frames({str(CLIP)!r}, {frames}{kwargs}).frames.shape\n"
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent.
    code += "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], shape)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kb, _, shape = done.stdout.strip().partition(" ")
    return int(kb) / 1024, shape.replace(" ", "") or "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=64, help="frames to load (default 64)")
    ap.add_argument("--repo", type=Path, help="measure the tinyr1 of this checkout (default call only)")
    ap.add_argument("--skip-full", action="store_true", help="skip the no-budget run (needs ~7 GB per 64 frames)")
    args = ap.parse_args()
    make_clip()
    repo = (args.repo or ROOT).resolve()
    base, _ = peak(repo, None, None)
    rows = []
    if args.repo is not None:
        rows.append((f"default call, {repo.name}", *peak(repo, args.frames, None)))
    else:
        rows.append(("budget (default)", *peak(repo, args.frames, None)))
        if not args.skip_full:
            rows.append(("no budget (full size)", *peak(repo, args.frames, 8192 * 4320 * args.frames)))
    print(f"clip: {CLIP.name} (8192x4320, 80 frames); {args.frames} frames; imports alone: {base:.0f} MiB")
    print("| mode | peak RSS (VmHWM) | minus imports | frames |\n|---|---|---|---|")
    for name, mib, shape in rows:
        print(f"| {name} | {mib:,.0f} MiB | {mib - base:,.0f} MiB | {shape} |")


if __name__ == "__main__":
    main()
