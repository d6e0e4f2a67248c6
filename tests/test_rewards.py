"""The paper's reward (tinyr1.rewards; docs/DESIGN.md, "The reward") as a specification: tables with a reason
per row, then properties checked by hypothesis.

    .venv/bin/pytest tests/test_rewards.py -q

Defaults throughout: r0 = 0.5, r1 = 0.5, ML = 1200, r2 = r0 + r1 = 1.0, so a broken format costs 2.
"""
from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinyr1.format import TAGS, format_completion
from tinyr1.rewards import REWARDS, RewardConfig, get_reward, is_correct, score

X600 = "x" * 600  # half of ML: LR = 0.25, FR = 0.75
OK_B = format_completion(X600, "B")  # well formed, answers B
OK_A = format_completion(X600, "A")  # well formed, answers A
BROKEN_B = OK_B + " trailing"  # answers B, format broken
CORNER = RewardConfig(official_corner=True)
DEFAULT = RewardConfig()

# (completion, truth, config, expected total, why)
TOTAL_TABLE = [
    (OK_B, "B", DEFAULT, 1.0 + 0.75, "format holds, correct: R = AR + FR"),
    (OK_A, "B", DEFAULT, -0.75, "format holds, wrong: R = -FR"),
    (format_completion("", "B"), "B", DEFAULT, 1.0 + 0.5, "empty think: FR = r0 alone, still > 0"),
    (format_completion("", "A"), "B", DEFAULT, -0.5, "empty think and wrong: -r0"),
    (BROKEN_B, "B", DEFAULT, -2.0, "format broken, correct: full penalty -(r0+r1+r2) by default"),
    (BROKEN_B, "A", DEFAULT, -2.0, "format broken, wrong: full penalty"),
    (BROKEN_B, "B", CORNER, 1.0, "official corner: broken but correct gets +AR"),
    (BROKEN_B, "A", CORNER, -2.0, "official corner changes nothing when wrong"),
    (OK_B, "B", CORNER, 1.75, "official corner changes nothing when the format holds"),
    (OK_B, "B", RewardConfig(r2=3.0), 3.0 + 0.75, "r2 given: AR = r2"),
    (BROKEN_B, "A", RewardConfig(r2=3.0), -(0.5 + 0.5 + 3.0), "penalty uses the given r2"),
    (OK_B, "B", RewardConfig(r0=1.0, r1=2.0), 3.0 + (1.0 + 1.0), "r2 defaults to r0 + r1 = 3; LR = 600/1200*2"),
    (format_completion("", "B"), "B", RewardConfig(r0=0.0), -(0 + 0.5 + 0.5), "r0 = 0 and no think: FR = 0 -> penalty (FR > 0 is literal)"),
    (OK_B, "B", RewardConfig(r0=0.0, r1=0.0, r2=0.0), 0.0, "all weights 0: FR = 0, penalty -(0) = 0"),
]


@pytest.mark.parametrize("completion, truth, config, expected, why", TOTAL_TABLE)
def test_total_follows_the_papers_rule(completion, truth, config, expected, why) -> None:
    result = score(completion, truth, None, config)
    assert result.total == pytest.approx(expected), why
    # the "if right / if wrong" figures always agree with the actual total
    assert result.total == (result.total_if_right if result.correct else result.total_if_wrong)


# (completion, error start) -- every tag failure: FR = LR = 0 and the full penalty even if correct
TAG_FAILURES = [
    ("", "the completion is empty"),  # nothing
    ("<answer>B</answer>", "missing <think>"),  # think missing
    (f"<think>{X600}<answer>B</answer>", "missing </think>"),  # think unclosed
    (f"<think>{X600}</think>B", "missing <answer>"),  # answer missing
    (f"<think>{X600}</think><answer>B", "missing </answer>"),  # answer unclosed
    (f"<think>{X600}</think><think>x</think><answer>B</answer>", "<think> appears 2 times"),  # doubled think
    (f"<think>{X600}</think><answer>B</answer></answer>", "</answer> appears 2 times"),  # doubled close
    (f"<answer>B</answer><think>{X600}</think>", "tags out of order"),  # order swapped
    (f"Sure! <think>{X600}</think><answer>B</answer>", "text before <think>"),  # text before
    (f"<think>{X600}</think>so B<answer>B</answer>", "text between </think> and <answer>"),  # between
    (f"<think>{X600}</think><answer>B</answer>.", "text after </answer>"),  # one character after
]


