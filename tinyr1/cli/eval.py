"""``tinyr1 eval``: accuracy, format rate, think length and reward of a policy on video questions.

    tinyr1 eval                                   # the shipped policy, 500 test questions, greedy
    tinyr1 eval --temperature 1.0 --json          # sampled at T = 1 (seed 0), one JSON object
    tinyr1 eval --policy runs/tiny/policy --split validation --n 200 --quantization nf4
    tinyr1 eval --data my/data.jsonl --limit 100  # any dataset in the JSONL format
    tinyr1 eval --show 5                          # also print 5 random completions to read, beside
                                                  # what the clip shows (world clips)
    tinyr1 eval --audit                           # and score every statement of the traces against
                                                  # the clip's ground truth (tinyr1.tiny.audit)
    tinyr1 eval --ablation reversed               # the same questions, the frames reversed (also:
                                                  # empty, mismatched, first-frame; one per run)

World splits are written once as mp4 clips + JSONL under $TINYR1_CACHE (default ~/.cache/tinyr1)
and every question's frames are decoded from its file (tinyr1.evaluate). ``--limit N`` keeps the
first N questions; ``--seed`` seeds sampling (and which completions ``--show`` picks). The table
has one line per question family; ``--json`` prints accuracy, format_rate, mean_think_chars,
mean_reward, consistency, concluded, n, per_family (the same seven per family), settings,
ablation, policy and timings. ``consistency`` is the share of answers that choose the option
their own trace concludes (no conclusion counts as not consistent; ``concluded`` is the share
that has one: tinyr1/conclusion.py). ``--ablation`` takes one ablation per run, so each report
is one condition and reads like the plain one (tinyr1/evaluate.py, ``ablate``).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from tinyr1.cli import UserError, options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a policy on a world split or a dataset",
        description="Answer video questions with a policy and report accuracy, format-valid rate, mean "
        "think length and mean reward (the paper's), overall and per question family.",
    )
    options.add_policy_options(p, policy_help="a policy directory or registry id (default: the shipped one)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--split", choices=("train", "validation", "test"), default=None,
                     help="a split of the synthetic world (default: test)")
    src.add_argument("--data", metavar="JSONL", help="a dataset in the JSONL format instead of a world split")
    p.add_argument("--n", type=int, default=500, help="questions of the world split (default 500)")
    p.add_argument("--world-seed", type=int, default=0, help="base seed of the world split (default 0)")
    options.add_world_version(p)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate only the first N questions")
    options.add_generation_options(p)
    options.add_allow_outside(p)
    p.add_argument("--batch-size", type=int, default=64, help="questions per generate call (default 64)")
    p.add_argument("--ablation", choices=("empty", "mismatched", "reversed", "first-frame"), default=None,
                   help="change the frames the policy sees: the background alone, another question's clip, "
                   "reversed, or the first frame repeated (the truth stays the clip's)")
    p.add_argument("--show", type=int, default=0, metavar="K", help="also print K random completions")
    p.add_argument("--audit", action="store_true",
                   help="also check every statement of the traces against the clip's ground truth (world clips; tinyr1.tiny.audit)")
    p.add_argument("--save", metavar="FILE", help="write the full report, every completion included, as JSON")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Every flag and path that can be checked without the model: UserError (exit 2) at once."""
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.show < 0:
        raise UserError(f"--show must be >= 0, got {args.show}")
    options.check_policy_options(args)
    options.check_generation_options(args)
    if args.save and not Path(args.save).resolve().parent.is_dir():
        raise UserError(f"--save {args.save}: the folder does not exist")


def _check_answered(rows) -> None:
    unanswered = [r for r in rows if r.answer is None]
    if unanswered:
        raise UserError(f"{len(unanswered)} of {len(rows)} questions have no answer to check "
                        f"(first: {unanswered[0].id or unanswered[0].video})")


def run(args: argparse.Namespace) -> int:
    # Checks first, then a --data file (tinyr1.data is light), and only then tinyr1.policy, whose
    # torch import costs seconds: a bad flag, path or dataset row answers at once. World splits are
    # written after the policy loads, since writing them takes longer than loading a policy.
    _check(args)
    from tinyr1.evaluate import evaluate, format_table, world_rows

    rows = None
    if args.data:
        rows = options.load_rows(args.data, args.allow_outside_paths)[: args.limit]
        _check_answered(rows)
        source = args.data

    from tinyr1.policy import GenerationSettings, load_policy

    settings = GenerationSettings(**options.generation_kwargs(args))
    policy = load_policy(args.policy, **options.policy_kwargs(args))
    options.check_context(policy, settings.max_new_tokens)
    if rows is None:
        split = args.split or "test"
        n = min(args.n, args.limit) if args.limit else args.n
        rows = world_rows(split, n, seed=args.world_seed, config=options.world_config(args),
                          progress=None if not args.json else False)
        source = f"world {split} split (seed {args.world_seed}, first {n})"
        _check_answered(rows)
    if args.ablation == "mismatched" and len(rows) < 2:
        raise UserError("--ablation mismatched needs at least 2 questions (another clip to show)")
    report = evaluate(policy, rows, settings, batch_size=args.batch_size, progress=not args.json,
                      keep_records=bool(args.save or args.show or args.audit), ablation=args.ablation)
    report["data"] = source
    records = report.pop("records", None)
    if args.audit:
        from tinyr1.tiny.audit import audit

        report["audit"] = audit(records, rows)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as fh:
            json.dump({**report, "records": records}, fh, indent=1)
    if args.json:
        print(json.dumps(report))
    else:
        mode = "greedy" if settings.greedy else f"T={settings.temperature:g}, top-p {settings.top_p:g}, seed {settings.seed}"
        ablated = f", frames ablated: {args.ablation}" if args.ablation else ""
        print(f"{policy.name} on {source}: {report['n']} questions, {mode}, "
              f"{report['settings']['num_frames']} frames{ablated}, {report['seconds']:.1f} s")
        print(format_table(report))
        if args.audit:
            from tinyr1.tiny.audit import format_audit

            print("\nDo the traces describe the clip? (each statement checked against the generator's facts)")
            print(format_audit(report["audit"]) if report["audit"] else "(no world clips: nothing to check)")
    if args.show and records:
        _show(records, rows, args.show, args.seed, report["settings"]["num_frames"], sys.stderr if args.json else sys.stdout)
    return 0


def _show(records, rows, k: int, seed: int, num_frames: int, stream) -> None:
    """Print k random completions beside the question, the truth and, for world clips, what the
    clip shows in the frames the policy saw (from the generator's facts), to read them against."""
    from tinyr1.tiny.texts import caption
    from tinyr1.video import sample_indices

    by_id = {r.id: r for r in rows}
    for rec in random.Random(seed).sample(records, min(k, len(records))):
        row = by_id.get(rec["id"])
        opts = " | ".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(row.options)) if row else ""
        print(f"\n[{rec['id']}] {rec['family']}: {row.question if row else ''}  {opts}", file=stream)
        facts = row.extra.get("facts") if row else None
        if isinstance(facts, dict) and "objects" in facts:
            seen = caption(facts, sample_indices(int(facts["num_frames"]), num_frames))
            print(f"  shown (per sampled frame): {seen}", file=stream)
        print(f"  truth {rec['answer']}, {'right' if rec['correct'] else 'wrong'}: {rec['completion']}", file=stream)
