"""``tinyr1 reason`` end to end on a tiny random policy and a real mp4.

    .venv/bin/pytest tests/test_cli_reason.py -q
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from tiny import tiny_policy_dir

from tinyr1.cli import main
from tinyr1.policy import GenerationSettings, load_policy
from tinyr1.rewards import RewardBreakdown
from tinyr1.video import load_frames

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tinyr1.world import write_mp4

    video = np.zeros((16, 48, 48, 3), np.uint8)
    for t in range(16):  # a white square crossing the frame
        video[t, 16:32, 2 * t : 2 * t + 16] = 255
    return write_mp4(video, tmp_path_factory.mktemp("clip") / "square.mp4")


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return tiny_policy_dir(tmp_path_factory.mktemp("pol") / "tiny")


def _reason(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["reason", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_streams_the_completion_and_prints_the_reward(capsys, clip, policy_dir) -> None:
    code, out, err = _reason(capsys, str(clip), "-q", "Which way does it move?", "--options", "left", "right",
                             "--answer", "B", "--policy", str(policy_dir), "--max-new-tokens", "16")
    assert code == 0
    assert "R   total" in out and "AR  accuracy" in out  # the reward table of `tinyr1 reward`
    assert "4 frames" in err and "tiny" in err


def test_json_has_completion_reward_frames_and_timings(capsys, clip, policy_dir) -> None:
    code, out, _ = _reason(capsys, str(clip), "-q", "How many squares?", "--options", "1", "2", "--answer", "A",
                           "--policy", str(policy_dir), "--frames", "3", "--max-new-tokens", "12", "--json")
    assert code == 0
    result = json.loads(out)  # exactly one JSON object, nothing streamed around it
    assert {"completion", "think", "answer", "reward", "frames", "timings", "settings", "policy"} <= set(result)
    assert set(result["reward"]) == {f.name for f in dataclasses.fields(RewardBreakdown)}
    assert len(result["frames"]["timestamps"]) == 3 and result["settings"]["num_frames"] == 3
    assert {"load_s", "frames_s", "generate_s", "encode_s", "prefill_s", "decode_s", "new_tokens"} <= set(result["timings"])
    # Same policy, frames and (greedy) settings in Python: the same completion.
    policy = load_policy(policy_dir)
    frames = load_frames(clip, 3).frames
    expected = policy.generate(frames, "How many squares?", ["1", "2"], GenerationSettings(max_new_tokens=12, temperature=0))
    assert result["completion"] == expected


def test_json_without_answer_has_null_reward(capsys, clip, policy_dir) -> None:
    code, out, _ = _reason(capsys, str(clip), "-q", "What happens?", "--policy", str(policy_dir),
                           "--max-new-tokens", "4", "--json", "--temperature", "1", "--seed", "2")
    assert code == 0 and json.loads(out)["reward"] is None


def test_default_policy_comes_from_the_environment(capsys, clip, policy_dir, monkeypatch) -> None:
    monkeypatch.setenv("TINYR1_POLICY", str(policy_dir))
    code, out, _ = _reason(capsys, str(clip), "-q", "What happens?", "--max-new-tokens", "4", "--json")
    assert code == 0 and json.loads(out)["policy"]["path"] == str(policy_dir)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}", "-q", "What?"], "no video file"),          # no such video
        (["{clip}", "-q", "What?", "--policy", "{nowhere}"], "does not exist"),  # no such policy
        (["{clip}", "-q", "   "], "question is empty"),           # nothing asked
        (["{clip}", "-q", "What?", "--temperature", "-1"], "temperature"),
        (["{clip}", "-q", "What?", "--top-p", "0"], "top_p"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, clip, policy_dir, tmp_path, argv, message) -> None:
    fill = {"clip": str(clip), "missing": str(tmp_path / "missing.mp4"), "nowhere": str(tmp_path / "nowhere")}
    argv = [a.format(**fill) for a in argv]
    if "--policy" not in argv:
        argv += ["--policy", str(policy_dir)]
    code, out, err = _reason(capsys, *argv)
    assert code == 2
    assert "tinyr1 reason: error:" in err and message in err
