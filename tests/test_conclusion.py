"""Spec of tinyr1.conclusion: what a trace concludes and whether the answer follows it, on
hand-written traces, on every family's traces as the world writes them (the training targets),
and on real traces of the shipped policy.

Run: .venv/bin/pytest tests/test_conclusion.py -q
"""
from __future__ import annotations

import pytest

from tinyr1.conclusion import conclusion, is_consistent
from tinyr1.format import LETTERS
from tinyr1.tiny.texts import completion as taught_completion
from tinyr1.world import FAMILIES, make_sample

DIRS = ["left", "down", "up", "right"]


@pytest.mark.parametrize("text, letter", [
    ("<think>At the start ... So it moves down. Answer: down B.</think><answer>B</answer>", "B"),
    ("<think>So it moves down.</think><answer>B</answer>", "B"),
    ("<think>It slides. Therefore the answer is D.</think><answer>D</answer>", "D"),  # a letter alone
    ("<think>Thus: right.</think><answer>D</answer>", "D"),
    ("So it moves up. <answer>C</answer>", "C"),  # no think block: the text before the answer
    ("<think>So it is not left but up.</think><answer>C</answer>", "C"),  # the option named last
])
def test_a_trace_concludes_one_option(text, letter):
    c = conclusion(text, DIRS)
    assert (c.letter, c.reason) == (letter, None)
    assert c.text == DIRS[LETTERS.index(letter)]
    assert is_consistent(text, DIRS)


@pytest.mark.parametrize("text, reason", [
    ("<think>So it moves right. Answer: left A.</think><answer>A</answer>", "different options: A, D"),
    ("<think>At the start the red square is at the left.</think><answer>A</answer>", "no concluding sentence"),
    ("<think>At the start the red square is at the left. So it moves</think><answer>A</answer>", "no concluding"),
    ("<think>So I am not sure.</think><answer>A</answer>", "no concluding sentence"),
    ("", "no concluding sentence"),
])
def test_no_conclusion_is_never_consistent(text, reason):
    c = conclusion(text, DIRS)
    assert c.letter is None and reason in c.reason
    assert not is_consistent(text, DIRS)


def test_an_answer_that_does_not_follow_the_trace():
    trace = "<think>So it moves down. Answer: down B.</think>"
    assert is_consistent(trace + "<answer>B</answer>", DIRS)
    assert is_consistent(trace + "<answer>B. down</answer>", DIRS)
    assert is_consistent(trace + "<answer>down</answer>", DIRS)  # the option's text chooses it too
    assert not is_consistent(trace + "<answer>C</answer>", DIRS)
    assert not is_consistent(trace, DIRS)  # no answer block
    assert conclusion(trace, None).letter is None  # without options nothing is concluded


def test_words_are_whole_and_letters_are_not_articles():
    colors = ["red", "green", "blue", "yellow"]
    # "reddish" is no option; "A red shape" opens with an article, not a concluding marker
    assert conclusion("<think>A red shape appears. So it is reddish.</think>", colors).letter is None
    assert conclusion("<think>So the first colour is green. Answer: green B.</think>", colors).letter == "B"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_worlds_traces_conclude_their_answer(family):
    """The training targets (the world's trace, the lookup sentence, the letter) are consistent;
    the same trace with any other letter in the answer block is not."""
    for seed in range(30):
        s = make_sample(seed, family)
        text = taught_completion(s.think, s.answer_text, s.answer)
        c = conclusion(text, s.options)
        assert (c.letter, c.text) == (s.answer, s.answer_text), (text, c)
        assert is_consistent(text, s.options)
        other = next(L for L in LETTERS[:4] if L != s.answer)
        assert not is_consistent(text.replace(f"<answer>{s.answer}</answer>", f"<answer>{other}</answer>"), s.options)


def test_real_traces_of_the_shipped_policy(tmp_path):
    """The shipped policy's greedy traces on real clips: each one's verdict agrees with a reading
    of the world's own trace grammar ("So ... <option>." and "Answer: <option> <letter>.")."""
    import re

    from tinyr1.data import load_dataset
    from tinyr1.evaluate import evaluate
    from tinyr1.policy import GenerationSettings, load_policy
    from tinyr1.world import write_split

    rows = load_dataset(write_split("validation", 24, tmp_path / "world"))
    report = evaluate(load_policy(), rows, GenerationSettings(temperature=0.0, max_new_tokens=96), keep_records=True)
    by_id = {r.id: r for r in rows}
    concluded = 0
    for rec in report["records"]:
        opts = by_id[rec["id"]].options
        so = re.search(r"So [^.]*?(\w+)\.", rec["completion"])
        lookup = re.search(r"Answer: (\w+) [A-D]\.", rec["completion"])
        assert so and lookup, rec["completion"]  # the shipped policy writes the world's grammar
        said = {so.group(1), lookup.group(1)}
        agree = len(said) == 1 and said <= set(opts)
        assert rec["concluded"] == agree, rec["completion"]
        if agree:
            concluded += 1
            assert rec["consistent"] == (rec["predicted"] == LETTERS[opts.index(said.pop())]), rec["completion"]
    assert concluded >= len(rows) // 2  # most traces conclude one option
