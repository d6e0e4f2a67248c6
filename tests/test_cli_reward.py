"""``tinyr1 reward``: the table, the JSON object, standard input, and exit status 2 on bad
parameters. All through ``tinyr1.cli.main`` except one run of the real console script.

    .venv/bin/pytest tests/test_cli_reward.py -q
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyr1.cli import main

GOOD = "<think>" + "x" * 600 + "</think><answer>B</answer>"
JSON_KEYS = {"format_ok", "format_error", "think_chars", "length_reward", "format_reward",
             "accuracy_reward", "total", "total_if_right", "total_if_wrong"}


def run_json(capsys, *argv: str) -> dict:
    assert main(["reward", "--json", *argv]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one object, one line
    return json.loads(out)


def test_json_with_an_answer(capsys) -> None:
    data = run_json(capsys, "--completion", GOOD, "--answer", "B")
    assert JSON_KEYS <= set(data)
    assert data["format_ok"] is True and data["format_error"] is None
    assert data["think_chars"] == 600
    assert data["length_reward"] == pytest.approx(0.25) and data["format_reward"] == pytest.approx(0.75)
    assert data["accuracy_reward"] == 1.0 and data["total"] == pytest.approx(1.75)


def test_json_without_an_answer_is_null_not_zero(capsys) -> None:
    data = run_json(capsys, "--completion", GOOD)
    assert data["accuracy_reward"] is None and data["total"] is None
    assert data["total_if_right"] == pytest.approx(1.75) and data["total_if_wrong"] == pytest.approx(-0.75)


def test_reads_standard_input_and_an_empty_completion_fails_the_format(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(GOOD + "\n"))
    assert run_json(capsys, "--answer", "b")["total"] == pytest.approx(1.75)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    data = run_json(capsys, "--answer", "B")
    assert data["format_ok"] is False and data["format_error"] == "the completion is empty"
    assert data["total"] == -2.0


def test_reward_parameters_as_flags(capsys) -> None:
    broken = GOOD + " extra"
    assert run_json(capsys, "--completion", broken, "--answer", "B")["total"] == -2.0
    assert run_json(capsys, "--completion", broken, "--answer", "B", "--official-corner")["total"] == 1.0
    data = run_json(capsys, "--completion", GOOD, "--answer", "B", "--r0", "1", "--r1", "2", "--max-len", "300", "--r2", "5")
    assert data["length_reward"] == 2.0 and data["format_reward"] == 3.0 and data["total"] == 8.0
    data = run_json(capsys, "--completion", "<think>t</think><answer>right</answer>", "--answer", "B",
                    "--options", "left", "right")
    assert data["accuracy_reward"] == 1.0  # the option's text counts as its letter


@pytest.mark.parametrize("flags, phrase", [
    (["--r0", "-1"], "r0 must be a finite number >= 0"),  # negative weight
    (["--max-len", "0"], "max_len must be > 0"),  # no length scale
    (["--r2", "nan"], "r2 must be a finite number"),  # not a number
])
def test_invalid_parameters_exit_2_with_the_reason(capsys, flags, phrase) -> None:
    assert main(["reward", "--completion", GOOD, *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and phrase in captured.err and captured.err.startswith("tinyr1 reward: error:")


def test_the_table_is_readable(capsys) -> None:
    assert main(["reward", "--completion", GOOD + " tail", "--answer", "B"]) == 0
    table = capsys.readouterr().out
    assert "FAILS: text after </answer>" in table
    assert "-(r0 + r1 + r2)" in table and "-2.0000" in table
    assert main(["reward", "--completion", GOOD]) == 0
    table = capsys.readouterr().out
    assert "n/a" in table and "R if right" in table and "+1.7500" in table and "-0.7500" in table


def test_the_console_script_reads_stdin() -> None:
    script = Path(sys.executable).with_name("tinyr1")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([str(script), "reward", "--json", "--answer", "B"], input=GOOD, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == pytest.approx(1.75)