@pytest.mark.parametrize("completion, error", TAG_FAILURES)
def test_each_tag_failure_zeroes_the_format_reward(completion: str, error: str) -> None:
    result = score(completion, "B")
    assert not result.format_ok and result.format_error.startswith(error)
    assert (result.format_reward, result.length_reward) == (0.0, 0.0)
    assert result.total == -2.0 and result.total_if_right == -2.0 and result.total_if_wrong == -2.0


# (think text, max_len, expected think_chars, expected LR) -- r1 = 0.5
LENGTH_TABLE = [
    ("", 1200, 0, 0.0),  # nothing to reward
    ("x" * 600, 1200, 600, 0.25),  # half of ML: half of r1
    ("x" * 1199, 1200, 1199, 0.5 * 1199 / 1200),  # just under ML
    ("x" * 1200, 1200, 1200, 0.5),  # exactly ML: the whole r1
    ("x" * 1201, 1200, 1201, 0.5),  # over ML: capped at r1
    ("x" * 9000, 1200, 9000, 0.5),  # far over ML: still capped
    ("  \n" + "x" * 600 + " \t\n ", 1200, 600, 0.25),  # surrounding whitespace is not counted
    ("a b", 1200, 3, 0.5 * 3 / 1200),  # inner whitespace is counted (characters, not words)
    ("é" * 10, 10, 10, 0.5),  # characters, not bytes; ML configurable
    ("x" * 5, 10, 5, 0.25),  # small ML
]


@pytest.mark.parametrize("think, max_len, chars, lr", LENGTH_TABLE)
def test_length_reward_is_capped_at_r1(think: str, max_len: int, chars: int, lr: float) -> None:
    result = score(format_completion(think, "B"), None, config=RewardConfig(max_len=max_len))
    assert result.think_chars == chars
    assert result.length_reward == pytest.approx(lr)
    assert result.format_reward == pytest.approx(0.5 + lr)  # FR = r0 + LR


def test_length_is_not_earned_when_the_format_fails() -> None:
    result = score(format_completion("x" * 1200, "B") + " tail", "B")
    assert result.think_chars == 1200 and result.length_reward == 0.0  # reported, not rewarded


# (answer block text, truth, options, correct?, why)
MATCH_TABLE = [
    ("B", "B", None, True, "equal"),
    ("b", "B", None, True, "case-insensitive letter"),
    (" B ", "B", None, True, "surrounding whitespace"),
    ("(B)", "B", None, True, "bracketed"),
    ("[B]", "B", None, True, "square-bracketed"),
    ("B)", "B", None, True, "closing bracket"),
    ("B.", "B", None, True, "letter and full stop"),
    ("B: moves right", "B", None, True, "letter and colon"),
    ("B. moves right", "B", None, True, "the paper's example: begins with the letter"),
    ("B moves right", "B", None, True, "letter then a space"),
    ("(b) moves right", "B", None, True, "lower-case letter in brackets"),
    ("**B**", "B", None, True, "markdown bold"),
    ('"B"', "B", None, True, "quoted"),
    ("Option B", "B", None, True, "'Option B'"),
    ("option (b)", "B", None, True, "'option (b)'"),
    ("Answer: B", "B", None, True, "'Answer: B'"),
    ("The correct answer is B.", "B", None, True, "a sentence naming the letter"),
    ("Choice B", "B", None, True, "'Choice B'"),
    ("B", "<answer>B</answer>", None, True, "the official data's tagged solution"),
    ("B", "(B)", None, True, "truth written '(B)'"),
    ("moves right", "B", ["moves left", "moves right"], True, "the right option's text"),
    ("Moves right.", "B", ["moves left", "moves right"], True, "option text, normalised"),
    ("B", "moves right", ["moves left", "moves right"], True, "truth given as option text, answer as letter"),
    ("A person walks", "A", None, True, "capital letter then space: the official rule accepts it too"),
    ("Because it rolls", "B", None, False, "a word beginning with B is not the letter"),
    ("Both", "B", None, False, "a word beginning with B is not the letter"),
    ("a person walks", "A", None, False, "a lower-case article is not the letter"),
    ("The answer is a dog", "A", None, False, "an article after 'the answer is' is not the letter"),
    ("A", "B", None, False, "another letter"),
    ("(A) moves left", "B", None, False, "another letter, bracketed"),
    ("Option A", "B", None, False, "another option"),
    ("A. moves right", "B", ["moves left", "moves right"], False, "letter A wins over B's text"),
    ("moves left", "B", ["moves left", "moves right"], False, "the wrong option's text"),
    ("moves right", "B", None, False, "option text without the options"),
    ("", "B", None, False, "empty answer"),
    ("I think it is B", "B", None, False, "the answer must begin with the choice"),
]


