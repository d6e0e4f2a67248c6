"""Spec of tinyr1.evaluate and ``tinyr1 eval``: the report's fields and arithmetic, reproducible
sampling, frames decoded from real mp4 files, the CLI's --json object and its errors.

Run: .venv/bin/pytest tests/test_evaluate.py -q
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from tinyr1.cli import main
from tinyr1.data import VideoQA, load_dataset, write_dataset
from tinyr1.evaluate import METRICS, evaluate, format_table, summarize
from tinyr1.policy import GenerationSettings
from tinyr1.rewards import score
from tinyr1.world import write_split

GREEDY = GenerationSettings(temperature=0.0, max_new_tokens=12)
OPTIONS = ["left", "right", "up", "down"]


@pytest.fixture(scope="module")
def world_jsonl(tmp_path_factory):
    """Eight real mp4 clips of the world's validation split (two per default family)."""
    return write_split("validation", 8, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from tiny import tiny_policy_dir

    return tiny_policy_dir(tmp_path_factory.mktemp("policy") / "tiny")


# ------------------------------------------------------------------ exact arithmetic, scripted


@dataclass
class _Batch:
    texts: list[str]


class ScriptedPolicy:
    """Answers each question with a completion fixed by its id (a stand-in for a model)."""

    name = "scripted"
    num_frames = 2
    quantization = None

    def __init__(self, script: dict[str, str]) -> None:
        self.script = script
        self.calls: list[int] = []

    def sample(self, items, G=1, settings=None):
        assert G == 1
        self.calls.append(len(items))
        return _Batch([self.script[q] for _, q, _ in items])


# (id, family, truth, completion, correct, format_ok, think_chars)
CASES = [
    ("right", "direction", "B", "<think>it goes right</think><answer>B</answer>", True, True, 13),
    ("content", "direction", "B", "<think>so right</think><answer>right</answer>", True, True, 8),  # option text counts
    ("wrong", "count", "A", "<think>two</think><answer>C</answer>", False, True, 3),
    ("broken-right", "count", "A", "<answer>A</answer>", True, False, 0),  # no think: format fails, answer right
    ("empty", "order", "D", "", False, False, 0),
]


def _rows():
    return [VideoQA(video=f"/nowhere/{i}.mp4", question=i, options=OPTIONS, answer=t, id=i, family=f)
            for i, f, t, *_ in CASES]


def _frames(row, n):
    return np.zeros((n, 8, 8, 3), np.uint8)


def test_report_arithmetic_matches_the_reward_per_question():
    policy = ScriptedPolicy({i: c for i, _, _, c, *_ in CASES})
    report = evaluate(policy, _rows(), GREEDY, batch_size=2, frames=_frames, keep_records=True)
    assert policy.calls == [2, 2, 1]  # batched, in order
    for (i, fam, truth, completion, correct, fmt, chars), rec in zip(CASES, report["records"]):
        assert (rec["id"], rec["family"], rec["correct"], rec["format_ok"], rec["think_chars"]) == (i, fam, correct, fmt, chars)
        assert rec["reward"] == score(completion, truth, OPTIONS).total
    n = len(CASES)
    assert report["n"] == n
    assert report["accuracy"] == pytest.approx(3 / n)
    assert report["format_rate"] == pytest.approx(3 / n)
    assert report["mean_think_chars"] == pytest.approx((13 + 8 + 3) / n)
    assert report["mean_reward"] == pytest.approx(sum(score(c, t, OPTIONS).total for _, _, t, c, *_ in CASES) / n)
    fams = report["per_family"]
    assert set(fams) == {"direction", "count", "order"}
    assert fams["direction"] == {"accuracy": 1.0, "format_rate": 1.0, "mean_think_chars": 10.5,
                                 "mean_reward": pytest.approx(fams["direction"]["mean_reward"]),
                                 "consistency": 0.5, "concluded": 0.5, "n": 2}  # "so right" concludes
    assert (fams["count"]["accuracy"], fams["count"]["format_rate"], fams["order"]["accuracy"]) == (0.5, 0.5, 0.0)
    # The overall numbers are the families' numbers weighted by their sizes.
    for key in METRICS[:-1]:
        weighted = sum(m[key] * m["n"] for m in fams.values()) / n
        assert report[key] == pytest.approx(weighted)
    assert sum(m["n"] for m in fams.values()) == n
    table = format_table(report)
    assert "direction" in table and "all" in table.splitlines()[-1]


def test_questions_without_family_or_answer():
    rows = [VideoQA(video="/x.mp4", question="q", options=OPTIONS, answer="A", id="q")]
    report = evaluate(ScriptedPolicy({"q": "<think>a</think><answer>A</answer>"}), rows, GREEDY, frames=_frames)
    assert list(report["per_family"]) == ["-"] and "records" not in report
    with pytest.raises(ValueError, match="no answer"):
        evaluate(ScriptedPolicy({}), [VideoQA(video="/x.mp4", question="q", options=OPTIONS)], GREEDY, frames=_frames)
    with pytest.raises(ValueError, match="no questions"):
        evaluate(ScriptedPolicy({}), [], GREEDY, frames=_frames)


def test_summarize_of_nothing_is_zero():
    assert summarize([]) == {"accuracy": 0.0, "format_rate": 0.0, "mean_think_chars": 0.0, "mean_reward": 0.0,
                             "consistency": 0.0, "concluded": 0.0, "n": 0}


# ------------------------------------------------------------------ a real (random) policy, real mp4s


def test_random_policy_on_world_clips(world_jsonl):
    from tiny import tiny_policy

    rows = load_dataset(world_jsonl)
    policy = tiny_policy()
    report = evaluate(policy, rows, GREEDY, batch_size=3, keep_records=True)
    assert report["n"] == 8 and set(report["per_family"]) == {"count", "direction", "moving_color", "order"}
    assert all(m["n"] == 2 for m in report["per_family"].values())
    assert report["settings"]["num_frames"] == policy.num_frames
    assert 0.0 <= report["accuracy"] <= 1.0 and not math.isnan(report["mean_reward"])
    # Greedy evaluation is deterministic; sampling is reproducible by its seed.
    again = evaluate(policy, rows, GREEDY, batch_size=3, keep_records=True)
    assert [r["completion"] for r in again["records"]] == [r["completion"] for r in report["records"]]
    t1 = GenerationSettings(temperature=1.0, max_new_tokens=12, seed=5)
    a = evaluate(policy, rows, t1, batch_size=4, keep_records=True)
    b = evaluate(policy, rows, t1, batch_size=4, keep_records=True)
    c = evaluate(policy, rows, GenerationSettings(temperature=1.0, max_new_tokens=12, seed=6), batch_size=4, keep_records=True)
    texts = lambda r: [x["completion"] for x in r["records"]]  # noqa: E731
    assert texts(a) == texts(b) and texts(a) != texts(c)


# ------------------------------------------------------------------ the CLI


def test_eval_cli_json(tiny_dir, world_jsonl, capsys):
    code = main(["eval", "--policy", str(tiny_dir), "--data", str(world_jsonl), "--limit", "5",
                 "--max-new-tokens", "8", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)  # exactly one JSON object on standard output
    for key in ("accuracy", "format_rate", "mean_think_chars", "mean_reward", "n", "per_family"):
        assert key in report
    assert report["n"] == 5
    for fam in report["per_family"].values():
        assert set(METRICS) <= set(fam)


def test_eval_cli_world_split_table(tiny_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYR1_CACHE", str(tmp_path))
    code = main(["eval", "--policy", str(tiny_dir), "--split", "test", "--n", "4", "--max-new-tokens", "4",
                 "--temperature", "1.0", "--show", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "world test split" in out and "T=1" in out and "accuracy" in out
    assert out.count("truth ") == 2
    assert out.count("shown (per sampled frame): ") == 2  # the clip's ground truth, to read the trace against
    clips = list(tmp_path.glob("world/test-n4-*/clips/*.mp4"))
    assert len(clips) == 4  # the split was written as real mp4 files, then decoded


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "--limit"),
    (["--n", "0"], "--n"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_eval_cli_bad_numbers(tiny_dir, argv, message, capsys):
    assert main(["eval", "--policy", str(tiny_dir), *argv]) == 2
    assert message in capsys.readouterr().err


def test_eval_cli_unanswered_dataset(tiny_dir, world_jsonl, tmp_path, capsys):
    rows = [VideoQA(video=r.video, question=r.question, options=r.options, id=r.id) for r in load_dataset(world_jsonl)[:2]]
    path = write_dataset(rows, tmp_path / "open.jsonl")  # its clips lie elsewhere: absolute paths
    assert main(["eval", "--policy", str(tiny_dir), "--data", str(path)]) == 2
    assert "--allow-outside-paths" in capsys.readouterr().err  # confined by default, the flag named
    assert main(["eval", "--policy", str(tiny_dir), "--data", str(path), "--allow-outside-paths"]) == 2
    assert "no answer" in capsys.readouterr().err


# ------------------------------------------------------------------ ablations and consistency


def test_ablations_change_only_the_frames(world_jsonl):
    """Each ablation on real decoded clips: what the policy gets, exactly."""
    from tinyr1.evaluate import ABLATIONS, ablate, load_video_frames, mismatch_pairs

    rows = load_dataset(world_jsonl)
    frames = {r.id: load_video_frames(r, 4) for r in rows}
    loader = lambda row, n: frames[row.id]  # noqa: E731
    pairs = mismatch_pairs(rows)
    for i, r in enumerate(rows):
        f = frames[r.id]
        assert np.array_equal(ablate("reversed", rows, loader)(r, 4), f[::-1])
        first = ablate("first-frame", rows, loader)(r, 4)
        assert first.shape == f.shape and all(np.array_equal(x, f[0]) for x in first)
        empty = ablate("empty", rows, loader)(r, 4)
        assert empty.shape == f.shape and (empty == r.extra["facts"]["background"]).all()
        j = pairs[i]
        assert j != i and rows[j].family == r.family  # another clip of the same family
        assert np.array_equal(ablate("mismatched", rows, loader)(r, 4), frames[rows[j].id])
    assert len(ABLATIONS) == 4
    with pytest.raises(ValueError, match="unknown ablation"):
        ablate("upside-down", rows, loader)
    with pytest.raises(ValueError, match="at least 2"):
        mismatch_pairs(rows[:1])


def test_the_shipped_policy_reads_the_video(tmp_path_factory):
    """The shipped policy on 32 real validation clips: the empty scene and another clip's frames
    cost accuracy; reversed frames cost direction (it reads the motion)."""
    from tinyr1.policy import load_policy

    rows = load_dataset(write_split("validation", 32, tmp_path_factory.mktemp("ablate")))
    policy = load_policy()
    settings = GenerationSettings(temperature=0.0, max_new_tokens=96)
    plain = evaluate(policy, rows, settings)
    assert plain["ablation"] is None and plain["consistency"] > 0.5
    for kind in ("empty", "mismatched"):
        ablated = evaluate(policy, rows, settings, ablation=kind)
        assert ablated["ablation"] == kind
        assert ablated["accuracy"] <= plain["accuracy"] - 0.25, (kind, ablated["accuracy"], plain["accuracy"])
    reversed_ = evaluate(policy, rows, settings, ablation="reversed")
    assert reversed_["per_family"]["direction"]["accuracy"] < plain["per_family"]["direction"]["accuracy"]


def test_eval_cli_ablation_and_consistency(tiny_dir, world_jsonl, capsys):
    code = main(["eval", "--policy", str(tiny_dir), "--data", str(world_jsonl), "--max-new-tokens", "8",
                 "--ablation", "reversed", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ablation"] == "reversed"
    assert 0.0 <= report["consistency"] <= 1.0
    assert all("consistency" in m and "concluded" in m for m in report["per_family"].values())
    assert main(["eval", "--policy", str(tiny_dir), "--data", str(world_jsonl), "--ablation", "mismatched",
                 "--limit", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--policy", str(tiny_dir), "--ablation", "sideways"])
    assert exit_.value.code == 2
    main(["eval", "--policy", str(tiny_dir), "--data", str(world_jsonl), "--max-new-tokens", "8", "--limit", "2"])
    assert "consistent" in capsys.readouterr().out  # the table's column
