"""The texts the tiny policy is trained on: captions, reasoning traces, the option-lookup drill.

Nothing here touches a model; every function is a pure function of its arguments, so the
training data is fixed by the seed. Read with ``tinyr1/tiny/train.py``.

- ``option_tokens()``: the fused option tokens ("A. right", "B. 3", ...). The prompt keeps the
  paper's user-facing lines ``A. right``; the tokenizer reads each whole line as ONE token, so
  finding the option whose text equals what the trace concluded is a one-token lookup
  (docs/DESIGN.md, "The embedded tiny policy": without it, a tiny model stays at chance on the letter).
- ``trace(think, content, letter)``: the world's trace plus a closing sentence that states the
  content right before its letter: "... So it moves down. Answer: down B."
- ``think_for(think, facts, family, moving)``: the trace taught, the world's except that direction
  names full places ("at the top left") instead of one axis, and optionally the moving families
  state every shape's start and end place (``moving_places``; see there why);
- ``caption(facts, indices)``: the alignment target, what each sampled frame shows, in the order
  of the frame's cells: "Frame 1: a red square at the left, a blue circle at the top right. ..."
- ``drill(rng)``: a text-only row of the lookup drill: four fused options, then eight
  "Answer: X L." sentences (loss on the letters only); ``context_drill``: the same lookups at the
  end of a real question's prompt and trace (without the video), at the distances traces have.
- ``order_drill(question, options, think, content, letter)``: the first/last drill, an order
  question's prompt and its whole trace as text (no video), the loss on the conclusion only
  ("So the last colour is blue. Answer: blue C."): the colours are given in the order they
  appear, so the one thing left to learn is which end the question asks for.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyr1.tiny.config import MOVING_TRACES
from tinyr1.format import IMAGE_TOKEN, LETTERS, SYSTEM_PROMPT, THINK_OPEN, build_prompt, format_completion, render_options
from tinyr1.world import COLORS, DIRECTIONS, MAX_COUNT, SHAPES

NUM_OPTIONS = 4
#: Every option text the world can ask about (directions, colours, counts, shapes).
OPTION_WORDS: tuple[str, ...] = (*DIRECTIONS, *COLORS, *(str(k) for k in range(1, MAX_COUNT + 1)), *SHAPES)
#: The candidate sets the drill draws its four options from (one family's words each).
OPTION_SETS: tuple[tuple[str, ...], ...] = (
    tuple(DIRECTIONS),
    tuple(COLORS),
    tuple(str(k) for k in range(1, MAX_COUNT + 1)),
    tuple(SHAPES),
)
#: The question of the alignment (captioning) task; asked without the GRPO suffix.
CAPTION_QUESTION = "Describe what each frame shows."
DRILL_LOOKUPS = 8


def option_tokens(words: Sequence[str] = OPTION_WORDS, n_letters: int = NUM_OPTIONS) -> list[str]:
    """The fused tokens: exactly the text ``render_options`` writes for each (letter, word)."""
    return [f"{letter}. {word}" for letter in LETTERS[:n_letters] for word in words]


def lookup_sentence(content: str, letter: str) -> str:
    """The closing sentence of every trace and of the drill: the content, then at once its letter
    ("Answer: down B."), so the letter is one lookup away from the token before it."""
    return f"Answer: {content} {letter}."


def trace(think: str, content: str, letter: str) -> str:
    """The think text the policy is taught: the world's trace, then the lookup sentence."""
    return f"{think.strip()} {lookup_sentence(content, letter)}"


def completion(think: str, content: str, letter: str) -> str:
    """The SFT target (without the end token): ``<think>trace</think><answer>L</answer>``."""
    return format_completion(trace(think, content, letter), letter)


def where(obj: dict[str, Any], frame: int, size: int) -> str:
    """Where a shape's centre is at ``frame``, in thirds of the frame, in the words of the world's
    traces without the preposition: "left", "centre", "top right"."""
    cx = (obj["x"][frame] + obj["size"] / 2) / size
    cy = (obj["y"][frame] + obj["size"] / 2) / size
    h = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    v = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    if v == "middle":
        return h
    return v if h == "centre" else f"{v} {h}"


