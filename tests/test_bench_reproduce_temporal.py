"""bench/reproduce_temporal.py, the temporal recipe's one-command reproduction: its steps run end to
end on a few questions with the real tiny policy, and its verdict reads the gains and the time
right (the documented run takes about 25 minutes and lives in docs/RESULTS.md, not here).

Run: .venv/bin/pytest tests/test_bench_reproduce_temporal.py -q
"""
from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_reproduce_temporal", ROOT / "bench" / "reproduce_temporal.py")
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)


def _results(greedy: tuple[float, float], sampled: tuple[float, float]) -> dict:
    gain = lambda m, se: {"all": {"mean": m / 100, "se": se / 100, "n": 1000}}  # noqa: E731
    return {"gains": {"B over A, greedy": gain(*greedy), "B over A, sampled": gain(*sampled)}}


def test_the_verdict_needs_both_gains_and_the_time():
    ok = rt.verdict(_results((8.5, 1.5), (11.0, 1.2)), "A", "B", minutes=24.0)
    assert ok["met"] and [t["met"] for t in ok["targets"]] == [True, True, True]
    sampled = ok["targets"][0]
    assert sampled["target"] == "gain sampled >= +10" and abs(sampled["se_above_target"] - 1 / 1.2) < 1e-9
    assert not rt.verdict(_results((7.9, 1.5), (11.0, 1.2)), "A", "B", minutes=24.0)["met"]  # greedy short
    assert not rt.verdict(_results((8.5, 1.5), (11.0, 1.2)), "A", "B", minutes=31.0)["met"]  # too slow
    resumed = rt.verdict(_results((8.5, 1.5), (11.0, 1.2)), "A", "B", minutes=3.0, one_sitting=False)
    assert resumed["targets"][2]["met"] is None and resumed["met"] is False  # a resumed run times nothing
    assert "not timed" in rt.markdown({"command": "c", "minutes": 3.0, "step_minutes": {"eval": 3.0},
                                       "verdict": resumed})


def test_the_steps_run_end_to_end_and_a_second_run_resumes(tmp_path):
    out = tmp_path / "rt"
    argv = ["--policy", str(ROOT / "assets" / "policies" / "tiny-coldstart"), "--steps", "2", "--n", "8",
            "--samples", "1", "--world3-n", "8", "--world2-n", "4", "--threads", "1", "--out", str(out)]
    assert rt.main(argv) == 0
    rows = (out / "mix" / "data.jsonl").read_text().splitlines()
    assert len(rows) == 12 and {json.loads(r)["id"][:3] for r in rows} == {"w3-", "w2-"}
    assert (out / "grpo" / "final" / "config.json").is_file()
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["world_version"] == 3 and results["n"] == 8
    assert set(next(iter(results["policies"].values()))["conditions"]) == {"greedy", "sampled"}  # no ablations
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["step_minutes"]) == {"data", "train", "eval"}
    assert summary["verdict"]["targets"][2]["met"] is True  # one sitting, well under 30 minutes
    assert "| gain greedy >= +8 |" in (out / "SUMMARY.md").read_text()

    assert rt.main(argv) == 0  # the data is kept, training resumes from its end
    again = json.loads((out / "summary.json").read_text())
    assert "data" not in again["step_minutes"] and again["resumed"] and again["verdict"]["targets"][2]["met"] is None


def test_a_folder_that_is_not_a_policy_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        rt.main(["--policy", str(tmp_path), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "not a policy folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
