"""What a reasoning trace concludes, and whether the final answer follows it.

    from tinyr1.conclusion import conclusion, is_consistent
    c = conclusion("<think>... So it moves down. Answer: down B.</think><answer>B</answer>",
                   ["left", "down", "up", "right"])
    c.letter, c.text, c.reason          # "B", "down", None
    is_consistent(completion, options)  # True when the <answer> block chooses c.letter

Used by ``tinyr1.evaluate`` (the ``consistency`` metric of ``tinyr1 eval``) and by the
``consistency`` reward of ``tinyr1.rewards`` (a GRPO option), so both judge a trace alike.

The definition (multiple-choice questions; without options nothing can be concluded):

1. The trace is the first ``<think>`` block (the whole text when there is none).
2. Its **concluding sentences** are those that open with a conclusion marker: "So", "Therefore",
   "Thus", "Hence", "Answer:", "The answer is" (any case). The world's traces end with two:
   "So it moves down." and the lookup sentence "Answer: down B." (tinyr1/tiny/texts.py).
3. Each concluding sentence names the option whose text it mentions last (whole words, the
   reward's normalisation), or, failing any option text, the option letter it states
   ("Answer: B"). A sentence naming neither is not counted.
4. The trace's conclusion is the option those sentences name when they all name the same one.
   When they name different options ("So it moves right. Answer: left A.") the trace contradicts
   itself and has **no** conclusion (``reason`` says so); so does a trace with no concluding
   sentence naming an option (cut off, or another wording).

An answer is **consistent** when the trace has a conclusion and the ``<answer>`` block chooses
that option (``tinyr1.answers.is_correct`` with the conclusion's letter as the truth). No
conclusion counts as not consistent: a measure of faithfulness must not reward saying nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from tinyr1.format import ANSWER_CLOSE, ANSWER_OPEN, LETTERS, THINK_CLOSE, THINK_OPEN, find_block
from tinyr1.answers import is_correct, normalize_text

_MARKER = re.compile(r"^(?:(?:so|therefore|thus|hence|the (?:final |correct )?answer is)\b|answer\s*:)", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# An option letter stated alone: "Answer: B", "the answer is (B)", "Answer: down B."
_LETTER = re.compile(r"(?<![\w'])\(?([A-J])\)?(?![\w'])")


@dataclass(frozen=True)
class Conclusion:
    """The option a trace concludes: ``letter`` and its ``text`` (None when there is none), the
    concluding ``sentences`` read, and ``reason`` (why there is no conclusion, else None)."""

    letter: str | None
    text: str | None
    sentences: tuple[str, ...]
    reason: str | None = None


def _trace(completion: str) -> str:
    think = find_block(completion, THINK_OPEN, THINK_CLOSE)
    if think is not None:
        return think
    # No think block: whatever precedes the answer block is the reasoning.
    return completion.split(ANSWER_OPEN, 1)[0]


def _named(sentence: str, options: Sequence[str]) -> str | None:
    """The letter of the option a concluding sentence names (see the module docstring, 3)."""
    words = f" {normalize_text(sentence)} "
    best, where = None, -1
    for letter, option in zip(LETTERS, options):
        text = normalize_text(re.sub(rf"^{letter}[.)]\s*", "", str(option).strip()))
        if not text:
            continue
        pos = words.rfind(f" {text} ")
        if pos > where:  # the option mentioned last; a longer text wins a tie at one place
            best, where = letter, pos
    if best is not None:
        return best
    body = _MARKER.sub("", sentence.strip(), count=1)
    letters = [m.group(1) for m in _LETTER.finditer(body) if LETTERS.index(m.group(1)) < len(options)]
    return letters[-1] if letters else None


def conclusion(completion: str, options: Sequence[str] | None) -> Conclusion:
    """What the trace of ``completion`` concludes among ``options`` (module docstring)."""
    if not options:
        return Conclusion(None, None, (), "no options: nothing to conclude among")
    text = completion if isinstance(completion, str) else ""
    sentences = tuple(s.strip() for s in _SENTENCE_END.split(_trace(text).strip()) if _MARKER.match(s.strip()))
    named = [(s, _named(s, options)) for s in sentences]
    letters = {letter for _, letter in named if letter is not None}
    if not letters:
        return Conclusion(None, None, sentences, "no concluding sentence names an option")
    if len(letters) > 1:
        return Conclusion(None, None, sentences, "the concluding sentences name different options: "
                          + ", ".join(sorted(letters)))
    letter = letters.pop()
    return Conclusion(letter, str(options[LETTERS.index(letter)]), sentences)


def is_consistent(completion: str, options: Sequence[str] | None) -> bool:
    """Does the answer block choose the option the trace concludes? False without a conclusion
    or without an answer block."""
    c = conclusion(completion, options)
    if c.letter is None:
        return False
    answer = find_block(completion if isinstance(completion, str) else "", ANSWER_OPEN, ANSWER_CLOSE)
    return answer is not None and is_correct(answer.strip(), c.letter, options)
