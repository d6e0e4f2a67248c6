"""tinyr1.runs: the run store (folders, labels, newest step, per-step history) and the
load -> evaluate -> train -> evaluate sequence as events, on a real short run.

    .venv/bin/pytest tests/test_runs.py -q

Runs use the real tiny random policy (tests/app_support.py) on real world clips with few, short
samples (G 2, 2 questions per step, 8 new tokens), so a step takes a fraction of a second.
"""
from __future__ import annotations

import json

import pytest

from tinyr1 import runs

from app_support import tiny_policy_dir


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from tinyr1.data import load_dataset
    from tinyr1.world import write_split

    return load_dataset(write_split("train", 4, tmp_path_factory.mktemp("world"), progress=False))


def _config(steps: int):
    from tinyr1.grpo.config import preset

    return preset("tiny", steps=steps, prompts_per_step=2, num_generations=2, max_new_tokens=8)


def _policy():
    from tinyr1.policy import load_policy

    return load_policy(tiny_policy_dir())


def _evaluate(policy, rows):
    from tinyr1.evaluate import evaluate
    from tinyr1.policy import GenerationSettings

    report = evaluate(policy, rows, GenerationSettings(max_new_tokens=8, temperature=0.0, seed=0), batch_size=16)
    report.pop("records", None)
    return report


# ------------------------------------------------------------------------------ the run store


def test_run_folders_are_new_listed_newest_first_and_labels_stay_inside(tmp_path):
    first, second = runs.new_run_dir(tmp_path), runs.new_run_dir(tmp_path)
    assert first != second and first.parent == second.parent == tmp_path / "runs"
    assert runs.list_runs(tmp_path) == []  # no app.json: not a run the app started
    for path in (first, second):
        (path / runs.RUN_FILE).write_text(json.dumps({"config": {"steps": 5}}))
    assert runs.list_runs(tmp_path) == [runs.run_label(second), runs.run_label(first)]
    assert runs.run_dir_of(tmp_path, runs.run_label(first)) == first.resolve()
    assert runs.run_choices(tmp_path)[0] == (f"{runs.run_label(second)} · step 0/5", runs.run_label(second))
    for label in ("runs/../x", "/etc", "runs/none", ""):
        with pytest.raises(ValueError, match="no run"):
            runs.run_dir_of(tmp_path, label)


def test_newest_step_counts_complete_checkpoints_only(tmp_path):
    # 3 has its state but not the manifest that tinyr1.checkpoints writes last; 4 has neither.
    for step, files in ((1, ("trainer_state.pt", "manifest.json")), (2, ("trainer_state.pt", "manifest.json")),
                        (3, ("trainer_state.pt",)), (4, ())):
        folder = tmp_path / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_bytes(b"")
    assert runs.newest_step(tmp_path) == 2 and runs.newest_step(tmp_path / "none") == 0


def _app_run(root, name: str, created_by: str | None, age_hours: float, now: float):
    import json
    import os

    folder = root / "runs" / name
    folder.mkdir(parents=True)
    info = folder / runs.RUN_FILE
    info.write_text(json.dumps({"created_by": created_by} if created_by else {}))
    os.utime(info, (now - age_hours * 3600, now - age_hours * 3600))
    return folder


def test_prune_deletes_old_and_surplus_app_runs_and_never_a_cli_run(tmp_path):
    now = 1_000_000_000.0
    for i, age in enumerate((1, 2, 3, 30)):
        _app_run(tmp_path, f"app{i}", "app", age, now)
    cli = _app_run(tmp_path, "cli", None, 100, now)
    deleted = runs.prune_app_runs(tmp_path, max_age_hours=24, max_count=2, now=now)
    assert sorted(deleted) == ["runs/app2", "runs/app3"]  # app3 by age, app2 beyond the newest two
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["app0", "app1", "cli"] and cli.is_dir()
    assert runs.prune_app_runs(tmp_path, max_age_hours=0, max_count=None, now=now + 10**6) == []  # no limits


