"""The shipped tiny policies (the cold start, its GRPO-tuned reproduction and the temporal default):
present, small, documented, and better than chance on held-out world questions decoded from real
mp4 files (a fast check of the cards' numbers); the default reads the frames' order.

Run: .venv/bin/pytest tests/test_shipped_policy.py -q
"""
from __future__ import annotations

import json

import pytest

from conftest import ASSETS
from tinyr1.data import load_dataset
from tinyr1.evaluate import evaluate
from tinyr1.policy import GenerationSettings, default_policy_path, default_start_policy_path, load_policy
from tinyr1.world import DEFAULT_FAMILIES, WorldConfig, write_split

COLDSTART = ASSETS / "policies" / "tiny-coldstart"
GRPO = ASSETS / "policies" / "tiny-grpo"
TEMPORAL = ASSETS / "policies" / "tiny-temporal-grpo"
ASSETS_LIMIT = 20 * 1024 * 1024  # everything under assets/: a clone and a Space stay small (the policies are ~5 MB each)
CHANCE = 0.25  # four options


def test_assets_fit_the_budget():
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    assert total <= ASSETS_LIMIT, f"assets/ holds {total / 2**20:.1f} MB"


def test_card_states_how_the_policy_was_made():
    card = (COLDSTART / "README.md").read_text(encoding="utf-8")
    for needed in ("tinyr1 train-tiny", "seed", "T = 1", "greedy", "nf4", "per family", "traces", "--audit"):
        assert needed in card, f"the model card does not mention {needed!r}"
    meta = json.loads((COLDSTART / "policy.json").read_text())
    assert meta["recipe"]["seed"] == 0 and meta["command"].startswith("tinyr1 train-tiny")


def test_grpo_card_states_the_run_that_made_it_and_the_gain():
    card = (GRPO / "README.md").read_text(encoding="utf-8")
    for needed in ("bench/reproduce.py", "tiny-coldstart", "T = 1", "greedy", "cold start", "after GRPO"):
        assert needed in card, f"the tiny-grpo card does not mention {needed!r}"
    meta = json.loads((GRPO / "policy.json").read_text())
    assert meta["kind"] == "grpo" and meta["command"].startswith("python bench/reproduce.py") and meta["seed"] == 0
    for kind in ("greedy", "sampled"):  # it is the cold start, improved: both recorded, after > before
        assert meta["accuracy"][kind] > meta["accuracy_before"][kind]


def test_temporal_card_states_its_stages_and_fresh_numbers_against_tiny_grpo():
    card = (TEMPORAL / "README.md").read_text(encoding="utf-8")
    for needed in ("tinyr1 train-tiny", "--preset temporal-places", "bench/world_mix.py", "tinyr1 train --policy",
                   "bench/fresh_eval.py", "base seed 101", "validation", "tiny-grpo", "consistency", "reversed",
                   "first-frame", "issue 17", "World 2", "World 3"):
        assert needed in card, f"the tiny-temporal-grpo card does not mention {needed!r}"
    meta = json.loads((TEMPORAL / "policy.json").read_text())
    assert meta["kind"] == "grpo" and meta["world_version"] == 3 and meta["baseline"] == "tiny-grpo"
    assert len(meta["stages"]) >= 2 and meta["stages"][0].startswith("tinyr1 train-tiny")
    assert meta["lineage"][0]["kind"] != "grpo" and all(s["kind"] == "grpo" for s in meta["lineage"][1:])
    assert "start" not in meta  # its facts are its own, not its start's
    # shipped as the default because it beats tiny-grpo on fresh data, on the new world and the old one
    assert meta["accuracy"]["greedy"] > meta["baseline_accuracy"]["greedy"]
    assert all(meta["fresh"][w]["greedy"] > 0.85 for w in ("world2", "world3", "world3_seed103"))
    assert meta["fresh"]["world3"]["consistency"] > 0.95 and all(t["met"] for t in meta["targets"])


def test_default_policy_is_the_temporal_one_and_training_starts_from_the_cold_start(monkeypatch):
    monkeypatch.delenv("TINYR1_POLICY", raising=False)
    assert default_policy_path() == TEMPORAL
    assert default_start_policy_path() == COLDSTART


def test_the_default_reads_order_from_the_sequence(tmp_path):
    """World 3's order questions, on its clips and on the same frames reversed: the answers follow
    the order shown (its card: over 90 and under 5 percent on 250 fresh questions; chance is 25)."""
    rows = load_dataset(write_split("test", 24, tmp_path, config=WorldConfig(version=3), families=["order"]))
    policy = load_policy(TEMPORAL)
    greedy = GenerationSettings(temperature=0.0, max_new_tokens=96)
    forward = evaluate(policy, rows, greedy, batch_size=24)
    backward = evaluate(policy, rows, greedy, batch_size=24, ablation="reversed")
    assert forward["accuracy"] >= 0.7 and backward["accuracy"] <= 0.25, (forward["accuracy"], backward["accuracy"])


@pytest.fixture(scope="module")
def test_rows(tmp_path_factory):
    """The first 64 questions of the held-out test split (the card's evaluation starts the same)."""
    return load_dataset(write_split("test", 64, tmp_path_factory.mktemp("test-split")))


@pytest.mark.parametrize("path", [COLDSTART, GRPO, TEMPORAL], ids=["tiny-coldstart", "tiny-grpo", "tiny-temporal-grpo"])
def test_shipped_policy_beats_chance_on_held_out_questions(test_rows, path):
    policy = load_policy(path)
    report = evaluate(policy, test_rows, GenerationSettings(temperature=0.0, max_new_tokens=160), batch_size=64)
    assert report["n"] == 64 and set(report["per_family"]) == set(DEFAULT_FAMILIES)
    assert report["format_rate"] > 0.9
    assert report["accuracy"] > CHANCE + 0.3, report["per_family"]  # the cards: 70% and 82% on 500 questions
    assert all(f["accuracy"] > CHANCE for f in report["per_family"].values()), report["per_family"]
