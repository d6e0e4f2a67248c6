"""The paper's reward (TinyLLaVA-Video-R1): pure functions plus a frozen config. The definition
and its reasons are in docs/DESIGN.md, "The reward".

    >>> from tinyr1.rewards import score
    >>> score("<think>it slides right</think><answer>B</answer>", "B").total
    1.50625

Definitions (``r0 = 0.5``, ``r1 = 0.5``, ``ML = 1200``, ``r2 = r0 + r1`` by default):

- **Format** holds when the stripped completion is ``<think>T</think>`` + optional whitespace +
  ``<answer>A</answer>``, each tag exactly once (``tinyr1.format.parse`` decides and says why not).
- **Length** ``LR = min(1, len(T.strip()) / ML) * r1`` (characters), earned only when the format
  holds; ``think_chars`` still reports the first think block's length when it does not.
- **Format reward** ``FR = r0 + LR`` when the format holds, else ``0``.
- **Accuracy** ``AR = r2`` when the answer is correct, else ``0``. The answer is read from the
  first ``<answer>`` block only, never from the think text (a completion without one is wrong).
- **Total** ``R = AR + FR`` if ``FR > 0`` and correct; ``-FR`` if ``FR > 0`` and wrong;
  ``-(r0 + r1 + r2)`` if ``FR = 0``. With ``official_corner=True`` (the official training code's
  behaviour) a correct answer with a broken format gets ``+AR`` instead of the full penalty.
  ``FR > 0`` is taken literally: with ``r0 = 0`` an empty think text earns the full penalty.
- **No ground truth** (``answer=None`` or blank): accuracy is not applicable, so ``accuracy_reward``,
  ``correct`` and ``total`` are ``None`` (never an invented 0); ``total_if_right`` and
  ``total_if_wrong`` say what ``R`` would be either way. They are filled in every case.

How an answer is judged correct (``is_correct``) is in tinyr1/answers.py, re-exported here.

Batch reward functions follow TRL: ``fn(completions, **kwargs) -> list[float | None]``, where
``completions`` are strings or TRL's conversational form ``[{"role": "assistant", "content": ...}]``
and ``kwargs`` carry ``answer`` (or ``solution``) and optionally ``options`` lists, one entry per
completion. ``REWARDS`` maps names to them; ``get_reward(name, **config)`` builds one with other
parameters. Beyond the paper's reward and its parts, ``consistency`` (1 when the answer chooses
the option the trace itself concludes, tinyr1/conclusion.py, else 0) and
``format_accuracy_consistency`` (format + accuracy, plus 0.5 for a consistent answer) reward
faithful reasoning: GRPO options (``tinyr1 train --rewards format_accuracy_consistency``). Run ``python -m doctest tinyr1/rewards.py`` for the example above.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from tinyr1.answers import is_correct, normalize_text, truth_letter
from tinyr1.format import parse

__all__ = [
    "RewardConfig",
    "RewardBreakdown",
    "score",
    "is_correct",
    "normalize_text",
    "truth_letter",
    "RewardFunction",
    "REWARDS",
    "get_reward",
    "ConsistencyReward",
]


# --------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RewardConfig:
    """The reward's parameters. ``r2=None`` means ``r0 + r1`` and is resolved on construction, so
    ``config.r2`` is always a number (to change ``r0``/``r1`` and keep ``r2`` tied to them, build a
    new config rather than ``dataclasses.replace``, which carries the resolved ``r2`` over)."""

    r0: float = 0.5  # format
    r1: float = 0.5  # think length, at most
    max_len: int = 1200  # ML: think characters that earn the whole r1
    r2: float | None = None  # accuracy; None = r0 + r1
    official_corner: bool = False  # correct answer + broken format: +AR (official code) not -(r0+r1+r2)

    def __post_init__(self) -> None:
        for name in ("r0", "r1"):
            object.__setattr__(self, name, _weight(name, getattr(self, name)))
        r2 = self.r0 + self.r1 if self.r2 is None else _weight("r2", self.r2)
        object.__setattr__(self, "r2", r2)
        max_len = self.max_len
        if isinstance(max_len, bool) or not isinstance(max_len, numbers.Real) or not float(max_len).is_integer():
            raise ValueError(f"max_len must be a whole number of characters (> 0), got {max_len!r}")
        if max_len <= 0:
            raise ValueError(f"max_len must be > 0 (the think length that earns the whole r1), got {max_len!r}")
        object.__setattr__(self, "max_len", int(max_len))
        if not isinstance(self.official_corner, bool):
            raise ValueError(f"official_corner must be True or False, got {self.official_corner!r}")

    @property
    def penalty(self) -> float:
        """What a broken format costs: ``r0 + r1 + r2``."""
        return self.r0 + self.r1 + self.r2  # type: ignore[operator]  # r2 is resolved


def _weight(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


DEFAULT_CONFIG = RewardConfig()


# ------------------------------------------------------------------------------------ breakdown


@dataclass(frozen=True)
class RewardBreakdown:
    """Every part of the reward of one completion (``None`` = not applicable: no ground truth)."""

    format_ok: bool
    format_error: str | None  # why the format fails, None when it holds
    think_chars: int  # len(T.strip()) of the first think block (0 if none)
    length_reward: float  # LR (0 when the format fails)
    format_reward: float  # FR = r0 + LR, or 0
    accuracy_reward: float | None  # AR = r2 or 0; None without ground truth
    correct: bool | None  # None without ground truth
    total: float | None  # R; None without ground truth
    total_if_right: float  # R if the answer were right
    total_if_wrong: float  # R if the answer were wrong
    answer_text: str | None  # the first <answer> block, stripped (None if there is none)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (what ``tinyr1 reward --json`` prints)."""
        return dataclasses.asdict(self)


