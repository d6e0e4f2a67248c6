"""How much of one GRPO step's gradient is signal? The cosine between the policy gradients of
independent rollout batches (different prompts, different samples) of the same policy.

    .venv/bin/python bench/grpo_snr.py                                   # the shipped cold start
    .venv/bin/python bench/grpo_snr.py --prompts 8 32 --top-p 1.0 0.8 --batches 4 --json snr.json

For each (prompts, top-p) setting it draws ``--batches`` disjoint-seeded batches of world train
questions, samples G completions per question at temperature ``--temperature`` with nucleus mass
top-p, scores them (``--reward``), computes the group advantages (no noise) and the gradient of
the GRPO loss (token mean per sequence) over the trainable parameters (language model and
connector, as ``tinyr1.grpo`` trains them), and prints the mean pairwise cosine. Two estimates of
the same expected gradient with signal s and noise n per batch have an expected cosine of about
|s|^2 / (|s|^2 + |n|^2): near 0, a step is mostly noise; many steps must average it away before
the weights move the right way, and a learning rate large enough to move in few steps moves at
random (what docs/RESULTS.md saw at lr 1e-4 with top-p 1).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", type=Path, default=ROOT / "assets" / "policies" / "tiny-coldstart")
    ap.add_argument("--reward", default="format_accuracy", help="a name of tinyr1.rewards.REWARDS")
    ap.add_argument("--prompts", type=int, nargs="+", default=[8, 32], help="prompts per batch (several: each)")
    ap.add_argument("--top-p", type=float, nargs="+", default=[1.0, 0.9, 0.8], help="nucleus mass (several: each)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--train-n", type=int, default=2000, help="world train questions drawn from")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)

    from tinyr1.evaluate import world_rows
    from tinyr1.grpo.config import preset
    from tinyr1.grpo.loop import setup_trainable
    from tinyr1.grpo.objective import aggregate_loss, group_advantages
    from tinyr1.policy import GenerationSettings, load_policy
    from tinyr1.rewards import REWARDS
    from tinyr1.video import load_frames

    rows = world_rows("train", args.train_n)
    policy = load_policy(args.policy)
    params = [p for _, p in setup_trainable(policy, preset("tiny"))]
    reward, G = REWARDS[args.reward], args.G

    def gradient(indices, seed: int, top_p: float) -> torch.Tensor:
        chosen = [rows[i] for i in indices]
        items = [(load_frames(r.video, policy.num_frames).frames, r.question, r.options) for r in chosen]
        batch = policy.sample(items, G, GenerationSettings(temperature=args.temperature, top_p=top_p,
                                                           max_new_tokens=args.max_new_tokens, seed=seed))
        totals = torch.zeros(len(chosen), G, dtype=torch.float64)
        for k, r in enumerate(chosen):
            texts = batch.texts[k * G : (k + 1) * G]
            totals[k] = torch.tensor(reward(texts, answer=[r.answer] * G, options=[list(r.options)] * G))
        adv = group_advantages(totals, eps=1e-4, noise_std=0.0, scale=True).reshape(-1, 1).float()
        policy.model.train()
        lp = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)
        loss = aggregate_loss(-adv * lp, batch.completion_mask, "grpo")
        for p in params:
            p.grad = None
        loss.backward()
        policy.model.eval()
        return torch.cat([p.grad.flatten() for p in params]).clone()

    results = []
    for n, top_p in itertools.product(args.prompts, args.top_p):
        rng = np.random.default_rng(0)  # the same prompt draws for every top-p: only sampling differs
        grads = [gradient(rng.choice(len(rows), n, replace=False), seed, top_p) for seed in range(args.batches)]
        cos = [float(torch.nn.functional.cosine_similarity(a, b, dim=0))
               for a, b in itertools.combinations(grads, 2)]
        results.append({"prompts": n, "top_p": top_p, "temperature": args.temperature, "G": G,
                        "reward": args.reward, "mean_cosine": float(np.mean(cos)), "cosines": cos})
        print(f"prompts {n:3d} x G {G}, T {args.temperature:g}, top-p {top_p:g}: mean cosine "
              f"{np.mean(cos):+.3f}  ({', '.join(f'{c:+.2f}' for c in cos)})", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"policy": str(args.policy), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
