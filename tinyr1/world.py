"""The synthetic video world: seeded clips of coloured shapes with multiple-choice questions.

Each sample is a short video (numpy frames, written as a real mp4) of saturated shapes on a dark
background, one A-D question about it, a reasoning trace that says what is seen at the moments
that matter and ends with the answer's content, and the ground truth as structured facts (every
shape's kind, colour, size and per-frame position and visibility), so tests and evaluations check
answers from the generator, never from the text.

    from tinyr1.world import WorldConfig, make_sample, write_split
    s = make_sample(7, "direction")                  # frames [16, 64, 64, 3] uint8, question, ...
    write_split("test", 500, "data/world-test")      # -> data/world-test/data.jsonl + clips/*.mp4

    tinyr1 world --split test --n 500 --out data/world-test      # the same from the shell

Families (what the question asks):
  direction     which way the named shape moves (left / right / up / down)
  moving_color  the colour of the one shape that moves, beside still shapes
  moving_shape  the kind of the one shape that moves (square / circle / triangle / cross)
  count         how many shapes the video shows (1-4)
  order         which colour appears first (or last): shapes show one after another, each for an
                equal share of the frames, so only the frames' order tells them apart

Versions (``WorldConfig(version=...)``, ``tinyr1 world --version``): 2, the default, is the world
every shipped policy was trained and measured on; 3 removes its single-frame shortcuts (a moving
shape starts and ends on a grid cell, placed like the still shapes, and has two still shapes beside
it, not one, so one frame leaves a guess among three; an order clip's first and last frames are
empty). 3 stays opt-in until a policy trained on it ships; 2's output is unchanged.

Splits are disjoint twice over: sample seeds come from disjoint integer ranges per split, and a
clip's content (every shape's path, the background; not the noise) is hashed into exactly one split,
so the same video can never be drawn for two splits. Answer letters follow a seeded schedule that is
balanced over A-D per family within a split.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from tinyr1.files import atomic_file, write_text
from tinyr1.format import LETTERS, format_completion

#: Bumped whenever a question, option or trace changes for the same seed, so cached splits
#: (tinyr1.evaluate.world_rows, tinyr1.tiny.data.build_clips) are written again.
#: 2: traces name shapes by colour unless the question asks for the kind; count lists colours in
#: the order of COLORS; moving colour / shape no longer states the mover's path.
WORLD_VERSION = 2
#: The worlds a config can ask for (``WorldConfig(version=3)``). The default stays WORLD_VERSION
#: (2) until a policy trained on 3 ships. 3 removes two single-frame shortcuts of 2: a moving shape
#: starts (and ends) on a grid cell, placed like the still shapes, so in one frame nothing tells it
#: from them (in 2 it straddled two cells in frame 0 of 87 of 125 clips, still shapes in 9); and an
#: order clip is empty in its first and last frames, so neither end frame shows a colour. Its moving
#: families also place two still shapes beside the mover, not one: from a single frame (where
#: nothing tells the mover apart) the best guess is then right a third of the time, not half.
WORLD_VERSIONS = (2, 3)
#: Still shapes version 3 adds to the moving families (moving_color, moving_shape) at distractors=0.
V3_EXTRA_STILLS = 1
#: Saturated colours far apart in RGB and in chroma, so they survive yuv420p + H.264 at 64 px.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 245),
    "yellow": (240, 220, 40),
    "magenta": (225, 50, 225),
    "cyan": (40, 215, 225),
}
SHAPES = ("square", "circle", "triangle", "cross")
DIRECTIONS = ("left", "right", "up", "down")
FAMILIES = ("direction", "moving_color", "moving_shape", "count", "order")
#: What a split holds unless told otherwise (moving_shape is opt-in: one more position-based family).
DEFAULT_FAMILIES = ("direction", "moving_color", "count", "order")
SPLITS = ("train", "validation", "test")
#: Share of all possible clip contents that belongs to each split (the content hash decides).
SPLIT_SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}
NUM_OPTIONS = 4
MAX_COUNT = 4
#: Seeds of one split occupy [k * SEED_STRIDE, (k + 1) * SEED_STRIDE) for a k owned by that split.
SEED_STRIDE = 10**7
#: The most distractors each family can place (free grid cells, distinct colours, four options).
#: count ignores distractors (every shape there is counted).
MAX_DISTRACTORS = {"direction": 5, "moving_color": 4, "moving_shape": 4, "count": 5, "order": 2}

_OPTION_LETTERS = LETTERS[:NUM_OPTIONS]
_MOVE_WORDS = {"left": "further left", "right": "further right", "up": "higher", "down": "lower"}


@dataclass(frozen=True)
class WorldConfig:
    """How clips look and how hard the questions are. The defaults are the easy end: large shapes
    (22-30% of the side), motion across most of the frame, no extra distractors, mild noise."""

    size: int = 64  #: frame side in pixels (square, even: yuv420p needs it)
    fps: int = 8
    num_video_frames: int = 16  #: frames per clip (16 at 8 fps = 2 s)
    distractors: int = 0  #: extra shapes beyond each family's minimum (see MAX_DISTRACTORS)
    speed: float = 0.7  #: share of the free frame width a moving shape crosses over the clip
    noise: float = 4.0  #: std of Gaussian pixel noise, in 0-255 units
    shape_size: tuple[float, float] = (0.22, 0.30)  #: shape side range, as a share of the frame
    version: int = WORLD_VERSION  #: which world (WORLD_VERSIONS); 3 has no single-frame shortcuts

    def __post_init__(self) -> None:
        if self.version not in WORLD_VERSIONS:
            raise ValueError(f"version must be one of {', '.join(map(str, WORLD_VERSIONS))}, got {self.version!r}")
        if not (16 <= self.size <= 512 and self.size % 2 == 0):
            raise ValueError(f"size must be an even number of pixels from 16 to 512, got {self.size}")
        if not 1 <= self.fps <= 60:
            raise ValueError(f"fps must be from 1 to 60, got {self.fps}")
        if not 4 <= self.num_video_frames <= 256:
            raise ValueError(f"num_video_frames must be from 4 to 256, got {self.num_video_frames}")
        if not 0 <= self.distractors <= max(MAX_DISTRACTORS.values()):
            raise ValueError(f"distractors must be from 0 to {max(MAX_DISTRACTORS.values())}, got {self.distractors}")
        if not 0.0 < self.speed <= 1.0:
            raise ValueError(f"speed is the share of the frame a shape crosses: in (0, 1], got {self.speed}")
        if not 0.0 <= self.noise <= 64.0:
            raise ValueError(f"noise is a pixel std from 0 to 64, got {self.noise}")
        lo, hi = self.shape_size
        # Shapes live in the cells of a 3x3 grid, so a side above a third of the frame would overlap.
        if not 0.05 <= lo <= hi <= 1 / 3:
            raise ValueError(f"shape_size must satisfy 0.05 <= low <= high <= 1/3 of the frame, got {self.shape_size}")
        if round(lo * self.size) < 4:
            raise ValueError(f"shapes would be under 4 px at size {self.size}: raise shape_size or size")

    def to_dict(self) -> dict[str, Any]:
        d = {**dataclasses.asdict(self), "shape_size": list(self.shape_size)}
        # Version 2 is written as before the field existed, so its cached splits (keyed by this
        # dict) and world.json files stay byte-identical.
        if self.version == 2:
            del d["version"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorldConfig":
        d = dict(d)
        if "shape_size" in d:
            d["shape_size"] = tuple(d["shape_size"])
        return cls(**d)

    def check_family(self, family: str) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
        if self.distractors > self.max_distractors(family):
            raise ValueError(
                f"family {family!r} takes at most {self.max_distractors(family)} distractors, got "
                f"{self.distractors}: lower distractors or leave {family!r} out of the families"
            )

    def extra_stills(self, family: str) -> int:
        """Still shapes this version adds to ``family`` beyond its minimum (and the distractors)."""
        return V3_EXTRA_STILLS if self.version >= 3 and family in ("moving_color", "moving_shape") else 0

    def max_distractors(self, family: str) -> int:
        return MAX_DISTRACTORS[family] - self.extra_stills(family)


@dataclass(frozen=True)
class Thing:
    """One shape through the clip: top-left corner and visibility per frame."""

    kind: str
    color: str
    size: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]
    visible: tuple[bool, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "color": self.color,
            "rgb": list(COLORS[self.color]),
            "size": self.size,
            "x": list(self.xs),
            "y": list(self.ys),
            "visible": list(self.visible),
        }

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"

    @property
    def seen(self) -> str:
        """How traces name a shape whose kind the question does not ask: by its colour alone
        ("the red shape"). The tiny policy sees 64 px clips at 48 px and never learned kinds
        (its traces named them at chance, 22-28%); a trace should say only what can be seen."""
        return f"{self.color} shape"


@dataclass
class WorldSample:
    """One clip with its question. ``answer`` is the letter; ``answer_text`` the option it names;
    ``facts`` the ground truth (JSON-ready); ``signature`` the hash of the clip's content."""

    id: str
    seed: int
    family: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    fps: int
    question: str
    options: list[str]
    answer: str
    answer_text: str
    think: str
    facts: dict[str, Any]
    signature: str
    split: str | None = None

    def completion(self, answer_style: str = "letter") -> str:
        """The training target: ``letter`` -> ``<answer>C</answer>``, ``letter_content`` ->
        ``<answer>C. right</answer>`` (the reward accepts both)."""
        if answer_style == "letter":
            return format_completion(self.think, self.answer)
        if answer_style == "letter_content":
            return format_completion(self.think, f"{self.answer}. {self.answer_text}")
        raise ValueError(f"answer_style is 'letter' or 'letter_content', got {answer_style!r}")

    def row(self, video: str | os.PathLike[str]) -> dict[str, Any]:
        """The dataset row (the fields of ``tinyr1.data.VideoQA``)."""
        return {
            "video": str(video),
            "question": self.question,
            "options": list(self.options),
            "answer": self.answer,
            "id": self.id,
            "family": self.family,
            "think": self.think,
            "extra": {
                "answer_text": self.answer_text,
                "seed": self.seed,
                "split": self.split,
                "signature": self.signature,
                "fps": self.fps,
                "facts": self.facts,
            },
        }


