"""``tinyr1 reward``: score one completion with the paper's reward (tinyr1.rewards).

    echo '<think>the ball rolls right</think><answer>B</answer>' | tinyr1 reward --answer B
    tinyr1 reward --completion '<think>...</think><answer>B</answer>' --json
    tinyr1 reward --answer "moves right" --options "moves left" "moves right" --r1 0 < completion.txt

The completion is read from standard input unless ``--completion`` is given; an empty completion
is a valid input (it fails the format). Without ``--answer`` accuracy is not applicable: the table
(or the JSON's ``accuracy_reward``/``total``, then null) shows what R would be if right or wrong.
Invalid reward parameters exit with status 2, and so do inputs over the public limits
(tinyr1.limits; docs/RELIABILITY.md, "Limits"): 2 to 10 options, as everywhere in tinyr1; an
option-letter ground truth that names no offered option ("E" with four options); a completion
longer than TINYR1_MAX_COMPLETION_CHARS (standard input is read only that far).
"""
from __future__ import annotations

import argparse
import json
import sys

from tinyr1 import limits
from tinyr1.cli import UserError
from tinyr1.format import LETTERS
from tinyr1.rewards import RewardBreakdown, RewardConfig, score, truth_letter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reward",
        help="score a completion with the paper's reward",
        description="Score one completion (standard input, or --completion) with the paper's reward: "
        "format, think length, accuracy and total.",
    )
    parser.add_argument("--completion", metavar="TEXT", help="the completion to score (default: read standard input)")
    parser.add_argument("--answer", metavar="TRUTH", help="the ground truth: an option letter, a number or free text")
    parser.add_argument("--options", nargs="+", metavar="OPTION", help="the options' texts, in order (A, B, ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    defaults = RewardConfig()
    parser.add_argument("--r0", type=float, default=defaults.r0, help=f"format reward (default {defaults.r0})")
    parser.add_argument("--r1", type=float, default=defaults.r1, help=f"maximum length reward (default {defaults.r1})")
    parser.add_argument("--max-len", type=int, default=defaults.max_len, metavar="ML",
                        help=f"think characters that earn the whole r1 (default {defaults.max_len})")
    parser.add_argument("--r2", type=float, default=None, help="accuracy reward (default r0 + r1)")
    parser.add_argument("--official-corner", action="store_true",
                        help="score a correct answer with a broken format +r2, as the official code does, "
                        "instead of -(r0 + r1 + r2)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = RewardConfig(r0=args.r0, r1=args.r1, max_len=args.max_len, r2=args.r2,
                              official_corner=args.official_corner)
    except ValueError as exc:
        raise UserError(f"invalid reward parameters: {exc}") from None
    try:
        _check_question(args.answer, args.options)
        completion = _read_completion(args.completion)
        result = score(completion, args.answer, args.options, config)
    except ValueError as exc:  # a LimitError, or a truth that names no option
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(render_table(result, config, args.answer))
    return 0


def _check_question(answer: str | None, options: list[str] | None) -> None:
    """The options and the truth follow the dataset rules (tinyr1.data): one rule everywhere."""
    if options is None:
        return
    limits.check_options(options, "--options")
    letter = truth_letter(answer, options) if answer is not None and answer.strip() else None
    offered = LETTERS[: len(options)]
    if letter is not None and letter not in offered:
        raise ValueError(f"--answer {answer!r} names option {letter}, but only {offered[0]}-{offered[-1]} are offered")


def _read_completion(given: str | None) -> str:
    """The completion: ``given``, else standard input read no further than the limit allows."""
    limit = limits.COMPLETION_CHARS.value
    if given is None:
        if sys.stdin is None:
            raise UserError("no completion: pass --completion TEXT or pipe one into standard input")
        if sys.stdin.isatty():
            print("reading the completion from standard input (end with Ctrl-D)", file=sys.stderr)
        given = sys.stdin.read(limit + 1)  # one more than allowed tells "too long" without reading it all
        what = "the completion (standard input)" if len(given) <= limit else "the completion (standard input) read so far"
    else:
        what = "the completion (--completion)"
    limits.COMPLETION_CHARS.check(len(given), what)
    return given


def _num(x: float) -> str:
    return f"{x:+.4f}" if x else " 0.0000"


def render_table(result: RewardBreakdown, config: RewardConfig, truth: str | None) -> str:
    """A small human-readable table of one breakdown."""
    fmt = "ok" if result.format_ok else f"FAILS: {result.format_error}"
    answer = "(no <answer> block)" if result.answer_text is None else repr(result.answer_text)
    rows = [
        ("format", "", fmt),
        ("think chars", "", f"{result.think_chars} (ML = {config.max_len})"),
        ("answer", "", answer),
        ("LR  length", _num(result.length_reward),
         f"min(1, {result.think_chars}/{config.max_len}) x r1={config.r1:g}" if result.format_ok else "format fails: 0"),
        ("FR  format", _num(result.format_reward), f"r0={config.r0:g} + LR" if result.format_ok else "format fails: 0"),
    ]
    if result.accuracy_reward is None:
        rows += [
            ("AR  accuracy", "n/a", "no ground truth (pass --answer)"),
            ("R   total", "n/a", "no ground truth"),
            ("R if right", _num(result.total_if_right), ""),
            ("R if wrong", _num(result.total_if_wrong), ""),
        ]
    else:
        verdict = "correct" if result.correct else "wrong"
        rows += [
            ("AR  accuracy", _num(result.accuracy_reward), f"{verdict} (truth {truth!r}, r2={config.r2:g})"),
            ("R   total", _num(result.total), _total_rule(result, config)),
        ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:>8}  {note}".rstrip() for name, value, note in rows)


def _total_rule(result: RewardBreakdown, config: RewardConfig) -> str:
    if result.format_reward > 0:
        return "AR + FR" if result.correct else "-FR"
    if config.official_corner and result.correct:
        return "+AR (official corner: correct, format broken)"
    return "-(r0 + r1 + r2) (format reward is 0)"