def test_history_keeps_the_steps_up_to_a_checkpoint(tmp_path):
    path = tmp_path / "plots.jsonl"
    for step in (1, 2, 3):
        runs.append_history(path, {"step": step, "v": step * 10})
    assert [h["v"] for h in runs.read_history(path, 2)] == [10, 20]
    runs.truncate_history(path, 1)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1]
    assert runs.read_history(tmp_path / "none.jsonl", 5) == []


# ---------------------------------------------------------------------------------- a run


def test_a_run_yields_its_events_in_order_and_writes_its_files(rows, tmp_path):
    events = list(runs.run_grpo(_config(2), _policy, rows, tmp_path / "run", eval_rows=rows[:2], evaluate=_evaluate,
                                eval_before=True, eval_after=True))
    kinds = [type(e).__name__ for e in events]
    # The random policy never writes the format: the run says once that it cannot learn (test_runs_diagnosis.py).
    assert kinds == ["RunStarted", "Evaluating", "Evaluated", "Training", "Step", "Step", "CannotLearn", "Trained",
                     "Evaluating", "Evaluated", "Finished"]
    assert [e.step for e in events if isinstance(e, runs.Step)] == [1, 2]
    finished = events[-1]
    assert finished.final == tmp_path / "run" / "final" and runs.is_finished(tmp_path / "run")
    assert finished.steps == 2 and finished.last_metrics == events[5].record.metrics
    assert set(finished.evals) == {"eval_before", "eval_after"} and finished.evals["eval_after"]["n"] == 2
    assert json.loads((tmp_path / "run" / runs.EVAL_FILE).read_text()) == finished.evals


def test_should_stop_ends_after_the_step_with_a_checkpoint_and_resume_continues(rows, tmp_path):
    out = tmp_path / "run"
    events = list(runs.run_grpo(_config(4), _policy, rows, out, should_stop=lambda: True))
    assert isinstance(events[-1], runs.Stopped) and events[-1].step == 1
    assert events[-1].checkpoint == out / "checkpoints" / "step-000001" and runs.newest_step(out) == 1
    assert not runs.is_finished(out)
    resumed = list(runs.run_grpo(_config(4), _policy, rows, out, resume=True))
    assert resumed[0].start_step == 1 and [e.step for e in resumed if isinstance(e, runs.Step)] == [2, 3, 4]
    assert isinstance(resumed[-1], runs.Finished)


def test_closing_the_events_writes_the_checkpoint_of_the_last_completed_step(rows, tmp_path):
    out = tmp_path / "run"
    events = runs.run_grpo(_config(4), _policy, rows, out)
    for event in events:
        if isinstance(event, runs.Step) and event.step == 2:
            break
    events.close()  # what the app's Stop and Ctrl-C do
    assert runs.newest_step(out) == 2 and not runs.is_finished(out)


def test_failures_end_the_stream_with_their_stage(rows, tmp_path):
    def broken():
        raise OSError("no such policy")

    events = list(runs.run_grpo(_config(1), broken, rows, tmp_path / "a"))
    assert [type(e).__name__ for e in events] == ["Failed"] and events[0].stage == "load"
    assert "no such policy" in events[0].message
    from tinyr1.grpo.config import GRPOConfigError

    events = list(runs.run_grpo(_config(1), _policy, [], tmp_path / "b"))
    assert isinstance(events[-1], runs.Failed) and events[-1].stage == "train"
    assert isinstance(events[-1].error, GRPOConfigError) and "empty" in events[-1].message

    def failing(policy, rows):
        raise RuntimeError("evaluator down")

    events = list(runs.run_grpo(_config(1), _policy, rows, tmp_path / "c", eval_rows=rows, evaluate=failing,
                                eval_before=True))
    assert events[-1].stage == "eval_before" and not (tmp_path / "c" / "checkpoints").exists()
