"""The policy registry: what it lists, where it finds weights, what it says when they are missing,
the memory figures (computed from the architecture, checked against tiny models loaded for real),
``tinyr1 policies`` and ``tinyr1 reason --policy`` with registry ids. Never touches the network:
a test that lets the hub be "allowed" replaces the connection attempt.

    .venv/bin/pytest tests/test_registry.py -q
"""
from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyr1 import registry
from tinyr1.cli import main
from tinyr1.policy import GenerationSettings, PolicyError, QUANT_SKIP_MODULES, load_policy
from tinyr1.policy.qwen2_5_vl import QWEN_QUANT_SKIP_MODULES, QwenVLPolicy, tiny_qwen_vl_policy

torch.set_num_threads(1)

OFFICIAL = Path(__file__).parent / "fixtures" / "official_tiny" / "checkpoint"
EMBEDDED_IDS = ["tiny-temporal-grpo", "tiny-grpo", "tiny-coldstart"]
HUB_IDS = ["Zhang199/TinyLLaVA-Video-R1", "Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16",
           "Qwen/Qwen2.5-VL-3B-Instruct", "Video-R1/Video-R1-7B"]
IDS = EMBEDDED_IDS + HUB_IDS


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Offline, an empty models folder and HF cache, and any connection attempt fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TINYR1_MODELS", str(tmp_path / "models"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(registry, "_probe_result", None)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory) -> Path:
    return tiny_qwen_vl_policy(seed=0).save(tmp_path_factory.mktemp("qwen") / "saved")


# ---------------------------------------------------------------------------------- the listing
def test_lists_the_seven_policies_and_says_how_to_get_the_missing_ones() -> None:
    entries = registry.list_policies()
    assert [e.id for e in entries] == IDS
    by_id = {e.id: e for e in entries}
    for e in entries:
        assert e.kind in registry.KINDS and e.template and e.num_frames > 0
        e.generation_settings()  # recommended settings are valid GenerationSettings
        json.dumps(e.to_dict())
    for hub_id in HUB_IDS:  # nothing downloaded here, offline: unavailable with instructions
        e = by_id[hub_id]
        assert not e.available and not e.downloadable and e.local_path is None
        assert f"hf download {hub_id}" in e.how_to_get and str(registry.models_dir()) in e.how_to_get
    assert by_id["Zhang199/TinyLLaVA-Video-R1"].template == "qwen2_base"
    assert by_id["Video-R1/Video-R1-7B"].template == "video_r1"


@pytest.mark.parametrize(
    "hub_id, params, published",
    [
        ("Zhang199/TinyLLaVA-Video-R1", 3_614_639_984, "about 3.6B (paper)"),
        ("Qwen/Qwen2.5-VL-3B-Instruct", 3_754_622_976, "3.75B (model card)"),
        ("Video-R1/Video-R1-7B", 8_292_166_656, "8.29B (Qwen2.5-VL-7B model card)"),
    ],
)
def test_sizes_are_computed_from_the_architecture(hub_id, params, published) -> None:
    e = registry.get_policy(hub_id)
    assert e.params == params, published
    assert sum(e.parameters_by_part.values()) == params
    mem = e.memory_gb
    assert mem["nf4"] < mem["int8"] < mem["bf16"]
    assert mem["bf16"] == pytest.approx(2 * params / 1e9, abs=0.01)  # bf16: 2 bytes per parameter
    # the vision tower and the connector stay bf16 under nf4: their bytes remain whole
    kept = e.parameters_by_part["vision_tower"] + e.parameters_by_part["connector"]
    assert mem["nf4"] > 2 * kept / 1e9


@pytest.mark.parametrize("make", ["official", "tinyllava", "qwen"])
def test_memory_formula_equals_the_bytes_of_tiny_models_loaded_for_real(make, qwen_dir, tmp_path) -> None:
    if make == "official":
        path, skip = OFFICIAL, QUANT_SKIP_MODULES
    elif make == "tinyllava":
        from tinyr1.policy.random import make_random_policy

        path, skip = make_random_policy(tmp_path / "tiny", "embedded", seed=0), QUANT_SKIP_MODULES
    else:
        path, skip = qwen_dir, QWEN_QUANT_SKIP_MODULES
    model = load_policy(path).core
    fp32 = registry.memory_bytes(model, skip, compute_bytes=4)  # tinyr1 on CPU computes in float32
    bf16 = registry.memory_bytes(model, skip, compute_bytes=2)
    measured = {
        ("fp32", None): registry.measured_bytes(model),
        ("nf4", None): registry.measured_bytes(load_policy(path, quantization="nf4").core),
        ("int8", None): registry.measured_bytes(load_policy(path, quantization="int8").core),
        ("bf16", "bf16"): registry.measured_bytes(load_policy(path, dtype="bfloat16").core),
        ("nf4", "bf16"): registry.measured_bytes(load_policy(path, quantization="nf4", dtype="bfloat16").core),
    }
    for (q, dtype), got in measured.items():
        want = (bf16 if dtype else fp32)[q]
        assert got == want, (q, dtype)


