"""The bad-input corpus: each hostile or broken input tinyr1 may receive (a dataset line, a zip, a
completion to score, a `tinyr1 reward` call) is generated here in tmp_path and must get its clear
error or a valid result, quickly, so CI keeps running all of them. The detailed checks live with
each module's tests (test_data, test_archive, test_rewards, test_limits); this file is the list.

    .venv/bin/pytest tests/test_bad_inputs.py -q
"""
from __future__ import annotations

import io
import json
import stat
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tinyr1.archive import extract_zip
from tinyr1.cli import UserError, build_parser
from tinyr1.data import DatasetError, load_dataset
from tinyr1.rewards import score

GOOD = {"video": "a.mp4", "question": "Which way?", "options": ["left", "right"], "answer": "B"}
GOOD_LINE = json.dumps(GOOD).encode()

# name -> (the bytes of the second line of a JSONL, a phrase of the error; None: it loads)
DATASET_LINES = {
    "U+2028 inside a string": ('{"video": "a.mp4", "question": "one\u2028two"}'.encode(), None),
    "U+0085 inside a string": ('{"video": "a.mp4", "question": "one\u0085two"}'.encode(), None),
    "CRLF line end": (GOOD_LINE.replace(b'"B"', b'"A"') + b"\r", None),
    "NUL in the question": (json.dumps({**GOOD, "question": "a\0b"}).encode(), "field 'question': holds the control character U+0000"),
    "escape in an option": (json.dumps({**GOOD, "options": ["l", "\x1b[2J"]}).encode(), "option B holds the control character U+001B"),
    "deep nesting": (b"[" * 50_000 + b"]" * 50_000, "JSON nested too deeply to parse"),
    "nesting over the limit": (json.dumps({**GOOD, "x": json.loads("[" * 33 + "]" * 33)}).encode(),
                               "JSON nested 34 levels deep; the limit is 32"),
    "row over 1 MiB": (json.dumps({**GOOD, "think": "x" * (1 << 20)}).encode(), "bytes or more; the limit is 1,048,576"),
    "question too long": (json.dumps({**GOOD, "question": "q" * 4001}).encode(), "the question is 4,001 characters"),
    "option too long": (json.dumps({**GOOD, "options": ["l", "r" * 501]}).encode(), "option B is 501 characters"),
    "one option": (json.dumps({**GOOD, "options": ["only"]}).encode(), "has 1 options; 2 to 10"),
    "eleven options": (json.dumps({**GOOD, "options": list("abcdefghijk")}).encode(), "has 11 options"),
    "truth E of four": (json.dumps({**GOOD, "options": list("abcd"), "answer": "E"}).encode(), "'E' is not one of the option letters A-D"),
    "duplicate id": (json.dumps({**GOOD, "id": "1"}).encode(), "duplicate id '1': lines 1 and 2"),
    "zip slip path": (json.dumps({**GOOD, "video": "../../etc/passwd"}).encode(), "leaves it with '..' outside"),
    "absolute path": (json.dumps({**GOOD, "video": "/etc/passwd"}).encode(), "is an absolute path outside"),
    "home path": (json.dumps({**GOOD, "video": "~/.ssh/id_rsa"}).encode(), "starts with '~'"),
    "symlink out": (json.dumps({**GOOD, "video": "link.mp4"}).encode(), "is a link to /etc/hostname, outside"),
    "not UTF-8": (b'{"video": "\xff"}', "not UTF-8 text"),
    "broken JSON": (b'{"video": ', "not valid JSON"),
}


@pytest.mark.parametrize("name", DATASET_LINES)
def test_dataset_lines(tmp_path: Path, name: str) -> None:
    line, phrase = DATASET_LINES[name]
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "link.mp4").symlink_to("/etc/hostname")
    first = json.dumps({**GOOD, "id": "1"}).encode()
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + first + b"\n" + line + b"\n")  # with a BOM, which is fine
    if phrase is None:
        assert len(load_dataset(path)) == 2
        return
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert info.value.line == 2 and f"{path} line 2: " in str(info.value), str(info.value)
    assert phrase in str(info.value), str(info.value)


def _entry(name: str, data: bytes = b"x", mode: int = 0) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    if mode:
        info.create_system, info.external_attr = 3, mode << 16
    return info, data


# name -> (entries, a phrase of the error; None: it unpacks)
ZIPS = {
    "valid": ([_entry("d/data.jsonl", GOOD_LINE), _entry("d/a.mp4")], None),
    "zip slip": ([_entry("../x")], "entry '../x' climbs out"),
    "absolute": ([_entry("/tmp/x")], "entry '/tmp/x' is an absolute path"),
    "drive letter": ([_entry("c:x")], "entry 'c:x' starts with a drive letter"),
    "backslash": ([_entry("d\\..\\..\\x")], "has a backslash"),
    "symlink": ([_entry("l", b"/etc", stat.S_IFLNK | 0o777)], "entry 'l' is a symbolic link"),
    "device": ([_entry("dev", b"", stat.S_IFCHR | 0o600)], "entry 'dev' is a special file"),
    "file and folder": ([_entry("d"), _entry("d/x")], "entry 'd' is a file, and 'd/x' makes it a folder"),
    "bomb": ([_entry("z", b"\0" * 3_000_000)], "what it expands to is 3,000,000 bytes; the limit is 2,000,000"),
}


