"""A GRPO run that cannot learn says so: ``tinyr1.runs.diagnose`` on metrics, then real short runs
(the tiny random policy never follows the format; the shipped cold-start policy sampled almost
greedily gives every answer of a group the same reward) through ``run_grpo``, the app's runner and
``tinyr1 train``.

    .venv/bin/pytest tests/test_runs_diagnosis.py -q
"""
from __future__ import annotations

import pytest

from tinyr1 import runs

from app_support import ROOT, make_root, tiny_policy_dir

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

COLDSTART = ROOT / "assets" / "policies" / "tiny-coldstart"


def _m(fmt: float, zero: float, acc: float = 0.0) -> dict[str, float]:
    return {"format_rate": fmt, "frac_reward_zero_std": zero, "accuracy": acc, "reward": 0.0}


def test_no_format_is_said_first_with_what_to_change():
    d = runs.diagnose([_m(0.0, 1.0)] * 4)
    assert d is not None and d.problem == "no_format" and d.steps == 4
    assert "format never held" in d.message and "cold-start" in d.advice


@pytest.mark.parametrize("acc, says", [(0.0, "too hard"), (1.0, "too easy")])
def test_groups_without_spread_are_said_with_which_way(acc, says):
    d = runs.diagnose([_m(0.5, 0.9, acc)] * 4)
    assert d is not None and d.problem == "no_spread" and says in d.message
    assert "larger G" in d.advice and "temperature" in d.advice


def test_a_run_with_a_signal_is_not_flagged_and_only_the_last_steps_count():
    assert runs.diagnose([_m(0.5, 0.3, 0.5)] * 6) is None
    assert runs.diagnose([]) is None
    recovered = [_m(0.0, 1.0)] * 10 + [_m(0.6, 0.25, 0.5)] * runs.DIAGNOSIS_STEPS
    assert runs.diagnose(recovered) is None
    assert runs.diagnose([_m(0.5, runs.ZERO_SPREAD_SHARE - 0.01, 0.5)] * 4) is None  # below the bar


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from tinyr1.data import load_dataset
    from tinyr1.world import write_split

    return load_dataset(write_split("train", 4, tmp_path_factory.mktemp("world"), progress=False))


def _config(steps: int, **kw):
    from tinyr1.grpo.config import preset

    return preset("tiny", **{"steps": steps, "prompts_per_step": 2, "num_generations": 2, "max_new_tokens": 8, **kw})


def test_a_real_run_on_a_policy_without_the_format_says_so_during_and_at_the_end(rows, tmp_path):
    from tinyr1.policy import load_policy

    events = list(runs.run_grpo(_config(5), lambda: load_policy(tiny_policy_dir()), rows, tmp_path / "run"))
    said = [e for e in events if isinstance(e, runs.CannotLearn)]
    assert len(said) == 1 and said[0].step == runs.DIAGNOSIS_STEPS  # once, as soon as the steps are judged
    assert said[0].diagnosis.problem == "no_format"
    finished = events[-1]
    assert isinstance(finished, runs.Finished) and finished.diagnosis is not None
    assert finished.diagnosis.problem == "no_format"


@pytest.mark.skipif(not COLDSTART.is_dir(), reason="the shipped cold-start policy is not here")
def test_a_format_following_policy_with_no_spread_is_said_to_learn_nothing(rows, tmp_path):
    from tinyr1.policy import load_policy

    # Temperature 0.01: both answers of each group are the same text, so the same reward.
    config = _config(2, temperature=0.01, max_new_tokens=96)
    events = list(runs.run_grpo(config, lambda: load_policy(COLDSTART), rows, tmp_path / "run"))
    finished = events[-1]
    assert isinstance(finished, runs.Finished) and finished.diagnosis is not None
    steps = [e for e in events if isinstance(e, runs.Step)]
    assert all(s.record.metrics["frac_reward_zero_std"] == 1.0 for s in steps)
    assert finished.diagnosis.problem in ("no_spread", "no_format")


def test_the_app_says_it_instead_of_use_in_reason(tmp_path):
    from tinyr1.app.grpo_runner import GRPORunner
    from tinyr1.app.reason import Workbench

    root = make_root(tmp_path, world_examples=0, bare_clip=False)
    runner = GRPORunner(Workbench(root))
    updates = list(runner.start(world_n=4, steps=5, eval_before=False, eval_n=0, policy="tiny-random",
                                preset_name="tiny", prompts_per_step=2, num_generations=2, max_new_tokens=8))
    warned = [u for u in updates if u.phase == "warning" and "format never held" in u.status]
    assert [u.step for u in updates if u.phase == "step"] == [1, 2, 3, 4, 5]  # still one update per step
    assert "format never held" in [u for u in updates if u.phase == "step"][-1].status  # and under each later one
    assert warned, [u.status for u in updates]
    final = updates[-1]
    assert final.phase == "done" and "learned (almost) nothing" in final.status and "What to change" in final.status
    assert "Use in Reason" not in final.status
    assert final.result["diagnosis"]["problem"] == "no_format"


def test_tinyr1_train_says_it_at_the_end(tmp_path, capsys):
    from tinyr1.cli import main
    from tinyr1.world import write_split

    data = write_split("train", 4, tmp_path / "world", progress=False)
    argv = ["train", "--policy", str(tiny_policy_dir()), "--data", str(data), "--out", str(tmp_path / "run"),
            "--threads", "1", "--prompts-per-step", "2", "--num-generations", "2", "--max-new-tokens", "6",
            "--steps", "4", "--preset", "tiny"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning at step 4" in err and "format never held" in err
    assert "learned (almost) nothing" in err and "What to change" in err
