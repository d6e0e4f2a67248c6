"""The output format (tinyr1.format): parser verdicts, option lines and the exact prompt.

    .venv/bin/pytest tests/test_format.py -q
"""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyr1.format import (
    GRPO_SUFFIX,
    SYSTEM_PROMPT,
    TAGS,
    build_prompt,
    build_question,
    find_block,
    format_completion,
    parse,
    partial_view,
    render_options,
)

# completion -> the start of the error (None: the format holds)
PARSE_TABLE = [
    ("<think>t</think><answer>B</answer>", None),  # the canonical form
    ("<think>t</think> \n\t <answer>B</answer>", None),  # whitespace between the blocks is allowed
    ("  \n<think>t</think><answer>B</answer>\n ", None),  # the whole completion is stripped first
    ("<think></think><answer></answer>", None),  # empty blocks are still the format
    ("", "the completion is empty"),  # nothing at all
    ("   \n", "the completion is empty"),  # only whitespace
    ("<answer>B</answer>", "missing <think>"),  # no think block
    ("<think>t<answer>B</answer>", "missing </think>"),  # think never closed
    ("<think>t</think>B</answer>", "missing <answer>"),  # answer never opened
    ("<think>t</think><answer>B", "missing </answer>"),  # answer never closed
    ("<think>a</think><think>b</think><answer>B</answer>", "<think> appears 2 times"),  # doubled think
    ("<think>t</think><answer>A</answer><answer>B</answer>", "<answer> appears 2 times"),  # doubled answer
    ("<answer>B</answer><think>t</think>", "tags out of order"),  # blocks swapped
    ("</think>t<think><answer>B</answer>", "tags out of order"),  # think tags swapped
    ("So: <think>t</think><answer>B</answer>", "text before <think>"),  # a preamble
    ("<think>t</think> so B <answer>B</answer>", "text between </think> and <answer>"),  # between
    ("<think>t</think><answer>B</answer> done", "text after </answer>"),  # a tail
    ("<think>t</think><answer>B</answer><|endoftext|>", "text after </answer>"),  # undecoded end token
]


@pytest.mark.parametrize("completion, error", PARSE_TABLE)
def test_parse_reports_why_the_format_fails(completion: str, error: str | None) -> None:
    parsed = parse(completion)
    if error is None:
        assert parsed.ok and parsed.error is None
    else:
        assert not parsed.ok
        assert parsed.error.startswith(error), parsed.error


def test_parse_returns_the_first_blocks_even_when_the_format_fails() -> None:
    parsed = parse("note <think> a </think><answer> B </answer> tail")
    assert (parsed.think, parsed.answer, parsed.ok) == (" a ", " B ", False)
    assert parse("no tags").think is None and parse("no tags").answer is None


def test_render_options_writes_the_papers_lines() -> None:
    assert render_options(["left", "right"]) == "A. left\nB. right"
    assert render_options(["A. left", "B) right"]) == "A. left\nB) right"  # own letters kept
    assert render_options(["  moves\n  left "]) == "A. moves left"  # whitespace collapsed
    assert render_options(None) == "" and render_options([]) == ""
    with pytest.raises(ValueError, match="option B is empty"):
        render_options(["left", "  "])
    with pytest.raises(ValueError, match="between 0 and 10 options"):
        render_options([str(i) for i in range(11)])


def test_build_prompt_is_the_qwen2_base_conversation_exactly() -> None:
    expected = (
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions. USER: <image>\n"
        "Which way does the ball roll?\nA. left\nB. right\n"
        "Output the thinking process in <think> </think> and final answer (option) in "
        "<answer> </answer> tags. ASSISTANT:"
    )
    assert build_prompt("  Which way does the ball roll? ", ["left", "right"]) == expected
    assert build_prompt("Why?", None, suffix=False) == f"{SYSTEM_PROMPT} USER: <image>\nWhy? ASSISTANT:"
    assert build_question("Why?") == f"Why?\n{GRPO_SUFFIX}"
    with pytest.raises(ValueError, match="question is empty"):
        build_question("  ")
    with pytest.raises(ValueError, match="unknown template"):
        build_prompt("Why?", template="llama")


def test_partial_view_shows_a_completion_being_written() -> None:
    assert partial_view("it rolls") == ("it rolls", "")  # no tags yet: all thinking
    assert partial_view("<think>it rolls ri") == ("it rolls ri", "")
    assert partial_view("<think>it rolls</think><answer>B") == ("it rolls", "B")


# Strings built from tags and a few characters: reach the parser's branches more often than text().
tag_soup = st.lists(st.sampled_from([*TAGS, "x", " ", "<", ">", "\n"]), max_size=12).map("".join)
tag_free = st.text(max_size=60).filter(lambda s: not any(tag in s for tag in TAGS))


@settings(max_examples=150, deadline=None)
@given(think=tag_free, answer=tag_free)
def test_format_completion_always_parses_back(think: str, answer: str) -> None:
    parsed = parse(format_completion(think, answer))
    assert parsed.ok and (parsed.think, parsed.answer) == (think, answer)


@settings(max_examples=200, deadline=None)
@given(tag_soup | st.text())
def test_parse_never_raises_and_ok_means_no_error(text: str) -> None:
    parsed = parse(text)
    assert parsed.ok == (parsed.error is None)
    if parsed.ok:  # ok implies the exact shape
        stripped = text.strip()
        assert stripped.startswith("<think>") and stripped.endswith("</answer>")
        assert all(stripped.count(tag) == 1 for tag in TAGS)


# The parser's blocks were once found by these lazy regexes; they are quadratic on unclosed tags,
# so they survive only here, as the reference the linear scan must agree with on short strings.
REFERENCE = {
    "think": re.compile(re.escape("<think>") + r"(.*?)" + re.escape("</think>"), re.S),
    "answer": re.compile(re.escape("<answer>") + r"(.*?)" + re.escape("</answer>"), re.S),
}
# Tag pieces too, so that half tags ("<think", "</") and overlaps are drawn often.
tag_pieces = st.lists(st.sampled_from([*TAGS, "<think", "answer>", "</", "<", ">", "x", " ", "\n"]), max_size=20).map("".join)


def reference_block(text: str, name: str) -> str | None:
    match = REFERENCE[name].search(text)
    return match.group(1) if match else None


@settings(max_examples=400, deadline=None)
@given(tag_pieces | tag_soup | st.text(max_size=40))
def test_the_linear_block_finder_agrees_with_the_reference_regex(text: str) -> None:
    parsed = parse(text)
    stripped = text.strip()
    assert parsed.think == reference_block(stripped, "think")
    assert parsed.answer == reference_block(stripped, "answer")
    assert find_block(text, "<think>", "</think>") == reference_block(text, "think")


def test_the_docstring_examples_run() -> None:
    import doctest

    import tinyr1.format
    import tinyr1.rewards

    for module in (tinyr1.format, tinyr1.rewards):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
