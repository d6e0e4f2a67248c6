"""The public limits: how much one request, upload, dataset row or training run may ask for.

Every input a stranger can send (a dataset, a zip, a completion to score, a video, a GRPO run in
the app) is bounded by one of these, in this one place, so the docs, the error messages and the
code can never disagree. Each limit has a default and an environment variable that sets it (a
Space with more memory raises them; one with less may lower them):

    TINYR1_MAX_COMPLETION_CHARS=500000 python app.py

    >>> from tinyr1.limits import QUESTION_CHARS, LimitError
    >>> QUESTION_CHARS.check(120, "question")           # within the limit: nothing happens
    >>> try:
    ...     QUESTION_CHARS.check(10_000, "question")
    ... except LimitError as exc:
    ...     print(exc)
    question is 10,000 characters; the limit is 4,000 (set TINYR1_MAX_QUESTION_CHARS to raise it)

The number of options is the one rule that no variable changes: 2 to 10, because options are
named by the letters A-J (tinyr1.format.LETTERS) and one option is no choice.
``limits_table()`` renders all of them as the Markdown table in docs/RELIABILITY.md, "Limits".

This module imports nothing from tinyr1 (it is the bottom layer: everything may read it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "Limit",
    "LimitError",
    "LIMITS",
    "MIN_OPTIONS",
    "MAX_OPTIONS",
    "check_option_count",
    "check_options",
    "limits_table",
]


class LimitError(ValueError):
    """An input exceeds a limit. The message names the input, the value seen, the limit and the
    environment variable that raises it; ``limit``, ``seen`` and ``maximum`` carry the same."""

    def __init__(self, message: str, *, limit: str, seen: int, maximum: int, env: str | None) -> None:
        super().__init__(message)
        self.limit, self.seen, self.maximum, self.env = limit, seen, maximum, env


@dataclass(frozen=True)
class Limit:
    """One limit: ``value`` is the environment variable ``env`` when set, else ``default``. It is
    read at each use, so a test or a launcher may set the variable after import."""

    name: str
    default: int
    unit: str  # what is counted: "characters", "bytes", ...
    doc: str

    @property
    def env(self) -> str:
        return f"TINYR1_MAX_{self.name.upper()}"

    @property
    def value(self) -> int:
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(f"{self.env} must be a whole number of {self.unit}, got {raw!r}") from None
        if value < 1:
            raise ValueError(f"{self.env} must be at least 1, got {value}")
        return value

    def check(self, seen: int, what: str) -> None:
        """Raise LimitError when ``seen`` (a count of ``unit``) exceeds the limit; ``what`` names
        the input in the message ("question", "option B", "line 7")."""
        maximum = self.value
        if seen > maximum:
            raise LimitError(
                f"{what} is {seen:,} {self.unit}; the limit is {maximum:,} (set {self.env} to raise it)",
                limit=self.name, seen=seen, maximum=maximum, env=self.env,
            )


# -- text
QUESTION_CHARS = Limit("question_chars", 4_000, "characters",
                        "A question, without its option lines (the paper's are one or two sentences).")
OPTION_CHARS = Limit("option_chars", 500, "characters", "One option's text.")
COMPLETION_CHARS = Limit("completion_chars", 100_000, "characters",
                          "A completion to score (`tinyr1 reward`, the app's /reward and the lab): "
                          "1024 new tokens are a few thousand characters.")
# -- datasets and uploads
DATASET_ROW_BYTES = Limit("dataset_row_bytes", 1 << 20, "bytes",
                           "One JSONL line, checked before it is parsed (read with a bounded readline, "
                           "so a huge line is refused without being held in memory).")
JSON_DEPTH = Limit("json_depth", 32, "levels",
                    "How deeply a row's JSON may nest (a row is flat: extra fields may nest a little).")
UPLOAD_BYTES = Limit("upload_bytes", 50 << 20, "bytes", "All files of one upload request together.")
SESSION_UPLOAD_BYTES = Limit("session_upload_bytes", 500 << 20, "bytes",
                              "All uploads of one browser session together.")
ZIP_ENTRIES = Limit("zip_entries", 10_000, "entries", "Entries (files and folders) in an uploaded dataset zip.")
ZIP_BYTES = Limit("zip_bytes", 2 << 30, "bytes",
                   "What an uploaded zip expands to, declared and actually written (a zip bomb stops here).")
# -- video and generation
FRAMES = Limit("frames", 64, "frames", "Frames sampled from one video per request (the paper uses 16).")
DECODED_PIXELS = Limit("decoded_pixels", 100_000_000, "pixels",
                        "Pixels decoded for one request, all frames together (about 300 MB as RGB).")
NEW_TOKENS = Limit("new_tokens", 1024, "tokens", "New tokens one generation may ask for.")
# -- GRPO runs started from the public app
WORLD_QUESTIONS = Limit("world_questions", 2_000, "questions",
                         "Synthetic-world clips one app run writes (train questions, and as many held out).")
GRPO_STEPS = Limit("grpo_steps", 2_000, "steps", "Rollout steps of one GRPO run in the app.")
GRPO_GROUP_SIZE = Limit("grpo_group_size", 16, "completions", "G: completions sampled per prompt (the paper: 8).")
GRPO_PROMPTS_PER_STEP = Limit("grpo_prompts_per_step", 16, "prompts", "Prompts per GRPO step.")
GRPO_NEW_TOKENS = Limit("grpo_new_tokens", 512, "tokens", "New tokens per GRPO completion (the paper: 512).")
GRPO_MINUTES = Limit("grpo_minutes", 60, "minutes", "Wall time of one GRPO run in the app.")

#: Every limit above, in the order the docs list them.
LIMITS: tuple[Limit, ...] = (
    QUESTION_CHARS, OPTION_CHARS, COMPLETION_CHARS, DATASET_ROW_BYTES, JSON_DEPTH, UPLOAD_BYTES,
    SESSION_UPLOAD_BYTES, ZIP_ENTRIES, ZIP_BYTES, FRAMES, DECODED_PIXELS, NEW_TOKENS, GRPO_STEPS,
    WORLD_QUESTIONS, GRPO_GROUP_SIZE, GRPO_PROMPTS_PER_STEP, GRPO_NEW_TOKENS, GRPO_MINUTES,
)

#: Options per multiple-choice question, everywhere (datasets, `tinyr1 reward`, the app): one
#: option is no choice, and the letters A-J name ten. Not configurable: more letters would change
#: the prompt format the policies were trained on.
MIN_OPTIONS, MAX_OPTIONS = 2, 10


def check_option_count(n: int, what: str = "options") -> None:
    """Raise LimitError unless ``n`` is between MIN_OPTIONS and MAX_OPTIONS."""
    if not MIN_OPTIONS <= n <= MAX_OPTIONS:
        raise LimitError(
            f"{what}: {n} given; a question has {MIN_OPTIONS} to {MAX_OPTIONS} options (letters A-J; not configurable)",
            limit="options", seen=n, maximum=MAX_OPTIONS, env=None,
        )


def check_options(options: list[str] | tuple[str, ...], what: str = "options") -> None:
    """The option count (check_option_count) and each option's length (OPTION_CHARS), one rule
    for every place a question's options come in."""
    check_option_count(len(options), what)
    for letter, option in zip("ABCDEFGHIJ", options):  # tinyr1.format.LETTERS (this module imports none of tinyr1)
        OPTION_CHARS.check(len(option or ""), f"option {letter}")


def limits_table() -> str:
    """The limits as a Markdown table (default, environment variable, what it bounds)."""
    lines = [
        "| Limit | Default | Environment variable | What it bounds |",
        "|---|---|---|---|",
    ]
    for limit in LIMITS:
        lines.append(f"| {limit.name} | {limit.default:,} {limit.unit} | `{limit.env}` | {limit.doc} |")
    lines.append(f"| options | {MIN_OPTIONS} to {MAX_OPTIONS} | (fixed) | Options of a multiple-choice "
                 "question, everywhere: the letters A-J name them. |")
    return "\n".join(lines)