@pytest.mark.parametrize("name", ZIPS)
def test_zips(tmp_path: Path, monkeypatch, name: str) -> None:
    monkeypatch.setenv("TINYR1_MAX_ZIP_BYTES", "2000000")
    entries, phrase = ZIPS[name]
    archive = tmp_path / "up.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            z.writestr(info, data)
    if phrase is None:
        assert [p.name for p in extract_zip(archive, tmp_path / "out")] == ["data.jsonl", "a.mp4"]
        return
    with pytest.raises(DatasetError, match="^up.zip: ") as info:
        extract_zip(archive, tmp_path / "out")
    assert phrase in str(info.value), str(info.value)
    assert not (tmp_path / "out").exists()


def test_many_entries(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TINYR1_MAX_ZIP_ENTRIES", "100")
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(101):
            z.writestr(f"f{i}", b"")
    with pytest.raises(DatasetError, match="its entry count is 101 entries; the limit is 100"):
        extract_zip(archive, tmp_path / "out")


# name -> completion; every one is scored, fails the format, and takes well under a second
COMPLETIONS = {
    "1 MB of <think>": "<think>" * 150_000,
    "1 MB of <answer>": "<answer>" * 130_000,
    "1 MB nested": "<think><answer>" * 70_000,
    "1 MB unclosed": "<think>" + "<answer>x" * 115_000,
    "NUL bytes": "\0" * 1_000_000,
    "lone surrogates": "<think>\ud800</think><answer>\udfff</answer> x",
}


@pytest.mark.parametrize("name", COMPLETIONS)
def test_completions(name: str) -> None:
    started = time.perf_counter()
    result = score(COMPLETIONS[name], "B", ["left", "right"])
    assert time.perf_counter() - started < 0.5
    assert not result.format_ok and result.total == -2.0


def reward(*argv: str) -> int:
    """``tinyr1 reward`` without tinyr1.cli.main, whose error path imports torch (seconds): a
    UserError is what main turns into exit status 2 (tests/test_cli_reward.py checks that part)."""
    args = build_parser("reward").parse_args(["reward", *argv])
    return args.func(args)


# `tinyr1 reward` arguments -> a phrase of its error (a UserError: exit status 2)
REWARD_CALLS = {
    "one option": (["--answer", "A", "--options", "only"], "--options: 1 given; a question has 2 to 10 options"),
    "eleven options": (["--answer", "A", "--options", *"abcdefghijk"], "11 given"),
    "truth E of four": (["--answer", "E", "--options", *"abcd"], "--answer 'E' names option E, but only A-D are offered"),
    "option too long": (["--options", "l", "r" * 501], "option B is 501 characters; the limit is 500"),
    "completion too long": (["--completion", "x" * 100_001], "the completion (--completion) is 100,001 characters"),
}


@pytest.mark.parametrize("name", REWARD_CALLS)
def test_reward_cli(name: str) -> None:
    argv, phrase = REWARD_CALLS[name]
    if "--completion" not in argv:
        argv = [*argv, "--completion", "<think>t</think><answer>A</answer>"]
    with pytest.raises(UserError) as info:
        reward(*argv)
    assert phrase in str(info.value), str(info.value)


def test_reward_cli_reads_standard_input_only_up_to_the_limit(capsys, monkeypatch) -> None:
    monkeypatch.setenv("TINYR1_MAX_COMPLETION_CHARS", "1000")
    stream = io.StringIO("x" * 10_000)
    monkeypatch.setattr(sys, "stdin", stream)
    with pytest.raises(UserError, match=r"the completion \(standard input\) read so far is 1,001 characters; the limit is 1,000"):
        reward("--answer", "B")
    assert stream.tell() == 1001  # the rest was never read
    monkeypatch.setattr(sys, "stdin", io.StringIO("<think>t</think><answer>B</answer>"))
    assert reward("--json", "--answer", "B", "--options", *"abcdefghij") == 0  # ten options: fine
    assert json.loads(capsys.readouterr().out)["correct"] is True


# A request to the public app (tinyr1.app.guard, checked before any model work) -> its variable
APP_REQUESTS = {
    "1 MB question": (dict(question="why? " * 200_000, options=None, num_frames=0, max_new_tokens=256),
                      "TINYR1_MAX_QUESTION_CHARS"),
    "one option": (dict(question="q", options=["only"], num_frames=0, max_new_tokens=256), "2 to 10 options"),
    "1000 frames": (dict(question="q", options=None, num_frames=1000, max_new_tokens=256), "TINYR1_MAX_FRAMES"),
    "1000000 new tokens": (dict(question="q", options=None, num_frames=0, max_new_tokens=1_000_000),
                           "TINYR1_MAX_NEW_TOKENS"),
}


@pytest.mark.parametrize("name", APP_REQUESTS)
def test_app_requests(name: str) -> None:
    from tinyr1.app.guard import LimitError, check_reason

    kwargs, phrase = APP_REQUESTS[name]
    with pytest.raises(LimitError, match=phrase):
        check_reason(kwargs.pop("question"), kwargs.pop("options"), **kwargs)


# `tinyr1 train` flags -> a phrase of its error (a UserError before torch is imported)
TRAIN_CALLS = {
    "temperature inf": (["--temperature", "inf"], "--temperature must be a finite number"),
    "seed 2**70": (["--seed", str(2**70)], "--seed must be between 0 and 2**63 - 1"),
    "device tpu:9": (["--device", "tpu:9"], "--device must be cpu, cuda, cuda:N, mps or auto"),
    "steps -1": (["--steps", "-1"], "--steps must be >= 1"),
}


@pytest.mark.parametrize("name", TRAIN_CALLS)
def test_train_cli(name: str) -> None:
    argv, phrase = TRAIN_CALLS[name]
    base = ["train", "--world-split", "train", "--out", "/tmp/tinyr1-never-written", "--steps", "1"]
    args = build_parser("train").parse_args([*base, *argv])
    with pytest.raises(UserError) as info:
        args.func(args)
    assert phrase in str(info.value), str(info.value)