def _total(config: RewardConfig, format_reward: float, correct: bool) -> float:
    accuracy = config.r2 if correct else 0.0
    if format_reward > 0:
        return accuracy + format_reward if correct else -format_reward
    if config.official_corner and correct:
        return accuracy  # type: ignore[return-value]
    return -config.penalty


def score(
    completion: str,
    answer: str | None,
    options: Sequence[str] | None = None,
    config: RewardConfig = DEFAULT_CONFIG,
) -> RewardBreakdown:
    """The reward breakdown of one completion; never raises on any completion text."""
    if not isinstance(config, RewardConfig):
        raise TypeError(f"config must be a RewardConfig, got {type(config).__name__}")
    parsed = parse(completion if isinstance(completion, str) else "")
    think_chars = len(parsed.think.strip()) if parsed.think is not None else 0
    if parsed.ok:
        length_reward = min(1.0, think_chars / config.max_len) * config.r1
        format_reward = config.r0 + length_reward
    else:
        length_reward = format_reward = 0.0
    answer_text = parsed.answer.strip() if parsed.answer is not None else None
    has_truth = answer is not None and str(answer).strip() != ""
    correct = is_correct(answer_text, str(answer), options) if has_truth else None
    return RewardBreakdown(
        format_ok=parsed.ok,
        format_error=parsed.error,
        think_chars=think_chars,
        length_reward=length_reward,
        format_reward=format_reward,
        accuracy_reward=None if correct is None else (config.r2 if correct else 0.0),
        correct=correct,
        total=None if correct is None else _total(config, format_reward, correct),
        total_if_right=_total(config, format_reward, True),
        total_if_wrong=_total(config, format_reward, False),
        answer_text=answer_text,
    )


# ----------------------------------------------------------------------------- batch functions

COMPONENTS = ("total", "format", "length", "accuracy")