@dataclass(frozen=True)
class SampleSpec:
    """One planned sample of a split: everything ``make_sample`` needs besides the config."""

    id: str
    seed: int
    family: str
    letter: str


# --------------------------------------------------------------------------- seeds and splits


def sample_seed(split: str, index: int, base_seed: int = 0) -> int:
    """The seed of the ``index``-th sample of ``split``: distinct (split, base_seed) pairs own
    disjoint ranges of SEED_STRIDE integers, so two splits never share a seed."""
    _check_split(split)
    if not 0 <= index < SEED_STRIDE:
        raise ValueError(f"a split holds at most {SEED_STRIDE} samples, index {index} is out of range")
    if base_seed < 0:
        raise ValueError(f"seed must be >= 0, got {base_seed}")
    return (base_seed * len(SPLITS) + SPLITS.index(split)) * SEED_STRIDE + index


def content_split(signature: str) -> str:
    """The split a clip content belongs to, from its signature (a hex hash)."""
    u = int(signature[:12], 16) / float(1 << 48)
    edge = 0.0
    for split in SPLITS:
        edge += SPLIT_SHARES[split]
        if u < edge:
            return split
    return SPLITS[-1]


def plan_split(split: str, n: int, base_seed: int = 0, families: Sequence[str] | None = None) -> list[SampleSpec]:
    """Seeds, families (round-robin, so equal counts) and answer letters (each family's letters in
    shuffled blocks of A-D, so balanced) of the first ``n`` samples of a split."""
    _check_split(split)
    fams = _check_families(families)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    specs = []
    for i in range(n):
        family = fams[i % len(fams)]
        j = i // len(fams)  # this sample's rank within its family
        block = np.random.default_rng([base_seed, SPLITS.index(split), FAMILIES.index(family), j // NUM_OPTIONS])
        letter = _OPTION_LETTERS[int(block.permutation(NUM_OPTIONS)[j % NUM_OPTIONS])]
        specs.append(SampleSpec(f"{split}-{base_seed}-{i:06d}", sample_seed(split, i, base_seed), family, letter))
    return specs


def iter_split(
    split: str,
    n: int,
    config: WorldConfig | None = None,
    seed: int = 0,
    families: Sequence[str] | None = None,
) -> Iterator[WorldSample]:
    """The samples of ``plan_split`` in memory, without writing anything."""
    config = config or WorldConfig()
    for spec in plan_split(split, n, seed, families):
        yield make_sample(spec.seed, spec.family, config, letter=spec.letter, split=split, sample_id=spec.id)


# --------------------------------------------------------------------------- the generator


def make_sample(
    seed: int,
    family: str | None = None,
    config: WorldConfig | None = None,
    *,
    letter: str | None = None,
    split: str | None = None,
    sample_id: str | None = None,
) -> WorldSample:
    """One sample, a pure function of its arguments. ``family`` None draws one of
    DEFAULT_FAMILIES; ``letter`` None draws the answer's letter; ``split`` set redraws the scene
    until its content belongs to that split (see ``content_split``)."""
    config = config or WorldConfig()
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    # Independent streams: fixing the letter changes neither the scene nor the noise (the split
    # changes only which scene is kept), and the family draw does not shift anything else.
    family_ss, scene_ss, option_ss, noise_ss = np.random.SeedSequence(seed).spawn(4)
    if family is None:
        family = DEFAULT_FAMILIES[int(np.random.default_rng(family_ss).integers(len(DEFAULT_FAMILIES)))]
    config.check_family(family)
    if letter is None:
        letter = _OPTION_LETTERS[int(np.random.default_rng(option_ss).integers(NUM_OPTIONS))]
    if letter not in _OPTION_LETTERS:
        raise ValueError(f"letter must be one of {', '.join(_OPTION_LETTERS)}, got {letter!r}")
    if split is not None:
        _check_split(split)

    scene_rng = np.random.default_rng(scene_ss)
    for _ in range(10_000):
        scene = _BUILDERS[family](scene_rng, config)
        signature = _signature(scene)
        if split is None or content_split(signature) == split:
            break
    else:  # pragma: no cover - only a degenerate config could get here
        raise RuntimeError(f"could not draw a {family} clip for split {split!r}: the config leaves too few contents")

    things, background, truth = scene["things"], scene["background"], scene["truth"]
    rng = np.random.default_rng(option_ss)
    rng.integers(NUM_OPTIONS)  # keep the options' draw independent of whether letter was given
    answer_text = truth["answer_text"]
    others = [o for o in truth["candidates"] if o != answer_text]
    others = [others[k] for k in rng.permutation(len(others))][: NUM_OPTIONS - 1]
    slot = _OPTION_LETTERS.index(letter)
    options = others[:slot] + [answer_text] + others[slot:]

    frames = render(things, background, config, noise_ss)
    facts = {
        "family": family,
        "background": background,
        "size": config.size,
        "num_frames": config.num_video_frames,
        "objects": [t.to_dict() for t in things],
        **{k: v for k, v in truth.items() if k not in ("candidates", "question", "think", "answer_text")},
    }
    return WorldSample(
        id=sample_id or f"world-{seed}",
        seed=int(seed),
        family=family,
        frames=frames,
        fps=config.fps,
        question=truth["question"],
        options=options,
        answer=letter,
        answer_text=answer_text,
        think=truth["think"],
        facts=facts,
        signature=signature,
        split=split,
    )


def _signature(scene: dict[str, Any]) -> str:
    """Hash of what the clip shows (shapes, paths, background), not of the noise or the question."""
    content = {"background": scene["background"], "things": [t.to_dict() for t in scene["things"]]}
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


# Scenes: each builder returns {"things", "background", "truth"} where truth holds the question,
# the answer's content, the candidate options (answer included), the trace and the family's facts.
# Shapes sit in the cells of a 3x3 grid (a cell is a third of the frame, a shape at most that), so
# shapes shown together never overlap and a moving shape travels along a row or column of its own.


def _cell_origin(rng: np.random.Generator, cell_index: int, s: int, size: int) -> int:
    cell = size / 3
    slack = max(0, int((cell - s) // 2))
    return int(round(cell_index * cell + (cell - s) / 2)) + int(rng.integers(-slack, slack + 1))


def _draw_size(rng: np.random.Generator, config: WorldConfig) -> int:
    lo, hi = (max(4, int(round(f * config.size))) for f in config.shape_size)
    return int(rng.integers(lo, hi + 1))


def _background(rng: np.random.Generator) -> int:
    return int(rng.integers(10, 61))  # dark grey: every colour in COLORS stands out against it


def _still(rng: np.random.Generator, config: WorldConfig, kind: str, color: str, row: int, col: int, visible=None) -> Thing:
    s = _draw_size(rng, config)
    t = config.num_video_frames
    x, y = _cell_origin(rng, col, s, config.size), _cell_origin(rng, row, s, config.size)
    vis = tuple(visible) if visible is not None else (True,) * t
    return Thing(kind, color, s, (x,) * t, (y,) * t, vis)


def _mover(rng: np.random.Generator, config: WorldConfig, kind: str, color: str, direction: str, band: int) -> Thing:
    """A shape crossing ``speed`` of the free frame along row/column ``band``, linearly in time."""
    s = _draw_size(rng, config)
    if config.version >= 3:
        return _mover_on_cells(rng, config, kind, color, direction, band, s)
    t, free = config.num_video_frames, config.size - s
    travel = max(2, int(round(config.speed * free)))
    start = int(rng.integers(0, free - travel + 1))
    a, b = (start, start + travel) if direction in ("right", "down") else (start + travel, start)
    path = tuple(int(round(v)) for v in np.linspace(a, b, t))
    across = (_cell_origin(rng, band, s, config.size),) * t
    xs, ys = (path, across) if direction in ("left", "right") else (across, path)
    return Thing(kind, color, s, xs, ys, (True,) * t)


def _mover_on_cells(rng, config: WorldConfig, kind: str, color: str, direction: str, band: int, s: int) -> Thing:
    """Version 3's mover: it starts and ends on grid cells, each placed exactly as a still shape is
    (``_cell_origin``), one or two cells apart (``speed`` above 0.5 allows two), linearly between."""
    t = config.num_video_frames
    cells = 2 if config.speed > 0.5 and int(rng.integers(2)) else 1
    first = int(rng.integers(0, 3 - cells))
    a_cell, b_cell = (first, first + cells) if direction in ("right", "down") else (first + cells, first)
    a, b = _cell_origin(rng, a_cell, s, config.size), _cell_origin(rng, b_cell, s, config.size)
    path = tuple(int(round(v)) for v in np.linspace(a, b, t))
    across = (_cell_origin(rng, band, s, config.size),) * t
    xs, ys = (path, across) if direction in ("left", "right") else (across, path)
    return Thing(kind, color, s, xs, ys, (True,) * t)


def _stills_off_path(rng, config, mover_dir: str, band: int, colors: list[str], kinds: list[str]) -> list[Thing]:
    """Still shapes in grid cells off the mover's row (horizontal motion) or column (vertical)."""
    cells = [(r, c) for r in range(3) for c in range(3) if (r if mover_dir in ("left", "right") else c) != band]
    picks = rng.permutation(len(cells))[: len(colors)]
    return [_still(rng, config, k, col, *cells[p]) for p, col, k in zip(picks, colors, kinds)]


def _where(thing: Thing, frame: int, size: int, axis: str | None = None) -> str:
    """Coarse place of a shape's centre (thirds of the frame) with its preposition: "at the left",
    "in the centre", "at the top right"; ``axis`` "x" or "y" names one coordinate only."""
    cx = (thing.xs[frame] + thing.size / 2) / size
    cy = (thing.ys[frame] + thing.size / 2) / size
    h = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    v = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    if axis == "x":
        place = h
    elif axis == "y":
        place = v
    elif v == "middle":
        place = h
    else:
        place = v if h == "centre" else f"{v} {h}"
    return f"in the {place}" if place in ("centre", "middle") else f"at the {place}"


def _path_words(thing: Thing, direction: str, size: int) -> tuple[str, str]:
    axis = "x" if direction in ("left", "right") else "y"
    return _where(thing, 0, size, axis), _where(thing, -1, size, axis)


def _draw(rng: np.random.Generator, pool: Sequence[str], k: int) -> list[str]:
    return [pool[i] for i in rng.permutation(len(pool))[:k]]


def _scene_direction(rng: np.random.Generator, config: WorldConfig) -> dict[str, Any]:
    direction = DIRECTIONS[int(rng.integers(4))]
    colors = _draw(rng, list(COLORS), 1 + config.distractors)
    kinds = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in colors]
    band = int(rng.integers(3))
    mover = _mover(rng, config, kinds[0], colors[0], direction, band)
    things = [mover, *_stills_off_path(rng, config, direction, band, colors[1:], kinds[1:])]
    start, end = _path_words(mover, direction, config.size)
    if start != end:
        seen = f"At the start the {mover.name} is {start}. At the end it is {end}."
    else:  # a slow shape may stay within one third: say how it changed anyway
        seen = f"At the start the {mover.name} is {start}. At the end it is {_MOVE_WORDS[direction]}, still {end}."
    return {
        "things": things,
        "background": _background(rng),
        "truth": {
            "question": f"Which way does the {mover.name} move?",
            "answer_text": direction,
            "candidates": list(DIRECTIONS),
            "think": f"{seen} So it moves {direction}.",
            "target": 0,
            "direction": direction,
        },
    }


def _moving_scene(rng: np.random.Generator, config: WorldConfig) -> tuple[list[Thing], str, str]:
    """A mover and 1 + distractors still shapes (version 3: one more), all colours distinct, plus
    the trace's sentences."""
    direction = DIRECTIONS[int(rng.integers(4))]
    colors = _draw(rng, list(COLORS), 2 + config.distractors + config.extra_stills("moving_color"))
    kinds = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in colors]
    band = int(rng.integers(3))
    mover = _mover(rng, config, kinds[0], colors[0], direction, band)
    stills = _stills_off_path(rng, config, direction, band, colors[1:], kinds[1:])
    # What tells the mover from the others is that it changes place and they do not; where each
    # one is is another family's question (the tiny policy stated the mover's path right 38% of
    # the time, the still shapes' places 32%), so the trace says which move and which stay.
    # The mover is named by colour too; _scene_moving_shape, whose answer is the kind, names it in full.
    still_words = " ".join(f"The {t.seen} stays still." for t in stills)
    move_words = f"The {mover.seen} moves."
    return [mover, *stills], still_words, move_words


def _scene_moving_color(rng: np.random.Generator, config: WorldConfig) -> dict[str, Any]:
    things, still_words, move_words = _moving_scene(rng, config)
    mover = things[0]
    shown = [t.color for t in things]
    # The still shapes' colours come first among the wrong options, so seeing which colours are
    # present is not enough: the answer needs the one that moves.
    absent = _draw(rng, [c for c in COLORS if c not in shown], NUM_OPTIONS)
    candidates = (shown + absent)[:NUM_OPTIONS]
    return {
        "things": things,
        "background": _background(rng),
        "truth": {
            "question": "What colour is the shape that moves?",
            "answer_text": mover.color,
            "candidates": candidates,
            "think": f"{still_words} {move_words} So the moving shape is {mover.color}.",
            "target": 0,
        },
    }


def _scene_moving_shape(rng: np.random.Generator, config: WorldConfig) -> dict[str, Any]:
    things, still_words, move_words = _moving_scene(rng, config)
    mover = things[0]
    move_words = move_words.replace(f"The {mover.seen} ", f"The {mover.name} ", 1)
    return {
        "things": things,
        "background": _background(rng),
        "truth": {
            "question": "What shape is the thing that moves?",
            "answer_text": mover.kind,
            "candidates": list(SHAPES),
            "think": f"{still_words} {move_words} So the moving shape is a {mover.kind}.",
            "target": 0,
        },
    }


def _scene_count(rng: np.random.Generator, config: WorldConfig) -> dict[str, Any]:
    n = int(rng.integers(1, MAX_COUNT + 1))
    colors = _draw(rng, list(COLORS), n)
    kinds = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in colors]
    cells = sorted(int(c) for c in rng.permutation(9)[:n])
    things = [_still(rng, config, k, col, cell // 3, cell % 3) for cell, col, k in zip(cells, colors, kinds)]
    # Listed in the fixed order of COLORS, not by place: counting needs which colours are there,
    # not where (listed by place, the tiny policy named the k-th shape's colour right 45% of the time).
    listed = ", ".join(f"{i} {c}" for i, c in enumerate((c for c in COLORS if c in colors), 1))
    return {
        "things": things,
        "background": _background(rng),
        "truth": {
            "question": "How many shapes are in the video?",
            "answer_text": str(n),
            "candidates": [str(k) for k in range(1, MAX_COUNT + 1)],
            "think": f"I count the shapes: {listed}. So the number of shapes is {n}.",
            "count": n,
        },
    }


def _scene_order(rng: np.random.Generator, config: WorldConfig) -> dict[str, Any]:
    """k shapes shown one after another, each for an equal share of the frames, never together."""
    k = 2 + config.distractors
    t = config.num_video_frames
    query = ("first", "last")[int(rng.integers(2))]
    colors = _draw(rng, list(COLORS), k)
    kinds = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in colors]
    # Version 3 leaves the first and last frames empty, so neither end frame names a colour.
    lead = 1 if config.version >= 3 else 0
    edges = [int(round(e)) for e in np.linspace(lead, t - lead, k + 1)]
    things = []
    for i, (col, kind) in enumerate(zip(colors, kinds)):
        cell = int(rng.integers(9))
        vis = [edges[i] <= f < edges[i + 1] for f in range(t)]
        things.append(_still(rng, config, kind, col, cell // 3, cell % 3, visible=vis))
    target = 0 if query == "first" else k - 1
    sentences = [f"At the start a {things[0].seen} appears."]
    sentences += [f"Then it disappears and a {th.seen} appears." for th in things[1:]]
    absent = _draw(rng, [c for c in COLORS if c not in colors], NUM_OPTIONS)
    return {
        "things": things,
        "background": _background(rng),
        "truth": {
            "question": f"Which colour appears {query}?",
            "answer_text": colors[target],
            "candidates": (colors + absent)[:NUM_OPTIONS],
            "think": " ".join(sentences) + f" So the {query} colour is {colors[target]}.",
            "query": query,
            "target": target,
            "appear": [edges[i] for i in range(k)],
        },
    }


_BUILDERS = {
    "direction": _scene_direction,
    "moving_color": _scene_moving_color,
    "moving_shape": _scene_moving_shape,
    "count": _scene_count,
    "order": _scene_order,
}


# --------------------------------------------------------------------------- rendering and files


def shape_mask(kind: str, s: int) -> np.ndarray:
    """bool [s, s]: the pixels of a shape of side ``s`` (its box's centre is always inside)."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    c = (s - 1) / 2
    if kind == "square":
        return np.ones((s, s), bool)
    if kind == "circle":
        return (xx - c) ** 2 + (yy - c) ** 2 <= (s / 2) ** 2
    if kind == "triangle":  # apex at the top, base on the bottom row
        return np.abs(xx - c) <= (yy + 1) / 2
    if kind == "cross":
        return (np.abs(xx - c) <= s / 6) | (np.abs(yy - c) <= s / 6)
    raise ValueError(f"unknown shape {kind!r}; known: {', '.join(SHAPES)}")


def render(things: Sequence[Thing], background: int, config: WorldConfig, noise_seed: Any = 0) -> np.ndarray:
    """uint8 [T, H, W, 3]: the shapes painted in list order over the background, plus noise."""
    t, size = config.num_video_frames, config.size
    frames = np.full((t, size, size, 3), float(background), np.float32)
    for th in things:
        mask = shape_mask(th.kind, th.size)
        rgb = np.asarray(COLORS[th.color], np.float32)
        for f in range(t):
            if not th.visible[f]:
                continue
            x, y = th.xs[f], th.ys[f]
            # Clip to the frame (paths stay inside, but keep rendering total for any Thing).
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + th.size, size), min(y + th.size, size)
            if x0 >= x1 or y0 >= y1:
                continue
            m = mask[y0 - y : y1 - y, x0 - x : x1 - x]
            frames[f, y0:y1, x0:x1][m] = rgb
    if config.noise > 0:
        frames += np.random.default_rng(noise_seed).normal(0.0, config.noise, frames.shape).astype(np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def video_codec() -> str:
    """H.264 when this PyAV build can encode it, else MPEG-4 part 2 (both play everywhere)."""
    import av

    available = av.codec.codecs_available
    for name in ("libx264", "mpeg4"):
        if name in available:
            try:
                av.codec.Codec(name, "w")
                return name
            except Exception:  # listed but not an encoder in this build
                continue
    raise RuntimeError("this PyAV build can encode neither H.264 (libx264) nor MPEG-4: reinstall av")


def write_mp4(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8, codec: str | None = None) -> Path:
    """Encode uint8 [T, H, W, 3] frames as a yuv420p mp4 (atomic: tinyr1.files.atomic_file)."""
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs an even frame size, got {w}x{h}")
    codec = codec or video_codec()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # PyAV writes through its own file handle, so it gets the temporary's name; the rename (and the
    # cleanup on any error) is tinyr1.files.atomic_file's.
    with atomic_file(path, "wb") as fh:
        with av.open(fh.name, "w", format="mp4") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.codec_context.thread_count = 1  # tiny frames: threads cost more than they save
            if codec == "libx264":
                # Measured on 64 px clips: crf 20 keeps every shape's colour within 10/255 of the
                # palette at ~9 KB a clip (crf 16: 6/255 at ~16 KB). Smaller frames lose more to
                # yuv420p's half-resolution chroma: render at 64 and resize when decoding instead.
                stream.options = {"crf": "20", "preset": "veryfast"}
            else:
                stream.codec_context.bit_rate = 2_000_000
            for f in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_split(
    split: str,
    n: int,
    out_dir: str | os.PathLike[str],
    config: WorldConfig | None = None,
    seed: int = 0,
    families: Sequence[str] | None = None,
    *,
    progress: bool | None = None,
) -> Path:
    """Write ``n`` samples of ``split`` as ``out_dir/clips/<id>.mp4`` plus ``out_dir/data.jsonl``
    (the dataset format of ``tinyr1.data``) and ``out_dir/world.json`` (how it was made).
    Returns the JSONL's path. ``progress`` None shows a bar from 100 samples on."""
    from tqdm.auto import tqdm

    config = config or WorldConfig()
    fams = _check_families(families)
    for fam in fams:
        config.check_family(fam)
    specs = plan_split(split, n, seed, fams)
    out = Path(out_dir)
    clips = out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    codec = video_codec()
    rows = []
    show = n >= 100 if progress is None else progress
    for spec in tqdm(specs, desc=f"world {split}", unit="clip", disable=not show):
        sample = make_sample(spec.seed, spec.family, config, letter=spec.letter, split=split, sample_id=spec.id)
        clip = write_mp4(sample.frames, clips / f"{sample.id}.mp4", config.fps, codec)
        rows.append(sample.row(clip.resolve()))
    path = out / "data.jsonl"
    _write_rows(rows, path)
    meta = {
        "split": split,
        "n": n,
        "seed": seed,
        "families": list(fams),
        "codec": codec,
        "config": config.to_dict(),
        "counts": {"family": _counts(r["family"] for r in rows), "answer": _counts(r["answer"] for r in rows)},
    }
    write_text(out / "world.json", json.dumps(meta, indent=2) + "\n")
    return path


def _write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """Through ``tinyr1.data.write_dataset`` (relative clip paths, atomic)."""
    from tinyr1.data import VideoQA, write_dataset

    write_dataset([VideoQA(**r) for r in rows], path)


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")


def _check_families(families: Sequence[str] | None) -> tuple[str, ...]:
    fams = tuple(families) if families else DEFAULT_FAMILIES
    unknown = [f for f in fams if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; known: {', '.join(FAMILIES)}")
    if len(set(fams)) != len(fams):
        raise ValueError(f"families are listed twice: {', '.join(fams)}")
    return fams
