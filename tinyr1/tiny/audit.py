"""Do a policy's reasoning traces describe the clip? Every statement a world trace makes, checked
against the generator's ground truth (the clip's facts), not against the reference text.

    tinyr1 eval --audit                     # the shipped policy, 500 test questions, greedy
    from tinyr1.tiny.audit import audit_trace, audit
    audit_trace(completion, facts, question)          # [(statement, right), ...] for one trace
    audit(records, rows)                              # {statement: {"right", "n", "rate"}}

A statement is only scored when the trace makes it (a trace that lists three shapes is scored on
three colours), so each rate reads "when it says X, X is true this often"; a trace that does not
follow the world's wording scores nothing but "parsed" (the share of traces whose wording was
recognised). The statements, per family (the world's trace grammar, tinyr1/world.py):

- count: how many shapes it lists; each listed colour is one of the clip's shapes, not listed
  twice (the order of the list is a convention, not a statement); the kind, where it names one;
- order: the colours in order of appearance; kinds where named; whether the conclusion answers
  the end the question asks ("first" / "last") and names the colour shown at that end;
- moving colour / moving shape: the mover's colour (and kind where named); each still shape's
  colour (any still shape of the clip) and its place where it states one; the mover's path along its axis where it states one
  ("from the left to the right": the first shipped cold start's wording); in the places trace
  (``moving="places"``, tinyr1.tiny.texts.moving_places) each placed shape's start and end place
  and the mover's colour concluded;
- direction: that it speaks of the shape the question names; where it is at the start and at the end (thirds of the frame: the full place
  the policy is taught, tinyr1.tiny.texts.where, or the world's place along the motion's axis);
  the direction concluded.

Why a module and not a one-off script: the model card's claim that the traces describe the video
is a measured number, so the measurement must be rerunnable on every new policy.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterable, Sequence

from tinyr1.tiny.texts import where
from tinyr1.world import COLORS, SHAPES

_COLOR = "(" + "|".join(COLORS) + ")"
_KIND = "(" + "|".join((*SHAPES, "shape")) + ")"
_NAME = rf"{_COLOR}(?: {_KIND})?"  # "red square", "red shape" or a bare "red" (count lists)
_PLACE = r"(?:at|in) the ((?:top|bottom|middle)(?: (?:left|right|centre))?|left|right|centre)"


def _axis_place(obj: dict[str, Any], frame: int, size: int, axis: str) -> str:
    place = where(obj, frame, size)
    if axis == "x":
        return "left" if "left" in place else "right" if "right" in place else "centre"
    return "top" if "top" in place else "bottom" if "bottom" in place else "middle"


def audit_trace(text: str, facts: dict[str, Any], question: str = "") -> list[tuple[str, bool]]:
    """The statements of one trace (think text or whole completion) with whether each is true of
    the clip described by ``facts`` (a world sample's facts)."""
    family = facts.get("family")
    objs = facts.get("objects") or []
    size = int(facts.get("size", 64))
    last = int(facts.get("num_frames", len(objs[0]["x"]) if objs else 1)) - 1
    out: list[tuple[str, bool]] = []

    def kind_ok(kind: str | None, obj: dict[str, Any], label: str) -> None:
        if kind and kind != "shape":
            out.append((f"{label}: shape kind", kind == obj["kind"]))

    if family == "count":
        m = re.search(r"I count the shapes: (.*?)\. So", text)
        listed = re.findall(rf"\d+ {_NAME}", m.group(1)) if m else []
        if m:
            out.append(("count: how many shapes it lists", len(listed) == len(objs)))
        by_color = {o["color"]: o for o in objs}  # colours are distinct within a clip
        colors = [c for c, _ in listed]
        for k, (color, kind) in enumerate(listed):
            # the order of the list is a convention (the world lists by COLORS), not a statement
            out.append(("count: a listed colour is in the clip (once)", color in by_color and color not in colors[:k]))
            if color in by_color:
                kind_ok(kind, by_color[color], "count")
    elif family == "order":
        said = re.findall(rf"(?:a|an) {_NAME} appears", text)
        for (color, kind), obj in zip(said, objs):
            out.append(("order: colour at its place in the sequence", color == obj["color"]))
            kind_ok(kind, obj, "order")
        if said:
            out.append(("order: colours listed = shapes shown", len(said) == len(objs)))
        q = re.search(rf"So the (first|last) colour is {_COLOR}", text)
        if q:
            out.append(("order: conclusion answers the end asked", q.group(1) in question))
            target = objs[int(facts.get("target", 0 if q.group(1) == "first" else len(objs) - 1))]
            out.append(("order: the colour concluded is the one at that end", q.group(2) == target["color"]))
    elif family in ("moving_color", "moving_shape"):
        mover, stills = objs[0], objs[1:]
        m = re.search(rf"The {_NAME} moves", text)
        if m:
            out.append(("moving: the mover's colour", m.group(1) == mover["color"]))
            kind_ok(m.group(2), mover, "moving")
        path = re.search(r"moves from the (\w+) to the (\w+)", text)
        if path:
            axis = "x" if path.group(1) in ("left", "right", "centre") else "y"
            truth = (_axis_place(mover, 0, size, axis), _axis_place(mover, last, size, axis))
            out.append(("moving: the mover's path", path.groups() == truth))
        still_colors = {o["color"]: o for o in stills}
        for color, kind, place in re.findall(rf"The {_NAME} stays(?: still| {_PLACE})?", text):
            out.append(("moving: a still shape's colour", color in still_colors))
            if color in still_colors:
                kind_ok(kind, still_colors[color], "moving")
                if place:
                    out.append(("moving: a still shape's place", place == where(still_colors[color], 0, size)))
        # The places trace (tinyr1.tiny.texts.moving_places): each shape's start and end place,
        # then "So the moving shape is red."
        by_color = {o["color"]: o for o in objs}
        for color, kind, start, end in re.findall(rf"The {_NAME} is {_PLACE}, then {_PLACE}", text):
            obj = by_color.get(color)
            out.append(("moving: a shape it places is in the clip", obj is not None))
            if obj is not None:
                kind_ok(kind, obj, "moving")
                out.append(("moving: a shape's place at the start", start == where(obj, 0, size)))
                out.append(("moving: a shape's place at the end", end == where(obj, last, size)))
        concluded = re.search(rf"So the moving shape is {_COLOR}\b", text)
        if concluded and not m:
            out.append(("moving: the mover's colour", concluded.group(1) == mover["color"]))
    elif family == "direction":
        obj = objs[0]
        axis = "x" if facts.get("direction") in ("left", "right") else "y"

        def place_ok(said: str, frame: int) -> bool:
            # the full place (what the policy is taught) or the world's own axis-only words
            return said in (where(obj, frame, size), _axis_place(obj, frame, size, axis))

        named = re.search(r"the (\w+ \w+) move", question)
        subject = re.search(rf"At the start the ({_NAME}) is", text)
        if named and subject:
            out.append(("direction: names the shape asked about", subject.group(1) == named.group(1)))
        start = re.search(rf"At the start the [\w ]+? is {_PLACE}", text)
        end = re.search(rf"At the end it is (?:\w+ \w+, still |higher, still |lower, still )?{_PLACE}", text)
        if start:
            out.append(("direction: the place at the start", place_ok(start.group(1), 0)))
        if end:
            out.append(("direction: the place at the end", place_ok(end.group(1), last)))
        d = re.search(r"So it moves (\w+)", text)
        if d:
            out.append(("direction: the direction concluded", d.group(1) == facts.get("direction")))
    return out


def audit(records: Iterable[dict[str, Any]], rows: Sequence[Any]) -> dict[str, dict[str, float | int]]:
    """Statement accuracy over evaluation ``records`` (tinyr1.evaluate, keep_records=True) of
    world ``rows`` (matched by id). Rows without world facts are skipped. Adds "parsed": the share
    of world traces in which at least one statement was recognised."""
    by_id = {r.id: r for r in rows}
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    seen = parsed = 0
    for rec in records:
        row = by_id.get(rec.get("id"))
        facts = row.extra.get("facts") if row is not None and row.extra else None
        if not isinstance(facts, dict) or "objects" not in facts:
            continue
        statements = audit_trace(rec.get("completion", ""), facts, row.question)
        seen += 1
        parsed += bool(statements)
        for name, ok in statements:
            tally[name][0] += int(ok)
            tally[name][1] += 1
    report: dict[str, dict[str, float | int]] = {
        name: {"right": r, "n": n, "rate": r / n} for name, (r, n) in sorted(tally.items())}
    if seen:
        report["parsed"] = {"right": parsed, "n": seen, "rate": parsed / seen}
    return report


def format_audit(report: dict[str, dict[str, float | int]]) -> str:
    """A markdown table of ``audit``'s report."""
    lines = ["| statement in the trace | right | n |", "|---|---|---|"]
    for name, s in report.items():
        lines.append(f"| {name} | {100 * s['rate']:.1f}% | {s['n']} |")
    return "\n".join(lines)
