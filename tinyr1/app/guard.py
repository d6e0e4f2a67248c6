"""The public app's guard, gradio-free: every request checked against tinyr1.limits before any
model work, uploads counted per request and per session, free disk space checked before a run,
and text shown in Markdown made safe (escaped, with server paths relative to the app's root).

    from tinyr1.app.guard import check_reason, UploadLedger, safe_code
    check_reason(question, options, num_frames=16, max_new_tokens=256)   # LimitError with the fix
    ledger = UploadLedger(); ledger.charge("session-hash", ["/tmp/gradio/.../clip.mp4"])

A refusal is a ``LimitError`` (tinyr1.limits) whose message names the limit and the environment
variable that raises it; the tabs show it in their status and keep serving. The rules:
docs/RELIABILITY.md, "Public app".
"""
from __future__ import annotations

import html
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

from tinyr1 import limits
from tinyr1.limits import LimitError

__all__ = [
    "LimitError",
    "UploadLedger",
    "check_completion",
    "check_disk",
    "check_grpo",
    "check_reason",
    "env_number",
    "md_text",
    "relative_paths",
    "safe_code",
]


def env_number(name: str, default: float) -> float:
    """A non-negative number from the environment variable ``name`` (``default`` when unset);
    a bad value is an error at startup, not a silent default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or value != value:
        raise ValueError(f"{name} must be a number >= 0, got {raw!r}")
    return value


# ------------------------------------------------------------------------------------ requests


def check_text(question: str, options: Sequence[str] | None) -> None:
    """The question's and each option's length, and the option count (2-10, or none)."""
    limits.QUESTION_CHARS.check(len(question or ""), "the question")
    if options:
        limits.check_options(options)


def check_reason(question: str, options: Sequence[str] | None, *, num_frames: int, max_new_tokens: int) -> None:
    """A Reason request's text, frames and new tokens (the prompt's length in tokens is the
    policy's check once it is loaded: ``Policy.check_context``)."""
    check_text(question, options)
    limits.FRAMES.check(int(num_frames), "frames sampled")
    limits.NEW_TOKENS.check(int(max_new_tokens), "max new tokens")


def check_completion(completion: str, options: Sequence[str] | None) -> None:
    """A completion to score (/reward, the Reward lab) and its options."""
    limits.COMPLETION_CHARS.check(len(completion or ""), "the completion")
    if options:
        limits.check_options(options)


def check_grpo(config: Any, *, minutes: float | None = None) -> None:
    """A GRPO run started from the app: steps, G, prompts per step, new tokens, and its time."""
    limits.GRPO_STEPS.check(int(config.steps), "steps")
    limits.GRPO_GROUP_SIZE.check(int(config.num_generations), "group size G")
    limits.GRPO_PROMPTS_PER_STEP.check(int(config.prompts_per_step), "prompts per step")
    limits.GRPO_NEW_TOKENS.check(int(config.max_new_tokens), "max new tokens per completion")
    limits.FRAMES.check(int(config.num_frames or 0), "frames per video")
    if minutes is not None:
        limits.GRPO_MINUTES.check(int(minutes), "run time in minutes")


# ------------------------------------------------------------------------------------- uploads


def _size(path: str | Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


class UploadLedger:
    """Bytes uploaded per browser session (gradio's ``session_hash``): ``charge`` refuses a
    request whose files together exceed UPLOAD_BYTES, or that would take its session past
    SESSION_UPLOAD_BYTES. A file charged once (the same path sent again) is not charged twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}
        self._total: dict[str, int] = {}

    def charge(self, session: str | None, paths: Iterable[str | Path | None]) -> int:
        """Count ``paths`` for ``session``; returns the bytes charged. Raises LimitError."""
        key = session or "anonymous"
        with self._lock:
            seen = self._seen.setdefault(key, set())
            new = {str(p) for p in paths if p} - seen
            size = sum(_size(p) for p in new)
            limits.UPLOAD_BYTES.check(size, "this request's uploads")
            limits.SESSION_UPLOAD_BYTES.check(self._total.get(key, 0) + size, "this session's uploads")
            seen.update(new)
            self._total[key] = self._total.get(key, 0) + size
            return size

    def total(self, session: str | None) -> int:
        return self._total.get(session or "anonymous", 0)


def remove_uploads(paths: Iterable[str | Path | None], upload_root: str | Path | None) -> None:
    """Delete gradio's temporary copies of uploaded files once the app has copied them (only
    files under ``upload_root``, gradio's upload folder: never a path of the app's own)."""
    if not upload_root:
        return
    root = Path(upload_root).resolve()
    for p in paths:
        if not p:
            continue
        path = Path(p).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()  # gradio keeps each upload in a folder of its own
            except OSError:
                pass


def check_disk(folder: str | Path, min_free_mb: float) -> None:
    """LimitError when the disk holding ``folder`` has less than ``min_free_mb`` MiB free."""
    folder = Path(folder)
    probe = folder if folder.exists() else folder.parent
    free = shutil.disk_usage(probe).free >> 20
    if free < min_free_mb:
        raise LimitError(
            f"the disk has {free:,} MiB free; new runs need at least {min_free_mb:,.0f} MiB "
            "(set TINYR1_MIN_FREE_DISK_MB to change it, or delete old runs)",
            limit="min_free_disk_mb", seen=int(free), maximum=int(min_free_mb), env="TINYR1_MIN_FREE_DISK_MB",
        )


# ------------------------------------------------------------------------------------ Markdown

#: What can start emphasis, code, links or HTML anywhere in a line (an underscore only at a word's
#: edge: ``TINYR1_MAX_FRAMES`` stays readable).
_MD_INLINE = re.compile(r"([\\`*\[\]~|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
#: What starts a block at a line's beginning (heading, quote, list, rule).
_MD_BLOCK = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])", re.MULTILINE)


def md_text(text: str) -> str:
    """``text`` shown literally inside Markdown: HTML escaped, the characters that could start
    code, emphasis, links or a block backslashed; the rest left as is so the message reads well."""
    escaped = _MD_INLINE.sub(r"\\\1", html.escape(str(text), quote=False))
    return _MD_BLOCK.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def safe_code(text: str) -> str:
    """``text`` as one inline code span whatever it holds: the fence is one backtick longer than
    the longest run inside (CommonMark), padded with spaces when the text starts or ends with one.
    Newlines become spaces (a code span is one line)."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def safe_block(text: str) -> str:
    """``text`` as a fenced code block that no line of it can close."""
    longest = max((len(run) for run in re.findall(r"`+", str(text))), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def relative_paths(text: str, root: str | Path) -> str:
    """``text`` with the app root's absolute path removed (``/srv/app/runs/x`` -> ``runs/x``): a
    message must not tell a visitor where the server keeps its files."""
    text = str(text)
    for form in {str(Path(root)), str(Path(root).resolve())}:
        if len(form) > 1:
            text = text.replace(form + os.sep, "").replace(form, ".")
    return text
