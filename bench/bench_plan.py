"""`tinyr1 plan` against measurement: real GRPO steps in fresh processes on the CPU, peak RSS vs prediction.

    PYTHONPATH=. .venv/bin/python bench/bench_plan.py                   # every size of both families
    PYTHONPATH=. .venv/bin/python bench/bench_plan.py --sizes s --json out.json
    PYTHONPATH=. .venv/bin/python bench/bench_plan.py --sizes m --families qwen2_5_vl --checkpointing on
    PYTHONPATH=. .venv/bin/python bench/bench_plan.py --predict                # the plan only, no step run
    PYTHONPATH=. .venv/bin/python bench/bench_plan.py --one '{"family": "tinyllava", "hidden": 256, ...}'

Each shape runs in its own fresh Python process (``--one``): a random policy of that shape
(TinyLLaVA-Video: tinyr1.models.tinyllava.random's "embedded" preset with the text model widened;
Qwen2.5-VL: tinyr1.models.qwen2_5_vl.tiny_qwen_vl_model), one step of tinyr1.grpo.train (the real
loop: batched rollout, reference log-probs, the graded forward/backward, AdamW) on two synthetic
world clips, then its VmHWM from /proc/self/status. The parent compares it with
``tinyr1.plan.plan(device="cpu")`` for the same config, frames, G, tokens and prompt length.
Results: docs/BENCHMARKS.md, "tinyr1 plan against measurement".
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Scaled-down shapes: (family, text hidden, text layers); vocabularies are the tiny tokenizers'.
SIZES = {
    "s": [("tinyllava", 256, 4), ("qwen2_5_vl", 256, 4)],
    "m": [("tinyllava", 768, 8), ("qwen2_5_vl", 768, 8)],
    "l": [("tinyllava", 1536, 8), ("qwen2_5_vl", 1536, 8)],
}
RUN = {"G": 4, "prompts": 1, "max_new_tokens": 48, "frames": 4}
QWEN_MAX_PIXELS = 56 * 56


def _vmhwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _policy(shape: dict):
    if shape["family"] == "tinyllava":
        from tinyr1.models.tinyllava.random import random_model
        from tinyr1.policy import Policy
        from tinyr1.tokenizer import default_corpus, train_tokenizer

        tok = train_tokenizer(default_corpus(), 512)
        text = {"hidden_size": shape["hidden"], "intermediate_size": 4 * shape["hidden"],
                "num_hidden_layers": shape["layers"], "num_attention_heads": 8, "num_key_value_heads": 2}
        model = random_model(tok, "embedded", seed=0, text_config=text, num_frames=RUN["frames"])
        return Policy(model, tok)
    from tinyr1.models.qwen2_5_vl import VideoProcessing
    from tinyr1.policy.qwen2_5_vl import QwenVLPolicy, tiny_qwen_vl_model, tiny_qwen_vl_tokenizer

    tok = tiny_qwen_vl_tokenizer()
    model = tiny_qwen_vl_model(tok, seed=0, hidden=shape["hidden"], layers=shape["layers"], init_std=0.02)
    return QwenVLPolicy(model, tok, processing=VideoProcessing(min_pixels=28 * 28, max_pixels=QWEN_MAX_PIXELS),
                        num_frames=RUN["frames"])


def run_one(shape: dict) -> dict:
    """In this (fresh) process: one GRPO step on a random policy of ``shape``; the peak RSS."""
    import torch

    from tinyr1.data import load_dataset
    from tinyr1.grpo import GRPOConfig, train
    from tinyr1.world import write_split

    import peft  # noqa: F401  (the same imports as plan's CPU_PROCESS_BASELINE_GB measurement)
    import transformers  # noqa: F401

    import tinyr1.policy  # noqa: F401

    baseline = _vmhwm_bytes()  # this environment's own import baseline (venvs differ by ~0.1 GB)
    torch.manual_seed(0)
    policy = _policy(shape)
    with tempfile.TemporaryDirectory() as tmp:
        rows = load_dataset(write_split("train", 2, Path(tmp) / "world", progress=False))
        prompt = policy.build_inputs([(__import__("numpy").zeros((RUN["frames"], 64, 64, 3), "uint8"),
                                       rows[0].question, rows[0].options)])
        config = GRPOConfig(steps=1, num_generations=RUN["G"], prompts_per_step=RUN["prompts"],
                            max_new_tokens=RUN["max_new_tokens"], num_frames=RUN["frames"], checkpoint_every=0,
                            warmup_ratio=0.0, temperature=1.0, gradient_checkpointing=shape["checkpointing"])
        records = list(train(config, policy, rows, Path(tmp) / "run"))
        policy.core.config.to_json_file(str(Path(tmp) / "config.json"))
        config_json = json.loads((Path(tmp) / "config.json").read_text())
    visual = int((prompt.input_ids == (policy.config.video_token_id if shape["family"] == "qwen2_5_vl"
                                       else policy.config.image_token_index)).sum())
    return {"peak_bytes": _vmhwm_bytes(), "baseline_bytes": baseline, "config": config_json, "prompt_text_tokens": prompt.input_ids.shape[1] - visual,
            "tokens": float(records[-1].metrics.get("completion_length", 0) or 0),
            "params": sum(p.numel() for p in policy.model.parameters())}


def predict_only(shape: dict) -> dict:
    """The plan for ``shape`` without running a step (to recompute a table after a formula change):
    the same config and prompt length as ``run_one`` would use."""
    import numpy as np

    from tinyr1.data import load_dataset
    from tinyr1.plan import plan
    from tinyr1.world import write_split

    policy = _policy(shape)
    with tempfile.TemporaryDirectory() as tmp:  # the same first question as run_one's
        row = load_dataset(write_split("train", 2, Path(tmp) / "world", progress=False))[0]
        prompt = policy.build_inputs([(np.zeros((RUN["frames"], 64, 64, 3), "uint8"), row.question, row.options)])
    token = policy.config.video_token_id if shape["family"] == "qwen2_5_vl" else policy.config.image_token_index
    text = prompt.input_ids.shape[1] - int((prompt.input_ids == token).sum())
    with tempfile.TemporaryDirectory() as tmp:
        policy.core.config.to_json_file(str(Path(tmp) / "config.json"))
        return plan(str(Path(tmp) / "config.json"), device="cpu", frames=RUN["frames"], G=RUN["G"],
                    prompts=RUN["prompts"], max_new_tokens=RUN["max_new_tokens"], checkpointing=shape["checkpointing"],
                    prompt_tokens=text, max_pixels=QWEN_MAX_PIXELS)


def compare(shape: dict) -> dict:
    """Run ``shape`` in a fresh process and put the plan for the same shapes beside it."""
    from tinyr1.plan import CPU_PROCESS_BASELINE_GB, plan

    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(shape)], capture_output=True, text=True,
                         cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    if out.returncode:
        raise RuntimeError(f"{shape}: {out.stderr[-2000:]}")
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(measured["config"]))
        predicted = plan(str(Path(tmp) / "config.json"), device="cpu", frames=RUN["frames"], G=RUN["G"],
                         prompts=RUN["prompts"], max_new_tokens=RUN["max_new_tokens"],
                         checkpointing=shape["checkpointing"], prompt_tokens=measured["prompt_text_tokens"],
                         max_pixels=QWEN_MAX_PIXELS)
    peak = measured["peak_bytes"] / 1e9
    # The plan's CPU figure carries a fixed import baseline measured once (CPU_PROCESS_BASELINE_GB);
    # a fresh virtual environment measures a different one. "error" swaps in this environment's own
    # baseline, so it checks what the plan models (the run), not which venv it runs in;
    # "error_fixed_baseline" is the plan as printed.
    own = predicted["peak_gb"] - CPU_PROCESS_BASELINE_GB + measured["baseline_bytes"] / 1e9
    return {**shape, "params": measured["params"], "measured_gb": round(peak, 3), "predicted_gb": predicted["peak_gb"],
            "baseline_gb": round(measured["baseline_bytes"] / 1e9, 3), "error": round(own / peak - 1, 3),
            "error_fixed_baseline": round(predicted["peak_gb"] / peak - 1, 3),
            "completion_tokens": measured["tokens"], "parts": predicted["parts"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="s,m,l", help="comma-separated keys of SIZES (default s,m,l)")
    parser.add_argument("--checkpointing", default="on,off", help="on, off or on,off (default both)")
    parser.add_argument("--families", default="tinyllava,qwen2_5_vl", help="comma-separated (default both)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--predict", action="store_true", help="only print the plan for each shape (no step run)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    rows = []
    if not args.predict:
        print(f"{'family':<11}{'hidden':>7}{'layers':>7}{'ckpt':>6}{'params':>10}{'measured GB':>13}{'plan GB':>9}{'error':>8}")
    for size in args.sizes.split(","):
        for family, hidden, layers in SIZES[size]:
            if family not in args.families.split(","):
                continue
            for ck in args.checkpointing.split(","):
                if args.predict:
                    p = predict_only({"family": family, "hidden": hidden, "layers": layers, "checkpointing": ck == "on"})
                    print(f"{family:<11}{hidden:>7}{layers:>7}{ck:>6}  plan {p['peak_gb']:.3f} GB ({p['peak_phase']}) "
                          f"{p['parts']}", flush=True)
                    continue
                row = compare({"family": family, "hidden": hidden, "layers": layers, "checkpointing": ck == "on"})
                rows.append(row)
                print(f"{family:<11}{hidden:>7}{layers:>7}{ck:>6}{row['params'] / 1e6:>9.1f}M{row['measured_gb']:>13.3f}"
                      f"{row['predicted_gb']:>9.3f}{row['error']:>+8.1%}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