# ----------------------------------------------------------------------------- finding weights
def test_a_local_copy_of_the_official_checkpoint_loads_by_its_hub_id() -> None:
    target = registry.models_dir() / "TinyLLaVA-Video-R1"
    shutil.copytree(OFFICIAL, target)
    e = registry.get_policy("tinyllava-video-r1")  # an alias
    assert e.available and e.local_path == str(target)
    assert e.params == 107_968  # now from the real (tiny) config, not the published architecture
    for quantization in (None, "nf4"):
        policy = load_policy("Zhang199/TinyLLaVA-Video-R1", quantization=quantization)
        assert policy.name == "Zhang199/TinyLLaVA-Video-R1" and policy.metadata["template"] == "qwen2_base"
        frames = np.random.default_rng(0).integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
        assert isinstance(policy.generate(frames, "How many?", ["1", "2"], GenerationSettings(max_new_tokens=4)), str)


@pytest.mark.parametrize("alias, template", [("qwen2.5-vl-3b", "r1"), ("video-r1-7b", "video_r1")])
def test_a_qwen_copy_loads_with_the_registry_settings(qwen_dir, alias, template) -> None:
    spec = registry.find_spec(alias)
    target = registry.models_dir() / spec.source.split("/")[-1]
    shutil.copytree(qwen_dir, target)
    (target / "policy.json").unlink()  # a hub copy has no tinyr1 metadata
    policy = load_policy(alias)
    assert isinstance(policy, QwenVLPolicy) and policy.name == spec.id
    assert policy.template == template and policy.num_frames == 16
    assert policy.processing.max_pixels == spec.extra["max_pixels"]


def test_the_hugging_face_cache_is_searched(qwen_dir, tmp_path) -> None:
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / "models--Video-R1--Video-R1-7B"
    shutil.copytree(qwen_dir, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    e = registry.get_policy("Video-R1/Video-R1-7B")
    assert e.available and Path(e.local_path).name == "abc123"
    assert registry.resolve_policy("Video-R1/Video-R1-7B").path == Path(e.local_path)


def test_offline_missing_weights_fail_at_once_with_what_to_do() -> None:
    start = time.perf_counter()
    with pytest.raises(PolicyError, match=r"HF_HUB_OFFLINE=1 forbids downloading.*hf download Video-R1/Video-R1-7B"):
        load_policy("Video-R1/Video-R1-7B")
    with pytest.raises(PolicyError, match="hf download someone/other-model"):
        load_policy("someone/other-model")  # not in the registry: a hub id all the same
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy("/no/such/dir")
    assert time.perf_counter() - start < 2.0


def test_resolve_policy_passes_paths_through_and_names_the_known_ids(qwen_dir) -> None:
    assert registry.resolve_policy(qwen_dir) == registry.ResolvedPolicy(qwen_dir, None)
    with pytest.raises(PolicyError, match="Qwen/Qwen2.5-VL-3B-Instruct"):
        registry.resolve_policy("no-such-policy")


# ----------------------------------------------------------------------------------- the probe
def test_the_hub_probe_is_opt_in_and_time_limited(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    release = threading.Event()
    calls = []

    def hanging(address, timeout=None):  # a network that never answers
        calls.append(address)
        release.wait(10)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hanging)
    try:
        assert not any(e.downloadable for e in registry.list_policies(probe_network=False)) and not calls
        monkeypatch.setattr(registry, "PROBE_TIMEOUT_S", 0.3)
        start = time.perf_counter()
        entries = registry.list_policies()
        assert time.perf_counter() - start < 2.0 and len(calls) == 1  # one probe, remembered
        assert not any(e.available for e in entries if e.kind != "tiny")
    finally:
        release.set()


def test_a_reachable_hub_makes_absent_policies_downloadable(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: Connection())
    e = registry.get_policy("Qwen/Qwen2.5-VL-3B-Instruct")
    assert e.available and e.downloadable and "downloaded" in e.how_to_get


# ------------------------------------------------------------------------------------------ CLI
def test_cli_policies_lists_json_and_a_table(capsys) -> None:
    assert main(["policies", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in listed] == IDS
    assert set(listed[len(EMBEDDED_IDS)]["memory_gb"]) == {"bf16", "int8", "nf4"}  # the first hub policy
    assert main(["policies", "--no-probe"]) == 0
    table = capsys.readouterr().out
    assert "Video-R1/Video-R1-7B" in table and "16.58" in table and "hf download" in table


def test_cli_reason_takes_registry_ids(capsys) -> None:
    clip = Path(__file__).resolve().parents[1] / "assets" / "examples" / "bbb_clip.mp4"
    assert main(["reason", str(clip), "-q", "What happens?", "--policy", "video-r1-7b"]) == 2
    assert "hf download Video-R1/Video-R1-7B" in capsys.readouterr().err
    shutil.copytree(OFFICIAL, registry.models_dir() / "TinyLLaVA-Video-Coldstart_NextQA_16")
    code = main(["reason", str(clip), "-q", "What happens?", "--options", "a", "b",
                 "--policy", "Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16", "--max-new-tokens", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["policy"]["name"] == "Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16"
    assert len(out["frames"]["indices"]) == 4  # the converted config's frame count (group)
