"""Tiny random TinyLLaVA-Video policies: configs by preset, and a command that writes one.

    python -m tinyr1.models.random OUT_DIR                      # the "embedded" size, seed 0
    python -m tinyr1.models.random OUT_DIR --preset test --seed 3
    tinyr1 reason clip.mp4 --question "How many squares?" --policy OUT_DIR

Presets (all share the architecture; only sizes differ):

- ``test``: the smallest useful model (SigLIP 32 px, patch 8, 32 wide x 2 layers; resampler
  2 latents/frame x 1 layer; Qwen2 64 wide x 2 layers), for unit tests (~0.4M parameters).
- ``embedded``: the size DESIGN section 4's trial used for the shipped tiny policy (4 frames of
  32 px, SigLIP patch 4 = 64 patches, 64 wide x 3 layers; resampler 4 latents/frame x 2 layers;
  Qwen2 128 wide x 4 layers, tied embeddings; ~1.6M parameters with a ~1k-token vocabulary).

The tokenizer of a random policy is trained on a few format lines (tinyr1.tokenizer.default_corpus).
The weights are random: the text it writes is noise, but every code path runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from tinyr1.models.configuration import TinyLlavaVideoConfig
from tinyr1.models.modeling import TinyLlavaVideoForConditionalGeneration

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


def make_random_policy(out_dir: str | Path, preset: str = "embedded", *, seed: int = 0, vocab_size: int = 512) -> Path:
    """Write a random policy directory (weights, tokenizer, policy.json) and return its path."""
    from tinyr1.policy import Policy
    from tinyr1.tokenizer import default_corpus, train_tokenizer

    tokenizer = train_tokenizer(default_corpus(), vocab_size)
    model = random_model(tokenizer, preset, seed=seed)
    meta = {"name": Path(out_dir).name, "kind": "random", "preset": preset, "seed": seed,
            "note": "random weights: for testing the runtime, not for answers"}
    return Policy(model, tokenizer, metadata=meta).save(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyr1.models.random", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="directory to write (replaced if it exists)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="embedded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=512)
    args = parser.parse_args(argv)
    path = make_random_policy(args.out_dir, args.preset, seed=args.seed, vocab_size=args.vocab_size)
    n = sum(p.numel() for p in TinyLlavaVideoForConditionalGeneration.from_pretrained(path).parameters())
    print(f"wrote a random {args.preset} policy ({n / 1e6:.2f}M parameters) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
