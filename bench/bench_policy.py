"""Benchmark of the policy runtime on this CPU: video file -> complete 128-token answer, and the
batched GRPO sampler against sequential calls.

    .venv/bin/python bench/bench_policy.py                    # embedded size, 4 frames, 5 repeats
    .venv/bin/python bench/bench_policy.py --frames 8 --repeats 7 --json out.json

What it measures, on a random policy of the size of the first embedded-policy trial
(docs/DESIGN.md, "The embedded tiny policy"; preset "embedded": SigLIP 32 px patch 4, 64 x 3; resampler 4 latents/frame x 2; Qwen2 128 x 4):

1. A 10-second 320x240 25-fps mp4 (written once into a temporary folder) -> a 128-token answer:
   frame sampling/decoding (tinyr1.video.load_frames), preprocessing (resize to 32 px with PIL
   bicubic, normalise, tokenize), encode (vision tower + connector + embeddings), prefill (first
   LM forward), decode (127 more tokens); tokens per second; peak RSS of the process.
2. ``Policy.sample`` with G = 8 completions of 128 tokens in one batched call, against 8 calls of
   G = 1 in the same run (interleaved, median of the repeats), plus the GRPO step shape
   (8 prompts x G = 8 = 64 rows).

Random weights rarely emit the end token, but "complete 128-token answers" must be 128 tokens, so
the end token is suppressed here (a subclass; the runtime itself never does that). Sampling at
temperature 1, top-p 1. The machine's load average is printed: the 2 cores are shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tinyr1.policy.random import make_random_policy
from tinyr1.policy import GenerationSettings, Policy, load_policy
from tinyr1.video import load_frames

QUESTION = "Which way does the red square move?"
OPTIONS = ["left", "right", "up", "down"]


class _NoEndPolicy(Policy):
    """The runtime with the end token also suppressed: every answer is max_new_tokens long."""

    @property
    def suppressed_token_ids(self) -> list[int]:
        return sorted({*super().suppressed_token_ids, self.eos_token_id})


def write_clip(path: Path, seconds: float = 10.0, fps: int = 25, size: tuple[int, int] = (240, 320)) -> Path:
    from tinyr1.world import write_mp4

    n = int(seconds * fps)
    h, w = size
    video = np.full((n, h, w, 3), 30, np.uint8)
    for t in range(n):  # a red square crossing the frame, a blue one falling
        x = int(t * (w - 40) / (n - 1))
        y = int(t * (h - 40) / (n - 1))
        video[t, 100:140, x : x + 40] = (220, 40, 40)
        video[t, y : y + 40, 140:180] = (40, 40, 220)
    return write_mp4(video, path, fps=fps)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def run(frames_n: int, repeats: int, tokens: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="tinyr1-bench-"))
    clip = write_clip(work / "clip10s.mp4")
    overrides = {}
    policy_dir = make_random_policy(work / "policy", "embedded", seed=0)
    if frames_n != 4:  # same sizes, more frames: 4 latents per frame, one group per frame
        from tinyr1.models.tinyllava.random import random_model
        from tinyr1.tokenizer import default_corpus, train_tokenizer

        tok = train_tokenizer(default_corpus(), 512)
        overrides = dict(num_frames=frames_n, group=frames_n, num_queries=4 * frames_n)
        Policy(random_model(tok, "embedded", seed=0, **overrides), tok).save(policy_dir)
    rss_before_load = peak_rss_mb()
    t = time.perf_counter()
    base = load_policy(policy_dir)
    load_s = time.perf_counter() - t
    policy = _NoEndPolicy(base.model, base.tokenizer, name=base.name, path=policy_dir)
    params = policy.describe()["parameters"]
    settings = GenerationSettings(max_new_tokens=tokens, temperature=1.0, top_p=1.0, seed=0)

    # 1. video file -> complete answer ------------------------------------------------------------
    load_frames(clip, frames_n)
    policy.generate(load_frames(clip, frames_n).frames, QUESTION, OPTIONS, settings)  # warm-up
    rows = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fr = load_frames(clip, frames_n)
        t1 = time.perf_counter()
        batch = policy.build_inputs([(fr.frames, QUESTION, OPTIONS)])
        t2 = time.perf_counter()
        ids, _ = policy._run_generate(batch, GenerationSettings(max_new_tokens=tokens, temperature=1.0, seed=i))
        t3 = time.perf_counter()
        st = policy.last_stats
        assert ids.shape[1] == tokens, ids.shape
        rows.append({"frames_s": t1 - t0, "preprocess_s": t2 - t1, "encode_s": st["encode_s"],
                     "prefill_s": st["prefill_s"], "decode_s": st["decode_s"], "generate_s": t3 - t2,
                     "total_s": t3 - t0, "tokens_per_s": st["tokens_per_s"]})
    single = {k: med([r[k] for r in rows]) for k in rows[0]}
    single["end_to_end_tokens_per_s"] = tokens / single["total_s"]

    # 2. batched G = 8 vs 8 sequential calls (interleaved so both see the same machine load) ------
    frames = load_frames(clip, frames_n).frames
    item = (frames, QUESTION, OPTIONS)
    policy.sample([item], G=8, settings=settings)  # warm-up
    batched, sequential, grpo = [], [], []
    for i in range(repeats):
        s = GenerationSettings(max_new_tokens=tokens, temperature=1.0, seed=i)
        t = time.perf_counter()
        out = policy.sample([item], G=8, settings=s)
        batched.append(time.perf_counter() - t)
        assert out.completion_ids.shape == (8, tokens)
        t = time.perf_counter()
        for g in range(8):
            policy.sample([item], G=1, settings=GenerationSettings(max_new_tokens=tokens, temperature=1.0, seed=100 * i + g))
        sequential.append(time.perf_counter() - t)
        if i < max(1, repeats // 2):
            t = time.perf_counter()
            policy.sample([item] * 8, G=8, settings=s)
            grpo.append(time.perf_counter() - t)
    result = {
        "frames": frames_n,
        "tokens": tokens,
        "repeats": repeats,
        "parameters": params,
        "visual_tokens": policy.config.num_visual_tokens,
        "prompt_length": int(batch.input_ids.shape[1]),
        "torch_threads_generation": policy._generation_threads() or torch.get_num_threads(),
        "load_s": load_s,
        "single": single,
        "batched_g8_s": med(batched),
        "sequential_8_s": med(sequential),
        "speedup": med(sequential) / med(batched),
        "grpo_8x8_s": med(grpo),
        "grpo_8x8_rows_per_s": 64 / med(grpo),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_load_mb": rss_before_load,
        "load_average": os.getloadavg(),
        "cpu": _cpu_name(),
    }
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def table(r: dict) -> str:
    s = r["single"]
    lines = [
        f"Policy runtime, embedded size ({r['parameters']['total'] / 1e6:.2f}M parameters, {r['frames']} frames, "
        f"{r['visual_tokens']} visual tokens, prompt {r['prompt_length']} positions), {r['tokens']} new tokens, "
        f"median of {r['repeats']}; CPU {r['cpu']}, load average {', '.join(f'{x:.1f}' for x in r['load_average'])}",
        "",
        "| step | median |",
        "|---|---|",
        f"| frames (10 s 320x240 mp4 -> {r['frames']} frames) | {s['frames_s'] * 1000:.1f} ms |",
        f"| preprocessing (resize, normalise, tokenize) | {s['preprocess_s'] * 1000:.1f} ms |",
        f"| encode (vision tower + connector) | {s['encode_s'] * 1000:.1f} ms |",
        f"| prefill (first LM forward) | {s['prefill_s'] * 1000:.1f} ms |",
        f"| decode ({r['tokens'] - 1} tokens) | {s['decode_s'] * 1000:.0f} ms ({s['tokens_per_s']:.0f} tokens/s) |",
        f"| **video file -> complete answer** | **{s['total_s'] * 1000:.0f} ms** ({s['end_to_end_tokens_per_s']:.0f} tokens/s end to end) |",
        f"| peak RSS of the process | {r['peak_rss_mb']:.0f} MB ({r['rss_before_load_mb']:.0f} MB before loading the policy) |",
        "",
        "| sampler | median | |",
        "|---|---|---|",
        f"| 8 sequential calls, G = 1 | {r['sequential_8_s'] * 1000:.0f} ms | 1.0x |",
        f"| one batched call, G = 8 | {r['batched_g8_s'] * 1000:.0f} ms | **{r['speedup']:.1f}x** |",
        f"| GRPO step shape: 8 prompts x G = 8 | {r['grpo_8x8_s'] * 1000:.0f} ms | {r['grpo_8x8_rows_per_s']:.0f} completions/s |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args.frames, args.repeats, args.tokens)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
