"""The GRPO tab's work called as plain functions (no server): a run streams one update per step with
the plots' data, the latest group's completions and the evaluation before and after; Stop leaves a
checkpoint and Resume continues it; uploads are checked and a bad one says what to fix; the tuned
policy becomes selectable in the Reason tab.

    .venv/bin/pytest tests/test_app_grpo.py -q

Runs use the real tiny random policy (tests/app_support.py) on real world clips with few, short
samples (G 2, 2 questions per step, 16 new tokens), so a step takes a fraction of a second.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tinyr1.rewards import score
from tinyr1.app.grpo_runner import GRPORunner, grpo_config, grpo_defaults
from tinyr1.app.reason import Workbench
from tinyr1.app.tables import PLOT_SERIES
from tinyr1.app.uploads import HELDOUT_MIN_ROWS, split_heldout
from tinyr1.registry import find_policies
from tinyr1.runs import list_runs, run_dir_of

from app_support import make_root

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

#: The smallest real run: two questions per step, two answers each, 16 tokens, tiny preset.
FAST = dict(preset_name="tiny", prompts_per_step=2, num_generations=2, max_new_tokens=16)


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> GRPORunner:
    root = make_root(tmp_path_factory.mktemp("grpo-root"), world_examples=0, bare_clip=False)
    return GRPORunner(Workbench(root))


@pytest.fixture(scope="module")
def world_run(runner):
    """One complete 3-step run on 4 world questions with evaluation before and after."""
    return list(runner.start(world_n=4, steps=3, eval_before=True, eval_n=4, **FAST))


# ------------------------------------------------------------------------------- settings


def test_the_tab_shows_the_papers_recipe_and_the_tiny_preset_differs_where_it_should():
    paper, tiny = grpo_defaults("paper"), grpo_defaults("tiny")
    assert (paper["num_generations"], paper["temperature"], paper["max_new_tokens"]) == (8, 1.0, 512)
    assert (paper["learning_rate"], paper["beta"], paper["num_iterations"], paper["loss_type"]) == (1e-6, 0.01, 1, "grpo")
    assert tiny["learning_rate"] > 10 * paper["learning_rate"]  # the point of the tiny preset
    assert {k for k in paper if paper[k] != tiny[k]} <= {"learning_rate", "beta", "max_new_tokens"}


def test_ui_numbers_become_a_validated_config():
    c = grpo_config("tiny", steps=3.0, num_generations=4.0, reward="format", learning_rate=2e-4)
    assert (c.steps, c.num_generations, c.rewards, c.learning_rate) == (3, 4, ("format",), 2e-4)
    assert c.lr_scheduler == "cosine"  # from the preset, not shown in the tab
    from tinyr1.grpo import GRPOConfigError

    with pytest.raises(GRPOConfigError, match="num_generations must be an integer >= 2"):
        grpo_config("paper", num_generations=1)


# ------------------------------------------------------------------------------- a whole run


def test_a_run_streams_one_update_per_step_then_the_evaluation(world_run):
    phases = [u.phase for u in world_run]
    assert phases[0] == "prepare" and phases[-1] == "done" and "error" not in phases
    steps = [u for u in world_run if u.phase == "step"]
    assert [u.step for u in steps] == [1, 2, 3], "one update per step, in order"
    assert phases.index("eval") < phases.index("step") < len(phases) - 1 - phases[::-1].index("eval")  # before, then after
    final = world_run[-1]
    assert final.result["done"] and final.result["eval_before"]["n"] == 4 and final.result["eval_after"]["n"] == 4
    assert list(final.evals["metric"][:2]) == ["accuracy", "format rate"] and "—" not in set(final.evals["after"])
    assert not any(u.result.get("done") for u in world_run[:-1])


def test_every_step_update_carries_the_plots_in_long_format(world_run):
    for u in (u for u in world_run if u.phase == "step"):
        for plot, series in PLOT_SERIES.items():
            df = u.plots[plot]
            assert list(df.columns) == ["step", "name", "value"]
            if plot == "kl":  # the tiny preset has beta 0: no reference, no KL
                assert df.empty
                continue
            assert set(df["name"]) == set(series), plot
            assert sorted(set(df["step"])) == list(range(1, u.step + 1)), "the history so far"
        last = u.plots["quality"].query("step == @u.step").set_index("name")["value"]
        assert last["accuracy"] == u.result["metrics"]["accuracy"]
        assert last["format rate"] == u.result["metrics"]["format_rate"]


def test_the_completions_table_holds_the_latest_group_with_its_rewards(world_run, runner):
    u = [u for u in world_run if u.phase == "step"][-1]
    table = u.group
    assert len(table) == FAST["num_generations"] and table["completion"].str.len().min() > 0
    # The paper's reward of each completion against the question the title names.
    rollouts = [json.loads(line) for line in (runner.root / u.run / "rollouts.jsonl").read_text().splitlines()]
    group = rollouts[-1]["groups"][-1]
    assert list(table["completion"]) == group["completions"]
    expected = [score(t, group["answer"], group["options"]).total for t in group["completions"]]
    assert list(table["reward"]) == pytest.approx(expected, abs=1e-4)
    assert list(table["advantage"]) == pytest.approx(group["advantages"], abs=1e-4)
    assert f"Step {u.step}" in u.group_title and f"**{group['answer']}**" in u.group_title


def test_the_tuned_policy_becomes_selectable_in_reason(world_run, runner):
    run = world_run[-1].run
    label, message = runner.use_in_reason(run)
    assert label == run and label in find_policies(runner.root) and "selected" in message
    from tinyr1.policy import load_policy

    tuned = load_policy(find_policies(runner.root)[label])
    assert tuned.metadata.get("kind") == "grpo" and tuned.metadata.get("grpo_step") == 3
    # what the start says of itself (how it was made, what it scored) is kept apart, not shown as this policy's
    start = tuned.metadata["start"]
    own = {k for k in start if k not in ("name", "kind")} - {"dtype", "architecture", "template"}
    assert own and not own & set(tuned.metadata), sorted(own & set(tuned.metadata))


# ------------------------------------------------------------------------------ stop, resume


def test_stop_leaves_a_checkpoint_and_resume_continues_from_it(runner):
    run = runner.start(world_n=4, steps=4, eval_before=False, eval_n=0, **FAST)
    seen = []
    for u in run:
        seen.append(u)
        if u.step == 2:
            break
    label = seen[-1].run
    run.close()  # what gradio does on Stop
    assert "after step 2" in runner.wait_closed(label, timeout=30)
    run_dir = runner.root / label
    assert (run_dir / "checkpoints" / "step-000002" / "trainer_state.pt").is_file()
    assert not (run_dir / "final").exists()
    label_now, message = runner.use_in_reason(label)
    assert label_now is None and "Resume" in message  # no tuned policy before the run ends

    resumed = list(runner.resume(label))
    steps = [u.step for u in resumed if u.phase == "step"]
    assert steps == [3, 4], "continues after the checkpoint, one update per step"
    assert "resumed from the checkpoint of step 2" in next(u.status for u in resumed if u.phase == "step")
    last = [u for u in resumed if u.phase == "step"][-1]
    assert sorted(set(last.plots["reward"]["step"])) == [1, 2, 3, 4], "the plots keep the steps before the stop"
    assert resumed[-1].phase == "done" and (run_dir / "final" / "config.json").is_file()
    metrics = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [1, 2, 3, 4]
    again = list(runner.resume(label))  # a finished run says how to extend it
    assert again[-1].phase == "done" and "above 4" in again[-1].status


@pytest.mark.parametrize(
    "label",
    [
        "runs/../assets",  # out of the runs folder
        "/etc",  # an absolute path
        "runs/no-such-run",  # not a run of this app
    ],
)
def test_a_run_label_never_leaves_the_runs_folder(runner, label):
    with pytest.raises(ValueError, match="no run"):
        run_dir_of(runner.root, label)


# ------------------------------------------------------------------------------------ uploads


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    """A real dataset as a person would upload it: a JSONL with relative clip paths, the clips."""
    from tinyr1.world import write_split

    folder = tmp_path_factory.mktemp("upload")
    jsonl = write_split("train", HELDOUT_MIN_ROWS, folder, progress=False)
    return jsonl, sorted((folder / "clips").glob("*.mp4"))


def test_an_uploaded_jsonl_with_its_videos_trains_and_holds_a_slice_out(runner, upload):
    jsonl, clips = upload
    updates = list(runner.start(data_source="upload", jsonl=str(jsonl), videos=[str(c) for c in clips],
                                steps=1, eval_before=False, eval_n=8, **FAST))
    assert updates[-1].phase == "done", updates[-1].status
    info = json.loads((runner.root / updates[-1].run / "app.json").read_text())
    train = (runner.root / updates[-1].run / info["data"]["train"]).read_text().splitlines()
    held = (runner.root / updates[-1].run / info["data"]["eval"]).read_text().splitlines()
    assert len(train) + len(held) == HELDOUT_MIN_ROWS and len(held) == 2  # 20 % of 10 (at most 8)
    assert updates[-1].result["eval_after"]["n"] == 2
    assert all((runner.root / updates[-1].run / "data" / json.loads(line)["video"]).is_file() for line in train)


def _zip(upload, archive: Path, extra: str | None = None) -> Path:
    jsonl, clips = upload
    with zipfile.ZipFile(archive, "w") as z:
        z.write(jsonl, "mine/data.jsonl")
        for clip in clips:
            z.write(clip, f"mine/clips/{clip.name}")
        if extra:
            z.writestr(extra, b"never written")
    return archive


def test_a_zip_with_the_jsonl_and_its_videos_is_accepted(runner, upload, tmp_path):
    archive = _zip(upload, tmp_path / "mine.zip")
    updates = list(runner.start(data_source="upload", jsonl=str(archive), steps=1, eval_before=False, eval_n=0, **FAST))
    assert updates[-1].phase == "done", updates[-1].status


def test_a_zip_with_a_traversing_entry_is_refused_with_a_message(runner, upload, tmp_path):
    archive = _zip(upload, tmp_path / "mine.zip", extra="../escape.mp4")  # zip slip
    before = list_runs(runner.root)
    updates = list(runner.start(data_source="upload", jsonl=str(archive), steps=1, eval_before=False, eval_n=0, **FAST))
    assert updates[-1].phase == "error" and "../escape.mp4" in updates[-1].error
    assert list_runs(runner.root) == before and not (runner.root / "runs" / "escape.mp4").exists()


def test_rows_naming_videos_by_absolute_path_find_the_uploads_by_name(runner, upload, tmp_path):
    jsonl, clips = upload
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    absolute = tmp_path / "absolute.jsonl"
    absolute.write_text("".join(json.dumps({**r, "video": str((jsonl.parent / r["video"]).resolve())}) + "\n" for r in rows))
    updates = list(runner.start(data_source="upload", jsonl=str(absolute), videos=[str(c) for c in clips],
                                steps=1, eval_before=False, eval_n=0, **FAST))
    assert updates[-1].phase == "done", updates[-1].status


@pytest.mark.parametrize("field, value, says", [
    ("num_generations", 20000, "TINYR1_MAX_GRPO_GROUP_SIZE"),
    ("steps", 10**6, "TINYR1_MAX_GRPO_STEPS"),
    ("prompts_per_step", 1000, "TINYR1_MAX_GRPO_PROMPTS_PER_STEP"),
    ("max_new_tokens", 100000, "TINYR1_MAX_GRPO_NEW_TOKENS"),
    ("world_n", 10**7, "TINYR1_MAX_WORLD_QUESTIONS"),
])
def test_grpo_settings_over_a_limit_are_refused_before_anything_is_written(runner, field, value, says):
    before = list_runs(runner.root)
    updates = list(runner.start(**{"world_n": 4, **FAST, field: value}))
    assert len(updates) == 1 and updates[0].phase == "error" and says in updates[0].error
    assert list_runs(runner.root) == before


def test_a_run_is_refused_when_the_disk_is_nearly_full(runner, monkeypatch):
    import tinyr1.app.grpo_runner as grpo_runner

    monkeypatch.setattr(grpo_runner, "MIN_FREE_DISK_MB", float(1 << 40))  # more than any disk has
    updates = list(runner.start(world_n=4, **FAST))
    assert updates[-1].phase == "error" and "TINYR1_MIN_FREE_DISK_MB" in updates[-1].error


def test_a_run_past_its_time_limit_stops_with_a_checkpoint(runner, monkeypatch):
    monkeypatch.setenv("TINYR1_MAX_GRPO_MINUTES", "1")
    clock = iter(range(0, 10**6, 3600))  # every reading of the clock is an hour later
    monkeypatch.setattr("tinyr1.app.grpo_runner._clock", lambda: next(clock))
    updates = list(runner.start(world_n=4, eval_before=False, eval_n=0, **{**FAST, "steps": 50}))
    last = updates[-1]  # a stop (Resume continues it), not an error
    assert last.phase == "stopped" and last.error is None and last.result["done"]
    assert "TINYR1_MAX_GRPO_MINUTES" in last.status and "step-000001" in last.status
    run = runner.root / updates[-1].run
    assert [u.step for u in updates if u.phase == "step"] == [1]
    assert (run / "checkpoints" / "step-000001" / "manifest.json").is_file()


def test_the_uploads_of_a_session_are_bounded(runner, upload, monkeypatch):
    jsonl, clips = upload
    monkeypatch.setenv("TINYR1_MAX_SESSION_UPLOAD_BYTES", str(sum(c.stat().st_size for c in clips) + jsonl.stat().st_size + 10))
    first = list(runner.start(data_source="upload", jsonl=str(jsonl), videos=[str(c) for c in clips], steps=1,
                              eval_before=False, eval_n=0, session="s1", **FAST))
    assert first[-1].phase == "done", first[-1].status
    copy = jsonl.parent / "again.jsonl"
    copy.write_text(jsonl.read_text())
    again = list(runner.start(data_source="upload", jsonl=str(copy), videos=[str(c) for c in clips], steps=1,
                              eval_before=False, eval_n=0, session="s1", **FAST))
    assert again[-1].phase == "error" and "TINYR1_MAX_SESSION_UPLOAD_BYTES" in again[-1].error
    other = list(runner.start(data_source="upload", jsonl=str(copy), videos=[str(c) for c in clips], steps=1,
                              eval_before=False, eval_n=0, session="s2", **FAST))
    assert other[-1].phase == "done", other[-1].status  # another session has its own total


def _bad(folder: Path, clips: list[Path], kind: str) -> tuple[Path, list[str]]:
    good = {"video": f"clips/{clips[0].name}", "question": "Which way?", "options": ["left", "right"], "answer": "B"}
    lines = {
        "broken JSON": '{"video": "clips/a.mp4", "question": ',
        "an answer that is no option": json.dumps({**good, "answer": "E"}),
        "a video not uploaded": json.dumps({**good, "video": "clips/missing.mp4"}),
        "no answer": json.dumps({k: v for k, v in good.items() if k != "answer"}),
        "an empty file": "",
    }
    path = folder / "bad.jsonl"
    path.write_text(lines[kind] + "\n")
    return path, [str(clips[0])]


@pytest.mark.parametrize(
    "kind, says",
    [
        ("broken JSON", "bad.jsonl line 1: not valid JSON"),  # names the file the person uploaded
        ("an answer that is no option", "line 1"),  # the loader's field check
        ("a video not uploaded", "video 'missing.mp4' was not uploaded"),
        ("no answer", "GRPO needs the right answer"),
        ("an empty file", "no rows"),
    ],
)
def test_a_bad_upload_says_what_to_fix_and_leaves_no_run(runner, upload, tmp_path, kind, says):
    path, videos = _bad(tmp_path, upload[1], kind)
    before = list_runs(runner.root)
    updates = list(runner.start(data_source="upload", jsonl=str(path), videos=videos, steps=1, **FAST))
    assert updates[-1].phase == "error" and updates[-1].result["done"]
    assert says in updates[-1].error
    assert str(runner.root) not in updates[-1].error, "the server's own paths are not shown"
    assert list_runs(runner.root) == before, "a refused upload leaves no run folder"


def test_no_upload_and_bad_settings_get_messages(runner):
    assert "No dataset uploaded" in list(runner.start(data_source="upload", jsonl=None, **FAST))[-1].error
    assert "Bad GRPO settings" in list(runner.start(world_n=4, **{**FAST, "temperature": 0.0}))[-1].error


@pytest.mark.parametrize("n_rows, n, held", [(9, 32, 0), (10, 32, 2), (100, 8, 8), (100, 32, 20), (100, 0, 0)])
def test_the_held_out_slice_is_disjoint_and_bounded(n_rows, n, held):
    rows = list(range(n_rows))
    train, heldout = split_heldout(rows, n, seed=0)
    assert len(heldout) == held and sorted(train + heldout) == rows and not set(train) & set(heldout)
    assert split_heldout(rows, n, seed=0) == (train, heldout)  # seeded: the same slice on resume
