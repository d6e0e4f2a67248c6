"""``tinyr1 convert``: turn an official TinyLLaVA-Video(-R1) checkpoint into a tinyr1 policy directory.

    tinyr1 convert ~/models/TinyLLaVA-Video-R1 policies/tinyllava-video-r1
    tinyr1 convert SRC OUT --dtype bfloat16 --force
    tinyr1 reason --policy policies/tinyllava-video-r1 ...      # then use it like any policy

SRC is a local copy of ``Zhang199/TinyLLaVA-Video-R1`` (or the cold-start checkpoint): its
``config.json`` (model_type "tinyllava"), ``model.safetensors`` (or shards) and tokenizer files.
OUT receives config.json + model.safetensors (tinyr1's names), the tokenizer and policy.json.
Every official weight must map onto tinyr1's model and every parameter must be filled, or the
command stops with the names that do not fit (exit status 2). See tinyr1/models/tinyllava/convert.py.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinyr1.cli import UserError

DTYPES = ("auto", "float32", "bfloat16", "float16")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official TinyLLaVA-Video checkpoint into a tinyr1 policy",
        description="Convert an official TinyLLaVA-Video(-R1) checkpoint directory (config.json of model_type "
        "'tinyllava', model.safetensors, tokenizer) into a tinyr1 policy directory.",
    )
    parser.add_argument("src", type=Path, help="the official checkpoint directory")
    parser.add_argument("out", type=Path, help="the tinyr1 policy directory to write")
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="weights' dtype in OUT (default: auto = the checkpoint's own)")
    parser.add_argument("--force", action="store_true", help="write into OUT even if it already holds a model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    src, out = args.src, args.out
    if not src.is_dir():
        raise UserError(f"{src} is not a directory: give the folder of an official checkpoint")
    if out.resolve() == src.resolve():
        raise UserError("OUT must differ from SRC (the official files would be overwritten)")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    if (out / "config.json").exists() and not args.force:
        raise UserError(f"{out} already holds a model (config.json): choose another OUT or pass --force")
    # Imported after the checks above: it imports torch and transformers (seconds).
    from tinyr1.models.tinyllava.convert import ConversionError, convert_official

    dtype = None if args.dtype == "auto" else args.dtype
    start = time.perf_counter()
    try:
        model = convert_official(src, out, dtype=dtype)
    except ConversionError as exc:
        raise UserError(str(exc)) from None
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    print(f"converted {src} -> {out} in {time.perf_counter() - start:.1f} s")
    print(f"  {params / 1e6:.1f}M parameters, {model.dtype}; vision {cfg.vision_config.hidden_size} wide x "
          f"{cfg.vision_config.num_hidden_layers} layers, {cfg.image_size} px; LM {cfg.text_config.hidden_size} wide x "
          f"{cfg.text_config.num_hidden_layers} layers; {cfg.num_queries} visual tokens in {cfg.group} groups; "
          f"{cfg.num_frames} frames")
    return 0
