"""The one definition of tinyr1's output format and prompts.

A policy must answer ``<think>T</think><answer>A</answer>`` (whitespace allowed between the two
blocks, nothing else around them). The prompt, the parser, the reward and the UI all derive from
the constants and functions here, so changing the format is a change to this file alone.

    >>> from tinyr1.format import build_prompt, parse
    >>> print(build_prompt("Which way does it move?", ["left", "right"]))  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    A chat between ... USER: <image>
    Which way does it move?
    A. left
    B. right
    Output ... ASSISTANT:
    >>> parse("<think>it goes right</think> <answer>B</answer>").answer
    'B'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

#: The prompt's placeholder for the visual tokens. It is not a vocabulary word of the real
#: policy: the tokenizer side maps it to IMAGE_TOKEN_INDEX and the model splices the video there.
IMAGE_TOKEN = "<image>"
IMAGE_TOKEN_INDEX = -200
#: Generation stops here (Qwen2's end of text; the tiny policy's tokenizer uses the same string).
END_TOKEN = "<|endoftext|>"

#: The paper's `qwen2_base` conversation template (TinyLLaVA's system line, USER/ASSISTANT turns).
SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
#: Appended to every question during GRPO and at inference, as in the official R1 code.
GRPO_SUFFIX = (
    "Output the thinking process in <think> </think> and final answer (option) in "
    "<answer> </answer> tags."
)
LETTERS = "ABCDEFGHIJ"
TEMPLATES = ("qwen2_base",)


def option_letters(n: int) -> str:
    """The letters of ``n`` options (A, B, ...); at most ``len(LETTERS)``."""
    if not 0 <= n <= len(LETTERS):
        raise ValueError(f"between 0 and {len(LETTERS)} options are supported, got {n}")
    return LETTERS[:n]


def render_options(options: Sequence[str] | None) -> str:
    """Options as the paper's lines ``A. text``; an option already written ``A. text`` is kept."""
    if not options:
        return ""
    lines = []
    for letter, text in zip(option_letters(len(options)), options):
        text = " ".join(str(text).split())
        if not text:
            raise ValueError(f"option {letter} is empty")
        if not re.match(rf"^{letter}[.)]\s", text):
            text = f"{letter}. {text}"
        lines.append(text)
    return "\n".join(lines)


def build_question(question: str, options: Sequence[str] | None = None, *, suffix: bool = True) -> str:
    """The user turn's text: the question, its option lines, then the GRPO suffix."""
    question = (question or "").strip()
    if not question:
        raise ValueError("the question is empty: ask something about the video")
    parts = [question]
    rendered = render_options(options)
    if rendered:
        parts.append(rendered)
    if suffix:
        parts.append(GRPO_SUFFIX)
    return "\n".join(parts)


def build_prompt(
    question: str,
    options: Sequence[str] | None = None,
    *,
    suffix: bool = True,
    template: str = "qwen2_base",
) -> str:
    """The full prompt the policy continues, with one ``<image>`` where the video goes."""
    if template != "qwen2_base":
        raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    return f"{SYSTEM_PROMPT} USER: {IMAGE_TOKEN}\n{build_question(question, options, suffix=suffix)} ASSISTANT:"


def format_completion(think: str, answer: str) -> str:
    """A well-formed completion (used for training traces and examples)."""
    return f"{THINK_OPEN}{think}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


@dataclass(frozen=True)
class Parsed:
    """What a completion says. ``think``/``answer`` are the first blocks found even when the
    format fails (``None`` when absent); ``error`` says why the format fails (``None`` if ok)."""

    think: str | None
    answer: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def find_block(text: str, open_tag: str, close_tag: str) -> str | None:
    """The text between the first ``open_tag`` and the first ``close_tag`` after it (``None`` when
    either is missing): what the regex ``open(.*?)close`` finds, in linear time.

    The regex retries from every later ``open_tag`` when no close follows, which is quadratic on
    a completion of many unclosed tags (64k characters took seconds). Two ``str.find`` calls give
    the same answer: if no close follows the first open, none follows any later one either.
    """
    start = text.find(open_tag)
    if start < 0:
        return None
    start += len(open_tag)
    end = text.find(close_tag, start)
    return None if end < 0 else text[start:end]



def _format_error(text: str) -> str | None:
    """Why ``text`` (already stripped) is not ``<think>T</think>\\s*<answer>A</answer>``."""
    if not text:
        return "the completion is empty"
    counts = {tag: text.count(tag) for tag in TAGS}
    for tag in TAGS:
        if counts[tag] == 0:
            return f"missing {tag}"
    for tag in TAGS:
        if counts[tag] > 1:
            return f"{tag} appears {counts[tag]} times (exactly once is required)"
    positions = [text.index(tag) for tag in TAGS]
    if positions != sorted(positions):
        order = " ".join(tag for _, tag in sorted(zip(positions, TAGS)))
        return f"tags out of order: found {order}, expected {' '.join(TAGS)}"
    if not text.startswith(THINK_OPEN):
        return f"text before {THINK_OPEN}: {_clip(text[: positions[0]])!r}"
    between = text[positions[1] + len(THINK_CLOSE) : positions[2]]
    if between.strip():
        return f"text between {THINK_CLOSE} and {ANSWER_OPEN}: {_clip(between.strip())!r}"
    if not text.endswith(ANSWER_CLOSE):
        return f"text after {ANSWER_CLOSE}: {_clip(text[positions[3] + len(ANSWER_CLOSE):])!r}"
    return None


def _clip(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def parse(completion: str) -> Parsed:
    """Parse a completion; never raises on any string, and takes time linear in its length
    (a megabyte of adversarial tags is parsed in milliseconds)."""
    text = (completion or "").strip()
    return Parsed(
        think=find_block(text, THINK_OPEN, THINK_CLOSE),
        answer=find_block(text, ANSWER_OPEN, ANSWER_CLOSE),
        error=_format_error(text),
    )


def partial_view(text: str) -> tuple[str, str]:
    """(think so far, answer so far) of a completion still being generated, for live display."""
    text = text or ""
    think, answer = "", ""
    if THINK_OPEN in text:
        think = text.split(THINK_OPEN, 1)[1].split(THINK_CLOSE, 1)[0]
    elif ANSWER_OPEN not in text:
        think = text  # no tags yet: show what there is as thinking
    if ANSWER_OPEN in text:
        answer = text.split(ANSWER_OPEN, 1)[1].split(ANSWER_CLOSE, 1)[0]
    return think.strip(), answer.strip()
