"""tinyr1's policies: load a checkpoint, stream answers, sample for GRPO, recompute log-probs, save.

    from tinyr1.policy import load_policy, GenerationSettings
    policy = load_policy("assets/policies/tiny-grpo")          # or a registry id, quantization="nf4"
    print(policy.generate(frames, "How many squares?", ["1", "2", "3", "4"], GenerationSettings(temperature=0)))

Modules (lowest first; none imports one above it):

- ``spec``: torch-free facts (PolicyError, paths, the embedded policy ids, quantization choices,
  the CPU-thread rule, GenerationSettings);
- ``backend``: the interface a model family implements, and PromptBatch;
- ``tinyllava`` / ``qwen2_5_vl``: the two backends (and ``QwenVLPolicy``, tiny random Qwen2.5-VL);
- ``runtime``: the generic ``Policy`` and SampleBatch;
- ``load``: loading by model type, the quantization config, the one save path;
- ``random``: writes a random TinyLLaVA-Video policy (``python -m tinyr1.policy.random OUT_DIR``).

Importing this package does not import torch: every name below is loaded from its module on
first use (PEP 562), so ``from tinyr1.policy import PolicyError`` stays cheap for the registry,
the CLI and the app.
"""
from __future__ import annotations

import importlib
from typing import Any

_SPEC = "tinyr1.policy.spec"
_RUNTIME = "tinyr1.policy.runtime"
_LOAD = "tinyr1.policy.load"
_QWEN = "tinyr1.policy.qwen2_5_vl"

#: name -> (module, name there). Underscored names keep older private imports working.
_EXPORTS: dict[str, tuple[str, str]] = {
    **{name: (_SPEC, name) for name in (
        "COLDSTART_POLICY", "DEFAULT_POLICIES", "GRPO_POLICY", "TEMPORAL_POLICY", "GenerationSettings", "POLICIES_DIR", "POLICY_META",
        "PolicyError", "QUANTIZATIONS", "QUANTIZATION_CHOICES", "QUANT_SKIP_MODULES", "QWEN_QUANT_SKIP_MODULES",
        "SINGLE_THREAD_BELOW", "cpu_threads_for", "default_policy_path", "default_start_policy_path",
        "normalize_quantization")},
    "Backend": ("tinyr1.policy.backend", "Backend"),
    "Item": ("tinyr1.policy.backend", "Item"),
    "PromptBatch": ("tinyr1.policy.backend", "PromptBatch"),
    "TinyLlavaBackend": ("tinyr1.policy.tinyllava", "TinyLlavaBackend"),
    "Policy": (_RUNTIME, "Policy"),
    "SampleBatch": (_RUNTIME, "SampleBatch"),
    **{name: (_QWEN, name) for name in (
        "QwenVLBackend", "QwenVLPolicy", "qwen_policy_from_model", "tiny_qwen_vl_policy", "unwrap_qwen")},
    **{name: (_LOAD, name) for name in (
        "disable_cpu_weight_repacking", "is_qwen_vl_checkpoint", "load_policy", "load_qwen_vl_policy",
        "policy_from_model", "quantization_config", "quantization_kwargs", "resolve_device", "resolve_dtype")},
    **{name: ("tinyr1.policy.save", name) for name in ("quiet_loading", "save_policy")},
    "make_random_policy": ("tinyr1.policy.random", "make_random_policy"),
    "_normalize_quantization": (_SPEC, "normalize_quantization"),
    "_is_path_like": (_SPEC, "is_path_like"),
    "_checkpoint_kind": (_SPEC, "checkpoint_kind"),
    "_quantization_kwargs": (_LOAD, "quantization_kwargs"),
    "_quiet_loading": ("tinyr1.policy.save", "quiet_loading"),
    "_resolve_device": (_LOAD, "resolve_device"),
    "_resolve_dtype": (_LOAD, "resolve_dtype"),
    "_QuietInt8Cast": (_LOAD, "_QuietInt8Cast"),
}

__all__ = sorted(name for name in _EXPORTS if not name.startswith("_"))


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'tinyr1.policy' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
