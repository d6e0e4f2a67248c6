"""Memory each registry policy needs in bf16, int8 and nf4, computed from its architecture, and the
check of that formula against tiny models loaded for real.

    .venv/bin/python bench/memory_figures.py                         # print the tables
    .venv/bin/python bench/memory_figures.py --write docs/POLICIES.md  # also replace the tables there
    .venv/bin/python bench/memory_figures.py --json figures.json

1. For every entry of tinyr1.registry (the published configuration, or the real config.json when the
   weights are on this machine), the model is built on PyTorch's meta device and every parameter and
   buffer is counted where transformers + bitsandbytes put it (``registry.memory_bytes``): quantized
   Linear layers of the language model (int8: 1 byte/weight + a float32 scale per row; nf4: 0.5
   byte/weight + a float32 absmax per 64 weights + a 16-entry code book per layer), everything else in
   bf16. Also: the KV cache per 1000 tokens in bf16, and the visual tokens one video costs at the
   registry's recommended settings.
2. The same formula, with the compute dtype tinyr1 uses on a CPU (float32) and in bf16, against the
   bytes of tiny models actually loaded in fp32, bf16, nf4 (fp32 and bf16 compute) and int8
   (``registry.measured_bytes``: parameters, buffers and bitsandbytes' scales): the official
   TinyLLaVA-Video fixture, a random "embedded"-size TinyLLaVA-Video and a random tiny Qwen2.5-VL.

Weights only: activations, the KV cache and the CUDA context come on top.

3. ``--speed`` (for a machine with a GPU; results on an H200 in docs/POLICIES.md): a real-size
   TinyLLaVA-Video with random weights (the published TinyLLaVA-Video-R1 architecture), in bf16 and
   in nf4, answers one 16-frame question with 128 new tokens (the end token suppressed so every
   run is 128 tokens) after a warm-up answer of the same shape, three times: load seconds,
   weights' bytes, peak GPU memory, and the medians of encode + prefill seconds and decode tokens
   per second. ``--speed --size tiny --device cpu`` runs the same code on the
   embedded-size model (a smoke check of the script on a CPU).

    .venv/bin/python bench/memory_figures.py --speed --device cuda --json gpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # random_real

START, END = "<!-- memory-figures:start -->", "<!-- memory-figures:end -->"


def architecture_rows() -> list[dict]:
    from tinyr1 import registry
    from tinyr1.models.qwen2_5_vl import VideoProcessing, num_video_tokens

    rows = []
    for spec in registry.SPECS:
        path = registry.local_path(spec)
        sizes = registry.policy_sizes(spec, path)
        if sizes is None:
            rows.append({"id": spec.id, "kind": spec.kind, "source": "weights not here (size unknown)"})
            continue
        if spec.kind == "qwen2_5_vl":
            proc = VideoProcessing().with_pixels(spec.extra.get("min_pixels"), spec.extra.get("max_pixels"))
            visual = num_video_tokens(spec.num_frames, 480, 640, proc)
            visual_note = f"{visual} ({spec.num_frames} frames of 640x480)"
        else:
            config = registry.architecture_config(spec, path) or {}
            queries = config.get("num_queries", "?")
            visual_note = f"{queries} (any frame count)"
        mem = sizes["memory_bytes"]
        rows.append({
            "id": spec.id, "kind": spec.kind, "source": "local config.json" if path else "published config",
            "params": sizes["params"], "parts": sizes["parts"],
            "gb": {k: mem[k] / 1e9 for k in ("fp32", "bf16", "int8", "nf4")},
            "kv_mb_per_1k": sizes["kv"], "visual_tokens": visual_note,
        })
    return rows


def measured_rows() -> list[dict]:
    import torch

    from tinyr1 import registry
    from tinyr1.policy.random import make_random_policy
    from tinyr1.policy import QUANT_SKIP_MODULES, load_policy
    from tinyr1.policy.qwen2_5_vl import QWEN_QUANT_SKIP_MODULES, tiny_qwen_vl_policy

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="tinyr1-mem-"))
    models = [
        ("official TinyLLaVA-Video fixture", ROOT / "tests" / "fixtures" / "official_tiny" / "checkpoint", QUANT_SKIP_MODULES),
        ("TinyLLaVA-Video, embedded size", make_random_policy(tmp / "embedded", "embedded", seed=0), QUANT_SKIP_MODULES),
        ("tiny Qwen2.5-VL", tiny_qwen_vl_policy(seed=0).save(tmp / "qwen"), QWEN_QUANT_SKIP_MODULES),
    ]
    loads = [("fp32", None, None, 4), ("bf16", None, "bfloat16", 2), ("int8", "int8", None, 4),
             ("nf4", "nf4", None, 4), ("nf4", "nf4", "bfloat16", 2)]
    rows = []
    for label, path, skip in models:
        base = load_policy(path).core
        for key, quantization, dtype, compute in loads:
            formula = registry.memory_bytes(base, skip, compute_bytes=compute)[key]
            measured = registry.measured_bytes(load_policy(path, quantization=quantization, dtype=dtype).core)
            rows.append({"model": label, "load": f"{key}" + (" (bf16 compute)" if dtype and key != "bf16" else ""),
                         "params": sum(p.numel() for p in base.parameters()), "formula": formula,
                         "measured": measured, "equal": formula == measured})
    return rows


def speed_rows(device: str, size: str, new_tokens: int = 128, frames: int = 16, repeats: int = 3) -> list[dict]:
    """Load a random TinyLLaVA-Video (real size or embedded size) in bf16 and nf4 on ``device``;
    after a warm-up answer, time ``repeats`` answers and keep the medians. Random weights: speed
    and memory only, the text is noise. ``params`` counts the elements as stored (a packed nf4
    weight holds two parameters per element), so compare weights_bytes, not params."""
    import numpy as np
    import torch

    from random_real import load_random_policy, random_weights
    from tinyr1 import registry
    from tinyr1.policy import GenerationSettings, Policy

    class NoEnd(Policy):  # every run decodes exactly new_tokens tokens
        @property
        def suppressed_token_ids(self) -> list[int]:
            return sorted({*super().suppressed_token_ids, self.eos_token_id})

    config, tokenizer, state = random_weights(size)
    rows = []
    frames_in = np.random.default_rng(0).integers(0, 256, (frames, 480, 640, 3), dtype=np.uint8)
    for quantization in (None, "nf4"):
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        policy = load_random_policy(config, tokenizer, state, device, quantization, name=f"random-{size}",
                                    policy_cls=NoEnd)
        load_s = time.perf_counter() - start
        settings = GenerationSettings(max_new_tokens=new_tokens, temperature=1.0, seed=0)
        # warm-up at the timed shape (first use of each kernel, cuBLAS handles, the allocator)
        policy.generate(frames_in, "How many squares appear?", ["1", "2", "3", "4"], GenerationSettings(max_new_tokens=16))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        runs = []
        for _ in range(repeats):
            text = policy.generate(frames_in, "How many squares appear?", ["1", "2", "3", "4"], settings)
            runs.append(dict(policy.last_stats))
        stats = {k: float(np.median([r[k] for r in runs])) for k in ("encode_s", "prefill_s", "tokens_per_s")}
        stats["new_tokens"] = runs[-1]["new_tokens"]
        peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
        rows.append({"size": size, "device": device, "quantization": quantization or "bf16",
                     "params": sum(p.numel() for p in policy.core.parameters()),
                     "weights_bytes": registry.measured_bytes(policy.core), "peak_gpu_bytes": peak,
                     "load_s": load_s, "encode_s": stats["encode_s"], "prefill_s": stats["prefill_s"],
                     "new_tokens": stats["new_tokens"], "tokens_per_s": stats["tokens_per_s"],
                     "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
                     "chars": len(text)})
        print(json.dumps(rows[-1]))
        del policy
    return rows


def _fmt_params(n: int) -> str:
    return f"{n / 1e9:.3f}B" if n >= 1e9 else f"{n / 1e6:.3f}M"


def render(arch: list[dict], measured: list[dict]) -> str:
    lines = [START, "", "Weights in GB (10^9 bytes), computed by `bench/memory_figures.py` from each architecture "
             f"({time.strftime('%Y-%m-%d')}):", "",
             "| policy | parameters (vision / connector / LM) | bf16 | int8 | nf4 | KV cache per 1k tokens (bf16) | visual tokens per video |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in arch:
        if "params" not in r:
            lines.append(f"| {r['id']} | {r['source']} | | | | | |")
            continue
        p = r["parts"]
        parts = f"{_fmt_params(r['params'])} ({_fmt_params(p['vision_tower'])} / {_fmt_params(p['connector'])} / " \
                f"{_fmt_params(p['language_model'])})"
        g = r["gb"]
        lines.append(f"| {r['id']} | {parts} | {g['bf16']:.2f} | {g['int8']:.2f} | {g['nf4']:.2f} | "
                     f"{r['kv_mb_per_1k']:.1f} MB | {r['visual_tokens']} |")
    lines += ["", "The formula against tiny models loaded for real on this CPU (bytes of parameters, buffers and "
              "bitsandbytes' scales):", "",
              "| model | parameters | load | formula (bytes) | measured (bytes) | equal |", "| --- | --- | --- | --- | --- | --- |"]
    for r in measured:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['load']} | {r['formula']:,} | {r['measured']:,} | "
                     f"{'yes' if r['equal'] else '**no**'} |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", type=Path, help="replace the block between the memory-figures markers in this file")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--speed", action="store_true", help="time a random TinyLLaVA-Video in bf16 and nf4 (see above)")
    ap.add_argument("--device", default="cuda", help="for --speed (default cuda)")
    ap.add_argument("--size", choices=("real", "tiny"), default="real", help="for --speed (default real)")
    args = ap.parse_args()
    if args.speed:
        rows = speed_rows(args.device, args.size)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    arch = architecture_rows()
    measured = measured_rows()
    block = render(arch, measured)
    print(block)
    if args.json:
        args.json.write_text(json.dumps({"architectures": arch, "measured": measured}, indent=1) + "\n")
    if args.write:
        text = args.write.read_text()
        if START not in text or END not in text:
            raise SystemExit(f"{args.write} has no {START} ... {END} block to replace")
        head, rest = text.split(START, 1)
        args.write.write_text(head + block + rest.split(END, 1)[1])
        print(f"wrote the tables into {args.write}")
    return 0 if all(r["equal"] for r in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
