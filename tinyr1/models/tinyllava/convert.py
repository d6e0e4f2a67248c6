"""Convert an official TinyLLaVA-Video(-R1) checkpoint into tinyr1's TinyLLaVA-Video model.

    from tinyr1.models.tinyllava.convert import convert_official
    model = convert_official("path/to/TinyLLaVA-Video-R1")             # in memory, checkpoint dtype
    convert_official("path/to/TinyLLaVA-Video-R1", "policies/r1")       # also writes a tinyr1 policy dir
    # or: tinyr1 convert path/to/TinyLLaVA-Video-R1 policies/r1

The official checkpoints (``Zhang199/TinyLLaVA-Video-R1``, ``Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16``)
are directories saved by the official training code (transformers 4.x): a ``config.json`` of
``model_type`` "tinyllava", the weights as ``model.safetensors`` (or shards with an index), and the
Qwen2 tokenizer files. Their layout, read from the official source and checked by running it
(``bench/official_reference.py``, docs/EQUIVALENCE.md):

- ``config.json`` holds ``text_config`` (Qwen2) and ``vision_config`` (SigLIP vision) as transformers
  4.49 *diffs*: a field equal to both the class default and the 4.49 default of the placeholder
  config TinyLlavaConfig starts from (Llama / CLIP vision) is left out. Missing fields are filled
  here from the 4.49 defaults (``QWEN2_449_DEFAULTS``, ``SIGLIP_VISION_449_DEFAULTS``), not from
  today's transformers, whose defaults may differ. Connector fields: ``connector_type``
  ("groupresampler" is the only one supported), ``num_queries``, ``num_resampler_layers`` and
  ``group`` (an extra key the connector reads; the official code never sets it, so it must be in
  the file). ``vision_feature_layer`` (-2) and ``vision_feature_select_strategy`` ("patch" drops
  token 0 of every frame). The base-model paths it names are ignored.
- Weight names (``OFFICIAL_RULES``, applied in order, first match wins): ``language_model.*``
  keeps its name; ``vision_tower._vision_tower.vision_model.{embeddings,encoder,post_layernorm}.*``
  loses the ``_vision_tower.vision_model.`` levels (transformers 5 names SigLIP's weights without
  ``vision_model.``); ``connector._connector.*`` -> ``connector.*``. SigLIP's attention-pooling
  ``head.*`` is dropped on purpose (never used: features come from an inner layer). The LM head is
  tied to the embeddings in the official Qwen2.5 config, so the checkpoint has no
  ``language_model.lm_head.weight``.

Every official key must be used or deliberately dropped, and every parameter of our model must be
filled with a tensor of the right shape: anything else raises ``ConversionError`` naming the keys.
"""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import torch

from tinyr1.models.tinyllava.configuration import TinyLlavaVideoConfig
from tinyr1.models.tinyllava.modeling import TinyLlavaVideoForConditionalGeneration

OFFICIAL_MODEL_TYPE = "tinyllava"
SUPPORTED_CONNECTOR = "groupresampler"

#: Qwen2Config defaults of transformers 4.49 (the official code's version): the values a field left
#: out of the official ``text_config`` had when the checkpoint was written.
QWEN2_449_DEFAULTS: dict[str, Any] = {
    "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "hidden_act": "silu",
    "max_position_embeddings": 32768, "initializer_range": 0.02, "rms_norm_eps": 1e-6,
    "use_cache": True, "tie_word_embeddings": False, "rope_theta": 10000.0, "rope_scaling": None,
    "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28,
    "attention_dropout": 0.0,
}
#: SiglipVisionConfig defaults of transformers 4.49 (same reason).
SIGLIP_VISION_449_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
    "num_channels": 3, "image_size": 224, "patch_size": 16, "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6, "attention_dropout": 0.0,
}
#: Fixed in the official connector's code, not in its config.
OFFICIAL_RESAMPLER = {"resampler_heads": 8, "resampler_dim_head": 64, "resampler_ff_mult": 4}

# Sub-config entries that are bookkeeping of the 4.x code, not architecture.
_SUBCONFIG_BOOKKEEPING = {
    "_attn_implementation_autoset", "_name_or_path", "_commit_hash", "transformers_version",
    "architectures", "model_type", "torch_dtype", "dtype", "model_name_or_path", "model_name_or_path2",
}

