"""Many visitors on the real served app (tests/app_support.py's launched app, driven with
gradio_client): /reason answers while a GRPO run trains, the next Start is told at once that a
run is training, /reason takes every policy the pickers can offer (registry ids, runs/NAME/final,
a run's checkpoint) and returns plain named values; the public caps (tinyr1/app/training.py).

    .venv/bin/pytest tests/test_app_concurrency.py -q
"""
from __future__ import annotations

import time

import pytest
from gradio_client import Client


from app_support import REASON_OUTPUTS, launched_app, reason_example

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

RESULT, TRAIN_JSON = REASON_OUTPUTS.index("result"), 8
SHORT = dict(max_new_tokens=48, temperature=1.0, seed=1)
TRAIN_FAST = dict(data_source="world", world_n=4, preset="tiny", prompts_per_step=2, num_generations=2,
                  max_new_tokens=16, eval_before=False, eval_n=0)
#: The brief's bound for a Reason answer while a run trains (it waited ~30 s behind a 20-step run).
REASON_WHILE_TRAINING_S = 10


@pytest.fixture(scope="module")
def app():
    return launched_app()


@pytest.fixture(scope="module")
def client(app):
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def example(app):
    return reason_example(app.root)


def _steps(job) -> list[dict]:
    return [o[TRAIN_JSON] for o in job.outputs() if isinstance(o[TRAIN_JSON], dict) and o[TRAIN_JSON].get("phase") == "step"]


@pytest.fixture
def training(client):
    """A long run training in the app's worker (two steps done); stopped afterwards."""
    job = client.submit(**TRAIN_FAST, steps=500, api_name="/train")
    deadline = time.time() + 120
    while len(_steps(job)) < 2:
        assert time.time() < deadline and not job.done(), [o[0] for o in job.outputs()]
        time.sleep(0.05)
    yield job
    client.predict(api_name="/stop_training")


def test_reason_answers_while_a_run_trains(client, example, training):
    for policy in ("tiny-grpo", "tiny-random"):  # the shipped tiny policy, and the random one
        started = time.perf_counter()
        out = client.predict(**example, policy=policy, **SHORT, api_name="/reason")
        seconds = time.perf_counter() - started
        assert out[RESULT]["done"] and out[RESULT]["error"] is None, out[RESULT]
        assert seconds < REASON_WHILE_TRAINING_S, f"/reason took {seconds:.1f} s while a run trained"
    assert not training.done()  # and the run still trains


def test_the_next_start_is_told_at_once_that_a_run_trains(client, training):
    time.sleep(1.0)  # a few steps at a known pace
    started = time.perf_counter()
    out = client.predict(**TRAIN_FAST, steps=3, api_name="/train")
    assert time.perf_counter() - started < REASON_WHILE_TRAINING_S
    assert out[TRAIN_JSON]["phase"] == "busy" and out[TRAIN_JSON]["done"]
    assert out[0].startswith("⏳ busy: a run is training") and " s left" in out[0]


def test_reason_takes_a_tuned_run_and_its_checkpoint_and_names_its_outputs(client, app, example):
    final = client.predict(**TRAIN_FAST, steps=2, api_name="/train")[TRAIN_JSON]
    assert final["phase"] == "done", final
    run = final["run"]
    checkpoint = sorted((app.root / run / "checkpoints").glob("step-*"))[-1]
    for policy in (run, f"{run}/final", f"{run}/checkpoints/{checkpoint.name}"):
        job = client.submit(**example, policy=policy, **SHORT, api_name="/reason")
        job.result()  # waits for the last update
        last = job.outputs()[-1]
        assert last[RESULT]["done"] and last[RESULT]["error"] is None and last[RESULT]["policy"] == policy
        for update in job.outputs():  # plain values only, on every update: no "unchanged" marker
            marked = [i for i, v in enumerate(update) if isinstance(v, dict) and "__type__" in v]
            assert marked == [], update
            files = [v for v in update if isinstance(v, (list, tuple)) and v and isinstance(v[0], dict) and "image" in v[0]]
            assert len(update) == len(REASON_OUTPUTS) and not files  # no gallery of files
    bad = client.predict(**example, policy="runs/../../etc", **SHORT, api_name="/reason")[RESULT]
    assert bad["done"] and "unknown policy" in bad["error"]
    returns = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/reason"]["returns"]
    labels = [r["label"] for r in returns]
    assert labels[0] == "Status" and labels[-1] == "Policy banner" and not any(l.startswith("value_") for l in labels)


def test_public_is_said_by_the_environment_and_limits_hold_for_worker_runs(app, monkeypatch):
    from tinyr1.app import training
    from tinyr1.app.grpo_runner import GRPORunner
    from tinyr1.app.reason import Workbench
    from tinyr1.limits import GRPO_STEPS

    monkeypatch.delenv("TINYR1_PUBLIC", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not training.is_public()
    monkeypatch.setenv("SPACE_ID", "someone/tinyr1")
    assert training.TrainingWorker().describe()["public"]
    # A run over the step cap, started through the worker, ends at once with the limit's message.
    worker, runner = training.TrainingWorker(), GRPORunner(Workbench(app.root))
    job = worker.submit(lambda should_stop: runner.start(world_n=4, steps=GRPO_STEPS.value + 1, eval_n=0,
                                                         preset_name="tiny", should_stop=should_stop))
    updates = list(job.follow())
    assert updates[-1].phase == "error" and GRPO_STEPS.env in updates[-1].error
    assert worker.current() is None  # and the worker is free again
