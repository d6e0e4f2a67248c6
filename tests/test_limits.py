"""The public limits (tinyr1.limits): defaults, the environment variables that change them, the
errors that name them, and the table in docs/RELIABILITY.md.

    .venv/bin/pytest tests/test_limits.py -q
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tinyr1 import limits
from tinyr1.format import LETTERS
from tinyr1.limits import LIMITS, MAX_OPTIONS, MIN_OPTIONS, LimitError, check_option_count, limits_table

ROOT = Path(__file__).resolve().parents[1]


def test_every_limit_has_a_default_a_variable_and_a_docstring() -> None:
    names = [limit.name for limit in LIMITS]
    assert len(set(names)) == len(names)
    for limit in LIMITS:
        assert limit.default >= 1 and limit.doc and limit.unit
        assert limit.env == "TINYR1_MAX_" + limit.name.upper()
    assert limits.DECODED_PIXELS.env == "TINYR1_MAX_DECODED_PIXELS"  # video.py's budget reads this one
    exported = {name for name, value in vars(limits).items() if isinstance(value, limits.Limit)}
    assert len(exported) == len(LIMITS), "every Limit defined is listed in LIMITS"


def test_the_error_names_the_input_the_value_the_limit_and_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("TINYR1_MAX_OPTION_CHARS", raising=False)
    limits.OPTION_CHARS.check(500, "option B")  # at the limit: allowed
    with pytest.raises(LimitError) as info:
        limits.OPTION_CHARS.check(501, "option B")
    assert str(info.value) == "option B is 501 characters; the limit is 500 (set TINYR1_MAX_OPTION_CHARS to raise it)"
    assert (info.value.limit, info.value.seen, info.value.maximum) == ("option_chars", 501, 500)
    assert isinstance(info.value, ValueError)


def test_the_variable_sets_the_limit_at_each_use(monkeypatch) -> None:
    monkeypatch.setenv("TINYR1_MAX_OPTION_CHARS", "1_000")
    assert limits.OPTION_CHARS.value == 1000
    limits.OPTION_CHARS.check(900, "option A")
    monkeypatch.setenv("TINYR1_MAX_OPTION_CHARS", "lots")
    with pytest.raises(ValueError, match="TINYR1_MAX_OPTION_CHARS must be a whole number of characters"):
        limits.OPTION_CHARS.value
    monkeypatch.setenv("TINYR1_MAX_OPTION_CHARS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        limits.OPTION_CHARS.check(1, "option A")
    monkeypatch.setenv("TINYR1_MAX_OPTION_CHARS", " ")
    assert limits.OPTION_CHARS.value == 500  # blank: the default


def test_one_rule_for_the_number_of_options() -> None:
    assert (MIN_OPTIONS, MAX_OPTIONS) == (2, len(LETTERS))  # the letters A-J name them
    for n in (2, 4, 10):
        check_option_count(n)
    for n in (0, 1, 11):
        with pytest.raises(LimitError, match=f"{n} given; a question has 2 to 10 options"):
            check_option_count(n)


def test_the_docs_table_is_the_rendered_one() -> None:
    doc = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "## Limits" in doc
    assert limits_table() in doc, "regenerate the table in docs/RELIABILITY.md from limits_table()"
    for limit in LIMITS:
        assert re.search(rf"\| {limit.name} \|", limits_table())


def test_limits_is_the_bottom_layer() -> None:
    tree = ast.parse((ROOT / "tinyr1" / "limits.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [name for name in imported if name.startswith("tinyr1")]
    assert imported <= {"__future__", "os", "dataclasses"}


def test_the_docstring_example_runs() -> None:
    import doctest

    failed, attempted = doctest.testmod(limits)
    assert attempted > 0 and failed == 0
