"""``tinyr1 frames``: sample frames from a video (tinyr1.video) and show them as a contact sheet.

    tinyr1 frames assets/examples/bbb_clip.mp4                 # writes ./bbb_clip_frames.png
    tinyr1 frames clip.mp4 -n 8 --size 224 --out sheet.png
    tinyr1 frames clip.mp4 --json                              # indices, timestamps, metadata
    tinyr1 frames long.mp4 --seek keyframe                     # fast: nearest keyframes

The sheet is a grid of the sampled frames (upright, as the model sees them), each labelled with
its frame index and timestamp, under a header line describing the video. Without ``--out`` it
goes to ``<video stem>_frames.png`` in the current folder, and the path is printed. With
``--json`` one JSON object goes to standard output and no sheet is written unless ``--out`` is
given. A bad video exits with status 2 and a message on standard error.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from tinyr1.cli import UserError
from tinyr1.video import BACKENDS, SEEK_MODES, Frames, VideoLimits, load_frames

THUMB = 256  # longest side of a thumbnail on the sheet, pixels


def _size(text: str) -> int | tuple[int, int]:
    """``224`` (square) or ``HxW`` such as ``180x320``."""
    try:
        if "x" in text.lower():
            h, w = text.lower().split("x")
            return int(h), int(w)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW (e.g. 224 or 180x320), got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "frames",
        help="sample frames from a video and write a contact sheet",
        description="Sample frames uniformly over a whole video (as the paper does) and write a contact "
        "sheet labelled with frame indices and timestamps, or print them as JSON.",
    )
    parser.add_argument("video", help="the video file (mp4, webm, mkv, avi, mov, animated gif...)")
    parser.add_argument("-n", "--num-frames", type=int, default=16, metavar="N", help="frames to sample (default 16)")
    parser.add_argument("--size", type=_size, metavar="N|HxW",
                        help="resize frames while decoding: N for NxN, or HxW (default: keep the video's size)")
    parser.add_argument("--out", type=Path, metavar="PNG",
                        help="where to write the sheet (default: <video stem>_frames.png in the current folder)")
    parser.add_argument("--json", action="store_true",
                        help="print indices, timestamps and metadata as JSON (no sheet unless --out is given)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="decoder (default auto: PyAV, decord as the fallback)")
    parser.add_argument("--seek", choices=SEEK_MODES, default="exact",
                        help="exact (the paper's indices, default) or keyframe (fast on long videos)")
    parser.add_argument("--max-seconds", type=float, default=VideoLimits().max_seconds, metavar="S",
                        help=f"refuse videos longer than this (default {VideoLimits().max_seconds:g})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_seconds <= 0:
        raise UserError(f"--max-seconds must be positive, got {args.max_seconds}")
    clip = load_frames(args.video, args.num_frames, size=args.size, backend=args.backend, seek=args.seek,
                       limits=VideoLimits(max_seconds=args.max_seconds))
    out = args.out
    if out is None and not args.json:
        out = Path.cwd() / f"{Path(args.video).stem}_frames.png"
    if out is not None:
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise UserError(f"--out must end in .png, .jpg or .webp, got {out}")
        if not out.parent.exists():
            raise UserError(f"cannot write {out}: the folder {out.parent} does not exist")
        try:
            contact_sheet(clip).save(out)
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    if args.json:
        print(json.dumps({**clip.to_dict(), "sheet": str(out) if out else None}))
    else:
        m = clip.meta
        print(f"{m.path}: {m.width}x{m.height}, {m.num_frames} frames, {m.duration:.2f} s, {m.fps:g} fps, "
              f"{m.codec} in {m.container.split(',')[0]}" + (f", rotated {m.rotation} degrees" if m.rotation else ""))
        print(f"sampled {len(clip)} frames: {' '.join(map(str, clip.indices))} (decoded with {m.backend})")
        print(f"wrote {out}")
    return 0


def contact_sheet(clip: Frames, thumb: int = THUMB):
    """A PIL image: the frames in a near-square grid, each labelled '#index  12.34 s'."""
    from PIL import Image, ImageDraw, ImageFont

    n, h, w = clip.frames.shape[:3]
    scale = min(1.0, thumb / max(h, w)) if max(h, w) > thumb else max(1.0, 96 / max(h, w))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    font = ImageFont.load_default()
    label_h, pad, header_h = 16, 4, 20
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, header_h + rows * (th + label_h + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    m = clip.meta
    draw.text((pad, 4), f"{Path(m.path).name}  {m.width}x{m.height}  {m.duration:.2f} s  {m.num_frames} frames",
              fill=(235, 235, 235), font=font)
    for k, (frame, index, t) in enumerate(zip(clip.frames, clip.indices, clip.timestamps)):
        r, c = divmod(k, cols)
        x, y = pad + c * (tw + pad), header_h + r * (th + label_h + pad)
        img = Image.fromarray(np.ascontiguousarray(frame))
        if (tw, th) != (w, h):
            img = img.resize((tw, th), Image.Resampling.BILINEAR)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + th + 2), f"#{index}  {t:.2f} s", fill=(235, 235, 235), font=font)
    return sheet
