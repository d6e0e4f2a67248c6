"""Tiny random TinyLLaVA-Video models: configs by preset, and randomly initialised models.

    from tinyr1.models.tinyllava.random import random_model, tiny_config
    model = random_model(tokenizer, "test", seed=3)             # same seed, same weights

A whole random policy directory (weights, tokenizer, policy.json) is written by
``python -m tinyr1.policy.random OUT_DIR`` (tinyr1/policy/random.py): saving a policy belongs to
the policy layer, which this module must not import.

Presets (all share the architecture; only sizes differ):

- ``test``: the smallest useful model (SigLIP 32 px, patch 8, 32 wide x 2 layers; resampler
  2 latents/frame x 1 layer; Qwen2 64 wide x 2 layers), for unit tests (~0.4M parameters).
- ``embedded``: the size docs/DESIGN.md, "The embedded tiny policy", chose for the shipped tiny policy (4 frames of
  32 px, SigLIP patch 4 = 64 patches, 64 wide x 3 layers; resampler 4 latents/frame x 2 layers;
  Qwen2 128 wide x 4 layers, tied embeddings; ~1.6M parameters with a ~1k-token vocabulary).

The weights are random: the text such a model writes is noise, but every code path runs.
"""
from __future__ import annotations

from typing import Any

import torch

from tinyr1.models.tinyllava.configuration import TinyLlavaVideoConfig
from tinyr1.models.tinyllava.modeling import TinyLlavaVideoForConditionalGeneration

PRESETS: dict[str, dict[str, Any]] = {
    "test": dict(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, vision_use_head=False),
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=2048),
        num_frames=4, group=4, num_queries=8, resampler_layers=1, resampler_heads=2, resampler_dim_head=16,
    ),
    "embedded": dict(
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=2,
                           image_size=32, patch_size=4, vision_use_head=False),
        text_config=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=2048),
        num_frames=4, group=4, num_queries=16, resampler_layers=2,
    ),
}


def tiny_config(vocab_size: int, preset: str = "test", *, pad_token_id: int | None = None,
                eos_token_id: int | None = None, **overrides: Any) -> TinyLlavaVideoConfig:
    """A config of the given preset for a tokenizer of ``vocab_size`` tokens; ``overrides`` replace
    top-level fields, and ``vision_config`` / ``text_config`` dicts update the preset's."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    base = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[preset].items()}
    for key in ("vision_config", "text_config"):
        base[key].update(overrides.pop(key, None) or {})
    base["text_config"].update(vocab_size=int(vocab_size), pad_token_id=pad_token_id, eos_token_id=eos_token_id)
    base.update(overrides)
    return TinyLlavaVideoConfig(**base)


def random_model(tokenizer, preset: str = "test", *, seed: int = 0, **overrides: Any) -> TinyLlavaVideoForConditionalGeneration:
    """A randomly initialised model sized for ``tokenizer`` (same seed, same weights)."""
    cfg = tiny_config(len(tokenizer), preset, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, **overrides)
    torch.manual_seed(seed)
    return TinyLlavaVideoForConditionalGeneration(cfg).eval()
