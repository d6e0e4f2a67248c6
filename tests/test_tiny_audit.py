"""Spec of tinyr1.tiny.audit: the world's own traces are true of their clips, statement by
statement; a trace that says something false is caught on exactly that statement; the CLI's
``tinyr1 eval --audit`` reports it.

Run: .venv/bin/pytest tests/test_tiny_audit.py -q
"""
from __future__ import annotations

import json

import pytest

from tinyr1.cli import main
from tinyr1.data import VideoQA
from tinyr1.tiny.audit import audit, audit_trace, format_audit
from tinyr1.tiny.texts import think_for
from tinyr1.world import COLORS, FAMILIES, make_sample, write_split


@pytest.mark.parametrize("family", FAMILIES)
def test_the_worlds_traces_are_true_of_their_clips(family):
    for seed in range(40):
        s = make_sample(seed, family)
        for text in (s.think, think_for(s.think, s.facts, family)):  # as written, and as taught
            statements = audit_trace(text, s.facts, s.question)
            assert statements, text
            assert all(ok for _, ok in statements), (text, statements)


def test_traces_name_shape_kinds_only_where_the_question_asks():
    for seed in range(20):
        for family in ("count", "order", "moving_color"):
            s = make_sample(seed, family)
            assert not any(kind in s.think for kind in ("square", "circle", "triangle", "cross")), s.think
        shape = make_sample(seed, "moving_shape")
        assert shape.facts["objects"][0]["kind"] in shape.think  # the answer is the kind


def test_a_wrong_colour_is_caught_on_that_statement():
    s = make_sample(3, "moving_color")
    mover = s.facts["objects"][0]["color"]
    lie = s.think.replace(f"The {mover} shape moves", f"The {_other_color_not_in(s)} shape moves")
    verdict = dict(audit_trace(lie, s.facts, s.question))
    assert verdict["moving: the mover's colour"] is False
    assert verdict["moving: a still shape's colour"] is True


@pytest.mark.parametrize("family", ["moving_color", "moving_shape"])
def test_places_traces_are_true_of_their_clips_and_a_wrong_place_is_caught(family):
    from tinyr1.world import WorldConfig

    for seed in range(20):
        s = make_sample(seed, family, WorldConfig(version=3))
        taught = think_for(s.think, s.facts, family, moving="places")
        verdict = audit_trace(taught, s.facts, s.question)
        labels = [label for label, _ in verdict]
        assert labels.count("moving: a shape's place at the start") == len(s.facts["objects"]), taught
        assert all(ok for _, ok in verdict), (taught, verdict)
    mover = s.facts["objects"][0]
    start = taught.split(f"The {mover['color']} {mover['kind']} is ", 1)[1].split(",", 1)[0]
    lie = taught.replace(f"The {mover['color']} {mover['kind']} is {start},",
                         f"The {mover['color']} {mover['kind']} is {'at the top' if 'top' not in start else 'at the bottom'},")
    assert ("moving: a shape's place at the start", False) in audit_trace(lie, s.facts, s.question)


def test_a_wrong_kind_is_caught_where_a_trace_names_one():
    s = make_sample(4, "count")
    first = next(o for o in s.facts["objects"] if f"1 {o['color']}" in s.think)
    wrong = next(k for k in ("square", "circle") if k != first["kind"])
    lie = s.think.replace(f"1 {first['color']}", f"1 {first['color']} {wrong}", 1)
    assert ("count: shape kind", False) in audit_trace(lie, s.facts, s.question)
    right = s.think.replace(f"1 {first['color']}", f"1 {first['color']} {first['kind']}", 1)
    assert ("count: shape kind", True) in audit_trace(right, s.facts, s.question)


def test_a_colour_listed_twice_or_absent_is_caught():
    s = next(x for x in (make_sample(k, "count") for k in range(50)) if len(x.facts["objects"]) == 2)
    a, b = [c for c in ("red", "green", "blue", "yellow", "magenta", "cyan") if c in s.think][:2]
    twice = s.think.replace(f"2 {b}", f"2 {a}")
    assert [ok for name, ok in audit_trace(twice, s.facts, s.question) if "listed colour" in name] == [True, False]
    absent = _other_color_not_in(s)
    assert ("count: a listed colour is in the clip (once)", False) in audit_trace(
        s.think.replace(f"1 {a}", f"1 {absent}"), s.facts, s.question)


def _other_color_not_in(sample) -> str:
    shown = {o["color"] for o in sample.facts["objects"]}
    return next(c for c in COLORS if c not in shown)


def test_order_conclusion_must_answer_the_end_asked():
    s = make_sample(2, "order")
    asked = s.facts["query"]
    other = "last" if asked == "first" else "first"
    verdict = dict(audit_trace(s.think.replace(f"So the {asked} colour", f"So the {other} colour"), s.facts, s.question))
    assert verdict["order: conclusion answers the end asked"] is False
    shown = [o["color"] for o in s.facts["objects"]]
    right = shown[0] if asked == "first" else shown[-1]
    wrong = shown[-1] if asked == "first" else shown[0]
    verdict = dict(audit_trace(s.think.replace(f"colour is {right}", f"colour is {wrong}"), s.facts, s.question))
    assert verdict["order: conclusion answers the end asked"] is True
    assert verdict["order: the colour concluded is the one at that end"] is False


def test_direction_places_and_conclusion():
    s = make_sample(6, "direction")
    d = s.facts["direction"]
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}[d]
    verdict = dict(audit_trace(s.think.replace(f"So it moves {d}", f"So it moves {opposite}"), s.facts, s.question))
    assert verdict["direction: the direction concluded"] is False
    assert verdict["direction: the place at the start"] is True
    assert verdict["direction: names the shape asked about"] is True
    other = "magenta triangle" if "magenta triangle" not in s.question else "red square"
    subject = s.question.split("the ", 1)[1].rsplit(" move", 1)[0]
    verdict = dict(audit_trace(s.think.replace(f"the {subject} is", f"the {other} is"), s.facts, s.question))
    assert verdict["direction: names the shape asked about"] is False


def test_audit_tallies_records_and_skips_rows_without_facts():
    samples = [make_sample(k, f) for k, f in enumerate(("count", "order", "direction"))]
    rows = [VideoQA(video=f"{s.id}.mp4", question=s.question, options=s.options, answer=s.answer, id=s.id,
                    family=s.family, extra={"facts": s.facts}) for s in samples]
    rows.append(VideoQA(video="x.mp4", question="What?", options=["a", "b"], answer="A", id="plain"))
    records = [{"id": s.id, "completion": f"<think>{s.think}</think><answer>{s.answer}</answer>"} for s in samples]
    records[0]["completion"] = "<think>I cannot tell.</think><answer>A</answer>"  # no statement to score
    records.append({"id": "plain", "completion": "<think>x</think><answer>A</answer>"})
    report = audit(records, rows)
    assert report["parsed"] == {"right": 2, "n": 3, "rate": 2 / 3}
    assert report["order: conclusion answers the end asked"]["rate"] == 1.0
    assert not any(name.startswith("count:") for name in report)
    assert "| parsed | 66.7% | 3 |" in format_audit(report)


def test_eval_cli_audit(tmp_path, capsys):
    data = write_split("validation", 4, tmp_path / "world")
    # the shipped policy: its traces follow the world's wording, so every one is parsed
    assert main(["eval", "--data", str(data), "--audit", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["audit"]["parsed"]["n"] == 4
    assert report["audit"]["parsed"]["rate"] >= 0.75
    assert main(["eval", "--data", str(data), "--audit"]) == 0
    assert "statement in the trace" in capsys.readouterr().out
