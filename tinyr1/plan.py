"""Predicted peak memory of a GRPO run before it starts: what tinyr1's own loop allocates, part by part.

    from tinyr1.plan import plan
    p = plan("tinyllava-video-r1", quantization="nf4", lora_r=16, frames=16, G=8, max_new_tokens=512)
    p["peak_gb"], p["parts"]                      # GB (1e9 bytes); parts add up to peak_gb
    tinyr1 plan --policy tinyllava-video-r1 --quantization nf4 --lora-r 16 --G 8 --json

The policy is a registry id or alias (tinyr1.registry: the published configs are known offline), a
policy directory, or a config.json. Its configuration builds the model on PyTorch's meta device
(no memory: tinyr1.registry's ``memory_bytes`` gives the weights per quantization); every other
term is a formula over the architecture (hidden size, layers, heads, key/value heads, vocabulary,
visual tokens) and the run's shapes, written next to each term below. Importing this module needs
no torch; ``plan`` imports it to build the meta model.

The model follows tinyr1's GRPO loop (tinyr1/grpo/loop.py) after the lean changes: log-probs
through the LM head in chunks of ``LOGPROB_CHUNK_ELEMENTS`` (``full_logits=True`` models the
[rows, T, vocab] logits of before), each prompt once with its G completions packed after it in the
update, activation checkpointing of the language model's layers (``checkpointing``). A step has three
phases and the peak is the largest:

- rollout: weights + reference + optimizer state + the key/value cache of generate (every row holds
  its own copy of the prompt) + the prefill's transient + the vision tower's features;
- update: weights + reference + optimizer state + gradients + saved activations + one layer's
  working set in the backward + logits + the packed attention mask + vision features and the
  trainable connector's activations;
- AdamW's step: weights + reference + optimizer state + gradients (all still held) + the
  temporary the update makes (``_adamw_temporary``: none with the fused kernel the loop uses on
  CUDA; sqrt(exp_avg_sq) one tensor at a time on the CPU).

``device="cuda"`` predicts bytes allocated by torch (``torch.cuda.max_memory_allocated``: bf16
compute); ``device="cpu"`` a fresh process's peak resident memory (VmHWM: float32 compute) and
adds ``CPU_PROCESS_BASELINE_GB``, the resident memory of Python with torch, transformers, peft and
tinyr1 imported, and ``CPU_STEP_OVERHEAD_GB``, the constant a run's setup adds (both measured, see
the constants). Not modelled on the CPU: glibc keeps part of the memory the rollout and the
backward freed, so later phases stack on some of it (the plan runs 0.5-7% low for that).
bench/bench_plan.py checks the model against measured peaks (docs/BENCHMARKS.md, "tinyr1 plan
against measurement").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyr1.policy.spec import LOGPROB_CHUNK_ELEMENTS, PolicyError

GB = 1e9
#: VmHWM of `python -c "import torch, transformers, peft, tinyr1.policy, tinyr1.grpo"` (plus the
#: Qwen2 / SigLIP / Qwen2.5-VL model modules) on this project's CPU machine: 438.7 MB, twice.
CPU_PROCESS_BASELINE_GB = 0.439
#: What a GRPO run adds to a CPU process whatever the model's size: the resident memory grew by
#: 55 MB and 47 MB (a 6M- and a 43M-parameter policy) on the one line of the trainer's setup that
#: builds the learning-rate schedule (transformers' get_scheduler), the same in both, so a constant.
CPU_STEP_OVERHEAD_GB = 0.05
#: Text tokens of a prompt besides the visual ones (template, question, options, R1 suffix): the
#: embedded prompts are 60-140 tokens; a longer question adds its own.
PROMPT_TEXT_TOKENS = 128
#: Quantization choices: none = the device's compute dtype (bf16 on cuda, float32 on cpu).
PLAN_QUANTIZATIONS = ("none", "fp32", "bf16", "int8", "nf4")
#: The language model's Linear layers LoRA adapts (tinyr1.grpo.loop.LORA_TARGETS).
_LORA_LINEARS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclass(frozen=True)
class Arch:
    """The facts of a policy's architecture the formulas use (read from its config)."""

    family: str  # "tinyllava" or "qwen2_5_vl"
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    params: dict[str, int]  # per part: vision_tower, connector, language_model
    weight_bytes: dict[str, int]  # fp32 / bf16 / int8 / nf4 (registry.memory_bytes)
    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    config: Any  # the model config object (for the visual token counts)

    def visual_tokens(self, frames: int, max_pixels: int) -> tuple[int, int]:
        """(visual tokens in the language model's prompt, vision-tower tokens) for one video."""
        cfg = self.config
        if self.family == "tinyllava":
            # the group resampler maps every video to num_queries tokens whatever the frame count
            return int(cfg.num_visual_tokens), frames * int(cfg.tokens_per_frame)
        side = int((max_pixels ** 0.5) // 28 * 28)  # square frames at max_pixels, patch 14, merge 2
        patches = -(-frames // 2) * (side // 14) ** 2  # temporal patch 2
        return patches // 4, patches


def _load_config(policy: str) -> tuple[str, dict[str, Any], Path | None, dict[str, Any]]:
    """(kind as in the registry, config dict, its directory, the registry entry's extra settings)."""
    from tinyr1 import registry

    spec = registry.find_spec(policy)
    if spec is not None:
        path = registry.local_path(spec) if spec.kind == "tiny" else None
        config = registry.architecture_config(spec, path)
        if config is None:
            raise PolicyError(f"{policy}: no configuration known offline")
        return spec.kind, config, path, dict(spec.extra)
    path = Path(policy).expanduser()
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise PolicyError(f"{policy!r} is neither a registry id nor a policy directory or config.json")
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{file}: not a JSON config ({exc})") from None
    kinds = {"tinyllava_video": "tiny", "tinyllava": "tinyllava_official", "qwen2_5_vl": "qwen2_5_vl"}
    kind = kinds.get(str(config.get("model_type")))
    if kind is None:
        raise PolicyError(f"{file}: model_type {config.get('model_type')!r} is not one tinyr1 plans for "
                          f"({', '.join(kinds)})")
    return kind, config, file.parent, {}


def architecture(policy: str, *, compute_bytes: int = 2) -> tuple[Arch, dict[str, Any]]:
    """(Arch, the registry's extra settings) for a registry id, a policy directory or config.json."""
    from tinyr1 import registry

    kind, config, src, extra = _load_config(policy)
    # A private helper, on purpose: the registry's meta-device build is the one way tinyr1 sizes a config.
    model, skip = registry._meta_model(kind, config, src)
    weights = registry.memory_bytes(model, skip, compute_bytes=compute_bytes)
    parts = registry._parts(kind, model)
    cfg = model.config
    text = cfg.text_config
    vision = cfg.vision_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    family = "qwen2_5_vl" if kind == "qwen2_5_vl" else "tinyllava"
    arch = Arch(
        family=family, hidden=text.hidden_size, layers=text.num_hidden_layers, heads=text.num_attention_heads,
        kv_heads=text.num_key_value_heads, head_dim=head_dim, intermediate=text.intermediate_size,
        vocab=text.vocab_size, params=parts, weight_bytes=weights,
        vision_hidden=vision.hidden_size, vision_intermediate=vision.intermediate_size,
        vision_layers=getattr(vision, "num_hidden_layers", None) or vision.depth, config=cfg,
    )
    return arch, extra


def _lora_params(a: Arch, r: int) -> int:
    """r x (in + out) per adapted Linear, 7 per layer (q, k, v, o, gate, up, down)."""
    h, q, kv, i = a.hidden, a.heads * a.head_dim, a.kv_heads * a.head_dim, a.intermediate
    shapes = {"q": (h, q), "k": (h, kv), "v": (h, kv), "o": (q, h), "gate": (h, i), "up": (h, i), "down": (i, h)}
    return a.layers * sum(r * (n_in + n_out) for n_in, n_out in (shapes[k] for k in _LORA_LINEARS))


def _layer_values_per_token(a: Arch, lora_r: int, w: int) -> float:
    """Bytes one decoder layer keeps for the backward per token (no checkpointing): the input and
    its RMS-normed copy (2H), q after rotary (H), k and v (2 x kv), the attention output and its
    contiguous copy for o_proj (2H), the residual sum and its normed copy (2H), then gate, up,
    silu(gate) and their product (4I). With LoRA, peft casts each adapted Linear's input to the
    adapter's float32 (q, k, v, gate, up: H each, o: H, down: I) and keeps the rank-r middle."""
    h, kv, i = a.hidden, a.kv_heads * a.head_dim, a.intermediate
    base = (7 * h + 2 * kv + 4 * i) * w
    if lora_r:
        base += (6 * h + i) * 4 + 7 * lora_r * 4
    return base


def _adamw_temporary(a: Arch, lora_r: int, w: int, trainable: int, device: str) -> int:
    """Bytes AdamW's step allocates above the gradients and its state, which are all still held
    then. On CUDA the GRPO loop uses the fused kernel (``tinyr1.grpo.loop.adamw_implementation``),
    which updates each parameter in place: nothing. On the CPU, torch's per-parameter loop makes
    sqrt(exp_avg_sq) and its quotient for one tensor at a time: twice the largest trainable tensor
    (the embedding or an MLP matrix in full fine-tuning; a LoRA B or a connector matrix otherwise,
    both far smaller, counted as the MLP's rank-r factor). (torch's foreach default on CUDA would
    make sqrt(exp_avg_sq) for every parameter at once: a trainable-sized temporary.)"""
    if device == "cuda":
        return 0
    if lora_r:
        return 2 * lora_r * a.intermediate * 4
    return 2 * max(a.vocab * a.hidden, a.hidden * a.intermediate) * w


def _checked_settings(quantization: str, device: str, lora_r: int, G: int, prompts: int,
                      max_new_tokens: int) -> str:
    """The quantization's name, after refusing settings no run could have (PolicyError)."""
    q = (quantization or "none").lower()
    if q not in PLAN_QUANTIZATIONS:
        raise PolicyError(f"quantization must be one of {', '.join(PLAN_QUANTIZATIONS)}, got {quantization!r}")
    if device not in ("cuda", "cpu"):
        raise PolicyError(f"device must be cuda or cpu, got {device!r}")
    if q in ("int8", "nf4") and not lora_r:
        raise PolicyError("a quantized policy trains only through LoRA: give --lora-r (e.g. 16)")
    for name, value in (("G", G), ("prompts", prompts), ("max_new_tokens", max_new_tokens), ("lora_r", lora_r + 1)):
        if int(value) < 1:
            raise PolicyError(f"{name} must be >= 1, got {value}")
    return q


def plan(
    policy: str,
    *,
    quantization: str = "none",
    lora_r: int = 0,
    frames: int | None = None,
    G: int = 8,
    prompts: int = 1,
    max_new_tokens: int = 512,
    checkpointing: bool = True,
    device: str = "cuda",
    beta: float = 0.01,
    full_logits: bool = False,
    prompt_tokens: int = PROMPT_TEXT_TOKENS,
    max_pixels: int | None = None,
) -> dict[str, Any]:
    """The predicted peak (GB) and its parts for one GRPO step (see the module docstring). One
    function on purpose: every term reads the same handful of shapes, and the formulas read best
    side by side."""
    q = _checked_settings(quantization, device, lora_r, G, prompts, max_new_tokens)
    w = {"fp32": 4, "bf16": 2}.get(q, 2 if device == "cuda" else 4)  # compute dtype bytes
    a, extra = architecture(policy, compute_bytes=w)
    frames = int(frames or getattr(a.config, "num_frames", 0) or 16)
    visual, vision_tokens = a.visual_tokens(frames, int(max_pixels or extra.get("max_pixels", 768 * 28 * 28)))
    length, t, rows = visual + prompt_tokens, int(max_new_tokens), prompts * G
    weights = a.weight_bytes[q if q != "none" else ("bf16" if device == "cuda" else "fp32")]
    if lora_r:  # adapters in float32 (peft's default), the connector in the compute dtype
        trainable = _lora_params(a, lora_r) * 4 + a.params["connector"] * w
    else:  # freeze_vision (the default): the language model and the connector train
        trainable = (a.params["language_model"] + a.params["connector"]) * w
    kv_per_token = 2 * a.layers * a.kv_heads * a.head_dim * w  # K and V of every layer
    layer_bytes = _layer_values_per_token(a, lora_r, w)
    # Packed update: a row per prompt of L + G*T tokens; before the change the Qwen2.5-VL path
    # repeated each prompt G times (TinyLLaVA shared it through the cache already).
    tokens = prompts * (length + G * t)
    if full_logits and a.family == "qwen2_5_vl":
        tokens = rows * (length + t)
    if checkpointing:  # each layer's input kept; the backward recomputes one layer at a time
        activations = tokens * a.layers * a.hidden * w
    else:
        activations = tokens * a.layers * layer_bytes
    backward_layer = tokens * layer_bytes  # one layer's recomputed values and their gradients
    positions = rows * t
    if full_logits:  # [rows, T, V]: float32 log_softmax kept + its gradient, the float copy, bf16 grad
        logits = positions * a.vocab * (12 + w)
    else:  # one chunk: head output, float32 copy, masked copy, /T, logsumexp; and its gradient
        logits = min(positions, max(1, LOGPROB_CHUNK_ELEMENTS // a.vocab)) * a.vocab * (w + 20)
    logits += positions * a.hidden * w * 2  # the completion hidden states and their gradient
    mask = 0 if full_logits else prompts * (length + G * t) ** 2 * w  # the packed 4-D additive mask
    vision = prompts * vision_tokens * a.vision_hidden * w * 3  # tower output, connector input and output
    connector_act = 0
    if a.family == "tinyllava":  # trainable resampler: keys/values of every layer over all frame tokens
        cfg = a.config
        inner = cfg.resampler_heads * cfg.resampler_dim_head
        connector_act = prompts * vision_tokens * (a.vision_hidden + cfg.resampler_layers * (2 * inner + a.vision_hidden)) * w
    kv_cache = rows * (length + t) * kv_per_token
    # prefill transient: the MLP of one layer over every row's prompt (gate, up, product) plus hidden copies
    prefill = rows * length * (3 * a.intermediate + 4 * a.hidden) * w + rows * a.vocab * 4 * 4
    vision_tower_pass = prompts * vision_tokens * (a.vision_intermediate + 4 * a.vision_hidden) * w
    reference = weights if beta > 0 and not lora_r else 0
    optimizer = 2 * trainable  # AdamW: exp_avg and exp_avg_sq, the parameter's dtype
    static = {"weights": weights, "reference": reference, "optimizer": optimizer}
    rollout = {**static, "kv_cache": kv_cache, "prefill": prefill, "vision": vision + vision_tower_pass}
    update = {**static, "gradients": trainable, "activations": activations + backward_layer + mask,
              "logits": logits, "vision": vision + connector_act}
    step = {**static, "gradients": trainable, "adamw_step": _adamw_temporary(a, lora_r, w, trainable, device)}
    phases = {"rollout": rollout, "update": update, "adamw_step": step}
    if device == "cpu":
        for ph in phases.values():
            ph["process"] = int((CPU_PROCESS_BASELINE_GB + CPU_STEP_OVERHEAD_GB) * GB)
    peak_phase = max(phases, key=lambda k: sum(phases[k].values()))
    gb = {k: {name: round(v / GB, 3) for name, v in ph.items()} for k, ph in phases.items()}
    return {
        "policy": policy, "peak_gb": round(sum(phases[peak_phase].values()) / GB, 3), "peak_phase": peak_phase,
        "parts": gb[peak_phase], "phases": gb,
        "parts_detail": {"trainable_params": round(trainable / GB, 3), "activations_saved": round(activations / GB, 3),
                         "backward_layer": round(backward_layer / GB, 3), "attention_mask": round(mask / GB, 3)},
        "settings": {"quantization": q, "lora_r": lora_r, "frames": frames, "G": G, "prompts": prompts,
                     "max_new_tokens": t, "checkpointing": checkpointing, "device": device, "beta": beta,
                     "full_logits": full_logits, "prompt_tokens": prompt_tokens},
        "shapes": {"prompt_length": length, "visual_tokens": visual, "vision_tokens": vision_tokens,
                   "update_tokens": tokens, "vocab": a.vocab, "hidden": a.hidden, "layers": a.layers,
                   "kv_heads": a.kv_heads, "head_dim": a.head_dim, "compute_bytes": w},
    }


def device_memory_gb(device: str | None = None) -> tuple[str, float | None]:
    """(device name, its memory in GB): free + used of the GPU (torch.cuda.mem_get_info) when one
    is there, else the machine's MemAvailable (/proc/meminfo; None where there is none)."""
    try:
        import torch

        if (device in (None, "cuda")) and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return "cuda", total / GB
    except Exception:  # noqa: BLE001 - no usable GPU: fall back to the CPU's memory
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return "cpu", int(line.split()[1]) * 1024 / GB
    except OSError:  # not Linux: no figure to warn against
        pass
    return "cpu", None


def table(result: dict[str, Any]) -> str:
    """The phases side by side as a plain-text table, the peak last."""
    names = list(dict.fromkeys(name for ph in result["phases"].values() for name in ph))
    phases = list(result["phases"])
    lines = [f"{'part':<14}" + "".join(f"{ph + ' GB':>16}" for ph in phases)]
    for name in names:
        cells = [result["phases"][ph].get(name) for ph in phases]
        lines.append(f"{name:<14}" + "".join(f"{c:>16.3f}" if c is not None else f"{'-':>16}" for c in cells))
    lines.append(f"{'total':<14}" + "".join(f"{sum(result['phases'][ph].values()):>16.3f}" for ph in phases))
    lines.append(f"predicted peak: {result['peak_gb']:.2f} GB ({result['peak_phase']}, {result['settings']['device']})")
    return "\n".join(lines)


__all__ = ["CPU_PROCESS_BASELINE_GB", "CPU_STEP_OVERHEAD_GB", "PLAN_QUANTIZATIONS", "PROMPT_TEXT_TOKENS", "architecture", "device_memory_gb",
           "plan", "table"]
