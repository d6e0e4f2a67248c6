"""The app's handlers called as plain functions (no server): what the Reason tab streams, what the
Reward lab shows, which policies the pickers offer (tinyr1.registry's, then the folders on disk) and
what the app says about the others, the examples found on disk, and the Spaces requirements file.
Never touches the network: the registry tests refuse any connection (one test lets a fake hub answer).

    .venv/bin/pytest tests/test_app_handlers.py -q

The Reason run uses the real tiny random policy and real mp4 clips (fixtures in app_support.py);
only the Stop test uses a scripted policy, to see that stopping closes the policy's stream.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinyr1.format import format_completion
from tinyr1.rewards import RewardConfig, score
from tinyr1.app.policies import policy_banner
from tinyr1.app.reason import Workbench, collect_options, find_examples, frame_gallery
from tinyr1.app.tables import LANDSCAPE_CASES, options_from_lines, reward_lab, reward_landscape, reward_table
from tinyr1.registry import find_policies

from app_support import ROOT, bad_uploads, make_root, no_downloaded_models, tiny_policy_dir, write_clip

# ------------------------------------------------------------------------------ policies on disk


def test_policies_found_on_disk_embedded_first(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYR1_POLICY", raising=False)
    shipped = tmp_path / "assets" / "policies"
    for name in ("alpha", "tiny-coldstart", "tiny-grpo"):  # the embedded ones first, tiny-grpo the default
        (shipped / name).mkdir(parents=True)
        (shipped / name / "config.json").write_text("{}")
    (shipped / "notes").mkdir()  # no config.json: not a policy
    (tmp_path / "runs" / "run1" / "final").mkdir(parents=True)
    (tmp_path / "runs" / "run1" / "final" / "config.json").write_text("{}")
    (tmp_path / "runs" / "half" / "final").mkdir(parents=True)  # no config.json: an unfinished run
    found = find_policies(tmp_path)
    assert list(found) == ["tiny-grpo (embedded)", "tiny-coldstart (embedded)", "alpha", "runs/run1"]
    assert found["runs/run1"] == str((tmp_path / "runs" / "run1" / "final").resolve())
    assert find_policies(tmp_path / "nothing") == {}
    monkeypatch.setenv("TINYR1_POLICY", str(shipped / "alpha"))  # the user's choice comes first
    assert list(find_policies(tmp_path))[0] == "alpha ($TINYR1_POLICY)"


@pytest.mark.parametrize(
    "name, meta, says, never",
    [
        ("tiny-random", {"kind": "random"}, "noise", "synthetic world"),  # random weights say so
        ("tiny-grpo", {"accuracy": "52% (chance 25%)"}, "only knows coloured shapes", "noise"),  # embedded
        ("tiny-grpo", {"accuracy": "52% (chance 25%)"}, "accuracy: 52% (chance 25%)", "noise"),  # facts shown
        ("tiny-grpo", {"accuracy": {"greedy": 0.6204, "sampled": 0.53}}, "accuracy: greedy 62.0%, sampled 53.0%",
         "0.6204"),  # as bench/reproduce.py records it
    ],
)
def test_policy_banner_is_honest(tmp_path, name, meta, says, never):
    path = tmp_path / name
    path.mkdir()
    (path / "policy.json").write_text(json.dumps(meta))
    banner = policy_banner(f"{name} (embedded)", str(path))
    assert says in banner and never not in banner
    assert "No policy found" in policy_banner(None, None)


# -------------------------------------------------------------------------------------- examples


def test_examples_from_a_world_split_and_bare_clips(tmp_path):
    root = make_root(tmp_path, world_examples=2, bare_clip=True, policy=False)
    rows = find_examples(root)
    world = [r for r in rows if r[2]]  # rows with options come from the JSONL
    bare = [r for r in rows if not r[2]]
    assert len(world) == 2 and len(bare) >= 1  # the sliding square, and any shipped real clip
    for video, question, a, b, c, d, answer in world:
        assert Path(video).is_file() and question and all((a, b, c, d)) and answer in "ABCD"
    assert bare[0][1] and bare[0][6] == ""  # a generic question, no answer


def test_a_broken_example_file_is_skipped_not_fatal(tmp_path):
    folder = tmp_path / "assets" / "examples"
    folder.mkdir(parents=True)
    (folder / "bad.jsonl").write_text('{"video": "missing.mp4", "question": "q"}\n')
    assert find_examples(tmp_path) == []


# ---------------------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    "boxes, expected",
    [
        (("", "", "", ""), None),  # no options: an open question
        (("left", "right", "", ""), ["left", "right"]),  # two options
        ((" up ", "down", "left", "right"), ["up", "down", "left", "right"]),  # spaces trimmed
        ((None, None, None, None), None),  # components send None when cleared
    ],
)
def test_options_collected_in_order(boxes, expected):
    assert collect_options(*boxes) == expected


@pytest.mark.parametrize(
    "boxes, message",
    [
        (("left", "", "up", ""), "option B is empty"),  # a gap would shift every later letter
        (("left", "", "", ""), "at least A and B"),  # one option is no choice
        (("", "right", "", ""), "option A is empty"),
    ],
)
def test_bad_options_say_what_to_fix(boxes, message):
    with pytest.raises(ValueError, match=message):
        collect_options(*boxes)


def test_options_from_lines():
    assert options_from_lines("left\n\n right \n") == ["left", "right"]
    assert options_from_lines("  \n") is None


# ------------------------------------------------------------------------------------ reward lab

THINK = "The red square ends on the right, so it moves right. Option B says right."


def _parts(table: pd.DataFrame) -> dict[str, float]:
    return dict(zip(table["part"], table["value"]))


@pytest.mark.parametrize(
    "completion, answer, total_row",
    [
        (format_completion(THINK, "B"), "B", "total"),  # right
        (format_completion(THINK, "A"), "B", "total"),  # wrong
        (THINK + " B", "B", "total"),  # broken format, no tags at all
        (format_completion(THINK, "B"), "", "if right"),  # no ground truth: what-ifs
    ],
)
def test_reward_lab_matches_score(completion, answer, total_row):
    result, chart, table, summary = reward_lab(completion, answer)
    b = score(completion, answer or None)
    parts = _parts(table)
    assert result["total"] == b.total and result["format_ok"] == b.format_ok
    assert chart["part"].tolist() == table["part"].tolist()  # the chart draws the table
    assert total_row in parts
    if b.total is not None:
        assert parts["total"] == pytest.approx(b.total, abs=1e-4)  # the table shows 4 decimals
        assert "accuracy" in parts and "if right" not in parts
    else:  # never an invented accuracy of 0
        assert "accuracy" not in parts and result["accuracy_reward"] is None
        assert parts["if right"] == pytest.approx(b.total_if_right, abs=1e-4)
        assert parts["if wrong"] == pytest.approx(b.total_if_wrong, abs=1e-4)
        assert "No correct answer" in summary


def test_reward_lab_parts_add_up_for_a_right_answer():
    _, _, table, _ = reward_lab(format_completion(THINK, "B"), "B")
    p = _parts(table)
    assert p["format"] + p["length"] + p["accuracy"] == pytest.approx(p["total"], abs=2e-4)
    assert p["format"] == 0.5 and p["accuracy"] == 1.0 and 0 < p["length"] < 0.5


def test_broken_format_shows_the_reason_and_the_full_penalty():
    _, _, table, summary = reward_lab("<think>no answer tags</think> B", "B")
    why = " ".join(table["why"])
    assert "missing <answer>" in why and "missing <answer>" in summary
    assert _parts(table)["total"] == -2.0  # -(r0 + r1 + r2)


@pytest.mark.parametrize(
    "params, expected_total",
    [
        (dict(), 1.5 + 0.5 * len(THINK) / 1200),  # the paper: r0 0.5, r1 0.5, ML 1200, r2 = r0 + r1
        (dict(r0=1.0), 1.0 + 0.5 * len(THINK) / 1200 + 1.5),  # r2 follows r0 + r1 when left empty
        (dict(r2=3.0), 1.5 + 0.5 * len(THINK) / 1200),  # r2 ignored while tied to r0 + r1
        (dict(tie_r2=False, r2=3.0), 0.5 + 0.5 * len(THINK) / 1200 + 3.0),  # r2 set explicitly
        (dict(tie_r2=False, r2=None), 1.5 + 0.5 * len(THINK) / 1200),  # an empty r2 means r0 + r1
        (dict(max_len=len(THINK)), 2.0),  # the think text earns the whole r1
        (dict(tie_r2=False, r2=float("nan")), 1.5 + 0.5 * len(THINK) / 1200),  # NaN from an emptied box
    ],
)
def test_reward_lab_parameters(params, expected_total):
    result, _, _, _ = reward_lab(format_completion(THINK, "B"), "B", **params)
    assert result["total"] == pytest.approx(expected_total)


def test_official_switch_changes_only_the_right_answer_with_a_broken_format():
    broken_right = format_completion(THINK, "B") + " trailing text"
    assert reward_lab(broken_right, "B")[0]["total"] == -2.0
    assert reward_lab(broken_right, "B", official=True)[0]["total"] == 1.0  # +r2
    assert reward_lab(broken_right, "A", official=True)[0]["total"] == -2.0  # wrong: still the penalty
    ok = format_completion(THINK, "B")
    assert reward_lab(ok, "B", official=True)[0]["total"] == reward_lab(ok, "B")[0]["total"]  # a good format: no change


def test_bad_reward_parameters_give_a_message_not_a_crash():
    result, chart, table, summary = reward_lab(format_completion(THINK, "B"), "B", r0=-1)
    assert "r0" in result["error"] and summary.startswith("⚠️") and table.empty and chart.empty


def test_options_let_the_option_text_count_as_the_letter():
    completion = format_completion(THINK, "right")
    assert reward_lab(completion, "B")[0]["correct"] is False  # "right" alone is not the letter B
    assert reward_lab(completion, "B", options="left\nright\nup\ndown")[0]["correct"] is True


# ------------------------------------------------------------------------------- reward landscape


def _curve(df: pd.DataFrame, case: str) -> pd.Series:
    return df[df["case"] == case].set_index("think_chars")["total"]


def test_landscape_has_the_papers_shape():
    df = reward_landscape(points=31)
    assert set(df["case"]) == set(LANDSCAPE_CASES)
    right, wrong, broken = (_curve(df, c) for c in LANDSCAPE_CASES)
    assert right.index.min() == 0 and right.index.max() == 1800  # 0 to 1.5 ML
    assert right.loc[0] == pytest.approx(1.5)  # r0 + r2
    assert right.loc[1200] == pytest.approx(2.0)  # r0 + r1 + r2: the length reward is full at ML
    assert right.is_monotonic_increasing and right.loc[1200:].nunique() == 1  # flat past ML
    assert np.allclose(wrong, -(right - 1.0))  # a wrong answer loses exactly what the format earned
    assert (broken == -2.0).all()  # the full penalty, whatever the length


def test_landscape_follows_the_parameters():
    df = reward_landscape(r0=1.0, r1=1.0, max_len=100, official=True, points=7)
    right, broken = _curve(df, "right answer"), _curve(df, "broken format")
    assert right.index.max() == 150 and right.loc[100] == pytest.approx(4.0)  # r2 = r0 + r1 = 2
    assert (broken == 2.0).all()  # the official corner: a right answer with a broken format gets +r2
    assert reward_landscape(r0=-1).empty  # bad parameters draw nothing (the lab says why)


def test_reward_table_during_generation_says_still_generating():
    b = score("<think>half a thou", None)
    table = reward_table(b, RewardConfig(), generating=True)
    assert "still generating" in table["why"].iloc[0]


# ----------------------------------------------------------------------------------- the frames


def test_frame_gallery_captions_carry_timestamps_and_thumbnails_are_small():
    frames = np.zeros((3, 480, 640, 3), np.uint8)
    items = frame_gallery(frames, [0.0, 1.25, 2.5], side=128)
    assert [c for _, c in items] == ["#1 · 0.00 s", "#2 · 1.25 s", "#3 · 2.50 s"]
    assert all(max(img.shape[:2]) == 128 for img, _ in items)


# ------------------------------------------------------------------------------ requirements.txt


def _requirement_name(line: str) -> str:
    return re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-")


def test_spaces_requirements_match_pyproject():
    """Spaces install requirements.txt, not pyproject: the same pins, except gradio, which a Space
    installs from the README front matter's sdk_version (checked below to be the same pin)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln]
    want = {_requirement_name(d): d.replace(" ", "") for d in deps if _requirement_name(d) != "gradio"}
    have = {_requirement_name(r): r.replace(" ", "") for r in reqs}
    assert have == want