_FURTHER = {"left": "further left", "right": "further right", "up": "higher", "down": "lower"}


def think_for(think: str, facts: dict[str, Any] | None, family: str | None, moving: str = "stills") -> str:
    """The trace the policy learns for a question: the world's, except for direction, whose places
    are given in full ("at the top left") rather than along the motion's axis only ("at the left"),
    and, with ``moving="places"``, the moving families (``moving_places``).

    Why: the world's direction trace names the axis in its first words ("At the start the square
    is at the left"), so the policy must know the motion's axis before it has compared two frames.
    The first shipped cold start always chose the vertical axis (measured: 80% right on vertical
    motion, 9% on horizontal). Full places are what the captions taught, and the comparison comes
    after both are stated."""
    if moving not in MOVING_TRACES:
        raise ValueError(f"moving trace must be one of {', '.join(MOVING_TRACES)}, got {moving!r}")
    if moving == "places" and family in ("moving_color", "moving_shape") and facts and facts.get("objects"):
        return moving_places(facts, family) or think
    if family != "direction" or not facts or not facts.get("objects"):
        return think
    obj, size = facts["objects"][0], int(facts["size"])
    last = len(obj["x"]) - 1
    start, end = where(obj, 0, size), where(obj, last, size)
    name = f"{obj['color']} {obj['kind']}"
    direction = facts.get("direction")
    if start != end:
        seen = f"At the start the {name} is {_with_preposition(start)}. At the end it is {_with_preposition(end)}."
    else:  # a slow shape may stay within one cell: say how it changed anyway, as the world does
        seen = (f"At the start the {name} is {_with_preposition(start)}. At the end it is "
                f"{_FURTHER.get(direction, 'elsewhere')}, still {_with_preposition(end)}.")
    return f"{seen} So it moves {direction}."


def moving_places(facts: dict[str, Any], family: str) -> str | None:
    """A moving-family trace that states each shape's place at the start and at the end, then
    names the one whose place changed: "The red square is at the left, then at the right. The
    blue circle is at the top right, then at the top right. So the moving shape is red."

    Why: the world's trace ("The blue shape stays still. The red shape moves.") asks the policy to
    decide which shape moves before it has said anything it could compare; the world-3 cold start
    named the mover right in under half of its traces while captioning each frame's places is a
    skill it has. Here the places come first (in reading order of the start, as captions list
    them, so the order gives nothing away) and the conclusion follows from them: a faithful trace.
    None when not exactly one shape changes third (world 3's movers always do, crossing whole cells)."""
    size = int(facts["size"])
    objects = facts["objects"]
    last = len(objects[0]["x"]) - 1
    places = [(where(o, 0, size), where(o, last, size)) for o in objects]
    changed = [o for o, (a, b) in zip(objects, places) if a != b]
    if len(changed) != 1:
        return None  # no single shape changes third (a slow version-2 mover): the places would not say which moves
    listed = sorted(zip(objects, places), key=lambda item: _cell(item[0], 0, size))
    sentences = [f"The {o['color']} {o['kind']} is {_with_preposition(a)}, then {_with_preposition(b)}."
                 for o, (a, b) in listed]
    mover = changed[0]
    named = mover["color"] if family == "moving_color" else f"a {mover['kind']}"
    return " ".join(sentences) + f" So the moving shape is {named}."


def caption(facts: dict[str, Any], indices: Sequence[int]) -> str:
    """What each sampled frame shows (``indices``: the video frames the model sees), from the
    world's ground truth: the visible shapes in reading order of their centres (top row first,
    left to right), as the visual tokens are laid out:
    "Frame 1: a red square at the left, a blue circle at the top right. Frame 2: nothing. ..." """
    size = int(facts["size"])
    sentences = []
    for k, f in enumerate(indices, 1):
        seen = []
        for o in facts["objects"]:
            if o["visible"][f]:
                seen.append((*_cell(o, f, size), f"a {o['color']} {o['kind']} {_with_preposition(where(o, f, size))}"))
        words = ", ".join(w for _, _, w in sorted(seen)) if seen else "nothing"
        sentences.append(f"Frame {k}: {words}.")
    return " ".join(sentences)


