"""The command-line flags that several ``tinyr1`` commands share, defined once.

    from tinyr1.cli import options
    options.add_policy_options(parser)        # --policy, --device, --dtype, --quantization
    options.add_generation_options(parser)    # --max-new-tokens, --temperature, --top-p, --seed, --frames
    ...
    options.check_policy_options(args)        # UserError (exit 2) for a bad value, before any torch import
    options.check_generation_options(args)
    policy = load_policy(args.policy, **options.policy_kwargs(args))
    settings = GenerationSettings(**options.generation_kwargs(args))

Used by ``tinyr1 reason`` and ``tinyr1 eval``. The checks here are deliberately cheap (no torch,
no transformers): a mistyped flag must answer in well under a second, not after the seconds that
importing the model stack costs (docs/DESIGN.md, "Code layout").
"""
from __future__ import annotations

import argparse
import math
import re
from typing import Any

from tinyr1.cli import UserError
from tinyr1.policy.spec import QUANTIZATION_CHOICES

#: The quantizations a policy loads with (bitsandbytes); "none" is full precision. Owned by the
#: policy's torch-free leaf module, spelled for the command line ("none" instead of None).
QUANTIZATIONS = QUANTIZATION_CHOICES
#: Weight dtypes; "auto" is float32 on a CPU, bfloat16 (float16 without bf16 support) on CUDA.
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: Devices: "auto" is CUDA when available, else the CPU. cuda:N picks a GPU by index.
DEVICE_RE = re.compile(r"cpu|mps|auto|cuda(:\d+)?")
#: A cap on --max-new-tokens: the paper's recipe uses 512; 4096 leaves room for long reasoning
#: while a typo such as 1000000 is refused instead of running for hours.
MAX_NEW_TOKENS_CAP = 4096
#: torch.manual_seed takes a signed 64-bit integer.
SEED_MAX = 2**63 - 1
#: Frames per video: tinyr1.video.VideoLimits().max_frames (kept equal by tests/test_cli_options.py;
#: not imported here so that parsing flags stays free of numpy).
MAX_FRAMES = 256


def add_policy_options(parser: argparse.ArgumentParser, *, policy_help: str | None = None) -> None:
    """--policy, --device, --dtype and --quantization."""
    parser.add_argument("--policy", metavar="NAME_OR_PATH",
                        help=policy_help or "a policy directory (tinyr1, official TinyLLaVA-Video or Qwen2.5-VL "
                        "checkpoint) or a registry id / alias from `tinyr1 policies` (default: the embedded policy)")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N, mps or auto (default auto: cuda if available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="weights' dtype (default auto: float32 on cpu, bfloat16 on cuda)")
    parser.add_argument("--quantization", choices=QUANTIZATIONS, default="none",
                        help="load the language model 4-bit (nf4) or 8-bit (int8) with bitsandbytes (default none)")


def add_generation_options(parser: argparse.ArgumentParser, *, temperature: float = 0.0,
                           max_new_tokens: int = 256) -> None:
    """--max-new-tokens, --temperature, --top-p, --seed and --frames."""
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens, metavar="N",
                        help=f"at most this many new tokens (default {max_new_tokens}, at most {MAX_NEW_TOKENS_CAP})")
    parser.add_argument("--temperature", type=float, default=temperature, metavar="T",
                        help=f"0 = greedy, else the sampling temperature (default {temperature:g})")
    parser.add_argument("--top-p", type=float, default=1.0, metavar="P",
                        help="nucleus sampling mass in (0, 1] (default 1.0: off)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for sampling (default 0)")
    parser.add_argument("--frames", type=int, default=None, metavar="N",
                        help="frames to sample per video (default: the policy's own)")


def check_policy_options(args: argparse.Namespace) -> None:
    """UserError for a device that torch would not understand (the choices are checked by argparse)."""
    if DEVICE_RE.fullmatch("auto" if args.device is None else args.device) is None:
        raise UserError(f"--device must be cpu, cuda, cuda:N, mps or auto, got {args.device!r}")


def check_generation_options(args: argparse.Namespace) -> None:
    """UserError for generation flags out of range, with what was expected."""
    if not 1 <= args.max_new_tokens <= MAX_NEW_TOKENS_CAP:
        raise UserError(f"--max-new-tokens must be between 1 and {MAX_NEW_TOKENS_CAP}, got {args.max_new_tokens}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise UserError(f"--temperature must be a finite number >= 0 (0 = greedy), got {args.temperature}")
    if not (math.isfinite(args.top_p) and 0 < args.top_p <= 1):
        raise UserError(f"--top-p (top_p, the nucleus mass) must be in (0, 1], got {args.top_p}")
    if not 0 <= args.seed <= SEED_MAX:
        raise UserError(f"--seed must be between 0 and 2**63 - 1, got {args.seed}")
    if args.frames is not None and not 1 <= args.frames <= MAX_FRAMES:
        raise UserError(f"--frames must be between 1 and {MAX_FRAMES}, got {args.frames}")


def add_allow_outside(parser: argparse.ArgumentParser) -> None:
    """--allow-outside-paths: a dataset's video paths may leave its folder (tinyr1.data)."""
    parser.add_argument("--allow-outside-paths", action="store_true",
                        help="let a dataset's video paths point outside the JSONL's folder (absolute paths, ../); "
                             "off by default so that a dataset from someone else reads only its own folder")


def load_rows(path: str, allow_outside: bool) -> list:
    """tinyr1.data.load_dataset for --data / --eval-data; a video path outside the dataset's folder
    says which flag allows it."""
    from tinyr1.data import DatasetError, load_dataset

    try:
        return load_dataset(path, allow_outside=allow_outside)
    except DatasetError as exc:
        if "outside the dataset's folder" in str(exc):
            raise UserError(f"{exc}\n(keep the JSONL in the folder of its videos, or pass --allow-outside-paths "
                            "if you trust this dataset)") from None
        raise


def check_context(policy: Any, max_new_tokens: int, flag: str = "--max-new-tokens") -> None:
    """UserError when ``max_new_tokens`` leaves no room for a prompt in the policy's context
    (its max positions): asked after the policy loads, before any generation."""
    limit = getattr(policy, "max_positions", None)
    if limit is not None and int(max_new_tokens) >= limit:
        raise UserError(f"{flag} {max_new_tokens} does not fit the policy's context of {limit} positions "
                        f"(prompt and completion together): ask for fewer new tokens")


def policy_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of tinyr1.policy.load_policy from the policy flags ("auto"/"none" -> None)."""
    return {
        "quantization": None if args.quantization == "none" else args.quantization,
        "device": None if args.device in (None, "auto") else args.device,
        "dtype": None if args.dtype == "auto" else args.dtype,
    }


def generation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of tinyr1.policy.GenerationSettings from the generation flags."""
    return {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p,
            "seed": args.seed, "num_frames": args.frames}


def add_world_version(parser: argparse.ArgumentParser) -> None:
    """``--world-version``: which synthetic world the world-split questions come from."""
    from tinyr1.world import WORLD_VERSION, WORLD_VERSIONS

    parser.add_argument("--world-version", type=int, choices=WORLD_VERSIONS, default=WORLD_VERSION,
                        help=f"which synthetic world (default {WORLD_VERSION}; 3 has no single-frame shortcuts, "
                        "tinyr1/world.py)")


def world_config(args: argparse.Namespace):
    """The WorldConfig of ``--world-version`` (the world's defaults otherwise)."""
    from tinyr1.world import WORLD_VERSION, WorldConfig

    return WorldConfig(version=getattr(args, "world_version", WORLD_VERSION))
