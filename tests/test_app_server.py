"""The app served for real (``demo.launch`` on a free port) and driven with ``gradio_client``, as a
script would: ``/reason`` streams, ``/reward`` answers at once, bad uploads get a clear message and
the server keeps serving, Stop cancels, and no file beyond what the app serves can be read.

    .venv/bin/pytest tests/test_app_server.py -q

The server runs the real tiny policy on real mp4 clips (tests/app_support.py), once per session.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from gradio_client import Client, handle_file

from tinyr1.format import format_completion
from tinyr1.rewards import score
from tinyr1.app.reason import find_examples
from tinyr1.app.settings import MAX_FILE_SIZE, QUEUE_SIZE

from app_support import REASON_OUTPUTS, ROOT, bad_uploads, launched_app, reason_example

STATUS, THINK, ANSWER, CHART, TABLE, RESULT, BANNER = range(len(REASON_OUTPUTS))
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # inside gradio's queue

SHORT = dict(max_new_tokens=48, temperature=1.0, seed=1)  # sampled: the text varies, tokens are few


@pytest.fixture(scope="module")
def app():
    return launched_app()


@pytest.fixture(scope="module")
def client(app):
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def world_example(app):
    return reason_example(app.root)


def _results(outputs):
    return [o[RESULT] for o in outputs if isinstance(o[RESULT], dict)]


def test_the_api_names_are_stable(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/reason", "/reward", "/train", "/resume"} <= set(endpoints)
    names = [p["parameter_name"] for p in endpoints["/reason"]["parameters"]]
    assert names[:7] == ["video", "question", "option_a", "option_b", "option_c", "option_d", "answer"]


def test_reason_streams_partials_and_ends_with_the_answer_and_its_reward(client, world_example):
    # The random policy rarely ends early: 256 tokens take long enough to stream several updates.
    job = client.submit(**world_example, policy="tiny-random", max_new_tokens=256, temperature=1.0, seed=1, api_name="/reason")
    outputs = list(job)
    results = _results(outputs)
    partial = [r for r in results if "completion" in r and not r["done"]]
    assert len(partial) > 1, f"expected several streamed partials, got {len(partial)}"
    texts = [r["completion"] for r in partial]
    assert all(a == b[: len(a)] for a, b in zip(texts, texts[1:])), "each partial extends the last"
    final = job.outputs()[-1][RESULT]
    assert final["done"] and final["error"] is None
    assert final["completion"].startswith(texts[-1])
    # The answer panel and the reward are those of the final text, scored against the truth given.
    b = score(final["completion"], world_example["answer"], [world_example[f"option_{x}"] for x in "abcd"])
    assert final["reward"] == b.to_dict()
    assert final["reward"]["total"] is not None  # a ground truth was given: a real total
    assert job.outputs()[-1][ANSWER] == final["answer"]
    assert len(final["timestamps"]) >= 1 and final["timestamps"] == sorted(final["timestamps"])
    assert job.outputs()[-1][STATUS].startswith("Done")


def test_reason_without_an_answer_gives_what_ifs(client, app):
    bare = [r for r in find_examples(app.root) if not r[2]][0]
    final = client.predict(video=handle_file(bare[0]), question="What moves?", **SHORT, api_name="/reason")[RESULT]
    assert final["done"] and final["reward"]["total"] is None and final["reward"]["correct"] is None
    assert final["reward"]["total_if_right"] >= final["reward"]["total_if_wrong"]


def test_reward_endpoint_returns_the_breakdown(client):
    completion = format_completion("the square slides to the right", "B. right")
    breakdown, chart, table, summary = client.predict(
        completion=completion, answer="B", options="left\nright", r0=0.5, r1=0.5, max_len=1200, official=False, api_name="/reward"
    )
    expected = score(completion, "B", ["left", "right"]).to_dict()
    assert {k: breakdown[k] for k in expected} == expected
    assert "Total reward +1.5" in summary


@pytest.mark.parametrize("kind", ["text named .mp4", "truncated mp4", "empty file"])
def test_a_bad_upload_gets_a_clear_message_and_the_server_keeps_serving(client, world_example, tmp_path, kind):
    bad = bad_uploads(tmp_path)[kind]
    out = client.predict(video=handle_file(str(bad)), question="What happens?", **SHORT, api_name="/reason")
    assert out[STATUS].startswith("⚠️") and out[RESULT]["done"]
    assert "video" in out[RESULT]["error"].lower()
    # The next good request is served normally.
    good = client.predict(**world_example, **SHORT, api_name="/reason")
    assert good[RESULT]["done"] and good[RESULT]["error"] is None and "reward" in good[RESULT]


def test_missing_inputs_get_a_message(client, world_example):
    out = client.predict(**{**world_example, "question": "  "}, api_name="/reason")
    assert "question is empty" in out[RESULT]["error"]
    out = client.predict(**{**world_example, "option_b": ""}, api_name="/reason")
    assert "option B is empty" in out[RESULT]["error"]


def test_stop_cancels_a_run_and_the_next_one_runs(client, world_example):
    # The random policy: a trained one may finish its short answer before the cancel arrives.
    job = client.submit(**world_example, policy="tiny-random", max_new_tokens=1024, temperature=1.0, seed=3,
                        api_name="/reason")
    deadline = time.time() + 30
    while not any("completion" in r for r in _results(job.outputs())) and time.time() < deadline:
        time.sleep(0.02)
    job.cancel()
    while not job.done() and time.time() < deadline:
        time.sleep(0.05)
    assert job.status().code.name == "CANCELLED"
    assert not any(r.get("done") for r in _results(job.outputs()))  # stopped before the end
    good = client.predict(**world_example, **SHORT, api_name="/reason")
    assert good[RESULT]["done"] and good[RESULT]["error"] is None


def test_a_cancelled_generation_frees_the_model_for_the_next_request(client, world_example):
    job = client.submit(**world_example, policy="tiny-random", max_new_tokens=1024, temperature=1.0, seed=4,
                        api_name="/reason")
    deadline = time.time() + 30
    while not any("completion" in r for r in _results(job.outputs())) and time.time() < deadline:
        time.sleep(0.02)
    job.cancel()
    started = time.perf_counter()
    good = client.predict(**world_example, **SHORT, api_name="/reason")
    assert good[RESULT]["done"] and good[RESULT]["error"] is None
    assert time.perf_counter() - started < 10, "the cancelled generation still held the model"


def test_a_1mb_question_is_refused_at_once_and_the_next_request_is_served(client, world_example):
    started = time.perf_counter()
    out = client.predict(**{**world_example, "question": "why? " * 200_000}, **SHORT, api_name="/reason")
    refused = time.perf_counter() - started
    assert out[RESULT]["done"] and "TINYR1_MAX_QUESTION_CHARS" in out[RESULT]["error"] and out[STATUS].startswith("⚠️")
    assert refused < 1.0, f"refused after {refused:.2f} s"
    started = time.perf_counter()
    good = client.predict(**world_example, **SHORT, api_name="/reason")
    assert good[RESULT]["done"] and good[RESULT]["error"] is None and time.perf_counter() - started < 10


def test_a_2mb_dataset_row_is_refused_at_once(client, world_example, tmp_path):
    row = tmp_path / "huge.jsonl"
    row.write_text(json.dumps({"video": "a.mp4", "question": "q" * (2 << 20), "options": ["a", "b"], "answer": "A"}) + "\n")
    upload = handle_file(str(row))
    started = time.perf_counter()
    out = client.predict(**{**TRAIN_FAST, "data_source": "upload"}, dataset=upload, steps=1, api_name="/train")
    refused = time.perf_counter() - started
    assert out[TRAIN_JSON]["phase"] == "error" and "TINYR1_MAX_DATASET_ROW_BYTES" in out[TRAIN_JSON]["error"]
    assert refused < 1.0, f"refused after {refused:.2f} s"
    started = time.perf_counter()
    good = client.predict(**world_example, **SHORT, api_name="/reason")
    assert good[RESULT]["done"] and good[RESULT]["error"] is None and time.perf_counter() - started < 10


def test_a_huge_group_size_is_refused_with_the_limit_named(client):
    out = client.predict(**{**TRAIN_FAST, "num_generations": 20000}, steps=1, api_name="/train")
    assert out[TRAIN_JSON]["phase"] == "error" and "TINYR1_MAX_GRPO_GROUP_SIZE" in out[TRAIN_JSON]["error"]


def test_a_completion_with_backticks_cannot_break_the_status(client):
    completion = "<think>a</think><answer>B</answer> `<img src=x onerror=alert(1)>"
    breakdown, chart, table, summary = client.predict(completion=completion, answer="B", options="left\nright",
                                                      api_name="/reward")
    from markdown_it import MarkdownIt

    html = MarkdownIt().render(summary)
    assert "<img" not in html and "&lt;img" in html  # shown as text inside one code span
    out = client.predict(completion="<think>" * 30_000, answer="B", options="left\nright", api_name="/reward")
    assert "TINYR1_MAX_COMPLETION_CHARS" in out[0]["error"]


def test_config_and_messages_show_no_absolute_path_of_the_app(app, client, world_example):
    config = urllib.request.urlopen(f"{app.url}config", timeout=10).read().decode()
    assert str(app.root) not in config and str(app.root.resolve()) not in config
    # A run whose data went missing: the loader's message names the file, relative to the app.
    from tinyr1.grpo.config import GRPOConfig

    broken = app.root / "runs" / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "app.json").write_text(json.dumps({"config": GRPOConfig().to_dict(), "data": {"train": "data/train.jsonl"},
                                                 "policy": {"label": "tiny-random", "path": "x"}}))
    out = client.predict(run="runs/broken", steps=None, api_name="/resume")
    assert "runs/broken/data/train.jsonl" in out[TRAIN_JSON]["error"]
    assert str(app.root) not in out[TRAIN_JSON]["error"] and str(app.root) not in out[0]


def test_serving_limits(app):
    demo = app.demo
    assert demo._queue.max_size == QUEUE_SIZE
    reason = next(fn for fn in demo.fns.values() if fn.api_name == "reason")
    assert reason.concurrency_id == "model" and reason.concurrency_limit == 1
    assert demo.max_file_size == MAX_FILE_SIZE == 50 << 20  # tinyr1.limits.UPLOAD_BYTES


@pytest.mark.parametrize("which", ["the repository's pyproject.toml", "/etc/passwd", "an example clip on disk"])
def test_no_file_beyond_what_the_app_serves(app, which):
    path = {
        "the repository's pyproject.toml": ROOT / "pyproject.toml",
        "/etc/passwd": "/etc/passwd",
        "an example clip on disk": find_examples(app.root)[0][0],  # served from gradio's cache copy only
    }[which]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{app.url}gradio_api/file={path}", timeout=10)
    assert err.value.code in (403, 404)


def test_example_clips_are_served_from_gradios_cache(app):
    config = json.loads(urllib.request.urlopen(f"{app.url}config", timeout=10).read())
    dataset = next(c for c in config["components"] if c["type"] == "dataset")
    url = dataset["props"]["samples"][0][0]["url"]
    assert urllib.request.urlopen(url, timeout=10).status == 200


def test_an_upload_over_the_size_limit_is_refused_by_the_server(app):
    """gradio_client checks the limit itself; the server must refuse it too (a browser or curl)."""
    import httpx

    limit = app.demo.max_file_size
    url = f"{app.url}gradio_api/upload"
    over = httpx.post(url, files={"files": ("big.mp4", b"\0" * (limit + 1), "video/mp4")}, timeout=60)
    assert over.status_code == 413 and "size" in over.text
    under = httpx.post(url, files={"files": ("small.mp4", b"\0" * 1000, "video/mp4")}, timeout=60)
    assert under.status_code == 200  # and the next upload is taken


# ------------------------------------------------------------------------------------- /train

#: The smallest real GRPO run through the API: 4 world questions, 2 per step, G 2, 16 tokens.
TRAIN_FAST = dict(data_source="world", world_n=4, preset="tiny", prompts_per_step=2, num_generations=2,
                  max_new_tokens=16, eval_before=False, eval_n=0)
TRAIN_JSON = 8  # /train's outputs: status, 4 plots, group title, group, evaluation, the update as JSON, run


def _updates(outputs):
    return [o[TRAIN_JSON] for o in outputs if isinstance(o[TRAIN_JSON], dict)]


def test_train_yields_one_update_per_step_and_ends_with_the_tuned_policy(client, app, world_example):
    job = client.submit(**TRAIN_FAST, steps=2, api_name="/train")
    updates = _updates(list(job))
    assert [u["step"] for u in updates if u["phase"] == "step"] == [1, 2]
    final = updates[-1]
    assert final["phase"] == "done" and final["done"] and final["error"] is None
    assert {"reward", "accuracy", "format_rate", "think_chars"} <= set(final["metrics"])
    label = final["run"]
    assert (app.root / label / "final" / "config.json").is_file()
    policy_dd, message = client.predict(run=label, api_name="/use_in_reason")
    assert policy_dd["value"] == label and "selected" in message  # the Reason tab's dropdown selects it
    assert label in [value for _, value in policy_dd["choices"]]
    tried = client.predict(**world_example, policy=label, **SHORT, api_name="/reason")[RESULT]
    assert tried["done"] and tried["error"] is None and tried["policy"] == label  # and Reason runs it


def test_train_outlives_its_client_and_stop_training_leaves_a_checkpoint(client, app):
    job = client.submit(**TRAIN_FAST, steps=500, api_name="/train")
    deadline = time.time() + 120
    while len([u for u in _updates(job.outputs()) if u["phase"] == "step"]) < 2 and time.time() < deadline:
        time.sleep(0.02)
    job.cancel()  # a closed tab: the client stops following, the run goes on
    while not job.done() and time.time() < deadline:
        time.sleep(0.05)
    steps = [u["step"] for u in _updates(job.outputs()) if u["phase"] == "step"]
    assert len(steps) >= 2 and steps == list(range(1, len(steps) + 1)) and steps[-1] < 500
    run = app.root / _updates(job.outputs())[-1]["run"]
    followed = client.submit(api_name="/follow")  # a reopened page follows it again
    while not [u for u in _updates(followed.outputs()) if u["phase"] == "step" and u["step"] > steps[-1]]:
        assert time.time() < deadline, "the run kept training after its client left"
        time.sleep(0.05)
    message = client.predict(api_name="/stop_training")
    assert "Stopped" in message and "checkpoint" in message
    saved = [int(p.parent.name[5:]) for p in (run / "checkpoints").glob("step-*/trainer_state.pt")]
    assert saved and steps[-1] < max(saved) < 500
    assert not (run / "final").exists()
    while not followed.done() and time.time() < deadline:
        time.sleep(0.05)
    assert _updates(followed.outputs())[-1]["phase"] == "stopped"  # the follower saw the end too
    resumed = client.predict(run=f"runs/{run.name}", steps=max(saved) + 1, api_name="/resume")[TRAIN_JSON]
    assert resumed["phase"] == "done" and resumed["step"] == max(saved) + 1  # Resume continues it


def test_a_bad_jsonl_gets_a_clear_message_and_the_server_keeps_serving(client, tmp_path):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"video": "a.mp4", "question": "Which way?", "options": ["left", "right"], "answer": "E"}\n')
    out = client.predict(**{**TRAIN_FAST, "data_source": "upload"}, dataset=handle_file(str(bad)), steps=1, api_name="/train")
    update = out[TRAIN_JSON]
    assert update["phase"] == "error" and update["done"] and out[0].startswith("⚠️")
    assert "mine.jsonl line 1" in update["error"] and "'E'" in update["error"]
    # The next upload, a good one (a JSONL naming clips/<id>.mp4 and the clips themselves), trains.
    from tinyr1.world import write_split

    jsonl = write_split("train", 4, tmp_path / "good", progress=False)
    videos = [handle_file(str(p)) for p in sorted((tmp_path / "good" / "clips").glob("*.mp4"))]
    good = client.predict(**{**TRAIN_FAST, "data_source": "upload"}, dataset=handle_file(str(jsonl)), videos=videos,
                          steps=1, api_name="/train")[TRAIN_JSON]
    assert good["phase"] == "done" and good["error"] is None


def test_training_never_holds_the_model_queue(app):
    for name in ("train", "resume", "follow"):
        fn = next(fn for fn in app.demo.fns.values() if fn.api_name == name)
        assert fn.concurrency_id == "train" and fn.concurrency_limit is None
