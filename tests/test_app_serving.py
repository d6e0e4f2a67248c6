"""Which policy the app opens on, and where ZeroGPU loads it.

    .venv/bin/pytest tests/test_app_serving.py -q

- With a CUDA device (torch.cuda.is_available monkeypatched) and TinyLLaVA-Video-R1's weights
  here (a folder under $TINYR1_MODELS with the published config and a weights file), the app opens
  on it in nf4; without CUDA, or without the weights, on the embedded tiny policy, whose banner
  then says how to get the real one with `hf download`. TINYR1_POLICY / TINYR1_QUANTIZATION win.
- On ZeroGPU (the `spaces` package, SPACES_ZERO_GPU set; its GPU decorator replaced by a double
  that records when a call is inside it), the opening policy is loaded once at start-up, outside
  any GPU call, and a Reason run only generates inside one.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app_support import ROOT, no_downloaded_models
from tinyr1.app import build_app, opening_policy
from tinyr1.app.reason import Workbench, load_examples
from tinyr1.policy.spec import GPU_POLICY, serving_default

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


@pytest.fixture
def machine(monkeypatch):
    """(set_cuda, put_weights): a fake CUDA availability and R1 weights under $TINYR1_MODELS."""
    import torch

    from tinyr1.registry import ARCHITECTURES

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never probe the hub in a test
    for var in ("TINYR1_POLICY", "TINYR1_QUANTIZATION", "SPACES_ZERO_GPU"):
        monkeypatch.delenv(var, raising=False)
    with no_downloaded_models() as empty:
        def set_cuda(on: bool) -> None:
            monkeypatch.setattr(torch.cuda, "is_available", lambda: on)

        def put_weights() -> Path:
            folder = Path(empty) / "models" / GPU_POLICY.split("/")[-1]
            folder.mkdir(parents=True)
            (folder / "config.json").write_text(json.dumps(ARCHITECTURES["tinyllava_video_r1"]))
            (folder / "model.safetensors").write_bytes(b"")  # presence is what the registry checks
            return folder

        yield set_cuda, put_weights


def test_cuda_and_weights_open_on_tinyllava_video_r1_in_nf4(machine):
    set_cuda, put_weights = machine
    set_cuda(True)
    put_weights()
    assert opening_policy(Workbench(ROOT)) == (GPU_POLICY, "nf4")


@pytest.mark.parametrize("cuda, weights", [(False, True), (True, False), (False, False)])
def test_otherwise_the_embedded_policy_with_the_hf_download_command(machine, cuda, weights):
    set_cuda, put_weights = machine
    set_cuda(cuda)
    if weights:
        put_weights()
    bench = Workbench(ROOT)
    assert opening_policy(bench) == ("tiny-temporal-grpo", None)
    banner = bench.banner("tiny-temporal-grpo")
    if weights:
        assert "pick **TinyLLaVA-Video-R1" in banner
    else:
        assert f"`hf download {GPU_POLICY} --local-dir" in banner and "huggingface-cli" not in banner


def test_environment_overrides(machine, monkeypatch):
    set_cuda, put_weights = machine
    set_cuda(True)
    put_weights()
    monkeypatch.setenv("TINYR1_QUANTIZATION", "int8")
    assert opening_policy(Workbench(ROOT)) == (GPU_POLICY, "int8")
    monkeypatch.setenv("TINYR1_POLICY", "tiny-coldstart")
    assert opening_policy(Workbench(ROOT)) == ("tiny-coldstart", "int8")
    monkeypatch.setenv("TINYR1_POLICY", "tinyllava-video-r1")  # a registry alias
    monkeypatch.setenv("TINYR1_QUANTIZATION", "fp8")  # unknown: said in the log, then ignored
    assert opening_policy(Workbench(ROOT)) == (GPU_POLICY, "nf4")


def test_serving_default_rule():
    keys = ["tiny-grpo", "tiny-coldstart", GPU_POLICY]
    assert serving_default(keys, cuda=True, env={})[:2] == (GPU_POLICY, "nf4")
    assert serving_default(keys, cuda=False, env={})[:2] == ("tiny-grpo", None)
    assert serving_default(keys[:2], cuda=True, env={})[:2] == ("tiny-grpo", None)
    assert serving_default(keys, cuda=True, env={"TINYR1_QUANTIZATION": "none"})[:2] == (GPU_POLICY, None)
    assert serving_default(["x ($TINYR1_POLICY)", *keys], cuda=True, env={})[0] == "x ($TINYR1_POLICY)"


def test_the_app_opens_with_the_quantization_and_the_policys_settings(machine):
    set_cuda, put_weights = machine
    set_cuda(True)
    put_weights()
    demo = build_app(ROOT, workbench=Workbench(ROOT, policy_loader=_refuse))
    config = demo.get_config_file()
    values = {c["props"].get("elem_id"): c["props"].get("value") for c in config["components"]}
    assert values["reason-policy"] == GPU_POLICY and values["reason-quant"] == "nf4"
    first = {}  # the Reason tab's sliders come before the GRPO tab's of the same label
    for c in config["components"]:
        first.setdefault(c["props"].get("label"), c["props"].get("value"))
    assert first["Max new tokens"] == 1024 and first["Frames sampled (0 = the policy's own)"] == 16


def _refuse(*args, **kwargs):
    raise AssertionError("nothing is loaded off ZeroGPU at start-up")


def test_zero_gpu_loads_once_at_start_up_and_only_generates_inside_the_gpu_call(machine, monkeypatch):
    import spaces  # imported before SPACES_ZERO_GPU is set: it patches torch only on real ZeroGPU

    from tinyr1.policy import load_policy

    set_cuda, _ = machine
    set_cuda(False)
    inside, events = [False], []

    def gpu(duration=None):
        def wrap(fn):
            def run(*args, **kwargs):
                inside[0] = True
                try:
                    yield from fn(*args, **kwargs)
                finally:
                    inside[0] = False
            return run
        return wrap

    def loader(target, quantization=None):
        events.append(("load", inside[0]))
        policy = load_policy(target, quantization=quantization)
        stream = policy.stream

        def recorded(*args, **kwargs):
            events.append(("generate", inside[0]))
            return stream(*args, **kwargs)

        policy.stream = recorded
        return policy

    monkeypatch.setattr(spaces, "GPU", gpu)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    bench = Workbench(ROOT, policy_loader=loader)
    build_app(ROOT, workbench=bench)
    assert events == [("load", False)]  # at start-up, outside any GPU call
    for example in load_examples(ROOT)[:2]:
        video, question, *options, answer = example.row
        steps = list(bench.reason(video, question, options, answer, None))
        assert steps[-1].result["done"] and steps[-1].error is None
    assert events == [("load", False), ("generate", True), ("generate", True)]


def test_run_sh_forces_offline_mode_for_the_tests_only(tmp_path):
    import hashlib
    import os
    import shutil
    import subprocess

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"  # prints what the job would see instead of running it
    fake.write_text('#!/bin/sh\necho "HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-unset} $*"\n')
    fake.chmod(0o755)
    (venv / ".tinyr1-stamp").write_text(hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["TINYR1_VENV"] = str(venv)
    app = subprocess.run([str(ROOT / "run.sh"), "app"], env=env, capture_output=True, text=True, timeout=60)
    assert app.stdout.strip() == "HF_HUB_OFFLINE=unset app.py", app.stderr
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():  # else `test` would install it
        test = subprocess.run([str(ROOT / "run.sh"), "test", "-k", "x"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert test.stdout.strip() == "HF_HUB_OFFLINE=1 -m pytest -q -k x", test.stderr
