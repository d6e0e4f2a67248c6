"""Decode speed of the real-size TinyLLaVA-Video-R1 policy on this machine's CPU (random weights).

    PYTHONPATH=. .venv/bin/python bench/bench_cpu_decode.py                       # nf4, 16 frames, 64 tokens
    PYTHONPATH=. .venv/bin/python bench/bench_cpu_decode.py --quantization bf16 --repeats 3 --json out.json

The policy is the published TinyLLaVA-Video-R1 architecture (3.6B parameters) with random weights
(bench/random_real.py: drawn in bf16 on the CPU, then loaded through ``from_pretrained`` as
``tinyr1.policy.load_policy`` would, in nf4 through bitsandbytes' CPU kernels, or bf16). One prompt
of 16 synthetic 384 x 384 frames (a square crossing the picture), batch 1, greedy, ``--tokens`` new
tokens with the end token suppressed so every answer has that length (random weights would stop
anywhere). A short warm-up call (4 tokens), then ``--repeats`` calls; the table gives the median
of each part from ``Policy.last_stats``: encode (vision tower + connector), prefill (first language
model forward), decode (the other tokens) and decode tokens/s, plus the process's peak RSS and the
load average (the 2 cores are shared). Results: docs/BENCHMARKS.md, "Real size on this CPU".
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

QUESTION = "Which way does the red square move?"
OPTIONS = ["left", "right", "up", "down"]


def frames(n: int, side: int = 384):
    """``n`` frames of a red square crossing a grey picture from left to right."""
    import numpy as np

    video = np.full((n, side, side, 3), 40, np.uint8)
    for t in range(n):
        x = int(t * (side - 64) / max(1, n - 1))
        video[t, 160:224, x : x + 64] = (220, 40, 40)
    return video


def load(quantization: str | None, size: str = "real"):
    """The real-size random policy on the CPU, the end token suppressed; the bf16 draw freed."""
    import random_real

    from tinyr1.policy import Policy

    class NoEnd(Policy):
        """The runtime with the end token also suppressed: every answer is max_new_tokens long."""

        @property
        def suppressed_token_ids(self) -> list[int]:
            return sorted({*super().suppressed_token_ids, self.eos_token_id})

    t = time.perf_counter()
    config, tokenizer, state = random_real.random_weights(size)
    draw_s = time.perf_counter() - t
    t = time.perf_counter()
    policy = random_real.load_random_policy(config, tokenizer, state, "cpu", quantization, name="random-real",
                                            policy_cls=NoEnd)
    load_s = time.perf_counter() - t
    del state
    random_real.forget_weights()
    gc.collect()
    return policy, draw_s, load_s


def lm_decode(policy, prompt_length: int, tokens: int, repeats: int) -> list[float]:
    """Decode tokens/s of the language model alone, greedy, after a ``prompt_length``-token text
    prompt: the time between the first and the last new token over the tokens between them (one
    LogitsProcessor call per new token marks each), for a warm-up call and then ``repeats`` calls."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    class Clock(LogitsProcessor):
        def __init__(self) -> None:
            self.marks: list[float] = []

        def __call__(self, input_ids, scores):
            self.marks.append(time.perf_counter())
            return scores

    lm = policy.model.language_model
    ids = torch.randint(10, len(policy.tokenizer) - 1, (1, prompt_length), generator=torch.Generator().manual_seed(0))
    speeds = []
    for i in range(repeats + 1):
        clock = Clock()
        n = 4 if i == 0 else tokens
        with torch.inference_mode():
            lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                        do_sample=False, logits_processor=LogitsProcessorList([clock]),
                        pad_token_id=policy.tokenizer.pad_token_id)
        if i:
            speeds.append((len(clock.marks) - 1) / (clock.marks[-1] - clock.marks[0]))
            print(f"run {i}: {speeds[-1]:.3f} tokens/s decode (language model alone)", flush=True)
    return speeds