#: (official prefix, our prefix) in order; a key takes the first rule whose prefix it starts with.
OFFICIAL_RULES: tuple[tuple[str, str], ...] = (
    ("language_model.model.", "language_model.model."),
    ("language_model.lm_head.", "language_model.lm_head."),
    ("vision_tower._vision_tower.vision_model.embeddings.", "vision_tower.embeddings."),
    ("vision_tower._vision_tower.vision_model.encoder.", "vision_tower.encoder."),
    ("vision_tower._vision_tower.vision_model.post_layernorm.", "vision_tower.post_layernorm."),
    # A checkpoint re-saved under transformers 5 has no vision_model. level: same targets.
    ("vision_tower._vision_tower.embeddings.", "vision_tower.embeddings."),
    ("vision_tower._vision_tower.encoder.", "vision_tower.encoder."),
    ("vision_tower._vision_tower.post_layernorm.", "vision_tower.post_layernorm."),
    ("connector._connector.", "connector."),
)
#: Official keys dropped on purpose, with the reason.
OFFICIAL_DROPPED: tuple[tuple[str, str], ...] = (
    ("vision_tower._vision_tower.vision_model.head.", "SigLIP's pooling head: unused (features come from layer -2)"),
    ("vision_tower._vision_tower.head.", "SigLIP's pooling head: unused (features come from layer -2)"),
)
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
    "added_tokens.json", "chat_template.jinja",
)


class ConversionError(ValueError):
    """The directory is not an official TinyLLaVA-Video checkpoint tinyr1 can convert (the message
    says which file, field or weight names are wrong)."""


# --- configuration ------------------------------------------------------------------------------
def is_official_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a directory whose config.json says ``model_type`` "tinyllava" (the
    official layout, to convert), False otherwise (a tinyr1 policy, anything else, no config)."""
    config = Path(path) / "config.json"
    try:
        return json.loads(config.read_text()).get("model_type") == OFFICIAL_MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def read_official_config(src_dir: str | Path) -> dict[str, Any]:
    """The official ``config.json`` as a dict, checked to be a TinyLLaVA-Video one we support."""
    path = Path(src_dir) / "config.json"
    if not path.is_file():
        raise ConversionError(f"{path} not found: give the directory of an official TinyLLaVA-Video checkpoint")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{path} is not valid JSON: {exc}") from exc
    if raw.get("model_type") != OFFICIAL_MODEL_TYPE:
        raise ConversionError(
            f"{path}: model_type is {raw.get('model_type')!r}, not {OFFICIAL_MODEL_TYPE!r} "
            "(is this already a tinyr1 policy? then load it directly)"
        )
    connector = str(raw.get("connector_type") or "")
    if connector.lower() != SUPPORTED_CONNECTOR:
        raise ConversionError(f"{path}: connector_type {connector!r} is not supported (only {SUPPORTED_CONNECTOR!r})")
    for field in ("text_config", "vision_config", "num_queries", "num_resampler_layers", "group"):
        if raw.get(field) in (None, {}):
            hint = " (the official connector reads config.group; it is set nowhere else)" if field == "group" else ""
            raise ConversionError(f"{path}: field {field!r} is missing{hint}")
    for field, family in (("text_config", "qwen2"), ("vision_config", "siglip_vision_model")):
        kind = raw[field].get("model_type")
        if kind is not None and kind != family:
            raise ConversionError(f"{path}: {field}.model_type is {kind!r}; only {family!r} is supported")
    strategy = raw.get("vision_feature_select_strategy", "patch")
    if strategy not in ("patch", "cls_patch"):
        raise ConversionError(f"{path}: vision_feature_select_strategy {strategy!r} is unknown (patch or cls_patch)")
    return raw


def _sub_config(given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    out.update({k: v for k, v in given.items() if k not in _SUBCONFIG_BOOKKEEPING})
    if out.get("rope_scaling") is None:
        out.pop("rope_scaling", None)
    return out


def _image_norm(src_dir: Path) -> tuple[list[float], list[float]]:
    """mean / std from a preprocessor_config.json beside the weights if there is one, else SigLIP's."""
    pre = src_dir / "preprocessor_config.json"
    if pre.is_file():
        data = json.loads(pre.read_text())
        return list(data.get("image_mean", [0.5] * 3)), list(data.get("image_std", [0.5] * 3))
    return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def official_config(src_dir: str | Path, raw: Mapping[str, Any] | None = None) -> TinyLlavaVideoConfig:
    """Our ``TinyLlavaVideoConfig`` for an official checkpoint directory."""
    src = Path(src_dir)
    raw = dict(raw) if raw is not None else read_official_config(src)
    text = _sub_config(raw["text_config"], QWEN2_449_DEFAULTS)
    vision = _sub_config(raw["vision_config"], SIGLIP_VISION_449_DEFAULTS)
    vision["vision_use_head"] = False  # its weights are dropped (OFFICIAL_DROPPED)
    group = int(raw["group"])
    mean, std = _image_norm(src)
    try:
        return TinyLlavaVideoConfig(
            vision_config=vision,
            text_config=text,
            num_queries=int(raw["num_queries"]),
            group=group,
            resampler_layers=int(raw["num_resampler_layers"]),
            vision_feature_layer=int(raw.get("vision_feature_layer", -2)),
            drop_first_token=raw.get("vision_feature_select_strategy", "patch") == "patch",
            # The official eval samples as many frames as there are groups (16 / 16): one per group.
            num_frames=group,
            image_mean=mean,
            image_std=std,
            position_encoding_fp16=True,
            **OFFICIAL_RESAMPLER,
        )
    except ValueError as exc:
        raise ConversionError(f"{src / 'config.json'}: {exc}") from exc


