"""Tiny random models, tokenizers, policies and frames for the tests (no downloads, ~ms to build).

    from tiny import tiny_tokenizer, tiny_model, tiny_policy, tiny_frames   # tests/ is on sys.path under pytest
    policy = tiny_policy()                     # in-memory Policy on the "test" preset
    path = tiny_policy_dir(tmp_path)           # the same, saved as a policy directory

The text model is initialised with a larger spread than transformers' default (0.02) so that its
greedy outputs depend on the prompt and the video: with near-uniform logits every prompt would
decode the same token forever and "batched equals per-sample" would pass trivially.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tinyr1.models.tinyllava.random import random_model
from tinyr1.policy import GenerationSettings, Policy, policy_from_model
from tinyr1.tokenizer import default_corpus, train_tokenizer

#: Spread of the text model's random weights (see the module docstring).
TEXT_INIT_STD = 0.3


@functools.lru_cache(maxsize=None)
def tiny_tokenizer(vocab_size: int = 400):
    """A byte-level BPE trained on the format lines (cached: the tests must not mutate it)."""
    return train_tokenizer(default_corpus(), vocab_size)


def tiny_model(seed: int = 0, preset: str = "test", **overrides):
    """A random TinyLLaVA-Video model for ``tiny_tokenizer()``."""
    text = {"initializer_range": TEXT_INIT_STD, **overrides.pop("text_config", {})}
    return random_model(tiny_tokenizer(), preset, seed=seed, text_config=text, **overrides)


def tiny_policy(seed: int = 0, preset: str = "test", **overrides) -> Policy:
    return policy_from_model(tiny_model(seed, preset, **overrides), tiny_tokenizer(), name=f"tiny-{preset}-{seed}")


def tiny_policy_dir(path: Path, seed: int = 0, preset: str = "test", **overrides) -> Path:
    return tiny_policy(seed, preset, **overrides).save(path)


def tiny_frames(n: int = 4, size: int | tuple[int, int] = 32, seed: int = 0) -> np.ndarray:
    """Random uint8 frames [n, H, W, 3]."""
    h, w = (size, size) if isinstance(size, int) else size
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


#: Generation settings and prompts the policy tests share: short, greedy or seeded.
GREEDY = GenerationSettings(max_new_tokens=12, temperature=0)
SAMPLED = GenerationSettings(max_new_tokens=12, temperature=0.8, top_p=0.9, seed=3)
# Prompts of different lengths, so left padding is exercised in every batched call.
ITEMS = [
    (tiny_frames(seed=0), "How many squares?", ["1", "2"]),
    (tiny_frames(seed=1), "Which way does the red square move across the frame?", ["left", "right", "up"]),
    (tiny_frames(seed=2), "What colour?", None),
]
