"""``tinyr1 world``: write a split of the synthetic world as a dataset (mp4 clips + JSONL).

    tinyr1 world --split test --n 500 --out data/world-test
    tinyr1 world --split train --n 4000 --out data/world-train --families direction count --distractors 1
    tinyr1 world --split validation --n 500 --out data/world3-val --version 3   # no single-frame shortcuts

Writes OUT/clips/<id>.mp4, OUT/data.jsonl (read it with ``tinyr1.data.load_dataset``) and
OUT/world.json (the settings and counts), then prints the JSONL's path and the counts per family
and per answer letter. See ``tinyr1/world.py`` for what the families ask.
"""
from __future__ import annotations

import argparse
import json
import time

from tinyr1.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from tinyr1.world import FAMILIES, SPLITS, WORLD_VERSIONS, WorldConfig

    d = WorldConfig()
    p = subparsers.add_parser(
        "world",
        help="write a split of the synthetic video world as a dataset",
        description="Write N samples of a split of the synthetic world: mp4 clips plus a JSONL dataset.",
    )
    p.add_argument("--split", choices=SPLITS, required=True, help="which split (they never share a clip)")
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--out", required=True, help="output folder (gets clips/, data.jsonl, world.json)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the split (default 0)")
    p.add_argument("--families", nargs="+", choices=FAMILIES, default=None, metavar="FAMILY",
                   help=f"question families, in equal numbers (default: all but moving_shape; known: {', '.join(FAMILIES)})")
    p.add_argument("--size", type=int, default=d.size, help=f"frame side in pixels, even (default {d.size})")
    p.add_argument("--frames", type=int, default=d.num_video_frames, help=f"frames per clip (default {d.num_video_frames})")
    p.add_argument("--fps", type=int, default=d.fps, help=f"frames per second (default {d.fps})")
    p.add_argument("--distractors", type=int, default=d.distractors, help=f"extra shapes per clip (default {d.distractors})")
    p.add_argument("--speed", type=float, default=d.speed, help=f"share of the frame a moving shape crosses (default {d.speed})")
    p.add_argument("--noise", type=float, default=d.noise, help=f"pixel noise std, 0-255 units (default {d.noise})")
    p.add_argument("--version", type=int, choices=WORLD_VERSIONS, default=d.version,
                   help=f"which world (default {d.version}; 3: a moving shape starts and ends on a grid cell like the "
                   "still shapes, order clips are empty in their first and last frames)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinyr1.world import WorldConfig, write_split

    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    try:
        config = WorldConfig(size=args.size, fps=args.fps, num_video_frames=args.frames,
                             distractors=args.distractors, speed=args.speed, noise=args.noise, version=args.version)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    start = time.perf_counter()
    try:
        path = write_split(args.split, args.n, args.out, config, seed=args.seed, families=args.families)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    seconds = time.perf_counter() - start
    meta = json.loads((path.parent / "world.json").read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps({"path": str(path), "n": args.n, "seconds": round(seconds, 2), **meta["counts"]}))
        return 0
    print(path)
    print(f"{args.n} samples of split {args.split!r} (seed {args.seed}, codec {meta['codec']}) in {seconds:.1f} s")
    for key in ("family", "answer"):
        print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in meta["counts"][key].items()))
    return 0