def _text_of(completion: Any) -> str:
    """A completion as text: a string, or TRL's conversational ``[{"role", "content"}]`` form."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"] or messages
        if assistant:
            content = assistant[-1].get("content", "")
            if isinstance(content, str):
                return content
            if isinstance(content, (list, tuple)):  # content parts: [{"type": "text", "text": ...}]
                return "".join(
                    str(part.get("text", "")) for part in content if isinstance(part, Mapping) and part.get("type", "text") == "text"
                )
    raise TypeError(
        "a completion must be a string or a list of messages like [{'role': 'assistant', 'content': '...'}], "
        f"got {type(completion).__name__}"
    )


def _per_completion(kwargs: Mapping[str, Any], key: str, n: int) -> list[Any]:
    values = kwargs.get(key)
    if values is None:
        return [None] * n
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{key} must be a list with one entry per completion, got {type(values).__name__}")
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{key} has {len(values)} entries for {n} completions (one per completion expected)")
    return values


class RewardFunction:
    """One part of the reward as a TRL reward function: ``fn(completions, **kwargs)``.

    ``component`` is "total" (R), "format" (FR), "length" (LR) or "accuracy" (AR); "total" and
    "accuracy" give ``None`` for completions without a ground truth. ``__name__`` is what TRL-style
    logs call it (``rewards/<name>/mean``)."""

    def __init__(self, name: str, component: str, config: RewardConfig = DEFAULT_CONFIG) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"unknown reward component {component!r}; known: {', '.join(COMPONENTS)}")
        self.__name__ = name
        self.component = component
        self.config = config

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__!r}, component={self.component!r}, config={self.config})"

    def breakdowns(self, completions: Sequence[Any], **kwargs: Any) -> list[RewardBreakdown]:
        n = len(completions)
        answers = _per_completion(kwargs, "answer" if kwargs.get("answer") is not None else "solution", n)
        options = _per_completion(kwargs, "options", n)
        return [
            score(_text_of(c), a, o if o else None, self.config) for c, a, o in zip(completions, answers, options)
        ]

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        field = {
            "total": "total",
            "format": "format_reward",
            "length": "length_reward",
            "accuracy": "accuracy_reward",
        }[self.component]
        return [getattr(b, field) for b in self.breakdowns(completions, **kwargs)]


def _no_length(config: RewardConfig) -> RewardConfig:
    # r2 keeps its value (r0 + 0.5 by default): dropping the length term must not halve accuracy.
    return dataclasses.replace(config, r1=0.0)


# name -> (component, config transform, description)
_SPECS: dict[str, tuple[str, Callable[[RewardConfig], RewardConfig], str]] = {
    "paper": ("total", lambda c: c, "the paper's total R"),
    "format": ("format", lambda c: c, "FR = r0 + LR, or 0 when the format fails"),
    "length": ("length", lambda c: c, "LR = min(1, think chars / ML) * r1"),
    "accuracy": ("accuracy", lambda c: c, "AR = r2 when correct, else 0"),
    "format_accuracy": ("total", _no_length, "the paper's total with r1 = 0 (no length reward; r2 kept)"),
}

#: What the consistency term adds in ``format_accuracy_consistency``: half the format reward, so a
#: consistent wrong answer (-FR + 0.5 = 0) still scores below any right one (+1.5 and more).
CONSISTENCY_WEIGHT = 0.5


class ConsistencyReward:
    """A faithful-reasoning term as a TRL reward function: ``weight`` when the ``<answer>`` block
    chooses the option the trace itself concludes (``tinyr1.conclusion.is_consistent``), else
    ``penalty`` (a trace that concludes nothing, or contradicts itself, gets ``penalty`` too).
    Needs the ``options`` of each completion; a completion without options gets ``penalty``.

    With ``base`` (another RewardFunction) it returns ``base + term``: ``format_accuracy_consistency``
    is the format + accuracy reward plus ``CONSISTENCY_WEIGHT`` for a consistent answer."""

    def __init__(self, name: str, weight: float = 1.0, penalty: float = 0.0, base: RewardFunction | None = None) -> None:
        self.__name__ = name
        penalty = float(penalty) if isinstance(penalty, numbers.Real) and not isinstance(penalty, bool) else math.nan
        if not (math.isfinite(penalty) and penalty <= 0):
            raise ValueError(f"penalty is what an inconsistent answer gets: a number <= 0, got {penalty!r}")
        self.weight, self.penalty, self.base = _weight("weight", weight), penalty, base
        # GRPO's per-completion breakdowns read a reward's RewardConfig when it has one.
        self.config = base.config if base is not None else None

    def __repr__(self) -> str:
        return f"ConsistencyReward({self.__name__!r}, weight={self.weight}, penalty={self.penalty}, base={self.base!r})"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        from tinyr1.conclusion import is_consistent  # tinyr1.conclusion builds on this module

        options = _per_completion(kwargs, "options", len(completions))
        terms = [self.weight if is_consistent(_text_of(c), o or None) else self.penalty
                 for c, o in zip(completions, options)]
        if self.base is None:
            return terms
        return [None if b is None else b + t for b, t in zip(self.base(completions, **kwargs), terms)]


_CONSISTENCY_SPECS = {
    "consistency": "1 when the answer chooses the option its own trace concludes (tinyr1.conclusion), else 0",
    "format_accuracy_consistency": f"format_accuracy + {CONSISTENCY_WEIGHT} when the answer follows the trace's conclusion",
}


def _consistency_reward(name: str, config: RewardConfig = DEFAULT_CONFIG) -> ConsistencyReward:
    if name == "consistency":
        return ConsistencyReward(name)
    base = RewardFunction("format_accuracy", "total", _no_length(config))
    return ConsistencyReward(name, weight=CONSISTENCY_WEIGHT, base=base)


REWARDS: dict[str, RewardFunction | ConsistencyReward] = {
    **{name: RewardFunction(name, component, transform(DEFAULT_CONFIG)) for name, (component, transform, _) in _SPECS.items()},
    **{name: _consistency_reward(name) for name in _CONSISTENCY_SPECS},
}


def describe_rewards() -> dict[str, str]:
    """Name -> one-line description of each registered reward."""
    return {**{name: spec[2] for name, spec in _SPECS.items()}, **_CONSISTENCY_SPECS}


def get_reward(name: str, **params: Any) -> RewardFunction | ConsistencyReward:
    """The reward called ``name``, with ``RewardConfig`` fields as parameters (``r0``, ``r1``,
    ``max_len``, ``r2``, ``official_corner``). Unknown names and parameters raise ValueError.
    ``consistency`` takes ``weight`` and ``penalty`` instead."""
    if name not in _SPECS and name not in _CONSISTENCY_SPECS:
        raise ValueError(f"unknown reward {name!r}; known rewards: {', '.join([*_SPECS, *_CONSISTENCY_SPECS])}")
    if name == "consistency":
        unknown = sorted(set(params) - {"weight", "penalty"})
        if unknown:
            raise ValueError(f"unknown reward parameter(s) {', '.join(unknown)}; known: weight, penalty")
        return ConsistencyReward(name, **params)
    fields = [f.name for f in dataclasses.fields(RewardConfig)]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(f"unknown reward parameter(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    if name == "format_accuracy_consistency":
        if params.pop("r1", 0) != 0:
            raise ValueError(f"{name} has no length term: r1 is 0 by definition")
        return _consistency_reward(name, RewardConfig(**params))
    component, transform, _ = _SPECS[name]
    if name == "format_accuracy":
        if params.pop("r1", 0) != 0:
            raise ValueError("format_accuracy is the reward without its length term: r1 is 0 by definition")
    return RewardFunction(name, component, transform(RewardConfig(**params)))
