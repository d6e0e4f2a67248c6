"""Video question-answering datasets: one JSON object per line (JSONL), validated on load.

    from tinyr1.data import load_dataset, write_dataset
    rows = load_dataset("data/train.jsonl")           # list[VideoQA]; DatasetError if a row is bad
    write_dataset(rows, "data/copy.jsonl")             # atomic (temporary file + os.replace)

A row (blank lines are skipped)::

    {"video": "clips/0001.mp4", "question": "Which way does the ball roll?",
     "options": ["left", "right"], "answer": "B", "id": "0001", "family": "motion"}

- ``video`` (required): a path; a relative one is relative to the JSONL file's folder (or to
  ``video_root`` when given). With ``check_files=True`` (the default) a missing file is an error
  at load time.
- ``question`` (required): the question text, without option lines.
- ``options`` (optional): 2 to 10 non-empty strings; absent or null for an open question. An option
  written with its own letter (``"B. right"``) is stored without it.
- ``answer`` (optional): for multiple choice, the right option's letter (``"B"``; ``"b"``, ``"(B)"``,
  ``"B."`` and the option's own text are accepted and stored as the letter); for an open question,
  free text (numbers are stored as text). Absent or null when unknown.
- ``id``, ``family`` (the kind of question, for per-family metrics), ``think`` (a reasoning trace,
  for cold-start SFT) are optional strings; every other field is kept in ``VideoQA.extra``.

The official TinyLLaVA-Video-R1 training data's fields are accepted too: ``problem`` for the
question (option lines ``A. ...`` at its end are split out into ``options``), ``solution`` for the
answer (``<answer>B</answer>`` is unwrapped) and ``video_filename`` for the video.

What is refused, because a dataset may come from a stranger (an upload to the app): a video path
that leaves the dataset's folder (absolute elsewhere, ``..``, ``~``, a symlink pointing out) unless
``allow_outside=True``; control characters other than tab and line breaks in text fields; a
question or option over its limit; a line over ``tinyr1.limits.DATASET_ROW_BYTES`` (refused before
it is parsed, never held in memory whole) or nested deeper than ``JSON_DEPTH``; two rows with the
same id. Lines are split on "\\n" only (JSON strings may hold U+2028); a UTF-8 BOM is skipped. The
limits and their variables are in docs/RELIABILITY.md, "Limits".

Errors are ``DatasetError`` (a ``ValueError``) naming the file, the line and the field, e.g.
``data.jsonl line 7: field 'answer': 'E' is not one of the option letters A-D``; every bad line of
the file is listed (up to 20), not only the first.
"""
from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

from tinyr1 import limits
from tinyr1.files import atomic_file
from tinyr1.format import ANSWER_CLOSE, ANSWER_OPEN, LETTERS, option_letters

__all__ = ["DatasetError", "VideoQA", "load_dataset", "write_dataset", "split_options", "parse_row"]

MIN_OPTIONS, MAX_OPTIONS = limits.MIN_OPTIONS, limits.MAX_OPTIONS  # one rule everywhere (tinyr1.limits)
MAX_REPORTED_ERRORS = 20
# Fields with a meaning here (everything else goes to ``extra``), with the official aliases.
KNOWN_FIELDS = ("video", "video_filename", "question", "problem", "options", "answer", "solution", "id", "family", "think")


