"""tinyr1.plan and `tinyr1 plan`: the predicted peak of a GRPO step against a fresh process's
measured one, the parts adding up, the JSON keys, and the orderings the model must respect.

    .venv/bin/pytest tests/test_plan.py -q

The measured peak comes from bench/bench_plan.py's ``--one`` (a tiny random TinyLLaVA-Video, one
real GRPO step, VmHWM of that process): a memory assertion, not a timing one.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinyr1.plan import plan

ROOT = Path(__file__).resolve().parents[1]
REAL = "tinyllava-video-r1"
PAPER = dict(frames=16, G=8, max_new_tokens=512)


def test_a_tiny_policy_peak_is_predicted_within_15_percent(tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_plan

    row = bench_plan.compare({"family": "tinyllava", "hidden": 256, "layers": 4, "checkpointing": True})
    assert abs(row["error"]) <= 0.15, row


def test_parts_add_up_and_the_json_has_peak_and_parts(capsys) -> None:
    from tinyr1.cli import main

    assert main(["plan", "--policy", REAL, "--quantization", "nf4", "--lora-r", "16", "--frames", "16", "--G", "8",
                 "--max-new-tokens", "512", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"peak_gb", "parts", "phases", "shapes"} <= set(out)
    assert out["peak_gb"] == pytest.approx(sum(out["parts"].values()), abs=0.01)
    for phase in out["phases"].values():
        assert out["peak_gb"] >= sum(phase.values()) - 0.01
    assert {"weights", "optimizer", "reference", "gradients", "activations", "logits", "vision"} <= set(
        out["phases"]["update"])
    assert "kv_cache" in out["phases"]["rollout"]


def test_the_paper_settings_fit_the_targets() -> None:
    assert plan(REAL, quantization="nf4", lora_r=16, **PAPER)["peak_gb"] <= 20
    assert plan(REAL, quantization="bf16", **PAPER)["peak_gb"] <= 40  # the paper's card, an A100-40GB


def test_full_fine_tuning_on_a_gpu_uses_fused_adamw_so_its_step_adds_no_temporary() -> None:
    from tinyr1.grpo.loop import adamw_implementation

    assert adamw_implementation("cuda") == {"fused": True} and adamw_implementation("cpu") == {}
    p = plan(REAL, quantization="bf16", **PAPER)
    assert p["phases"]["adamw_step"]["adamw_step"] == 0 and p["peak_phase"] == "update"
    cpu = plan(REAL, quantization="bf16", device="cpu", **PAPER)["phases"]["adamw_step"]
    assert 0 < cpu["adamw_step"] < cpu["gradients"] / 4  # torch's per-parameter loop: one tensor at a time
    lora = plan(REAL, quantization="nf4", lora_r=16, **PAPER)
    assert lora["peak_phase"] == "update"


def test_orderings_nf4_below_bf16_below_fp32_and_checkpointing_lowers_activations() -> None:
    nf4, bf16, fp32 = (plan(REAL, quantization=q, lora_r=16, **PAPER)["peak_gb"] for q in ("nf4", "bf16", "fp32"))
    assert nf4 < bf16 < fp32
    on = plan(REAL, quantization="bf16", checkpointing=True, **PAPER)["phases"]["update"]["activations"]
    off = plan(REAL, quantization="bf16", checkpointing=False, **PAPER)["phases"]["update"]["activations"]
    assert on < off / 4
    chunked = plan(REAL, quantization="bf16", **PAPER)["phases"]["update"]["logits"]
    full = plan(REAL, quantization="bf16", full_logits=True, **PAPER)["phases"]["update"]["logits"]
    assert chunked < full / 10


def test_bad_input_is_exit_2_with_a_message(capsys, tmp_path) -> None:
    from tinyr1.cli import main

    assert main(["plan", "--policy", "no-such-policy"]) == 2
    assert "neither a registry id" in capsys.readouterr().err
    assert main(["plan", "--policy", REAL, "--quantization", "nf4"]) == 2
    assert "--lora-r" in capsys.readouterr().err
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama"}')
    assert main(["plan", "--policy", str(bad)]) == 2
    assert "model_type" in capsys.readouterr().err


def test_plan_module_imports_without_torch() -> None:
    code = "import sys, tinyr1.plan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr
