"""What an answer means: whether the text of an ``<answer>`` block is right for a ground truth.

    >>> from tinyr1.answers import is_correct
    >>> is_correct("(b) moves right", "B")
    True

The reward (tinyr1/rewards.py) and the consistency check (tinyr1/conclusion.py) both judge answers
with these rules, so they live below both. docs/DESIGN.md, "The reward", gives the reasons.

How an answer is judged correct (``is_correct``), by the kind of ground truth:

- **Multiple choice** (the truth is one letter A-J, also written ``(B)``, ``B.``, ``B)`` or inside
  ``<answer>`` tags as in the official data): the answer, after dropping surrounding spaces,
  quotes and ``*``, chooses option B when it
  (1) is or begins with the capital letter followed by a non-word character or the end:
  ``B``, ``B.``, ``(B)``, ``[B]``, ``B: ...``, ``"B. moves right"``, ``"B moves right"``;
  (2) is or begins with the lower-case letter followed by the end or ``. ) ] :``: ``b``, ``(b)``;
  (3) begins with ``Option``, ``Choice`` or ``Answer`` (``The correct answer is``, ``Answer:``, any
  case), then the letter as in (1) or (2); or
  (4) equals option B's text after free-text normalisation, when the options are given.
  A word is never a letter: ``"Because ..."`` does not choose B, and a lower-case article
  (``"a person ..."``) does not choose A. This is the official rule (the answer equals the truth
  or its first character is the letter) made more lenient about spellings and less about words;
  like the official rule, ``"A person walks"`` chooses A. With options given, a truth that equals
  one option's text is treated as that option's letter.
- **Numeric** (the truth is a number such as ``3``, ``-2.5`` or ``1e3``): correct when the answer is,
  or begins with, a number (``"3"``, ``"3.0"``, ``"3 people"``, ``"1,000"``) equal to it within a
  relative tolerance of 1e-6.
- **Free text** (anything else): correct when both texts are equal after normalisation: Unicode
  NFKC, case folding, punctuation and symbols removed, whitespace collapsed
  (``"Moves right."`` equals ``"moves  right"``).
"""
from __future__ import annotations

import math
import re
import unicodedata
from typing import Sequence

from tinyr1.format import ANSWER_CLOSE, ANSWER_OPEN, LETTERS, find_block

__all__ = ["is_correct", "normalize_text", "truth_letter"]

# A ground-truth letter, alone or in one of its usual spellings: B, (B), [B], B., B), B:
_TRUTH_LETTER = re.compile(r"[(\[]?([A-J])[)\].:]?", re.I)
# Decoration around an answer that says nothing: spaces, quotes, markdown emphasis.
_DECORATION = " \t\r\n\"'`*_"
# "Option B", "choice (b)", "Answer: B", "the final answer is B", "answer - B" (any case).
_PHRASE = re.compile(
    r"(?:the\s+)?(?:(?:correct|final|right)\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-=]?\s*[(\[]?",
    re.I,
)
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def normalize_text(text: str) -> str:
    """Free-text normal form: NFKC, case folded, punctuation/symbols dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(kept.split())


def _strip_answer_tags(truth: str) -> str:
    inner = find_block(truth, ANSWER_OPEN, ANSWER_CLOSE)  # linear, unlike a lazy regex
    return (truth if inner is None else inner).strip()


def _option_text(letter: str, option: str) -> str:
    """An option's text without its own ``B.``/``B)`` prefix."""
    option = str(option).strip()
    return re.sub(rf"^{letter}[.)]\s*", "", option)


def _letter_of_text(text: str, options: Sequence[str] | None) -> str | None:
    """The letter whose option text equals ``text`` (normalised), if exactly one does."""
    if not options:
        return None
    wanted = normalize_text(text)
    if not wanted:
        return None
    hits = [
        letter
        for letter, option in zip(LETTERS, options)
        if normalize_text(_option_text(letter, option)) == wanted
    ]
    return hits[0] if len(hits) == 1 else None


def _letter_at(text: str, pos: int) -> str | None:
    """The option letter written at ``text[pos]``, if one is: a capital A-J followed by a non-word
    character or the end ("B. moves", "B moves", "B"), or a lower-case one followed by the end or
    by ``. ) ] :`` ("b.", "b)"). A word ("Because") or an article ("a person") is not a letter."""
    if pos >= len(text) or text[pos].upper() not in LETTERS:
        return None
    char, rest = text[pos], text[pos + 1 : pos + 2]
    if char.isupper() and not (rest.isalnum() or rest == "_"):
        return char
    if char.islower() and rest in ("", ".", ")", "]", ":"):
        return char.upper()
    return None


def _answers_letter(pred: str, letter: str, options: Sequence[str] | None) -> bool:
    """Does the answer text ``pred`` choose option ``letter`` (upper case)?"""
    text = pred.strip(_DECORATION)
    if not text:
        return False
    # The letter alone or leading the answer: B, b, (B), [b], B., B), "B. moves right", "B moves".
    start = 1 if text[0] in "([" else 0
    chosen = _letter_at(text, start)
    if chosen is None:
        # A phrase before it: "Option B", "Answer: (b)", "The correct answer is B".
        phrase = _PHRASE.match(text)
        if phrase:
            chosen = _letter_at(text, phrase.end())
    if chosen is not None:
        return chosen == letter
    # The right option's text, written out.
    index = LETTERS.index(letter)
    if options and index < len(options):
        return normalize_text(text) == normalize_text(_option_text(letter, options[index]))
    return False


def _leading_number(text: str) -> float | None:
    """The number an answer is or begins with ("3", "3.0", "-2.5 m", "1,000"), else None."""
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text.strip(_DECORATION))  # thousands separators
    match = _NUMBER.match(text)
    if not match:
        return None
    rest = text[match.end() :]
    if rest[:1].isalnum() or rest[:1] == "_" or re.match(r"[,.]\d", rest):
        return None  # "3rd", "2x", "3,5": not a plain number
    return float(match.group(0))


def truth_letter(truth: str, options: Sequence[str] | None = None) -> str | None:
    """The option letter a ground truth names ("B", "(b)", "<answer>B</answer>", or exactly one
    option's text when options are given), else None (a numeric or free-text truth)."""
    truth = _strip_answer_tags(str(truth))
    match = _TRUTH_LETTER.fullmatch(truth)
    return match.group(1).upper() if match else _letter_of_text(truth, options)


def is_correct(pred_answer_text: str | None, truth: str, options: Sequence[str] | None = None) -> bool:
    """Is the answer text (the ``<answer>`` block's content) right? See the module docstring."""
    if truth is None:
        raise ValueError("is_correct needs a ground truth; without one accuracy is not applicable")
    if pred_answer_text is None:
        return False
    pred = str(pred_answer_text).strip()
    truth = _strip_answer_tags(str(truth))
    if not pred or not truth:
        return False
    letter = truth_letter(truth, options)
    if letter is not None:
        return _answers_letter(pred, letter, options)
    if _NUMBER.fullmatch(truth):
        got = _leading_number(pred)
        return got is not None and math.isclose(got, float(truth), rel_tol=1e-6)
    return normalize_text(pred) == normalize_text(truth) != ""