class DatasetError(ValueError):
    """A dataset file or row is not valid; ``path``, ``line`` and ``field`` say where (first error)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.path, self.line, self.field = path, line, field
        self.errors = list(errors) or [message]


@dataclass(frozen=True)
class VideoQA:
    """One video question. ``options`` is empty for an open question; ``answer`` is an option
    letter for multiple choice, free text otherwise, ``None`` when unknown."""

    video: str  # absolute path
    question: str
    options: list[str] = field(default_factory=list)
    answer: str | None = None
    id: str | None = None
    family: str | None = None
    think: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.options)

    def answer_text(self) -> str | None:
        """The answer written out: the right option's text for multiple choice."""
        if self.answer is None or not self.options:
            return self.answer
        return self.options[LETTERS.index(self.answer)]

    def to_dict(self, base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
        """The JSONL row; the video path is relative to ``base_dir`` when the video lies inside it."""
        video = self.video
        if base_dir is not None:
            base = Path(base_dir).resolve()
            resolved = Path(self.video).resolve()
            if resolved.is_relative_to(base):
                video = resolved.relative_to(base).as_posix()
        row: dict[str, Any] = {k: v for k, v in self.extra.items() if k not in KNOWN_FIELDS}
        row.update(video=video, question=self.question)
        if self.options:
            row["options"] = list(self.options)
        for name in ("answer", "id", "family", "think"):
            value = getattr(self, name)
            if value is not None:
                row[name] = value
        return row


class _RowError(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field

    def describe(self) -> str:
        return f"field {self.field!r}: {self}" if self.field else str(self)


# An option line ("A. left", "(B) right"), matched against the STRIPPED line: with the spaces
# around it gone the pattern has one way to match, so a long line cannot make it backtrack.
_OPTION_LINE = re.compile(r"\(?([A-J])[.):]\s*(.+)")
# Control characters a text field may not hold: C0 and C1 except tab, line feed, carriage return
# and U+0085 (a line break): a NUL or an escape sequence in a question is never meant.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")
_DRIVE = re.compile(r"[A-Za-z]:")
_ANSWER_LETTER = re.compile(r"[(\[]?([A-Ja-j])[)\].:]?")


def split_options(question: str) -> tuple[str, list[str]]:
    """Split trailing option lines ``A. ...``, ``B. ...`` (in letter order, at least two) off a
    question, as the official data writes them. Returns (question, options); no options if none."""
    lines = question.rstrip().splitlines()
    options: list[str] = []
    start = len(lines)
    # Walk up from the end while lines are options with letters counting down to A.
    for i in range(len(lines) - 1, -1, -1):
        match = _OPTION_LINE.fullmatch(lines[i].strip())
        if not match:
            break
        options.insert(0, match.group(2))
        start = i
        if match.group(1) == "A":
            break
    letters = "".join(_OPTION_LINE.fullmatch(line.strip()).group(1) for line in lines[start:]) if options else ""
    if len(options) < MIN_OPTIONS or letters != LETTERS[: len(options)] or start == 0:
        return question.strip(), []
    return "\n".join(lines[:start]).strip(), options


def _string(obj: dict[str, Any], name: str, *, required: str = "", allow_numbers: bool = False) -> str | None:
    """A string field (``required``: the official alias, named in the error when both are missing)."""
    value = obj.get(name)
    if value is None:
        if required:
            raise _RowError(name, f"is required (the official data calls it {required!r})")
        return None
    if allow_numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _RowError(name, f"must be a string, got {type(value).__name__} {value!r}")
    _check_text(value, name)
    return value


def _check_text(value: str, name: str, what: str = "") -> None:
    control = _CONTROL.search(value)
    if control:
        raise _RowError(name, f"{what}holds the control character U+{ord(control.group()):04X} at character "
                              f"{control.start() + 1} (text may hold tabs and line breaks, no other controls)")


def _pick(obj: dict[str, Any], name: str, official: str) -> str:
    """Which of a field and its official alias the row uses."""
    return name if obj.get(name) is not None or obj.get(official) is None else official


def _parse_options(raw: Any, name: str) -> list[str]:
    if not isinstance(raw, list):
        raise _RowError(name, f"must be a list of {MIN_OPTIONS} to {MAX_OPTIONS} strings, got {type(raw).__name__}")
    if not MIN_OPTIONS <= len(raw) <= MAX_OPTIONS:
        raise _RowError(name, f"has {len(raw)} options; {MIN_OPTIONS} to {MAX_OPTIONS} are supported (letters A-J)")
    options = []
    for letter, item in zip(option_letters(len(raw)), raw):
        if not isinstance(item, str):
            raise _RowError(name, f"option {letter} must be a string, got {type(item).__name__} {item!r}")
        _check_text(item, name, f"option {letter} ")
        text = re.sub(rf"^\s*{letter}[.)]\s+", "", item).strip()
        if not text:
            raise _RowError(name, f"option {letter} is empty")
        options.append(text)
    return options


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _parse_answer(raw: str, name: str, options: list[str]) -> str | None:
    text = raw.strip()
    if text.startswith(ANSWER_OPEN) and text.endswith(ANSWER_CLOSE):  # official: "<answer>B</answer>"
        text = text[len(ANSWER_OPEN) : -len(ANSWER_CLOSE)].strip()
    if not text:
        return None
    if not options:
        return text
    letters = option_letters(len(options))
    match = _ANSWER_LETTER.fullmatch(text)
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    by_text = [letter for letter, option in zip(letters, options) if _normal(option) == _normal(text)]
    if len(by_text) == 1:
        return by_text[0]
    lead = _OPTION_LINE.fullmatch(text)  # "B. right" when option B is "right"
    if lead and lead.group(1) in letters and _normal(options[letters.index(lead.group(1))]) == _normal(lead.group(2)):
        return lead.group(1)
    raise _RowError(name, f"{raw!r} is not one of the option letters A-{letters[-1]} (nor an option's text)")


def parse_row(obj: Any, *, base_dir: str | os.PathLike, check_files: bool = True, allow_outside: bool = False) -> VideoQA:
    """One row (a parsed JSON object) as a VideoQA; raises DatasetError naming the field.
    ``allow_outside`` lets the video path leave ``base_dir`` (see ``load_dataset``)."""
    try:
        return _parse_row(obj, Path(base_dir), check_files, allow_outside)
    except _RowError as exc:
        raise DatasetError(exc.describe(), field=exc.field) from None


def _video_path(raw: str, key: str, base_dir: Path, allow_outside: bool) -> Path:
    """The row's video as an absolute path, confined to ``base_dir`` unless ``allow_outside``.

    A dataset names its videos relative to its own folder; a path that leaves it (``..``, ``~``, an
    absolute path elsewhere, a symlink pointing out) would let an uploaded dataset make the server
    read any file it can, so it is refused. An absolute path inside the folder is harmless and is
    what tinyr1's own tools pass, so it is kept."""
    text = raw.strip()
    if allow_outside:
        path = Path(os.path.expanduser(text))
        return Path(os.path.normpath((path if path.is_absolute() else base_dir / path).absolute()))
    if text.startswith("~"):
        raise _RowError(key, f"{text!r} starts with '~': write the path relative to the dataset's folder")
    if _DRIVE.match(text) or "\\" in text:
        raise _RowError(key, f"{text!r} is a Windows path: write it relative to the dataset's folder, with '/'")
    base = Path(os.path.normpath(base_dir.absolute()))
    path = Path(os.path.normpath(base / text))  # an absolute text replaces base here
    real_base = base.resolve()
    if not (path.is_relative_to(base) or path.is_relative_to(real_base)):
        why = "is an absolute path" if Path(text).is_absolute() else "leaves it with '..'"
        raise _RowError(key, f"{text!r} {why} outside the dataset's folder {base} (videos must lie inside it)")
    if not path.resolve().is_relative_to(real_base):
        raise _RowError(key, f"{text!r} is a link to {path.resolve()}, outside the dataset's folder {base}")
    return path


def _parse_row(obj: Any, base_dir: Path, check_files: bool, allow_outside: bool = False) -> VideoQA:
    if not isinstance(obj, dict):
        raise _RowError(None, f"a row must be a JSON object {{...}}, got {type(obj).__name__}")
    video_key = _pick(obj, "video", "video_filename")
    video = _string(obj, video_key, required="video_filename")
    assert video is not None
    if not video.strip():
        raise _RowError(video_key, "is empty")
    path = _video_path(video, video_key, base_dir, allow_outside)
    if check_files and not path.is_file():
        why = "is a folder, not a video file" if path.is_dir() else "file not found"
        raise _RowError(video_key, f"{why}: {path}")

    question_key = _pick(obj, "question", "problem")
    question = (_string(obj, question_key, required="problem") or "").strip()
    if not question:
        raise _RowError(question_key, "is empty")

    raw_options = obj.get("options")
    if raw_options is None:
        question, options = split_options(question)
    else:
        options = _parse_options(raw_options, "options")
        stripped, inline = split_options(question)
        if [_normal(o) for o in inline] == [_normal(o) for o in options]:
            question = stripped  # the options were also written into the question: keep them once
    _within(limits.QUESTION_CHARS, len(question), question_key, "the question")
    for letter, option in zip(LETTERS, options):
        _within(limits.OPTION_CHARS, len(option), question_key if raw_options is None else "options", f"option {letter}")

    answer_key = _pick(obj, "answer", "solution")
    raw_answer = _string(obj, answer_key, allow_numbers=True)
    answer = _parse_answer(raw_answer, answer_key, options) if raw_answer is not None else None

    row_id = _string(obj, "id", allow_numbers=True)
    family = _string(obj, "family")
    think = _string(obj, "think")
    extra = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS}
    return VideoQA(str(path), question, options, answer, row_id, family, think, extra)


def _within(limit: limits.Limit, seen: int, field: str, what: str) -> None:
    try:
        limit.check(seen, what)
    except limits.LimitError as exc:
        raise _RowError(field, str(exc)) from None


def _depth(obj: Any) -> int:
    """How deeply JSON containers nest in ``obj`` (a scalar is 0, ``{}`` is 1); no recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _read_lines(handle: BinaryIO, where: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for each line of a binary JSONL file, split on b"\\n" only.

    ``str.splitlines`` would also split on U+2028, U+2029 and U+0085, which JSON strings may hold.
    Each line is read with a bounded ``readline``, so an over-long line is refused (and skipped to
    its end in chunks) without ever being held in memory whole."""
    limit = limits.DATASET_ROW_BYTES.value
    number = 0
    while True:
        offset = handle.tell()
        raw = handle.readline(limit + 3)  # the row, its "\r\n" and one byte to tell "too long"
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]  # a UTF-8 byte order mark (some editors write one)
        size = len(raw.rstrip(b"\r\n"))
        if size > limit:
            while not raw.endswith(b"\n"):
                raw = handle.readline(1 << 16)
                if not raw:
                    break
                size += len(raw.rstrip(b"\r\n"))
            yield number, None, _too_long(size, limit)
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{where} line {number}: not UTF-8 text ({exc.reason} at byte {offset + exc.start})",
                               path=where, line=number) from None
        yield number, text, None