# --- weights ----------------------------------------------------------------------------------------
def read_official_weights(src_dir: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint: model.safetensors, safetensors shards (with their index) or,
    failing those, pytorch_model.bin."""
    from safetensors.torch import load_file

    src = Path(src_dir)
    single, index = src / "model.safetensors", src / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(src / shard)))
        return out
    legacy = src / "pytorch_model.bin"
    if legacy.is_file():
        return torch.load(legacy, map_location="cpu", weights_only=True)
    raise ConversionError(f"no weights in {src}: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def official_key_to_ours(key: str) -> str | None:
    """Our parameter name for an official weight name; None when the key is dropped on purpose.
    Raises ConversionError for a name no rule knows."""
    for prefix, _reason in OFFICIAL_DROPPED:
        if key.startswith(prefix):
            return None
    for prefix, target in OFFICIAL_RULES:
        if key.startswith(prefix):
            return target + key[len(prefix):]
    raise ConversionError(f"official weight {key!r} matches no known name (unexpected checkpoint layout)")


def _listing(keys: Any, limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def map_official_state_dict(
    official: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    *,
    tied: bool,
) -> dict[str, torch.Tensor]:
    """Rename ``official`` into our names and check it against ``expected`` (our parameter name ->
    shape, tied LM head excluded when ``tied``). Raises ConversionError on any key left over,
    missing, duplicated or of the wrong shape."""
    mapped: dict[str, torch.Tensor] = {}
    unknown, extra, duplicated, wrong_shape = [], [], [], []
    head = "language_model.lm_head.weight"
    for key, tensor in official.items():
        try:
            ours = official_key_to_ours(key)
        except ConversionError:
            unknown.append(key)
            continue
        if ours is None:
            continue
        if ours == head and tied:
            embed = official.get("language_model.model.embed_tokens.weight")
            if embed is not None and embed.shape == tensor.shape and torch.equal(embed, tensor):
                continue  # a stored copy of the tied head: nothing to load
            extra.append(f"{key} (the config ties the LM head to the embeddings, but this head differs)")
            continue
        if ours not in expected:
            extra.append(f"{key} -> {ours}")
            continue
        if ours in mapped:
            duplicated.append(ours)
            continue
        if tuple(tensor.shape) != tuple(expected[ours]):
            wrong_shape.append(f"{key}: {tuple(tensor.shape)} but tinyr1 expects {tuple(expected[ours])}")
            continue
        mapped[ours] = tensor
    missing = [k for k in expected if k not in mapped]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} official key(s) left over, matching no rule: {_listing(unknown)}")
    if extra:
        problems.append(f"{len(extra)} official key(s) with no place in tinyr1's model: {_listing(extra)}")
    if duplicated:
        problems.append(f"{len(duplicated)} parameter(s) given twice: {_listing(duplicated)}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatch(es): {_listing(wrong_shape)}")
    if missing:
        problems.append(f"{len(missing)} parameter(s) of tinyr1's model missing from the checkpoint: {_listing(missing)}")
    if problems:
        raise ConversionError("the official weights do not map onto tinyr1's model:\n  " + "\n  ".join(problems))
    return mapped


def expected_parameters(config: TinyLlavaVideoConfig) -> dict[str, tuple[int, ...]]:
    """Our model's parameter names and shapes for ``config`` (built on the meta device: no memory),
    the tied LM head left out when tied."""
    with torch.device("meta"):
        model = TinyLlavaVideoForConditionalGeneration(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.text_config.tie_word_embeddings:
        shapes.pop("language_model.lm_head.weight", None)
    return shapes


def _checkpoint_dtype(tensors: Mapping[str, torch.Tensor]) -> torch.dtype:
    counts = Counter(t.dtype for t in tensors.values() if t.is_floating_point())
    return counts.most_common(1)[0][0] if counts else torch.float32


# --- the whole conversion -----------------------------------------------------------------------------
def convert_official(
    src_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    dtype: torch.dtype | str | None = None,
) -> TinyLlavaVideoForConditionalGeneration:
    """Load an official TinyLLaVA-Video checkpoint directory as tinyr1's model (eval mode, CPU).

    ``dtype``: None keeps the checkpoint's (bf16 for a bf16 checkpoint), or e.g. torch.float32.
    ``out_dir``: also write a tinyr1 policy directory there (config.json, model.safetensors, the
    tokenizer re-saved by today's transformers, policy.json), loadable with ``load_policy``.
    Raises ConversionError naming what does not fit."""
    src = Path(src_dir)
    if not src.is_dir():
        raise ConversionError(f"{src} is not a directory")
    raw = read_official_config(src)
    config = official_config(src, raw)
    official = read_official_weights(src)
    tied = bool(config.text_config.tie_word_embeddings)
    mapped = map_official_state_dict(official, expected_parameters(config), tied=tied)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or _checkpoint_dtype(official)
    model, info = TinyLlavaVideoForConditionalGeneration.from_pretrained(
        None, config=config, state_dict=mapped, dtype=dtype, output_loading_info=True
    )
    leftovers = {k: v for k, v in info.items() if v}
    if leftovers:  # map_official_state_dict should have caught these; never load silently
        raise ConversionError(f"transformers reports loading problems: {leftovers}")
    model.eval()
    if out_dir is not None:
        write_policy(model, src, Path(out_dir), raw)
    return model


def write_policy(model: TinyLlavaVideoForConditionalGeneration, src: Path, out: Path, raw: Mapping[str, Any]) -> Path:
    """Save ``model`` plus the official tokenizer and a policy.json as a tinyr1 policy directory."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # AutoTokenizer peeks at the official config.json and warns
    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError) as exc:
        raise ConversionError(f"could not read the tokenizer in {src}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    # Note: the official tokenizer has unk = pad = eos = "<|endoftext|>" (its post-load hook sets
    # unk to pad), and transformers 5's Qwen2Tokenizer defaults unk to that token anyway.
    tokenizer.save_pretrained(out)
    for name in TOKENIZER_FILES:  # keep the original files the re-save did not write
        if (src / name).is_file() and not (out / name).exists():
            shutil.copy2(src / name, out / name)
    meta = {
        "name": out.name,
        "source": "official TinyLLaVA-Video checkpoint converted by tinyr1 (tinyr1.models.tinyllava.convert)",
        "converted_from": str(src.resolve()),
        "template": "qwen2_base",
        "official": {k: raw.get(k) for k in (
            "llm_model_name_or_path", "vision_model_name_or_path", "connector_type", "num_queries",
            "num_resampler_layers", "group", "vision_feature_layer", "vision_feature_select_strategy",
            "tokenizer_model_max_length", "image_aspect_ratio")},
    }
    (out / "policy.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


__all__ = [
    "ConversionError",
    "OFFICIAL_DROPPED",
    "OFFICIAL_RULES",
    "QWEN2_449_DEFAULTS",
    "SIGLIP_VISION_449_DEFAULTS",
    "convert_official",
    "expected_parameters",
    "is_official_checkpoint",
    "map_official_state_dict",
    "official_config",
    "official_key_to_ours",
    "read_official_config",
    "read_official_weights",
    "write_policy",
]
