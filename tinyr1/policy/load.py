"""Loading policy directories, for every model family (saving: tinyr1/policy/save.py).

    from tinyr1.policy import load_policy, policy_from_model
    policy = load_policy("assets/policies/tiny-grpo")              # a directory, registry id or hub id
    policy = load_policy("Zhang199/TinyLLaVA-Video-R1", quantization="nf4", device="cuda")
    policy.save("runs/x/policy")                                   # tinyr1.policy.save, atomically

``load_policy`` reads a checkpoint's config.json ``model_type`` once and dispatches: tinyr1's
TinyLLaVA-Video layout ("tinyllava_video"), an official TinyLLaVA-Video checkpoint ("tinyllava",
converted in memory by tinyr1.models.tinyllava.convert) or Qwen2.5-VL ("qwen2_5_vl", a
``QwenVLPolicy``). A policy directory holds ``config.json`` + ``model.safetensors``, the tokenizer
files, any files the backend adds, and optionally ``policy.json`` (free-form metadata: name,
seed, data, accuracy...). See docs/DESIGN.md, "Files and runs".

Quantization (``"nf4"`` / ``"int8"``) goes through transformers' ``BitsAndBytesConfig``, built by
``quantization_config`` for both families; each family keeps its own modules in full precision
(``tinyr1.policy.spec.QUANT_SKIP_MODULES`` / ``QWEN_QUANT_SKIP_MODULES``). On CPUs with
AVX512-BF16 every ``Linear4bit`` gets ``support_avx512bf16_for_cpu = False`` (docs/DESIGN.md,
"CPU facts": the repacking done by the first no-grad forward silently breaks later LoRA
gradients); call ``disable_cpu_weight_repacking(model)`` again after wrapping a model with peft
if you build one yourself.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from tinyr1.models.qwen2_5_vl import DEFAULT_SYSTEM, VideoProcessing
from tinyr1.models.tinyllava import TinyLlavaVideoForConditionalGeneration
from tinyr1.policy.qwen2_5_vl import (
    DEFAULT_NUM_FRAMES,
    DEFAULT_SAMPLE_FPS,
    QWEN_MODEL_TYPES,
    QwenVLPolicy,
    qwen_policy_from_model,
)
from tinyr1.policy.runtime import Policy
from tinyr1.policy.save import quiet_loading, save_policy
from tinyr1.policy.spec import (
    POLICY_META,
    QUANT_SKIP_MODULES,
    QWEN2_5_VL,
    QWEN_QUANT_SKIP_MODULES,
    TINYLLAVA_OFFICIAL,
    TINYLLAVA_VIDEO,
    PolicyError,
    checkpoint_kind,
    default_policy_path,
    is_path_like,
    normalize_quantization,
)


# --------------------------------------------------------------------------------------------
# Devices, dtypes, quantization
# --------------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device | None) -> torch.device:
    """None: CUDA if available, else CPU; PolicyError for CUDA asked for without a GPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PolicyError(f"device {device!r} was asked for but no CUDA GPU is available")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None: float32 on CPU, bfloat16 (float16 without bf16 support) on CUDA."""
    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise PolicyError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        return resolved
    return dtype


def quantization_config(quantization: str | None, compute_dtype: torch.dtype,
                        skip_modules: Sequence[str] = QUANT_SKIP_MODULES):
    """The BitsAndBytesConfig for "nf4" / "int8" (None for no quantization), leaving
    ``skip_modules`` (the family's, TinyLLaVA-Video's by default) in full precision."""
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=list(skip_modules),
        )
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(skip_modules))
    raise PolicyError(f"unknown quantization {quantization!r}; use one of none, nf4, int8")


class _QuietInt8Cast(logging.Filter):
    """bitsandbytes logs one warning per int8 matmul on CPU float32 inputs; keep the first only."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "inputs will be cast from" in record.getMessage():
            if _QuietInt8Cast.seen:
                return False
            _QuietInt8Cast.seen = True
        return True


