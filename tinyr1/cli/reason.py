"""``tinyr1 reason``: ask a policy a question about a video and watch it think.

    tinyr1 reason clip.mp4 --question "Which way does the square move?" --options left right up down --answer B
    tinyr1 reason clip.mp4 --question "How many squares?" --policy /tmp/random-policy --json
    tinyr1 reason clip.mp4 --question "..." --quantization nf4 --temperature 0.7 --seed 3

The completion streams to the terminal as it is generated; with ``--answer`` the paper's reward
breakdown follows (the table of ``tinyr1 reward``). ``--json`` prints one object instead:
completion, think, answer, reward (the fields of ``tinyr1 reward --json``, null without
``--answer``), frames (indices, timestamps), timings, settings and the policy's description.

The policy defaults to the embedded one (tinyr1.policy.default_policy_path: $TINYR1_POLICY, else
assets/policies/tiny-grpo, else tiny-coldstart). ``--policy`` also takes a registry id or alias
(``tinyr1 policies`` lists them, e.g. Zhang199/TinyLLaVA-Video-R1, qwen2.5-vl-3b): its weights
come from this machine, or the hub where allowed; otherwise the error says how to get them.
``--device``, ``--dtype`` and ``--quantization`` say how to load it (tinyr1/cli/options.py, shared
with ``tinyr1 eval``). Decoding is greedy (--temperature 0) unless told otherwise. Bad input
(missing video, bad policy directory, empty question, a flag out of range) exits with status 2,
and everything that can be checked without the model is checked before torch is imported.
A random policy to try it on: ``python -m tinyr1.policy.random /tmp/random-policy``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tinyr1.cli import UserError, options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reason",
        help="answer a question about a video, streaming <think>...</think><answer>...</answer>",
        description="Sample frames from VIDEO, ask the policy QUESTION, stream its reasoning and answer; "
        "with --answer, score it with the paper's reward.",
    )
    parser.add_argument("video", help="the video file")
    parser.add_argument("--question", "-q", required=True, help="the question about the video")
    parser.add_argument("--options", nargs="+", metavar="OPTION", help="multiple-choice options, in order (A, B, ...)")
    parser.add_argument("--answer", metavar="TRUTH", help="the ground truth (a letter, number or text): prints the reward")
    options.add_policy_options(parser)
    options.add_generation_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Every cheap check comes before the first import of torch (through tinyr1.policy), which costs
    # seconds: a mistyped path or flag answers at once.
    from tinyr1.format import build_question
    from tinyr1.video import VideoError

    from tinyr1.limits import check_option_count

    try:  # no model load for a question that cannot be asked
        if args.options is not None:
            check_option_count(len(args.options), "--options")  # the one rule: 2 to 10, everywhere
        build_question(args.question, args.options)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not Path(args.video).is_file():
        raise VideoError(f"no video file at {args.video}")
    options.check_policy_options(args)
    options.check_generation_options(args)

    from tinyr1.policy import GenerationSettings, load_policy
    from tinyr1.video import load_frames

    settings = GenerationSettings(**options.generation_kwargs(args))
    timings: dict[str, Any] = {}

    t = time.perf_counter()
    policy = load_policy(args.policy, **options.policy_kwargs(args))
    options.check_context(policy, settings.max_new_tokens)
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    num_frames = settings.num_frames or policy.num_frames
    frames = load_frames(args.video, num_frames, target_size=policy.image_size)
    timings["frames_s"] = time.perf_counter() - t

    stream_out = None if args.json else sys.stdout
    t = time.perf_counter()
    text = ""
    for text_so_far in policy.stream(frames.frames, args.question, args.options, settings):
        if stream_out is not None:
            stream_out.write(text_so_far[len(text):])
            stream_out.flush()
        text = text_so_far
    timings["generate_s"] = time.perf_counter() - t
    timings.update(policy.last_stats)
    if stream_out is not None:
        stream_out.write("\n")

    reward = None
    if args.answer is not None:
        from tinyr1.rewards import score

        try:
            reward = score(text, args.answer, args.options)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    if args.json:
        print(json.dumps(_report(args, text, reward, frames, timings, settings, num_frames, policy), ensure_ascii=False))
        return 0

    summary = (f"[{policy.name}: {len(frames)} frames at "
               f"{', '.join(f'{x:.1f}' for x in frames.timestamps)} s; "
               f"{timings.get('new_tokens', 0)} tokens in {timings['generate_s']:.2f} s]")
    print(summary, file=sys.stderr)
    if reward is not None:
        from tinyr1.cli.reward import render_table
        from tinyr1.rewards import RewardConfig

        print(render_table(reward, RewardConfig(), args.answer))
    return 0


def _report(args, text, reward, frames, timings, settings, num_frames, policy) -> dict[str, Any]:
    """The --json object: the completion parsed, the reward, the frames, timings, settings, policy."""
    from tinyr1.format import parse

    parsed = parse(text)
    return {
        "completion": text,
        "think": parsed.think,
        "answer": parsed.answer,
        "format_ok": parsed.ok,
        "reward": reward.to_dict() if reward is not None else None,
        "frames": {"indices": list(frames.indices), "timestamps": [round(float(x), 4) for x in frames.timestamps],
                   "video": str(args.video)},
        "timings": {k: round(v, 4) if isinstance(v, float) else v for k, v in timings.items()},
        "settings": {"max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature,
                     "top_p": settings.top_p, "seed": settings.seed, "num_frames": num_frames},
        "policy": policy.describe(),
    }