def run(quantization: str | None, n_frames: int, tokens: int, repeats: int, size: str = "real",
        lm_prompt: int = 0) -> dict:
    import torch

    from tinyr1.policy import GenerationSettings

    policy, draw_s, load_s = load(quantization, size)
    print(f"loaded: draw {draw_s:.0f} s, load {load_s:.0f} s", flush=True)
    batch = policy.build_inputs([(frames(n_frames), QUESTION, OPTIONS)])
    if lm_prompt:
        speeds = lm_decode(policy, lm_prompt, tokens, repeats)
        return {"quantization": quantization or "bf16", "mode": "language model alone", "new_tokens": tokens,
                "repeats": repeats, "lm_prompt_tokens": lm_prompt, "video_prompt_length": int(batch.input_ids.shape[1]),
                "parameters": sum(p.numel() for p in policy.model.parameters()),
                "median": {"tokens_per_s": statistics.median(speeds)}, "runs_tokens_per_s": speeds,
                "draw_s": draw_s, "load_s": load_s, "torch_threads": torch.get_num_threads(),
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
                "load_average": os.getloadavg(), "torch": torch.__version__}
    policy._run_generate(batch, GenerationSettings(max_new_tokens=4, temperature=0.0, seed=0))  # warm-up
    runs = []
    for i in range(repeats):
        ids, _ = policy._run_generate(batch, GenerationSettings(max_new_tokens=tokens, temperature=0.0, seed=i))
        assert ids.shape[1] == tokens, ids.shape
        runs.append(dict(policy.last_stats))
        print(f"run {i + 1}: {runs[-1]['tokens_per_s']:.2f} tokens/s decode", flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in ("encode_s", "prefill_s", "decode_s", "tokens_per_s")}
    return {
        "quantization": quantization or "bf16", "frames": n_frames, "new_tokens": tokens, "repeats": repeats,
        "parameters": sum(p.numel() for p in policy.model.parameters()),
        "prompt_length": int(batch.input_ids.shape[1]), "median": med,
        "runs_tokens_per_s": [r["tokens_per_s"] for r in runs], "draw_s": draw_s, "load_s": load_s,
        "torch_threads": torch.get_num_threads(), "generation_threads": policy._generation_threads(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "load_average": os.getloadavg(), "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quantization", default="nf4", choices=["nf4", "int8", "bf16"])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lm-only", type=int, default=0, metavar="PROMPT_TOKENS",
                        help="time the language model's decode alone after this many text tokens (no vision encode)")
    parser.add_argument("--size", default="real", choices=["real", "tiny"], help="tiny: a quick check of the script")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    r = run(None if args.quantization == "bf16" else args.quantization, args.frames, args.tokens, args.repeats, args.size,
            args.lm_only)
    m = r["median"]
    if args.lm_only:
        print(f"{args.size}-size random policy, {r['quantization']}, language model alone after {args.lm_only} tokens, batch 1, "
              f"greedy, {r['new_tokens']} new tokens, median of {r['repeats']}: {m['tokens_per_s']:.3f} tokens/s "
              f"(runs {', '.join(f'{x:.3f}' for x in r['runs_tokens_per_s'])}); the 16-frame prompt is "
              f"{r['video_prompt_length']} positions; peak RSS {r['peak_rss_gb']:.1f} GB; load average "
              f"{', '.join(f'{x:.1f}' for x in r['load_average'])}")
    else:
        print(f"{args.size}-size random policy, {r['quantization']}, {r['parameters'] / 1e9:.2f}B parameters, {r['frames']} frames "
              f"(prompt {r['prompt_length']} positions), batch 1, greedy, {r['new_tokens']} new tokens, median of "
              f"{r['repeats']}: encode {m['encode_s']:.1f} s, prefill {m['prefill_s']:.1f} s, decode {m['decode_s']:.1f} s "
              f"= {m['tokens_per_s']:.2f} tokens/s; peak RSS {r['peak_rss_gb']:.1f} GB; load average "
              f"{', '.join(f'{x:.1f}' for x in r['load_average'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
