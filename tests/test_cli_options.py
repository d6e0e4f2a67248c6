"""The shared policy and generation flags (tinyr1/cli/options.py): what they accept, what they refuse
with exit status 2 and a message, and how they map onto load_policy / GenerationSettings.

    .venv/bin/pytest tests/test_cli_options.py -q
"""
from __future__ import annotations

import argparse

import pytest

from tinyr1.cli import UserError, options
from tinyr1.video import VideoLimits


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_policy_options(parser)
    options.add_generation_options(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12", "mps", "auto"])
def test_devices_torch_understands_pass(device):
    options.check_policy_options(_parse("--device", device))


@pytest.mark.parametrize("device", [
    "tpu:9",      # not a torch device this project runs on
    "cuda:",      # an index left out
    "cuda:x",     # an index that is not a number
    "CPU ",       # trailing space: refused rather than guessed
    "",           # empty
])
def test_other_devices_are_refused_with_the_accepted_forms(device):
    with pytest.raises(UserError, match="cpu, cuda, cuda:N, mps or auto"):
        options.check_policy_options(_parse("--device", device))


@pytest.mark.parametrize("argv, message", [
    (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["--temperature", "inf"], "--temperature must be a finite number >= 0"),
    (["--temperature", "-0.1"], "--temperature must be a finite number >= 0"),
    (["--top-p", "0"], "top_p"),                                   # no token could be sampled
    (["--top-p", "1.5"], "top_p"),                                 # a mass above 1
    (["--seed", "-1"], "--seed must be between 0 and 2**63 - 1"),
    (["--seed", str(2**63)], "--seed must be between 0 and 2**63 - 1"),  # overflows torch's int64
    (["--max-new-tokens", "0"], f"between 1 and {options.MAX_NEW_TOKENS_CAP}"),
    (["--max-new-tokens", "1000000"], f"between 1 and {options.MAX_NEW_TOKENS_CAP}"),  # a typo, hours of decoding
    (["--frames", "0"], "--frames must be between 1"),
    (["--frames", "100000"], "--frames must be between 1"),
])
def test_generation_flags_out_of_range_are_refused(argv, message):
    with pytest.raises(UserError) as info:
        options.check_generation_options(_parse(*argv))
    assert message in str(info.value)


@pytest.mark.parametrize("argv", [
    ["--temperature", "0"], ["--temperature", "1.0"], ["--top-p", "1"], ["--seed", str(2**63 - 1)],
    ["--max-new-tokens", str(options.MAX_NEW_TOKENS_CAP)], ["--frames", "16"],
])
def test_generation_flags_in_range_pass(argv):
    options.check_generation_options(_parse(*argv))


def test_frame_cap_is_the_video_loaders():
    assert options.MAX_FRAMES == VideoLimits().max_frames


def test_quantizations_match_the_policy_loaders():
    from tinyr1.policy import QUANTIZATIONS

    assert {None if q == "none" else q for q in options.QUANTIZATIONS} == set(QUANTIZATIONS)


def test_defaults_map_to_the_loaders_defaults():
    args = _parse()
    assert options.policy_kwargs(args) == {"quantization": None, "device": None, "dtype": None}
    assert options.generation_kwargs(args) == {"max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0,
                                               "seed": 0, "num_frames": None}


def test_given_values_reach_the_loaders():
    args = _parse("--device", "cuda:1", "--dtype", "bfloat16", "--quantization", "nf4", "--frames", "8")
    assert options.policy_kwargs(args) == {"quantization": "nf4", "device": "cuda:1", "dtype": "bfloat16"}
    assert options.generation_kwargs(args)["num_frames"] == 8


@pytest.mark.parametrize("command", ["eval", "train"])
def test_world_version_picks_the_world_of_the_split_questions(command):
    from tinyr1.cli import build_parser
    from tinyr1.world import WORLD_VERSION

    extra = ["--steps", "1", "--out", "x", "--world-split", "train"] if command == "train" else []
    args = build_parser().parse_args([command, *extra])
    assert options.world_config(args).version == WORLD_VERSION
    args = build_parser().parse_args([command, *extra, "--world-version", "3"])
    assert options.world_config(args).version == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, *extra, "--world-version", "9"])