def _cell(obj: dict[str, Any], frame: int, size: int) -> tuple[int, int]:
    """(row, column) of the grid cell holding a shape's centre at ``frame``: reading order."""
    return (min(2, int(3 * (obj["y"][frame] + obj["size"] / 2) / size)),
            min(2, int(3 * (obj["x"][frame] + obj["size"] / 2) / size)))


def _with_preposition(place: str) -> str:
    return f"in the {place}" if place in ("centre", "middle") else f"at the {place}"


def caption_prompt() -> str:
    return build_prompt(CAPTION_QUESTION, None, suffix=False)


def drill(rng: np.random.Generator, lookups: int = DRILL_LOOKUPS) -> tuple[str, list[tuple[int, int]]]:
    """One drill row: (text, spans) where ``spans`` are the character spans of the letters to
    learn. Options: four words of one candidate set, shuffled; each lookup names one of them."""
    words = OPTION_SETS[int(rng.integers(len(OPTION_SETS)))]
    options = [words[i] for i in rng.permutation(len(words))[:NUM_OPTIONS]]
    text = render_options(options) + "\n"
    spans = []
    for _ in range(lookups):
        j = int(rng.integers(NUM_OPTIONS))
        sentence = lookup_sentence(options[j], LETTERS[j])
        start = len(text) + 1 + sentence.rindex(LETTERS[j])  # +1: the space before the sentence
        text += " " + sentence
        spans.append((start, start + 1))
    return text, spans


def context_drill(question: str, options: Sequence[str], think: str, rng: np.random.Generator,
                  lookups: int = DRILL_LOOKUPS) -> tuple[str, list[tuple[int, int]]]:
    """The drill where the lookups really happen: a question's whole prompt (without the video)
    and the start of its trace, then lookups among ITS options at the trace's end, where the
    content is tens of tokens away from the option lines (the bare drill has them adjacent)."""
    prompt = build_prompt(question, options).replace(IMAGE_TOKEN, "")
    text = f"{prompt}{THINK_OPEN}{think.strip()}"
    spans = []
    for _ in range(lookups):
        j = int(rng.integers(len(options)))
        sentence = lookup_sentence(options[j], LETTERS[j])
        start = len(text) + 1 + sentence.rindex(LETTERS[j])
        text += " " + sentence
        spans.append((start, start + 1))
    return text, spans


def order_drill(question: str, options: Sequence[str], think: str, content: str,
                letter: str) -> tuple[str, list[tuple[int, int]]]:
    """One first/last drill row: (text, spans), the spans covering the trace's conclusion.

    Why a drill of its own: the cold start lists an order clip's colours in the order they appear
    (99.6% right) and then names the wrong end half the time ("the conclusion repeats the end
    asked": 48%), a copy from the question that 800 steps of traces, a quarter of them order
    questions, do not teach. Without the video every row isolates that copy, at a few tokens' cost."""
    prompt = build_prompt(question, options).replace(IMAGE_TOKEN, "")
    body = trace(think, content, letter)
    marker = body.rfind(" So ")
    if marker < 0:
        raise ValueError(f"an order trace ends with 'So the <end> colour is ...': {think!r}")
    head = f"{prompt}{THINK_OPEN}"
    return head + body, [(len(head) + marker, len(head) + len(body))]


def tokenizer_corpus(samples: Sequence[Any], rng: np.random.Generator, drills: int = 200) -> list[str]:
    """Texts the BPE is trained on: the prompts, traces and captions of ``samples`` (objects with
    question, options, think, answer, answer_text, caption) and some drill rows."""
    texts = [SYSTEM_PROMPT, caption_prompt()]
    for s in samples:
        texts.append(build_prompt(s.question, s.options))
        texts.append(completion(s.think, s.answer_text, s.answer))
        if getattr(s, "caption", None):
            texts.append(s.caption)
    texts += [drill(rng)[0] for _ in range(drills)]
    return texts
