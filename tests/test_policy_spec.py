"""The policy package's torch-free leaf (tinyr1.policy.spec) and the promise that importing
``tinyr1.policy`` or ``tinyr1.registry`` does not import torch.

    .venv/bin/pytest tests/test_policy_spec.py -q
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tinyr1.policy as policy_pkg
from tinyr1.policy import spec
from tinyr1.policy.spec import (
    GenerationSettings,
    PolicyError,
    cpu_threads_for,
    default_policy_path,
    default_start_policy_path,
    normalize_quantization,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["tinyr1.policy", "tinyr1.policy.spec", "tinyr1.registry"])
def test_importing_does_not_import_torch(module) -> None:
    """A fresh interpreter: the registry, the CLI's parsers and the app's plain functions use these
    without paying for torch (seconds at startup)."""
    code = (f"import sys, {module}\n"
            "from tinyr1.policy import PolicyError, GenerationSettings, POLICIES_DIR, QUANTIZATIONS\n"
            "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_every_lazy_name_resolves() -> None:
    for name in policy_pkg.__all__:
        assert getattr(policy_pkg, name) is not None, name
    with pytest.raises(AttributeError):
        policy_pkg.no_such_name  # noqa: B018 - the lookup is the test


def test_spec_agrees_with_the_models_and_the_registry() -> None:
    from tinyr1 import registry
    from tinyr1.models.tinyllava import MODEL_TYPE

    assert spec.TINYLLAVA_VIDEO == MODEL_TYPE
    assert tuple(s.id for s in registry.SPECS if s.kind == "tiny") == spec.DEFAULT_POLICIES
    assert spec.QUANTIZATION_CHOICES == tuple("none" if q is None else q for q in spec.QUANTIZATIONS)
    assert spec.POLICIES_DIR == ROOT / "assets" / "policies"


def test_quantization_spellings_and_the_thread_rule() -> None:
    assert [normalize_quantization(q) for q in (None, "none", "", "bf16", "nf4", "int8")] == [None] * 4 + ["nf4", "int8"]
    with pytest.raises(PolicyError, match="quantization"):
        normalize_quantization("fp4")
    assert cpu_threads_for(spec.SINGLE_THREAD_BELOW - 1) == 1
    assert cpu_threads_for(spec.SINGLE_THREAD_BELOW) is None


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(temperature=-0.1), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(num_frames=0), "num_frames"),
    ],
)
def test_settings_are_validated(fields, message) -> None:
    with pytest.raises(PolicyError, match=message):
        GenerationSettings(**fields)



def test_default_policy_path_prefers_grpo_then_coldstart(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TINYR1_POLICY", raising=False)
    monkeypatch.setattr(spec, "POLICIES_DIR", tmp_path)
    with pytest.raises(PolicyError, match="no embedded policy"):
        default_policy_path()
    for name in ("tiny-coldstart", "tiny-grpo", "tiny-temporal-grpo"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        assert default_policy_path() == tmp_path / name  # the latest trained one wins
    monkeypatch.setenv("TINYR1_POLICY", "/some/where")
    assert str(default_policy_path()) == "/some/where"


def test_grpo_starts_from_the_cold_start_even_when_a_tuned_policy_is_the_default(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TINYR1_POLICY", raising=False)
    monkeypatch.setattr(spec, "POLICIES_DIR", tmp_path)
    (tmp_path / "tiny-grpo").mkdir()
    (tmp_path / "tiny-grpo" / "config.json").write_text("{}")
    assert default_start_policy_path() == tmp_path / "tiny-grpo"  # no cold start: the default
    (tmp_path / "tiny-coldstart").mkdir()
    (tmp_path / "tiny-coldstart" / "config.json").write_text("{}")
    assert default_policy_path() == tmp_path / "tiny-grpo"
    assert default_start_policy_path() == tmp_path / "tiny-coldstart"