@pytest.mark.parametrize("pred, truth, options, expected, why", MATCH_TABLE)
def test_multiple_choice_matching_is_lenient_about_spelling_not_words(pred, truth, options, expected, why) -> None:
    assert is_correct(pred, truth, options) is expected, why


# (answer block text, truth, correct?, why)
OPEN_TABLE = [
    ("3", "3", True, "numeric: equal"),
    ("3.0", "3", True, "numeric: equal value"),
    ("3 people", "3", True, "numeric: leading number"),
    ("1,000", "1000", True, "numeric: thousands separator"),
    ("2.0000001", "2", True, "numeric: within 1e-6 relative"),
    ("2.00001", "2", False, "numeric: outside 1e-6 relative"),
    ("-3", "3", False, "numeric: sign matters"),
    ("3rd", "3", False, "numeric: an ordinal is not the number"),
    ("three", "3", False, "numeric: words are not read"),
    ("1e3", "1000", True, "numeric: exponent notation"),
    ("Moves right!", "moves right", True, "free text: case and punctuation ignored"),
    ("moves   right", "Moves Right", True, "free text: whitespace collapsed"),
    ("moves left", "moves right", False, "free text: different words"),
    ("moves right quickly", "moves right", False, "free text: exact, not a prefix"),
]


@pytest.mark.parametrize("pred, truth, expected, why", OPEN_TABLE)
def test_numbers_and_free_text(pred, truth, expected, why) -> None:
    assert is_correct(pred, truth) is expected, why


def test_only_the_answer_block_is_scored() -> None:
    # the think text names the right letter, the answer block does not
    assert score(format_completion("it must be B", "A"), "B").correct is False
    assert score(format_completion("it must be A", "B"), "B").correct is True
    assert score("<think>B</think> B", "B").correct is False  # no answer block: wrong


def test_no_ground_truth_is_not_applicable_never_zero() -> None:
    for truth in (None, "", "   "):
        result = score(OK_B, truth)
        assert (result.accuracy_reward, result.correct, result.total) == (None, None, None)
        assert result.total_if_right == pytest.approx(1.75) and result.total_if_wrong == pytest.approx(-0.75)
    broken = score(BROKEN_B, None, config=CORNER)
    assert (broken.total_if_right, broken.total_if_wrong) == (1.0, -2.0)


def test_breakdown_to_dict_is_the_json_object() -> None:
    data = score(OK_B, None).to_dict()
    for key in ("format_ok", "format_error", "think_chars", "length_reward", "format_reward",
                "accuracy_reward", "total", "total_if_right", "total_if_wrong"):
        assert key in data
    assert json.loads(json.dumps(data)) == data and data["total"] is None


