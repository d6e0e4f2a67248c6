"""Write a random TinyLLaVA-Video policy directory (weights, tokenizer, policy.json).

    python -m tinyr1.policy.random OUT_DIR                      # the "embedded" size, seed 0
    python -m tinyr1.policy.random OUT_DIR --preset test --seed 3
    tinyr1 reason clip.mp4 --question "How many squares?" --policy OUT_DIR

The model comes from tinyr1.models.tinyllava.random (presets "test" and "embedded"); its
tokenizer is trained on a few format lines (tinyr1.tokenizer.default_corpus). The weights are
random: the text it writes is noise, but every code path runs (tests, benchmarks, a first try).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyr1.models.tinyllava import TinyLlavaVideoForConditionalGeneration
from tinyr1.models.tinyllava.random import PRESETS, random_model
from tinyr1.policy.runtime import Policy
from tinyr1.tokenizer import default_corpus, train_tokenizer


def make_random_policy(out_dir: str | Path, preset: str = "embedded", *, seed: int = 0, vocab_size: int = 512) -> Path:
    """Write a random policy directory (weights, tokenizer, policy.json) and return its path."""
    tokenizer = train_tokenizer(default_corpus(), vocab_size)
    model = random_model(tokenizer, preset, seed=seed)
    meta = {"name": Path(out_dir).name, "kind": "random", "preset": preset, "seed": seed,
            "note": "random weights: for testing the runtime, not for answers"}
    return Policy(model, tokenizer, metadata=meta).save(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyr1.policy.random", description=__doc__.split("\n\n")[0])
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
