"""``tinyr1 plan``: the predicted peak memory of a GRPO run, and its parts, before starting it.

    tinyr1 plan --policy tinyllava-video-r1 --quantization nf4 --lora-r 16 --frames 16 --G 8 --max-new-tokens 512
    tinyr1 plan --policy assets/policies/tiny-grpo --device cpu --json      # {"peak_gb": ..., "parts": {...}}

The policy is a registry id or alias (known offline), a policy directory or a config.json; no
weights are read. The figures are tinyr1.plan's model of what tinyr1's GRPO loop allocates (GB =
1e9 bytes): bytes allocated by torch on cuda, a fresh process's peak resident memory on cpu.
"""
from __future__ import annotations

import argparse
import json

from tinyr1.cli import UserError
from tinyr1.cli.options import MAX_FRAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    from tinyr1.plan import PLAN_QUANTIZATIONS, PROMPT_TEXT_TOKENS

    p = subparsers.add_parser(
        "plan", help="predict the peak memory of a GRPO run (weights, optimizer, KV cache, activations...)",
        description="Predict the peak memory of one GRPO step with tinyr1's loop and print its parts.")
    p.add_argument("--policy", required=True, metavar="NAME_OR_PATH",
                   help="a registry id or alias (`tinyr1 policies`), a policy directory or a config.json")
    p.add_argument("--quantization", choices=PLAN_QUANTIZATIONS, default="none",
                   help="weights: none (the device's compute dtype: bf16 on cuda, float32 on cpu), fp32, bf16, "
                   "int8 or nf4 (these two need --lora-r)")
    p.add_argument("--lora-r", type=int, default=0, metavar="R", help="LoRA rank (default 0: full fine-tuning)")
    p.add_argument("--frames", type=int, default=None, metavar="N", help="frames per video (default: the policy's)")
    p.add_argument("--G", type=int, default=8, help="completions per prompt (default 8)")
    p.add_argument("--prompts", type=int, default=1, metavar="N", help="prompts per step on this device (default 1)")
    p.add_argument("--max-new-tokens", type=int, default=512, metavar="T", help="completion length (default 512)")
    p.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True,
                   help="activation checkpointing of the language model (default on)")
    p.add_argument("--full-logits", action="store_true",
                   help="model the log-prob computation before chunking ([rows, T, vocab] logits; and Qwen2.5-VL's "
                   "prompt repeated per completion)")
    p.add_argument("--beta", type=float, default=0.01, help="KL weight: > 0 keeps a frozen reference copy when "
                   "fine-tuning fully (default 0.01, the paper's)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where the run happens (default cuda)")
    p.add_argument("--prompt-tokens", type=int, default=PROMPT_TEXT_TOKENS, metavar="N",
                   help=f"text tokens of a prompt besides the video's (default {PROMPT_TEXT_TOKENS})")
    p.add_argument("--json", action="store_true", help="print one JSON object (peak_gb, parts, phases, shapes)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinyr1.plan import plan, table
    from tinyr1.policy.spec import PolicyError

    if args.frames is not None and not 1 <= args.frames <= MAX_FRAMES:
        raise UserError(f"--frames must be between 1 and {MAX_FRAMES}, got {args.frames}")
    for flag, value, low in (("--G", args.G, 1), ("--prompts", args.prompts, 1), ("--max-new-tokens", args.max_new_tokens, 1),
                             ("--lora-r", args.lora_r, 0), ("--prompt-tokens", args.prompt_tokens, 0)):
        if value < low:
            raise UserError(f"{flag} must be >= {low}, got {value}")
    try:
        result = plan(args.policy, quantization=args.quantization, lora_r=args.lora_r, frames=args.frames, G=args.G,
                      prompts=args.prompts, max_new_tokens=args.max_new_tokens, checkpointing=args.checkpointing,
                      device=args.device, beta=args.beta, full_logits=args.full_logits,
                      prompt_tokens=args.prompt_tokens)
    except PolicyError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
    return 0