def test_config_defaults_and_validation() -> None:
    assert (DEFAULT.r0, DEFAULT.r1, DEFAULT.max_len, DEFAULT.r2, DEFAULT.official_corner) == (0.5, 0.5, 1200, 1.0, False)
    assert RewardConfig(r0=0.2, r1=0.3).r2 == pytest.approx(0.5)  # r2 follows r0 + r1
    assert RewardConfig(r2=0.0).r2 == 0.0  # an explicit 0 is kept, not replaced
    with pytest.raises(AttributeError):
        DEFAULT.r0 = 1.0  # frozen
    bad = [
        (dict(r0=-0.1), "r0 must be a finite number >= 0"),
        (dict(r1=-1), "r1 must be a finite number >= 0"),
        (dict(r2=-1), "r2 must be a finite number >= 0"),
        (dict(r0=float("nan")), "r0 must be a finite number"),
        (dict(r1="lots"), "r1 must be a number"),
        (dict(max_len=0), "max_len must be > 0"),
        (dict(max_len=-5), "max_len must be > 0"),
        (dict(max_len=12.5), "max_len must be a whole number"),
        (dict(official_corner="yes"), "official_corner must be True or False"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            RewardConfig(**kwargs)


# ------------------------------------------------------------------------ batch (TRL) functions


def test_batch_rewards_take_strings_or_conversations() -> None:
    completions = [OK_B, OK_A, BROKEN_B]
    conversational = [[{"role": "assistant", "content": c}] for c in completions]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": c}]}] for c in completions]
    for batch in (completions, conversational, parts):
        assert REWARDS["paper"](batch, answer=["B", "B", "B"]) == pytest.approx([1.75, -0.75, -2.0])
    assert REWARDS["paper"](completions, solution=["<answer>B</answer>"] * 3) == pytest.approx([1.75, -0.75, -2.0])
    assert REWARDS["format"](completions) == pytest.approx([0.75, 0.75, 0.0])
    assert REWARDS["length"](completions) == pytest.approx([0.25, 0.25, 0.0])
    assert REWARDS["accuracy"](completions, answer=["B", None, "A"]) == [1.0, None, 0.0]
    assert REWARDS["paper"](completions) == [None, None, None]  # no ground truth: not applicable
    options = [["moves left", "moves right"]] * 3
    texts = [format_completion("t", "moves right")] * 3
    assert REWARDS["accuracy"](texts, answer=["B"] * 3, options=options) == [1.0, 1.0, 1.0]


def test_registry_names_and_parameters() -> None:
    for name in ("paper", "format", "length", "accuracy", "format_accuracy"):
        assert REWARDS[name].__name__ == name  # what TRL-style logs call it
    with pytest.raises(ValueError, match="known rewards: paper, format, length, accuracy, format_accuracy"):
        get_reward("nope")
    with pytest.raises(ValueError, match="unknown reward parameter"):
        get_reward("paper", alpha=1)
    with pytest.raises(ValueError, match="r0 must be"):
        get_reward("paper", r0=-1)
    with pytest.raises(ValueError, match="3 entries for 2 completions"):
        REWARDS["paper"]([OK_B, OK_A], answer=["B", "B", "B"])
    assert get_reward("paper", max_len=600)([OK_B], answer=["B"]) == pytest.approx([2.0])  # 600 chars = ML
    assert get_reward("paper", official_corner=True)([BROKEN_B], answer=["B"]) == [1.0]


def test_format_accuracy_is_the_paper_reward_without_length() -> None:
    # FR = r0 when the format holds; AR keeps the paper's weight r2 = 1
    fa = REWARDS["format_accuracy"]
    assert fa([OK_B, OK_A, BROKEN_B], answer=["B"] * 3) == pytest.approx([1.5, -0.5, -(0.5 + 0 + 1.0)])
    assert get_reward("format_accuracy", r0=0.2).config.r2 == pytest.approx(0.7)  # r2 = r0 + 0.5 kept
    assert get_reward("format_accuracy", r1=0).config.r2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="r1 is 0 by definition"):
        get_reward("format_accuracy", r1=0.5)


# -------------------------------------------------------------------------------- properties

tag_free = st.text(max_size=40).filter(lambda s: not any(tag in s for tag in TAGS))
tag_soup = st.lists(st.sampled_from([*TAGS, "B", "x", " ", "\n", "(", "."]), max_size=12).map("".join)
truths = st.none() | st.sampled_from(["A", "B", "(C)", "3", "moves right", "", "<answer>B</answer>"]) | st.text(max_size=5)
options_st = st.none() | st.lists(st.text(min_size=1, max_size=8).filter(str.strip), min_size=2, max_size=10)
configs = st.builds(
    RewardConfig,
    r0=st.floats(0, 5),
    r1=st.floats(0, 5),
    max_len=st.integers(1, 3000),
    r2=st.none() | st.floats(0, 5),
    official_corner=st.booleans(),
)


def expected_total(result, config: RewardConfig, correct: bool) -> float:
    if result.format_reward > 0:
        return (config.r2 + result.format_reward) if correct else -result.format_reward
    return config.r2 if (config.official_corner and correct) else -(config.r0 + config.r1 + config.r2)


@settings(max_examples=200, deadline=None)
@given(completion=st.text() | tag_soup, truth=truths, options=options_st, config=configs)
def test_never_raises_values_in_range_and_total_consistent(completion, truth, options, config) -> None:
    result = score(completion, truth, options, config)
    assert 0.0 <= result.length_reward <= config.r1
    assert result.format_reward == 0.0 or config.r0 <= result.format_reward <= config.r0 + config.r1 + 1e-12
    assert result.format_ok == (result.format_error is None)
    assert result.format_ok or result.format_reward == 0.0
    assert math.isclose(result.total_if_right, expected_total(result, config, True), abs_tol=1e-12)
    assert math.isclose(result.total_if_wrong, expected_total(result, config, False), abs_tol=1e-12)
    if result.correct is None:
        assert result.accuracy_reward is None and result.total is None
    else:
        assert result.accuracy_reward == (config.r2 if result.correct else 0.0)
        assert result.total == (result.total_if_right if result.correct else result.total_if_wrong)
        assert -(config.r0 + config.r1 + config.r2) <= result.total <= config.r0 + config.r1 + config.r2


@settings(max_examples=150, deadline=None)
@given(think1=tag_free, think2=tag_free, answer=tag_free, tail=st.sampled_from(["", " x", "\n"]), truth=truths)
def test_editing_the_think_text_never_changes_accuracy(think1, think2, answer, tail, truth) -> None:
    first = score(format_completion(think1, answer) + tail, truth)
    second = score(format_completion(think2, answer) + tail, truth)
    assert (first.accuracy_reward, first.correct) == (second.accuracy_reward, second.correct)


@settings(max_examples=150, deadline=None)
@given(think=tag_free, answer=tag_free, tail=st.text(min_size=1))
def test_text_after_the_answer_block_breaks_the_format(think, answer, tail) -> None:
    assume(tail.strip())
    assert score(format_completion(think, answer), "B").format_ok
    result = score(format_completion(think, answer) + tail, "B")
    assert not result.format_ok and result.format_reward == 0.0


@settings(max_examples=100, deadline=None)
@given(think=tag_free, answer=tag_free)
def test_well_formed_completions_hold_the_format(think, answer) -> None:
    result = score(format_completion(think, answer), None)
    assert result.format_ok and result.format_reward >= 0.5
    assert result.think_chars == len(think.strip())


# A megabyte of each shape a broken or hostile policy can write: tags repeated without a close,
# blocks nested in each other, one open tag before a flood of others.
ADVERSARIAL = {
    "repeated <think>": "<think>" * (1_000_000 // 7),
    "repeated <answer>": "<answer>" * (1_000_000 // 8),
    "nested": "<think><answer>" * (1_000_000 // 15),
    "unclosed": "<think>" + "<answer>x" * (1_000_000 // 9),
    "closes first": "</answer></think>" * (1_000_000 // 17) + "<think>t</think><answer>B</answer>",
}


@pytest.mark.parametrize("shape", ADVERSARIAL)
def test_a_megabyte_of_adversarial_tags_is_scored_in_well_under_a_second(shape: str) -> None:
    completion = ADVERSARIAL[shape]
    assert len(completion) >= 999_000
    started = time.perf_counter()
    result = score(completion, "B", ["left", "right"])
    elapsed = time.perf_counter() - started
    assert not result.format_ok and result.total == -2.0  # every shape fails the format
    assert elapsed < 0.5, f"{shape}: {elapsed:.2f} s (the parser must stay linear)"


# ------------------------------------------------------------------ faithful reasoning: consistency


def test_consistency_reward_follows_the_trace():
    from tinyr1.rewards import REWARDS, get_reward

    opts = ["left", "down", "up", "right"]
    follows = "<think>At the start it is at the top. So it moves down. Answer: down B.</think><answer>B</answer>"
    strays = "<think>At the start it is at the top. So it moves down. Answer: down B.</think><answer>C</answer>"
    contradicts = "<think>So it moves right. Answer: left A.</think><answer>A</answer>"
    silent = "<think>At the start it is at the top.</think><answer>B</answer>"
    texts = [follows, strays, contradicts, silent]
    kw = {"answer": ["B"] * 4, "options": [opts] * 4}
    assert REWARDS["consistency"](texts, **kw) == [1.0, 0.0, 0.0, 0.0]
    assert get_reward("consistency", weight=0.5, penalty=-0.5)(texts, **kw) == [0.5, -0.5, -0.5, -0.5]
    combined = REWARDS["format_accuracy_consistency"](texts, **kw)
    base = REWARDS["format_accuracy"](texts, **kw)
    assert combined == pytest.approx([b + t for b, t in zip(base, [0.5, 0.0, 0.0, 0.0])])
    # a consistent wrong answer still scores below an inconsistent right one
    wrong_but_consistent = REWARDS["format_accuracy_consistency"]([follows], answer=["C"], options=[opts])[0]
    right_but_stray = REWARDS["format_accuracy_consistency"]([strays], answer=["C"], options=[opts])[0]
    assert wrong_but_consistent < right_but_stray
    assert REWARDS["consistency"]([follows], answer=["B"])[0] == 0.0  # without options nothing is concluded


def test_consistency_reward_rejects_bad_parameters():
    from tinyr1.rewards import describe_rewards, get_reward

    assert {"consistency", "format_accuracy_consistency"} <= set(describe_rewards())
    with pytest.raises(ValueError, match="penalty"):
        get_reward("consistency", penalty=0.5)
    with pytest.raises(ValueError, match="unknown reward parameter"):
        get_reward("consistency", r0=1)
    with pytest.raises(ValueError, match="r1 is 0"):
        get_reward("format_accuracy_consistency", r1=0.5)
    assert get_reward("format_accuracy_consistency", r0=0.25).config.r0 == 0.25