def _too_long(size: int, limit: int) -> str:
    return (f"the row is {size:,} bytes or more; the limit is {limit:,} "
            f"(set {limits.DATASET_ROW_BYTES.env} to raise it)")


def _parse_json(text: str) -> tuple[Any, str | None]:
    """(the parsed row, None) or (None, why it is refused): invalid, or nested too deeply."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, (f"JSON nested too deeply to parse; the limit is {limits.JSON_DEPTH.value} levels "
                      f"(set {limits.JSON_DEPTH.env} to raise it)")
    depth = _depth(obj)
    if depth > limits.JSON_DEPTH.value:
        return None, (f"JSON nested {depth} levels deep; the limit is {limits.JSON_DEPTH.value} "
                      f"(set {limits.JSON_DEPTH.env} to raise it)")
    return obj, None


def load_dataset(
    path: str | os.PathLike,
    *,
    check_files: bool = True,
    video_root: str | os.PathLike | None = None,
    allow_outside: bool = False,
) -> list[VideoQA]:
    """Read and validate a JSONL dataset. Relative video paths are resolved against the file's
    folder (or ``video_root``); ``check_files`` makes a missing video an error now, not mid-run.
    Videos must lie inside that folder unless ``allow_outside`` (for a dataset you wrote yourself
    that points at videos elsewhere); ids must be unique."""
    where = str(path)
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"{where}: dataset file not found" if not file.exists() else f"{where}: not a file", path=where)
    base_dir = Path(video_root).resolve() if video_root is not None else file.resolve().parent
    rows: list[VideoQA] = []
    errors: list[tuple[int, str | None, str]] = []
    first_line_of: dict[str, int] = {}
    with file.open("rb") as handle:
        for number, line, refused in _read_lines(handle, where):
            if refused is None and line is not None and not line.strip():
                continue
            obj, refused = (None, refused) if refused is not None else _parse_json(line or "")
            if refused is not None:
                errors.append((number, None, refused))
                continue
            try:
                row = _parse_row(obj, base_dir, check_files, allow_outside)
                if row.id is not None and first_line_of.setdefault(row.id, number) != number:
                    raise _RowError("id", f"duplicate id {row.id!r}: lines {first_line_of[row.id]} and {number}")
                rows.append(row)
            except _RowError as exc:
                errors.append((number, exc.field, exc.describe()))
    if errors:
        messages = [f"{where} line {number}: {message}" for number, _, message in errors]
        shown = messages[:MAX_REPORTED_ERRORS]
        if len(messages) > len(shown):
            shown.append(f"... and {len(messages) - len(shown)} more bad lines")
        first_line, first_field, _ = errors[0]
        raise DatasetError("\n".join(shown), path=where, line=first_line, field=first_field, errors=messages)
    if not rows:
        raise DatasetError(f"{where}: no rows (the file is empty)", path=where)
    return rows


def write_dataset(rows: Iterable[VideoQA], path: str | os.PathLike) -> Path:
    """Write rows as JSONL atomically: a temporary file in the same folder, then ``os.replace``, so
    a reader never sees half a file (tinyr1.files.atomic_file). Video paths inside the file's folder are written relative."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(rows):
        if not isinstance(row, VideoQA):
            raise TypeError(f"row {i} must be a VideoQA, got {type(row).__name__}")
        lines.append(json.dumps(row.to_dict(target.parent), ensure_ascii=False))
    with atomic_file(target, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return target
