"""The ``tinyr1`` command line as a whole (tinyr1/cli/__init__.py): bad input answers at once.

    .venv/bin/pytest tests/test_cli.py -q

Every model command checks its paths and flags before it imports torch (seconds of imports), so a
typo exits with status 2 and a message straight away. Each case runs the real console entry point
in a fresh interpreter under ``-X importtime`` and asserts that torch was never imported, which
is sharper than a timing (and does not depend on how busy the machine is).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

IMPORTED_TORCH = re.compile(r"^import time:.*\|\s+torch$", re.M)


def _run(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "tinyr1", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv, message", [
    (["reason", "/nonexistent.mp4", "--question", "x"], "no video file at /nonexistent.mp4"),
    (["reason", "assets/examples/bbb_clip.mp4", "-q", "x", "--temperature", "nan"], "--temperature"),
    (["reason", "assets/examples/bbb_clip.mp4", "-q", "x", "--device", "tpu:9"], "--device must be"),
    (["eval", "--device", "tpu:9"], "--device must be cpu, cuda, cuda:N, mps or auto, got 'tpu:9'"),
    (["eval", "--max-new-tokens", "100000"], "--max-new-tokens must be between 1 and 4096"),
    (["eval", "--data", "/nonexistent.jsonl"], "/nonexistent.jsonl"),
    (["frames", "/nonexistent.mp4"], "/nonexistent.mp4"),
    (["convert", "/nonexistent", "/tmp/tinyr1-never-written"], "is not a directory"),
    (["world", "--split", "test", "--n", "0", "--out", "/tmp/tinyr1-never-written"], "--n must be at least 1"),
    (["train-tiny", "--out", "/tmp/tinyr1-never-written", "--threads", "0"], "--threads must be >= 1"),
    (["train", "--world-split", "train", "--steps", "-1", "--out", "/tmp/tinyr1-never-written"], "--steps must be >= 1"),
    (["train", "--world-split", "train", "--steps", "1", "--out", "/tmp/tinyr1-never-written", "--device", "tpu:9"],
     "--device must be"),
    (["train", "--world-split", "train", "--steps", "1", "--out", "/tmp/tinyr1-never-written", "--temperature", "inf"],
     "--temperature must be a finite number"),
    (["train", "--world-split", "train", "--steps", "1", "--out", "/tmp/tinyr1-never-written", "--seed", str(2**70)],
     "--seed must be between 0 and 2**63 - 1"),
    (["reason", "assets/examples/bbb_clip.mp4", "-q", "x", "--options", "only one"], "2 to 10 options"),
])
def test_bad_input_exits_2_before_torch_is_imported(argv, message):
    done = _run(*argv)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
    assert any(ln.startswith(f"tinyr1 {argv[0]}: error:") and message in ln for ln in errors), errors
    assert not IMPORTED_TORCH.search(done.stderr), f"tinyr1 {argv[0]} imported torch before refusing its input"


@pytest.mark.parametrize("command", [["reason", "assets/examples/bbb_clip.mp4", "-q", "What happens?"], ["eval", "--n", "1"]])
def test_max_new_tokens_beyond_the_policys_context_is_refused(command, tmp_path):
    """The flag's own cap (4096) is above the tiny policy's context (1024): refused once it loads."""
    done = _run(*command, "--max-new-tokens", "4000")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "does not fit the policy's context" in done.stderr
