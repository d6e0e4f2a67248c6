"""The shipped examples (assets/examples/examples.jsonl): what the app's first screen offers.

    .venv/bin/pytest tests/test_examples.py -q

Each world example is answered right, in a valid format, by the default policy run greedily
through the app's own Reason path (the same check bench/make_examples.py made when it picked
them); the real clip is labelled as real; the files stay small enough to ship in a Space.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from app_support import ROOT, no_downloaded_models
from tinyr1.app.reason import EXAMPLES_MANIFEST, Workbench, load_examples
from tinyr1.data import load_dataset

EXAMPLES = ROOT / "assets" / "examples"


@pytest.fixture(scope="module")
def shipped():
    with no_downloaded_models():
        bench = Workbench(ROOT)
        bench.policy_choices()  # list the registry now, without downloaded weights
    return bench, load_examples(ROOT)


def test_the_manifest_is_a_valid_dataset_covering_the_question_families():
    rows = load_dataset(EXAMPLES / EXAMPLES_MANIFEST)
    families = {r.family for r in rows if r.extra.get("kind") == "world"}
    assert {"direction", "moving_color", "count", "order"} <= families
    assert all(r.answer and len(r.options) == 4 for r in rows)


def test_labels_say_which_clip_is_synthetic_and_which_is_real(shipped):
    _, examples = shipped
    world = [e for e in examples if e.kind == "world"]
    real = [e for e in examples if e.kind == "real"]
    assert 4 <= len(world) <= 6 and all(e.label.startswith("world clip") for e in world)
    assert [Path(e.row[0]).name for e in real] == ["bbb_clip.mp4"]
    assert "real clip" in real[0].label and "untrained" in real[0].label


def test_examples_are_small():
    total = sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file())
    assert total < 400_000, f"assets/examples holds {total} bytes"


def test_default_policy_answers_every_world_example_right(shipped):
    bench, examples = shipped
    assert bench.default_policy() == "tiny-temporal-grpo"
    for example in (e for e in examples if e.kind == "world"):
        video, question, *options, answer = example.row
        steps = list(bench.reason(video, question, options, answer, None, temperature=0.0))
        reward = steps[-1].result["reward"]
        assert reward["format_ok"], (example.label, steps[-1].result["completion"])
        assert reward["correct"], (example.label, reward["answer_text"], answer)