def test_readme_front_matter_is_a_gradio_space_on_the_pinned_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    gradio_pin = next(d for d in deps if _requirement_name(d) == "gradio").split("==")[1]
    readme = (ROOT / "README.md").read_text()
    match = re.match(r"---\n(.*?)\n---\n", readme, re.S)
    assert match, "README.md must start with the Spaces front matter (--- ... ---)"
    front = dict(line.split(":", 1) for line in match.group(1).splitlines() if ":" in line)
    front = {k.strip(): v.strip() for k, v in front.items()}
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert front["sdk_version"].strip("\"'") == gradio_pin
    assert re.fullmatch(r"([\"'])3\.\d+\1", front["python_version"]), "python_version must be quoted"


# ------------------------------------------------------------------------------ the Reason run


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A workbench on a root with the real tiny random policy and real world clips (the registry
    listed once, seeing no downloaded checkpoint: the default is the root's tiny policy)."""
    wb = Workbench(make_root(tmp_path_factory.mktemp("root"), world_examples=1, bare_clip=True))
    with no_downloaded_models():
        wb.registry_entries()
    return wb


@pytest.fixture(scope="module")
def world_row(bench):
    return next(r for r in find_examples(bench.root) if r[2])


def test_reason_streams_frames_then_text_then_the_final_reward(bench, world_row):
    video, question, *options, answer = world_row
    steps = list(bench.reason(video, question, options, answer, max_new_tokens=256, temperature=1.0, seed=2))
    assert steps[0].status.startswith("Loading policy") and steps[0].error is None
    framed = [s for s in steps if s.frames is not None]
    assert len(framed) == 1, "the frames are sent once, before the text"
    default = Path(bench.policies()[bench.default_policy()])
    assert len(framed[0].frames) == json.loads((default / "config.json").read_text())["num_frames"]  # frames=0: the policy's own
    assert [c.split(" · ")[1] for _, c in framed[0].frames] == [f"{t:.2f} s" for t in framed[0].result["timestamps"]]
    text_steps = [s for s in steps if s.table is not None]
    assert len(text_steps) >= 2 and steps.index(framed[0]) < steps.index(text_steps[0])
    final = steps[-1]
    assert final.result["done"] and not any(s.result.get("done") for s in steps[:-1])
    assert final.result["reward"] == score(final.result["completion"], answer, options).to_dict()
    assert final.status.startswith("Done") and "Total reward" in final.status
    assert (final.think, final.answer) == (final.result["think"], final.result["answer"])


def test_reason_frames_setting_overrides_the_policys_own(bench, world_row):
    video, question, *_ = world_row
    steps = list(bench.reason(video, question, num_frames=6, max_new_tokens=8))
    assert len(next(s for s in steps if s.frames is not None).frames) == 6
    assert steps[-1].result["reward"]["total"] is None  # no answer given: what-ifs only


@pytest.mark.parametrize("kind", ["text named .mp4", "truncated mp4", "empty file"])
def test_reason_on_a_bad_upload_ends_with_a_message(bench, tmp_path, kind):
    bad = bad_uploads(tmp_path)[kind]
    steps = list(bench.reason(str(bad), "What happens?"))
    assert steps[-1].error and steps[-1].result["done"] and steps[-1].status.startswith("⚠️")
    assert "video" in steps[-1].error.lower()
    assert all(s.table is None for s in steps)  # nothing was generated


@pytest.mark.parametrize(
    "video, question, policy, message",
    [
        (None, "q", None, "No video"),  # nothing uploaded
        ("clip.mp4", "   ", None, "question is empty"),  # blank question
        ("clip.mp4", "q", "no-such-policy", "unknown policy 'no-such-policy'"),  # a label not on disk
    ],
)
def test_reason_input_errors(bench, video, question, policy, message):
    steps = list(bench.reason(video, question, policy=policy))
    assert message in steps[-1].error



def _scripted_workbench(tmp_path, stream):
    """A Workbench whose policy streams ``stream()``'s texts (whatever the frames and question)
    on a two-frame clip: for the run's control flow, not for what a policy answers."""

    class ScriptedPolicy:
        num_frames = 2

        def stream(self, frames, question, options, settings):
            return stream()

    class Clip:
        frames = np.zeros((2, 8, 8, 3), np.uint8)
        timestamps = [0.0, 0.5]
        meta = None

    root = make_root(tmp_path, world_examples=0, bare_clip=False, policy=False)
    (root / "assets" / "policies" / "scripted").mkdir(parents=True)
    (root / "assets" / "policies" / "scripted" / "config.json").write_text("{}")
    return Workbench(root, policy_loader=lambda path, quantization=None: ScriptedPolicy(),
                     frame_loader=lambda v, num_frames: Clip())


def test_stopping_closes_the_policy_stream(tmp_path):
    """Stop (gradio's cancel) closes the Reason generator: the policy's stream must be closed too,
    so its generation thread stops (a scripted policy records it)."""
    closed = []

    def stream():
        try:
            for i in range(1000):
                yield "<think>" + "word " * i
        finally:
            closed.append(True)

    wb = _scripted_workbench(tmp_path, stream)
    run = wb.reason("clip.mp4", "q")
    for step in run:
        if step.table is not None:
            break
    assert not closed
    run.close()  # an API client's cancel: the stream is closed in a thread (never on gradio's event loop)
    deadline = time.time() + 10
    while not closed and time.time() < deadline:
        time.sleep(0.01)
    assert closed == [True]


def test_should_stop_ends_the_run_with_the_partial_text_scored(tmp_path):
    """The tab's Stop: the run ends at the next token in a stopped state, with the partial text
    and its reward, and the policy's stream is closed before the last step."""
    closed, produced = [], []

    def stream():
        try:
            for i in range(100_000):  # 100 s of tokens
                time.sleep(0.001)
                produced.append(i)
                yield "<think>word " + "x" * (i % 64)
        finally:
            closed.append(True)

    wb = _scripted_workbench(tmp_path, stream)
    stop = threading.Event()
    steps = []
    for step in wb.reason("clip.mp4", "q", ["a", "b"], "A", should_stop=stop.is_set):
        steps.append(step)
        if step.table is not None and len(steps) > 3:
            stop.set()
    last = steps[-1]
    assert closed == [True] and last.result["done"] and last.result["stopped"]
    assert "Stopped" in last.status and last.result["completion"].startswith("<think>word")
    assert last.result["reward"] == score(last.result["completion"], "A", ["a", "b"]).to_dict()
    assert len(produced) < 100_000  # it ended at the next token, not after all of them


def test_embedded_policy_names_match_the_runtime():
    from tinyr1.policy import DEFAULT_POLICIES

    from tinyr1.registry import EMBEDDED

    assert EMBEDDED == tuple(DEFAULT_POLICIES)


def test_bad_generation_settings_get_a_message(bench, world_row):
    video, question, *_ = world_row
    steps = list(bench.reason(video, question, max_new_tokens=0))
    assert steps[-1].error.startswith("Bad generation settings") and steps[-1].result["done"]


def test_zero_gpu_wraps_only_when_spaces_is_importable(monkeypatch):
    import sys
    import types

    from tinyr1.app.settings import GPU_SECONDS, zero_gpu

    def handler():
        yield 1

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: import fails
    assert zero_gpu(handler) is handler
    asked = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (asked.append(duration), lambda fn: ("wrapped", fn))[1]
    monkeypatch.setitem(sys.modules, "spaces", fake)  # on a Space
    assert zero_gpu(handler) == ("wrapped", handler) and asked == [GPU_SECONDS]


# ------------------------------------------------------------------------ the registry's picker
OFFICIAL = ROOT / "tests" / "fixtures" / "official_tiny" / "checkpoint"  # official layout, tiny random weights
OFFICIAL_ID = "Zhang199/TinyLLaVA-Video-R1"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1, no $TINYR1_POLICY, an empty models folder and HF cache; every connection
    attempt is recorded (and fails)."""
    from huggingface_hub import constants

    from tinyr1 import registry

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TINYR1_POLICY", raising=False)
    monkeypatch.setenv("TINYR1_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(registry, "_probe_result", None)
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _root_with_coldstart(base: Path) -> Path:
    """A root holding one registry policy (tiny-coldstart: a real tiny random policy), a folder that
    is not in the registry, and a finished GRPO run."""
    root = make_root(base / "root", world_examples=0, bare_clip=False, policy=False)
    shutil.copytree(tiny_policy_dir(), root / "assets" / "policies" / "tiny-coldstart")
    shutil.copytree(tiny_policy_dir(), root / "assets" / "policies" / "alpha")
    (root / "runs" / "r1" / "final").mkdir(parents=True)
    (root / "runs" / "r1" / "final" / "config.json").write_text("{}")
    return root


def test_picker_lists_the_registrys_available_policies_then_folders_then_runs(tmp_path, offline, monkeypatch):
    from tinyr1 import registry
    from tinyr1.app.grpo_runner import GRPORunner

    root = _root_with_coldstart(tmp_path)
    wb = Workbench(root)
    options = wb.policy_options()
    assert list(options) == ["tiny-coldstart", "alpha", "runs/r1"]  # the GRPO'd ones are not in this root
    cold = options["tiny-coldstart"]
    assert cold.entry.id == "tiny-coldstart" and cold.label == registry.find_spec("tiny-coldstart").label
    assert cold.target == str(root / "assets" / "policies" / "tiny-coldstart")  # this root's, not the repo's
    assert cold.entry.params > 0 and cold.entry.memory_gb["fp32"] > cold.entry.memory_gb["nf4"] > 0
    assert (options["alpha"].entry, options["runs/r1"].entry) == (None, None)  # folders: no registry facts
    assert wb.policy_choices()[0] == (cold.label, "tiny-coldstart")  # (shown, sent)
    assert GRPORunner(wb).default_start_policy() == "tiny-coldstart"  # GRPO starts from the cold start
    monkeypatch.setenv("TINYR1_POLICY", str(root / "assets" / "policies" / "alpha"))  # your explicit choice first
    assert list(wb.policy_options())[0] == "alpha ($TINYR1_POLICY)"
    assert not offline, "listing the registry offline must not touch the network"


def test_policies_not_here_are_listed_with_size_memory_and_what_to_do(tmp_path, offline):
    wb = Workbench(_root_with_coldstart(tmp_path))
    entries = wb.registry_entries()
    missing = [e for e in entries if not e.available]
    tiny = ["tiny-temporal-grpo", "tiny-grpo"]  # the embedded ones this root lacks
    assert [e.id for e in missing] == [*tiny, OFFICIAL_ID, "Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16",
                                       "Qwen/Qwen2.5-VL-3B-Instruct", "Video-R1/Video-R1-7B"]
    info = wb.policy_info()
    assert info.startswith("6 of the 7 policies")
    rows = {line.split("`")[1]: line for line in info.splitlines() if line.startswith("- **")}
    assert set(rows) == {e.id for e in entries}
    for e in missing:
        assert e.id not in wb.policies()  # never offered in the picker...
        assert "not here" in rows[e.id] and e.how_to_get.split("`")[0] in rows[e.id]  # ...but said what to do
    for e in missing[len(tiny):]:  # the big ones: parameters and the weights in each quantization
        assert f"{e.memory_gb['nf4']:.2f} GB nf4" in rows[e.id] and f"{e.params / 1e9:.2f}B" in rows[e.id]
        assert f"hf download {e.id}" in rows[e.id]
    assert "on this machine" in rows["tiny-coldstart"]
    assert not offline


def test_asking_for_a_policy_not_here_says_how_to_get_it(tmp_path, offline):
    wb = Workbench(_root_with_coldstart(tmp_path), frame_loader=lambda *a, **k: pytest.fail("nothing to decode"))
    steps = list(wb.reason("clip.mp4", "q", policy="video-r1-7b"))  # an alias of Video-R1/Video-R1-7B
    assert "Video-R1-7B" in steps[-1].error and "hf download Video-R1/Video-R1-7B" in steps[-1].error
    assert not offline


def test_a_downloadable_policy_is_offered_with_a_probe_once(tmp_path, monkeypatch):
    """With the hub allowed and (a fake of it) answering, the official policies are offered: they
    download on first use. The probe is one connection attempt per listing (Rescan lists again)."""
    from huggingface_hub import constants

    from tinyr1 import registry

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("TINYR1_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(registry, "_probe_result", None)
    attempts = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a) or contextlib.nullcontext())
    wb = Workbench(_root_with_coldstart(tmp_path))
    options = wb.policy_options()
    assert list(options)[:2] == ["tiny-coldstart", OFFICIAL_ID] and len(attempts) == 1
    official = options[OFFICIAL_ID]
    assert official.target == OFFICIAL_ID  # load_policy(id): the registry downloads, then loads
    assert "downloads ~7.2 GB on first use" in official.label
    assert "Not on this machine yet" in wb.banner(OFFICIAL_ID)
    wb.policy_choices(), wb.banner(OFFICIAL_ID), wb.policy_info()
    assert len(attempts) == 1  # listed once per Workbench


@pytest.mark.parametrize(
    "policy_id, expected",
    [
        # the embedded policy: greedy, short, its own frame count (0)
        ("tiny-coldstart", dict(frames=0, temperature=0.0, top_p=1.0, max_new_tokens=128, seed=0)),
        # the official model: the paper's 16 frames and up to 1024 new tokens, temperature 0.1
        (OFFICIAL_ID, dict(frames=16, temperature=0.1, top_p=1.0, max_new_tokens=1024, seed=0)),
        # Video-R1's top-p 0.001 is below the slider: 0.05 (with temperature 0.1, both nearly greedy)
        ("Video-R1/Video-R1-7B", dict(frames=16, temperature=0.1, top_p=0.05, max_new_tokens=1024, seed=0)),
    ],
)
def test_recommended_settings_fit_the_sliders(offline, policy_id, expected):
    from tinyr1.registry import get_policy
    from tinyr1.app.policies import recommended_settings

    assert recommended_settings(get_policy(policy_id, probe_network=False)) == expected


def test_the_app_wires_the_picker_to_the_registry(tmp_path, offline):
    """The Reason and GRPO dropdowns offer the Workbench's choices; the table is under the picker;
    picking a registry policy shows its facts and sets its recommended settings, a folder keeps yours."""

    from tinyr1.app import build_app

    wb = Workbench(_root_with_coldstart(tmp_path))
    demo = build_app(wb.root, workbench=wb)
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    for elem in ("reason-policy", "grpo-policy"):
        assert [tuple(c) for c in blocks[elem].choices] == wb.policy_choices()
    assert blocks["reason-policy"].value == "tiny-coldstart" == blocks["grpo-policy"].value
    assert blocks["reason-policy-info"].value == wb.policy_info()
    select = next(f for f in demo.fns.values() if f.name == "select_policy")
    banner_box, *setting_boxes = select.outputs  # the banner, then frames, temperature, top-p, max new tokens, seed
    out = select.fn("tiny-coldstart")
    banner, settings = out[banner_box], [out[box] for box in setting_boxes]
    assert "tiny-coldstart" in banner and "fp32" in banner and "Recommended" in banner
    assert settings == [0, 0.0, 1.0, 128, 0]  # frames, temperature, top-p, max new tokens, seed
    out = select.fn("runs/r1")
    assert "fine-tuned with GRPO" in out[banner_box] and list(out) == [banner_box]  # a folder: your settings stay
    assert not offline


def _official_reason(wb: Workbench, video: str, policy: str) -> tuple[list, str]:
    steps = list(wb.reason(video, "What moves?", ["left", "right"], "B", policy, max_new_tokens=8, temperature=0.0))
    return steps, steps[-1].result.get("completion", "")


@pytest.mark.parametrize("how", ["models folder", "TINYR1_POLICY"])
def test_the_official_checkpoint_reasons_end_to_end(tmp_path, offline, monkeypatch, how):
    """The official-layout tiny checkpoint (converted in memory by load_policy), found by the
    registry in $TINYR1_MODELS or given as a path: a short greedy Reason run through the app's
    Workbench gives the text the policy itself gives on the same frames."""
    from tinyr1.policy import GenerationSettings

    root = make_root(tmp_path / "root", world_examples=0, bare_clip=False, policy=False)
    video = str(write_clip(tmp_path / "clip.mp4"))
    if how == "models folder":
        shutil.copytree(OFFICIAL, tmp_path / "models" / "TinyLLaVA-Video-R1")
        key, target = OFFICIAL_ID, OFFICIAL_ID
    else:
        monkeypatch.setenv("TINYR1_POLICY", str(OFFICIAL))
        key, target = "checkpoint ($TINYR1_POLICY)", str(OFFICIAL.resolve())
    wb = Workbench(root)
    assert wb.default_policy() == key and wb.policies()[key] == target
    assert "official" in wb.banner(key)  # before loading: what it is
    steps, text = _official_reason(wb, video, key)
    final = steps[-1]
    assert final.error is None and final.result["done"], final.status
    assert final.result["reward"]["total"] is not None  # scored against the given answer
    policy = wb.load_policy(key, None)  # the cached one
    n = len(next(s for s in steps if s.frames is not None).frames)
    assert n == policy.num_frames  # the frames slider at 0: the checkpoint's own count
    clip = wb.load_frames(video, n)
    direct = policy.generate(clip.frames, "What moves?", ["left", "right"],
                             GenerationSettings(max_new_tokens=8, temperature=0.0, num_frames=n))
    assert text == direct
    if how == "models folder":
        assert wb.option("tinyllava-video-r1").key == OFFICIAL_ID  # the alias finds it too
        total = policy.describe()["parameters"]["total"]
        assert f"{total / 1e6:.1f}M parameters" in wb.banner(key) and total < 1e6  # the local (tiny) copy's size
    assert not offline
