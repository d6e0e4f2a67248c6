"""The app's handlers called as plain functions (no server): what the Reason tab streams, what the
Reward lab shows, which policies and examples are found on disk, and the Spaces requirements file.

    .venv/bin/pytest tests/test_ui_handlers.py -q

The Reason run uses the real tiny random policy and real mp4 clips (fixtures in ui_support.py);
only the Stop test uses a scripted policy, to see that stopping closes the policy's stream.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinyr1.format import format_completion
from tinyr1.rewards import RewardConfig, score
from tinyr1.ui import (
    LANDSCAPE_CASES,
    Workbench,
    collect_options,
    find_examples,
    find_policies,
    frame_gallery,
    options_from_lines,
    policy_banner,
    reward_lab,
    reward_landscape,
    reward_table,
)

from ui_support import ROOT, bad_uploads, make_root

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
    """A workbench on a root with the real tiny random policy and real world clips."""
    return Workbench(make_root(tmp_path_factory.mktemp("root"), world_examples=1, bare_clip=True))


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


def test_stopping_closes_the_policy_stream(tmp_path):
    """Stop (gradio's cancel) closes the Reason generator: the policy's stream must be closed too,
    so its generation thread stops (a scripted policy records it)."""
    closed = []

    class ScriptedPolicy:
        num_frames = 2

        def stream(self, frames, question, options, settings):
            try:
                for i in range(1000):
                    yield "<think>" + "word " * i
            finally:
                closed.append(True)

    class Clip:
        frames = np.zeros((2, 8, 8, 3), np.uint8)
        timestamps = [0.0, 0.5]
        meta = None

    root = make_root(tmp_path, world_examples=0, bare_clip=False, policy=False)
    (root / "assets" / "policies" / "scripted").mkdir(parents=True)
    (root / "assets" / "policies" / "scripted" / "config.json").write_text("{}")
    wb = Workbench(root, policy_loader=lambda path, quantization=None: ScriptedPolicy(), frame_loader=lambda v, num_frames: Clip())
    run = wb.reason("clip.mp4", "q")
    for step in run:
        if step.table is not None:
            break
    assert not closed
    run.close()
    assert closed == [True]


def test_embedded_policy_names_match_the_runtime():
    from tinyr1.policy import DEFAULT_POLICIES

    from tinyr1.ui import EMBEDDED

    assert EMBEDDED == tuple(DEFAULT_POLICIES)


def test_bad_generation_settings_get_a_message(bench, world_row):
    video, question, *_ = world_row
    steps = list(bench.reason(video, question, max_new_tokens=0))
    assert steps[-1].error.startswith("Bad generation settings") and steps[-1].result["done"]


def test_zero_gpu_wraps_only_when_spaces_is_importable(monkeypatch):
    import sys
    import types

    from tinyr1.ui import GPU_SECONDS, zero_gpu

    def handler():
        yield 1

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: import fails
    assert zero_gpu(handler) is handler
    asked = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (asked.append(duration), lambda fn: ("wrapped", fn))[1]
    monkeypatch.setitem(sys.modules, "spaces", fake)  # on a Space
    assert zero_gpu(handler) == ("wrapped", handler) and asked == [GPU_SECONDS]
