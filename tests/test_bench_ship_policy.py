"""bench/ship_policy.py, which ships a trained tiny policy with a card written from its fresh-data
measurements: the card and policy.json say what the results files say, the lineage is followed
through each stage's policy.json, and the targets are judged from the numbers, not typed in.

Run: .venv/bin/pytest tests/test_bench_ship_policy.py -q
"""
from __future__ import annotations

import importlib.util
import json

from conftest import ROOT
from tinyr1.policy import load_policy
from tinyr1.policy.random import make_random_policy

spec = importlib.util.spec_from_file_location("bench_ship_policy", ROOT / "bench" / "ship_policy.py")
ship_policy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship_policy)

FAMILIES = ship_policy.FAMILIES


def _stat(mean: float) -> dict:
    return {"mean": mean, "se": 0.01, "n": 250}


def _conditions(acc: dict, consistent: float) -> dict:
    """Every condition fresh_eval writes, with ``acc`` per family (and 'all' their mean)."""
    def block(values):
        return {"all": _stat(sum(values.values()) / len(values)), **{f: _stat(v) for f, v in values.items()}}
    out = {}
    for cond in ("greedy", "sampled", "empty", "mismatched", "reversed", "first-frame"):
        values = dict(acc)
        if cond == "reversed":
            values["order"] = 0.05
        if cond == "first-frame":
            values["moving_color"] = 0.3
        out[cond] = {"correct": block(values), "consistent": block({f: consistent for f in FAMILIES})}
    return out


def _results(world: int, policy: str, start: str | None) -> dict:
    policies = {policy: {"conditions": _conditions({"count": 1.0, "direction": 0.7, "moving_color": 0.92,
                                                    "order": 0.85}, 0.96)},
                "tiny-grpo": {"conditions": _conditions({"count": 1.0, "direction": 0.6, "moving_color": 0.9,
                                                         "order": 0.45}, 0.85)}}
    if start:
        policies = {start: {"conditions": _conditions({f: 0.6 for f in FAMILIES}, 0.9)}, **policies}
    gains = {f"tiny-grpo over {policy}, greedy": {"all": {"mean": -0.12, "se": 0.015, "n": 1000}}}
    return {"world_version": world, "n": 1000, "seed": 101, "command": f"python bench/fresh_eval.py --world-version {world}",
            "policies": policies, "gains": gains}


def test_ships_a_policy_with_a_card_from_its_measurements(tmp_path, capsys):
    start = make_random_policy(tmp_path / "cold" / "policy", "test", seed=0)
    meta = json.loads((start / "policy.json").read_text())
    (start / "policy.json").write_text(json.dumps({**meta, "kind": "trained", "training_minutes": 70.0}))
    trained = tmp_path / "run" / "final"
    policy = load_policy(start)
    policy.save(trained, inherit=False, metadata={
        "kind": "grpo", "grpo_steps": 600, "started_from": str(start), "data_fingerprint": "abc",
        "grpo_config": {"rewards": ["format_accuracy", "consistency"], "reward_weights": [1.0, 1.0], "seed": 0}})
    fresh = []
    for world in (3, 2):
        path = tmp_path / f"fresh{world}.json"
        path.write_text(json.dumps(_results(world, str(trained), str(start) if world == 3 else None)))
        fresh.append(str(path))
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps({"n": 400, "data": "world validation split", "audit": {
        "moving: the mover's colour": {"right": 99, "n": 100, "rate": 0.99}}}))
    dest = tmp_path / "assets" / "tiny-new"

    assert ship_policy.main(["--policy", str(trained), "--to", str(dest), "--fresh", *fresh,
                             "--cold-start", str(start), "--stage", "tinyr1 train-tiny --out cold",
                             "--stage", "tinyr1 train --policy cold/policy --out run",
                             "--description", "A test policy.", "--audit", str(audit)]) == 0

    shipped = load_policy(dest)  # a policy folder that loads, with its own metadata
    meta = shipped.metadata
    assert meta["name"] == "tiny-new" and meta["kind"] == "grpo" and "start" not in meta
    assert meta["accuracy"]["greedy"] == (1.0 + 0.7 + 0.92 + 0.85) / 4 and meta["accuracy_before"]["greedy"] == 0.6
    assert meta["baseline_accuracy"]["greedy"] == (1.0 + 0.6 + 0.9 + 0.45) / 4 and set(meta["fresh"]) == {"world3", "world2"}
    assert [s["kind"] for s in meta["lineage"]] == ["trained", "grpo"] and meta["lineage"][1]["grpo_steps"] == 600
    met = {t["target"]: t["met"] for t in meta["targets"]}
    assert met["order"] and met["order, frames reversed"] and met["moving colour"]
    assert met["moving colour, first frame repeated"] and met["consistency, count"]

    card = (dest / "README.md").read_text()
    for needed in ("# tiny-new", "A test policy.", "1. `tinyr1 train-tiny --out cold`", "### World 3", "### World 2",
                   "GRPO, 600 steps, seed 0, reward 1 x format_accuracy + 1 x consistency", "over tiny-grpo, greedy",
                   "+12.0 ± 1.5", "| order, frames reversed | 5.0 | <= 30 | yes |", "| moving: the mover's colour | 99.0% | 100 |"):
        assert needed in card, needed
    assert "order 85.0 (met)" in capsys.readouterr().out


def test_a_policy_missing_from_the_results_is_refused(tmp_path):
    start = make_random_policy(tmp_path / "p", "test", seed=0)
    path = tmp_path / "fresh.json"
    path.write_text(json.dumps(_results(3, "somewhere/else", None)))
    try:
        ship_policy.main(["--policy", str(start), "--to", str(tmp_path / "out"), "--fresh", str(path),
                          "--description", "x"])
    except SystemExit as e:
        assert "is not among the evaluated policies" in str(e)
    else:
        raise AssertionError("a policy the results do not hold was shipped")
    assert not (tmp_path / "out").exists()


def test_a_stage_started_from_a_shipped_policy_takes_on_its_lineage(tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    earlier = [{"path": "runs/cold/policy", "kind": "trained", "training_minutes": 40.0},
               {"path": "runs/g1/final", "kind": "grpo", "grpo_steps": 100, "rewards": ["format_accuracy"],
                "reward_weights": [1.0], "seed": 0}]
    (shipped / "policy.json").write_text(json.dumps({"kind": "grpo", "lineage": earlier}))
    run = tmp_path / "g2"
    run.mkdir()
    (run / "policy.json").write_text(json.dumps({"kind": "grpo", "started_from": str(shipped), "grpo_steps": 50,
                                                 "grpo_config": {"rewards": ["consistency"], "reward_weights": [1.0],
                                                                 "seed": 1}}))
    steps = ship_policy.lineage(run)
    assert [s["path"] for s in steps] == ["runs/cold/policy", "runs/g1/final", str(run)]
    assert steps[-1]["grpo_steps"] == 50 and steps[-1]["seed"] == 1
