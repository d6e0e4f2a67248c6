"""Loading and saving policy directories (tinyr1.policy.load): refused directories, round trips,
atomic saves, nf4 / int8 with the right modules in full precision, LoRA on nf4, merged peft saves.

    .venv/bin/pytest tests/test_policy_load.py -q

Tiny random policies from tests/tiny.py; nothing is downloaded.
"""
from __future__ import annotations

import json

import pytest
import torch
from tiny import GREEDY, ITEMS, SAMPLED, tiny_policy, tiny_policy_dir

from tinyr1.policy import (
    QUANT_SKIP_MODULES,
    GenerationSettings,
    PolicyError,
    load_policy,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return tiny_policy_dir(tmp_path_factory.mktemp("pol") / "tiny")


# --- loading and saving ---------------------------------------------------------------------------
def _dir_without(policy_dir, tmp_path, *names):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(policy_dir, copy)
    for n in names:
        (copy / n).unlink()
    return copy


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d, t: t / "missing", "does not exist"),
        (lambda d, t: d / "config.json", "is a file"),
        (lambda d, t: _dir_without(d, t, "config.json"), "config.json is missing"),
        (lambda d, t: _dir_without(d, t, "model.safetensors"), "no weights"),
        (lambda d, t: _dir_without(d, t, "tokenizer.json", "tokenizer_config.json"), "no tokenizer"),
    ],
)
def test_load_policy_rejects_unusable_directories(policy_dir, tmp_path, make, message) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(make(policy_dir, tmp_path))


def test_load_policy_names_official_checkpoints_and_bad_options(policy_dir, tmp_path) -> None:
    official = tmp_path / "official"
    official.mkdir()
    (official / "config.json").write_text(json.dumps({"model_type": "tinyllava", "llm_model_name_or_path": "Qwen"}))
    with pytest.raises(PolicyError, match="tinyr1 convert"):
        load_policy(official)
    with pytest.raises(PolicyError, match="quantization"):
        load_policy(policy_dir, quantization="fp4")


def test_loaded_policy_matches_the_saved_one(policy_dir) -> None:
    loaded = load_policy(policy_dir)
    original = tiny_policy()
    assert loaded.name == "tiny" and loaded.quantization is None
    assert loaded.generate(*ITEMS[0], GREEDY) == original.generate(*ITEMS[0], GREEDY)
    desc = loaded.describe()
    json.dumps(desc)  # JSON-able for --json and the app
    assert desc["parameters"]["total"] == sum(p.numel() for p in loaded.model.parameters())


def test_save_is_atomic_replace_and_keeps_metadata(tmp_path) -> None:
    target = tmp_path / "p"
    tiny_policy(seed=0).save(target, metadata={"seed": 0})
    tiny_policy(seed=1).save(target, metadata={"seed": 1})  # replaces the whole directory
    assert json.loads((target / "policy.json").read_text())["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temporary siblings left
    assert load_policy(target).generate(*ITEMS[0], GREEDY) == tiny_policy(seed=1).generate(*ITEMS[0], GREEDY)


# --- quantization and LoRA ----------------------------------------------------------------------
@pytest.mark.parametrize("quantization, layer_type", [("nf4", "Linear4bit"), ("int8", "Linear8bitLt")])
def test_quantized_policies_load_and_generate(policy_dir, quantization, layer_type) -> None:
    pol = load_policy(policy_dir, quantization=quantization)
    kinds = {name: type(m).__name__ for name, m in pol.model.named_modules()}
    lm_linear = [k for n, k in kinds.items() if n.startswith("language_model.model.layers") and n.endswith("q_proj")]
    assert lm_linear and set(lm_linear) == {layer_type}
    for skipped in QUANT_SKIP_MODULES[:2]:  # vision tower and connector stay full precision
        assert not [n for n, k in kinds.items() if n.startswith(skipped) and k == layer_type]
    text = pol.generate(*ITEMS[0], GenerationSettings(max_new_tokens=8, temperature=1.0, seed=0))
    assert isinstance(text, str) and pol.describe()["quantization"] == quantization
    with pytest.raises(PolicyError, match="cannot save"):
        pol.save(policy_dir.parent / "nope")


def test_lora_on_nf4_gets_gradients_on_every_adapter_weight(policy_dir) -> None:
    from peft import LoraConfig, get_peft_model

    pol = load_policy(policy_dir, quantization="nf4")
    # The trap of docs/DESIGN.md, "CPU facts", needs a no-grad forward first (it repacks 4-bit weights on AVX512-BF16 CPUs).
    batch = pol.sample(ITEMS[:2], G=2, settings=SAMPLED)
    assert all(not m.support_avx512bf16_for_cpu for m in pol.model.modules() if hasattr(m, "support_avx512bf16_for_cpu"))
    lora = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0,
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        # Random B as well as A: with the default B = 0, dL/dA is exactly 0 on the first step.
        init_lora_weights=False,
    )
    pol.model = get_peft_model(pol.model, lora)
    pol.model.train()
    pol.logprobs(batch, batch.completion_ids, batch.completion_mask).sum().backward()
    adapters = {n: p for n, p in pol.model.named_parameters() if p.requires_grad}
    assert len(adapters) == 2 * 7 * pol.config.text_config.num_hidden_layers
    dead = [n for n, p in adapters.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead
    assert {pol.core.part_of(n) for n in adapters} == {"language_model"}


def test_peft_wrapped_policy_saves_merged_weights(tmp_path) -> None:
    from peft import LoraConfig, get_peft_model

    pol = tiny_policy()
    pol.model = get_peft_model(pol.model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    expected = pol.generate(*ITEMS[0], GREEDY)
    saved = pol.save(tmp_path / "merged")
    assert load_policy(saved).generate(*ITEMS[0], GREEDY) == expected

