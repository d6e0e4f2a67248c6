"""``tinyr1 train-tiny``: train the embedded tiny policy from scratch on the synthetic world (CPU).

    tinyr1 train-tiny --out runs/tiny                         # the shipped recipe, seed 0
    tinyr1 train-tiny --out runs/tiny --resume                # go on after an interruption
    tinyr1 train-tiny --out runs/tiny --steps coldstart=200   # change a stage's length
    tinyr1 train-tiny --out runs/smoke --preset smoke         # seconds: try the whole pipeline
    tinyr1 train-tiny --out runs/tiny3 --preset temporal      # world 3 + the first/last drill
    tinyr1 train-tiny --out runs/tiny3c --preset curriculum   # the shipped cold start, continued on world 3

Writes OUT/data (world clips), OUT/tokenizer, OUT/checkpoint (atomic, every --checkpoint-every
steps), OUT/log.jsonl and finally OUT/policy, a policy directory for ``tinyr1 eval --policy`` and
``tinyr1 reason --policy``. The recipe and stages: tinyr1/tiny/config.py; the shipped policy's
card: assets/policies/tiny-coldstart/README.md. Given the same options (seed and --threads
included) two runs produce the same weights.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from tinyr1.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    # No import of tinyr1.tiny here: it imports torch (seconds), and parsing must stay fast so that
    # a bad flag answers at once; the preset's name is checked in run().
    p = subparsers.add_parser(
        "train-tiny",
        help="train the embedded tiny policy from scratch (CPU, minutes)",
        description="Train a tiny TinyLLaVA-Video policy from scratch on the synthetic world: tokenizer, "
        "option-lookup drill, alignment (captions), cold-start SFT on reasoning traces.",
    )
    p.add_argument("--out", required=True, help="run folder (data, tokenizer, checkpoint, log, policy)")
    p.add_argument("--preset", default="coldstart",
                   help="recipe, a name in tinyr1/tiny/config.py PRESETS (default coldstart: the shipped "
                   "policy's; temporal: world 3 + the first/last drill; temporal-places: the same with moving-shape "
                   "traces that place every shape at the start and the end; curriculum: the shipped cold start continued "
                   "on world 3 with that drill; smoke: a few seconds)")
    p.add_argument("--seed", type=int, default=None, help="seed of data, weights and batches (default 0)")
    p.add_argument("--steps", nargs="+", default=[], metavar="STAGE=N",
                   help="override stage lengths, e.g. coldstart=200 (the preset's stages: vision, drill, align, "
                   "coldstart; curriculum: temporal)")
    p.add_argument("--train-clips", type=int, default=None, help="world train samples (default: the preset's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the preset's)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--eval-every", type=int, default=None, help="also evaluate every N steps of video stages")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes of training, with a checkpoint (then --resume)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> dict[str, int]:
    """The numeric flags as TinyConfig changes, and --steps as {stage: N}: UserError for a bad value."""
    changes = {}
    for name, value in (("seed", args.seed), ("train_clips", args.train_clips), ("threads", args.threads),
                        ("checkpoint_every", args.checkpoint_every), ("eval_every", args.eval_every)):
        if value is not None:
            if value < (0 if name in ("seed", "eval_every") else 1):
                raise UserError(f"--{name.replace('_', '-')} must be {'>= 0' if name in ('seed', 'eval_every') else '>= 1'}, got {value}")
            changes[name] = value
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be > 0, got {args.max_minutes}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")
    for item in args.steps:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise UserError(f"--steps takes STAGE=N (e.g. coldstart=200), got {item!r}")
    return changes


def run(args: argparse.Namespace) -> int:
    changes = _check(args)  # before tinyr1.tiny, whose torch import takes seconds
    from tinyr1.tiny import PRESETS, TrainError, train

    if args.preset not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(sorted(PRESETS))}, got {args.preset!r}")
    try:
        cfg = dataclasses.replace(PRESETS[args.preset], **changes)
        steps = {name: int(value) for name, _, value in (item.partition("=") for item in args.steps)}
        cfg = cfg.with_steps(**steps)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # The recipe's command, as written for a fresh run (a --resume continues the same recipe).
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    command = "tinyr1 " + " ".join(shlex.quote(a) for a in argv) if argv[:1] == ["train-tiny"] else None
    try:
        path = train(cfg, args.out, resume=args.resume, progress=not args.quiet, command=command,
                     max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    except TrainError as exc:
        raise UserError(str(exc)) from None
    if path is None:
        print(f"stopped after {args.max_minutes:g} minutes with a checkpoint; continue with the same options "
              f"and --resume", file=sys.stderr)
        return 0
    print(path)
    return 0