def quantization_kwargs(quantization: str | None, dt: torch.dtype,
                        skip_modules: Sequence[str] = QUANT_SKIP_MODULES) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for a quantization ({} for none)."""
    qconfig = quantization_config(quantization, dt, skip_modules)
    if qconfig is None:
        return {}
    if quantization == "int8":
        logging.getLogger("bitsandbytes.autograd._functions").addFilter(_QuietInt8Cast())
    return {"quantization_config": qconfig}


def disable_cpu_weight_repacking(model: nn.Module) -> int:
    """Set ``support_avx512bf16_for_cpu = False`` on every bitsandbytes ``Linear4bit``
    (docs/DESIGN.md, "CPU facts"); returns how many modules were changed."""
    n = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _read_metadata(path: Path) -> dict:
    meta_file = path / POLICY_META
    return json.loads(meta_file.read_text()) if meta_file.exists() else {}


def _check_dir(path: Path) -> dict:
    """config.json of a tinyr1 TinyLLaVA-Video policy directory; PolicyError saying what is wrong."""
    if not path.exists():
        raise PolicyError(f"no policy at {path}: the directory does not exist")
    if not path.is_dir():
        raise PolicyError(f"{path} is a file; a policy is a directory with config.json, weights and tokenizer")
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise PolicyError(f"{path} is not a policy directory: config.json is missing")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PolicyError(f"{cfg_file} is not valid JSON: {exc}") from None
    model_type = cfg.get("model_type")
    if model_type != TINYLLAVA_VIDEO:
        hint = ""
        if model_type == TINYLLAVA_OFFICIAL or "llm_model_name_or_path" in cfg:
            hint = " (an official TinyLLaVA-Video checkpoint: convert it first with `tinyr1 convert`)"
        raise PolicyError(f"{path} holds a {model_type!r} model, expected {TINYLLAVA_VIDEO!r}{hint}")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise PolicyError(f"{path} has a config but no weights (*.safetensors)")
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        raise PolicyError(f"{path} has no tokenizer (tokenizer.json / tokenizer_config.json)")
    return cfg


def _from_pretrained(cls: type, path: Path | None, quantization: str | None, dev: torch.device, dt: torch.dtype,
                     skip_modules: Sequence[str], what: str, tokenizer_dir: Path, **model_kwargs: Any):
    """(model, tokenizer) loaded straight onto ``dev`` (no CPU copy of a 3.6B model first),
    quantized while loading; PolicyError naming ``what`` when transformers cannot."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dt, "device_map": {"": str(dev)}, **model_kwargs}
    kwargs.update(quantization_kwargs(quantization, dt, skip_modules))
    try:
        with quiet_loading():
            model = cls.from_pretrained(path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyError(f"could not load {what}: {exc}") from exc
    if quantization is not None:
        disable_cpu_weight_repacking(model)
    model.eval()
    return model, tokenizer


def _load_tinyllava(path: Path, quantization: str | None, device, dtype) -> Policy:
    _check_dir(path)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    model, tokenizer = _from_pretrained(TinyLlavaVideoForConditionalGeneration, path, quantization, dev, dt,
                                        QUANT_SKIP_MODULES, f"the policy in {path}", path)
    return Policy(model, tokenizer, path=path, quantization=quantization, metadata=_read_metadata(path))


def _load_official(src: Path, quantization: str | None, device, dtype, name: str | None = None) -> Policy:
    """An official TinyLLaVA-Video checkpoint directory converted in memory
    (tinyr1.models.tinyllava.convert: config mapping, weight names, Qwen2.5 tokenizer; qwen2_base
    template, SigLIP preprocessing and frames from the converted config), optionally quantized."""
    from transformers.utils import logging as hf_logging

    from tinyr1.models.tinyllava.convert import (
        ConversionError,
        expected_parameters,
        map_official_state_dict,
        official_config,
        read_official_config,
        read_official_weights,
    )

    hint = ("(it is converted in memory; `tinyr1 convert SRC OUT` writes it as a tinyr1 policy and names "
            "what does not fit)")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    try:
        raw = read_official_config(src)
        config = official_config(src, raw)
        weights = read_official_weights(src)
        mapped = map_official_state_dict(weights, expected_parameters(config),
                                         tied=bool(config.text_config.tie_word_embeddings))
        del weights
    except ConversionError as exc:
        raise PolicyError(f"could not load the official TinyLLaVA-Video checkpoint in {src} {hint}: {exc}") from None
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # AutoTokenizer peeks at the official config.json and warns
    try:
        model, tokenizer = _from_pretrained(
            TinyLlavaVideoForConditionalGeneration, None, quantization, dev, dt, QUANT_SKIP_MODULES,
            f"the official TinyLLaVA-Video checkpoint in {src} {hint}", src, config=config, state_dict=mapped)
    finally:
        hf_logging.set_verbosity(verbosity)
    metadata = {
        "name": name or src.name, "kind": "tinyllava_official", "template": "qwen2_base",
        "converted_from": str(src), "source": "official TinyLLaVA-Video checkpoint, converted in memory by tinyr1",
        "official": {k: raw.get(k) for k in ("connector_type", "num_queries", "num_resampler_layers", "group",
                                             "tokenizer_model_max_length")},
    }
    return Policy(model, tokenizer, name=metadata["name"], path=src, quantization=quantization, metadata=metadata)


def is_qwen_vl_checkpoint(path: str | Path) -> bool:
    """True when ``path/config.json`` is a Qwen2.5-VL one."""
    return checkpoint_kind(Path(path)) in QWEN_MODEL_TYPES


def load_qwen_vl_policy(
    path: str | Path,
    quantization: str | None = None,
    device: str | torch.device | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> QwenVLPolicy:
    """Load a Qwen2.5-VL checkpoint directory (the hub layout, or one ``save_policy`` wrote).

    Settings come from ``policy.json`` when present, else from ``defaults`` (the registry's
    recommended ones: template, num_frames, sample_fps, min_pixels / max_pixels), else the backend's
    defaults; the video processor's from the directory's preprocessor configs."""
    path = Path(path)
    if not is_qwen_vl_checkpoint(path):
        raise PolicyError(f"{path} is not a Qwen2.5-VL checkpoint (config.json model_type must be one of {QWEN_MODEL_TYPES})")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise PolicyError(f"{path} has a config but no weights (*.safetensors)")
    from tinyr1.models.qwen2_5_vl import model_class

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    model, tokenizer = _from_pretrained(model_class(), path, quantization, dev, dt, QWEN_QUANT_SKIP_MODULES,
                                        f"the Qwen2.5-VL checkpoint in {path}", path)
    metadata = _read_metadata(path)
    settings = {**(defaults or {}), **metadata}
    processing = VideoProcessing.from_dir(path)
    if settings.get("min_pixels") or settings.get("max_pixels"):
        processing = processing.with_pixels(settings.get("min_pixels"), settings.get("max_pixels"))
    return QwenVLPolicy(
        model, tokenizer, processing=processing,
        template=settings.get("template", "r1"),
        num_frames=int(settings.get("num_frames", DEFAULT_NUM_FRAMES)),
        sample_fps=float(settings.get("sample_fps", DEFAULT_SAMPLE_FPS)),
        system=settings.get("system", DEFAULT_SYSTEM),
        name=name or metadata.get("name") or path.name, path=path, quantization=quantization, metadata=metadata,
    )


def _registry_knows(name: str) -> bool:
    from tinyr1.registry import find_spec

    return find_spec(name) is not None


def load_policy(
    path: str | Path | None = None,
    quantization: str | None = None,
    device: str | torch.device | None = None,
    *,
    dtype: str | torch.dtype | None = None,
) -> Policy:
    """Load a policy (None: ``default_policy_path()``). ``path`` may be

    - a tinyr1 policy directory (config.json of model_type "tinyllava_video", weights, tokenizer);
    - an official TinyLLaVA-Video(-R1) checkpoint directory (model_type "tinyllava"): converted in
      memory by tinyr1.models.tinyllava.convert (``tinyr1 convert`` writes the same as a policy
      directory);
    - a Qwen2.5-VL checkpoint directory (model_type "qwen2_5_vl"): a ``QwenVLPolicy``;
    - a registry id or alias (``tinyr1 policies``), e.g. "Zhang199/TinyLLaVA-Video-R1", or another
      hub id "owner/name": its weights from ``$TINYR1_MODELS/<name>``, the Hugging Face cache, or a
      download when the hub is allowed and reachable (tinyr1.registry.resolve_policy); with
      HF_HUB_OFFLINE=1 and no local copy, a PolicyError says how to get them and where to put them.

    ``quantization``: None / "none", "nf4" (4-bit NormalFloat) or "int8" (LLM.int8), through
    bitsandbytes; the vision tower, connector and LM head stay in full precision.
    ``device``: None = CUDA if available, else CPU. ``dtype``: None = float32 on CPU, bfloat16
    (float16 without bf16 support) on CUDA. Raises PolicyError for a missing or incompatible
    directory or an unknown option."""
    quantization = normalize_quantization(quantization)
    entry = None
    if path is None:
        path = default_policy_path()
    else:
        text = os.fspath(path)
        if not Path(text).expanduser().exists() and (not is_path_like(text) or _registry_knows(text)):
            # The registry sits beside this package and imports its leaf; imported when a name needs it.
            from tinyr1.registry import resolve_policy

            resolved = resolve_policy(text)
            path, entry = resolved.path, resolved.entry
    path = Path(path).expanduser()
    kind = checkpoint_kind(path)
    name = entry.id if entry is not None and entry.kind != "tiny" else None
    if kind == QWEN2_5_VL:
        from tinyr1.registry import loading_defaults

        return load_qwen_vl_policy(path, quantization, device, dtype=dtype, name=name,
                                   defaults=loading_defaults(entry))
    if kind == TINYLLAVA_OFFICIAL:
        return _load_official(path, quantization, device, dtype, name=name)
    return _load_tinyllava(path, quantization, device, dtype)


def policy_from_model(model: nn.Module, tokenizer, *, name: str = "policy", metadata: dict | None = None) -> Policy:
    """Wrap an in-memory model (e.g. one being trained) and its tokenizer as a Policy (a
    ``QwenVLPolicy`` for a Qwen2.5-VL model)."""
    if getattr(getattr(model, "config", None), "model_type", None) == QWEN2_5_VL:
        return qwen_policy_from_model(model, tokenizer, name=name, metadata=metadata)
    return Policy(model, tokenizer, name=name, metadata=metadata)


__all__ = [
    "disable_cpu_weight_repacking",
    "is_qwen_vl_checkpoint",
    "load_policy",
    "load_qwen_vl_policy",
    "policy_from_model",
    "quantization_config",
    "quantization_kwargs",
    "quiet_loading",
    "resolve_device",
    "resolve_dtype",
    "save_policy",
]
