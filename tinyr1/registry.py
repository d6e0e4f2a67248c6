"""The policies tinyr1 knows, where their weights are, and what they need: the one list the app's
policy picker, ``tinyr1 policies`` and ``tinyr1 reason --policy`` share.

    from tinyr1.registry import list_policies, resolve_policy
    for e in list_policies():                          # PolicyEntry, in display order
        print(e.id, e.available, e.memory_gb, e.how_to_get)
    resolved = resolve_policy("Zhang199/TinyLLaVA-Video-R1")   # or an alias, a registry id, a path
    resolved.path, resolved.entry                      # the local directory to load; the entry (or None)

Entries (``SPECS``): the embedded tiny policies (``assets/policies/tiny-temporal-grpo``, ``tiny-grpo``,
``tiny-coldstart``),
the official TinyLLaVA-Video-R1 pair (converted in memory when loaded), Qwen2.5-VL-3B-Instruct and
Video-R1-7B (Qwen2.5-VL-7B fine-tuned with T-GRPO). An entry is **available** when its weights are
on this machine (the tiny ones in ``assets/``; the others in ``$TINYR1_MODELS/<name>`` — default
``~/.cache/tinyr1/models`` — or in the Hugging Face cache) or can be downloaded now (the hub is
allowed, ``HF_HUB_OFFLINE`` unset, and answers a connection within ``PROBE_TIMEOUT_S``: the probe
runs at most once every ``PROBE_TTL_S`` seconds, in a thread, and never with ``HF_HUB_OFFLINE=1``).
Otherwise ``how_to_get`` says what to do.

Sizes and memory are computed from each model's architecture: its config (the real ``config.json``
when the weights are here, else the published configuration written in ``ARCHITECTURES``) builds
the model on PyTorch's meta device (no memory), and every parameter and buffer is counted where
bitsandbytes would put it (``memory_bytes``): a Linear layer of the language model becomes 4-bit
NF4 (half a byte per weight plus one float32 scale per 64 weights) or int8 (one byte per weight
plus one float32 scale per output row); embeddings, norms, biases, the vision tower, the connector
and the LM head stay in bf16 (fp32 for the tiny ones on CPU). The figures are the weights alone:
activations and the KV cache come on top (``kv_cache_mb_per_1k_tokens``). bench/memory_figures.py
checks the formula against tiny models loaded for real and writes the table in docs/POLICIES.md.
"""
from __future__ import annotations

import functools
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinyr1.policy.spec import (
    COLDSTART_POLICY,
    DEFAULT_POLICIES,
    GRPO_POLICY,
    POLICIES_DIR,
    QUANT_SKIP_MODULES,
    QWEN_QUANT_SKIP_MODULES,
    TEMPORAL_POLICY,
    PolicyError,
)

KINDS = ("tiny", "tinyllava_official", "qwen2_5_vl")
GB = 1e9  # memory figures are decimal gigabytes
PROBE_TIMEOUT_S = 2.0
PROBE_TTL_S = 300.0
#: Files fetched from the hub for a policy (weights, configs, tokenizer, processor settings).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]

# --------------------------------------------------------------------------------------------
# Published architectures (config.json facts), used until the real files are on disk
# --------------------------------------------------------------------------------------------
_QWEN25_3B_TEXT = dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                       num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=32768,
                       rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, hidden_act="silu",
                       use_sliding_window=False, sliding_window=32768, max_window_layers=70)
_QWEN25_VL_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, in_chans=3,
                         patch_size=14, spatial_merge_size=2, spatial_patch_size=14, temporal_patch_size=2,
                         window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2,
                         hidden_act="silu")
_QWEN_VL_IDS = dict(bos_token_id=151643, eos_token_id=151645, vision_start_token_id=151652,
                    vision_end_token_id=151653, vision_token_id=151654, image_token_id=151655,
                    video_token_id=151656)

#: config.json contents as published (flat Qwen2.5-VL layout; the official TinyLLaVA layout). The
#: TinyLLaVA-Video-R1 values are the training scripts' (Qwen2.5-3B + SigLIP so400m-patch14-384,
#: groupresampler 512 queries in 16 groups, 3 layers): docs/EQUIVALENCE.md lists what is unverified.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "tinyllava_video_r1": {
        "model_type": "tinyllava", "connector_type": "groupresampler", "num_queries": 512, "group": 16,
        "num_resampler_layers": 3, "vision_feature_layer": -2, "vision_feature_select_strategy": "patch",
        "text_config": {"model_type": "qwen2", **_QWEN25_3B_TEXT},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                          "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 384, "patch_size": 14,
                          "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6},
    },
    "qwen2_5_vl_3b": {
        "model_type": "qwen2_5_vl", **_QWEN25_3B_TEXT, "max_position_embeddings": 128000, **_QWEN_VL_IDS,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "vision_config": {**_QWEN25_VL_VISION, "out_hidden_size": 2048},
    },
    "qwen2_5_vl_7b": {
        "model_type": "qwen2_5_vl", "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "tie_word_embeddings": False, "hidden_act": "silu", "max_position_embeddings": 128000,
        "use_sliding_window": False, "sliding_window": 32768, "max_window_layers": 28, **_QWEN_VL_IDS,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "vision_config": {**_QWEN25_VL_VISION, "out_hidden_size": 3584},
    },
}


@dataclass(frozen=True)
class PolicySpec:
    """What tinyr1 knows about a policy before looking at the machine."""

    id: str
    label: str
    kind: str
    source: str  # a path (tiny) or a hub repository id
    template: str
    num_frames: int
    settings: dict[str, Any]  # GenerationSettings keyword arguments
    description: str
    architecture: str | None = None  # key of ARCHITECTURES (None: read from the local config)
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific loading defaults (e.g. max_pixels)


_TINY_HOW = {
    COLDSTART_POLICY: "train it on this machine (CPU, minutes): `tinyr1 train-tiny --out runs/tiny`, then copy "
                      "runs/tiny/policy to assets/policies/tiny-coldstart",
    TEMPORAL_POLICY: "train its cold start (`tinyr1 train-tiny --preset temporal-places`, about an hour on 2 CPU "
                     "cores), then GRPO in four stages: the commands are in its card and docs/RESULTS.md",
    GRPO_POLICY: "train it with GRPO from the cold start (CPU, about 25 minutes): `python bench/reproduce.py "
                 "--steps 1500 --ship assets/policies/tiny-grpo --ship-run format_accuracy` (docs/RESULTS.md)",
}
# Video-R1's inference example: 16-32 frames, max_pixels 256*28*28 per frame, temperature 0.1, top_p 0.001.
_QWEN_SETTINGS = {"max_new_tokens": 1024, "temperature": 0.1, "top_p": 0.001, "seed": 0, "num_frames": 16}

SPECS: tuple[PolicySpec, ...] = (
    PolicySpec(
        id=TEMPORAL_POLICY, label=f"{TEMPORAL_POLICY} (embedded, GRPO, temporal)", kind="tiny",
        source=str(POLICIES_DIR / TEMPORAL_POLICY), template="qwen2_base", num_frames=8,
        settings={"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0, "seed": 0},
        description="The embedded tiny TinyLLaVA-Video policy trained to read the frames' order: its traces "
                    "state where each shape is, then conclude (runs on any CPU).",
    ),
    PolicySpec(
        id=GRPO_POLICY, label=f"{GRPO_POLICY} (embedded, GRPO)", kind="tiny", source=str(POLICIES_DIR / GRPO_POLICY),
        template="qwen2_base", num_frames=8,
        settings={"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0, "seed": 0},
        description="The embedded tiny TinyLLaVA-Video policy after GRPO on the synthetic world (runs on any CPU).",
    ),
    PolicySpec(
        id=COLDSTART_POLICY, label=f"{COLDSTART_POLICY} (embedded, SFT)", kind="tiny",
        source=str(POLICIES_DIR / COLDSTART_POLICY), template="qwen2_base", num_frames=8,
        settings={"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0, "seed": 0},
        description="The embedded tiny TinyLLaVA-Video policy after cold-start SFT on the synthetic world.",
    ),
    PolicySpec(
        id="Zhang199/TinyLLaVA-Video-R1", label="TinyLLaVA-Video-R1 (3.6B, official)", kind="tinyllava_official",
        source="Zhang199/TinyLLaVA-Video-R1", template="qwen2_base", num_frames=16,
        # the official eval samples (up to 1024 new tokens); the demo uses temperature 0.1
        settings={"max_new_tokens": 1024, "temperature": 0.1, "top_p": 1.0, "seed": 0, "num_frames": 16},
        description="The paper's final model: Qwen2.5-3B + SigLIP-384 + group resampler, GRPO after the cold start.",
        architecture="tinyllava_video_r1", aliases=("tinyllava-video-r1",),
    ),
    PolicySpec(
        id="Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16", label="TinyLLaVA-Video cold start (3.6B, official)",
        kind="tinyllava_official", source="Zhang199/TinyLLaVA-Video-Coldstart_NextQA_16", template="qwen2_base",
        num_frames=16, settings={"max_new_tokens": 1024, "temperature": 0.1, "top_p": 1.0, "seed": 0, "num_frames": 16},
        description="The paper's cold-start checkpoint (SFT on 16 NextQA reasoning traces), GRPO's starting point.",
        architecture="tinyllava_video_r1", aliases=("tinyllava-video-coldstart",),
    ),
    PolicySpec(
        id="Qwen/Qwen2.5-VL-3B-Instruct", label="Qwen2.5-VL-3B-Instruct (3.8B)", kind="qwen2_5_vl",
        source="Qwen/Qwen2.5-VL-3B-Instruct", template="r1", num_frames=16, settings=dict(_QWEN_SETTINGS),
        description="Qwen's 3B vision-language instruct model, asked with the R1 prompt (think/answer).",
        architecture="qwen2_5_vl_3b", aliases=("qwen2.5-vl-3b",),
        extra={"template": "r1", "num_frames": 16, "max_pixels": 128 * 28 * 28, "min_pixels": 16 * 28 * 28},
    ),
    PolicySpec(
        id="Video-R1/Video-R1-7B", label="Video-R1-7B (8.3B, Qwen2.5-VL-7B + T-GRPO)", kind="qwen2_5_vl",
        source="Video-R1/Video-R1-7B", template="video_r1", num_frames=16, settings=dict(_QWEN_SETTINGS),
        description="Video-R1: Qwen2.5-VL-7B-Instruct after SFT and T-GRPO, with its own reasoning prompt.",
        architecture="qwen2_5_vl_7b", aliases=("video-r1-7b",),
        extra={"template": "video_r1", "num_frames": 16, "max_pixels": 128 * 28 * 28, "min_pixels": 16 * 28 * 28},
    ),
)


@dataclass
class PolicyEntry:
    """A registry entry as it stands on this machine now (``list_policies``). ``memory_gb`` maps
    "bf16", "int8", "nf4" (and "fp32" for tiny policies) to the weights' size in GB (1e9 bytes)."""

    id: str
    label: str
    kind: str
    source: str
    params: int | None
    memory_gb: dict[str, float]
    template: str
    settings: dict[str, Any]
    num_frames: int
    available: bool
    how_to_get: str
    local_path: str | None
    downloadable: bool
    description: str
    parameters_by_part: dict[str, int] = field(default_factory=dict)
    kv_cache_mb_per_1k_tokens: float | None = None
    aliases: tuple[str, ...] = ()

    def generation_settings(self):
        """The recommended ``GenerationSettings``."""
        from tinyr1.policy.spec import GenerationSettings

        return GenerationSettings(**self.settings)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


@dataclass(frozen=True)
class ResolvedPolicy:
    """Where to load a policy from: a local directory, and its registry entry (None for a path)."""

    path: Path
    entry: PolicyEntry | None = None


# --------------------------------------------------------------------------------------------
# Where weights are
# --------------------------------------------------------------------------------------------
def models_dir() -> Path:
    """Where tinyr1 looks for downloaded checkpoints: $TINYR1_MODELS, else ~/.cache/tinyr1/models."""
    return Path(os.environ.get("TINYR1_MODELS") or Path.home() / ".cache" / "tinyr1" / "models").expanduser()


def _has_weights(path: Path) -> bool:
    return (path / "config.json").is_file() and (any(path.glob("*.safetensors")) or any(path.glob("*.bin")))


def hub_cache_path(repo_id: str) -> Path | None:
    """The Hugging Face cache's snapshot of ``repo_id`` if it holds a config and weights (no network)."""
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (LocalEntryNotFoundError), bad id, unreadable cache
        return None
    return path if _has_weights(path) else None


def local_path(spec: PolicySpec) -> Path | None:
    """The directory on this machine holding ``spec``'s weights, or None."""
    if spec.kind == "tiny":
        path = Path(spec.source)
        return path if _has_weights(path) else None
    candidate = models_dir() / spec.source.split("/")[-1]
    if _has_weights(candidate):
        return candidate
    return hub_cache_path(spec.source)


def network_allowed() -> bool:
    """False when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) says the hub must not be contacted."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    return True


_probe_lock = threading.Lock()
_probe_result: tuple[float, bool] | None = None


def hub_reachable(timeout: float | None = None) -> bool:
    """Can the hub be reached now? Never contacts it when ``network_allowed()`` is False; otherwise
    one TCP connection attempt to the hub's host, in a daemon thread given ``timeout`` seconds
    (default PROBE_TIMEOUT_S, DNS included), remembered for PROBE_TTL_S seconds."""
    global _probe_result
    timeout = PROBE_TIMEOUT_S if timeout is None else float(timeout)
    if not network_allowed():
        return False
    with _probe_lock:
        if _probe_result is not None and time.monotonic() - _probe_result[0] < PROBE_TTL_S:
            return _probe_result[1]
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    port = 443 if endpoint.startswith("https") else 80
    if ":" in host:
        host, port_text = host.rsplit(":", 1)
        port = int(port_text)
    ok: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=attempt, name="tinyr1-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    result = bool(ok)
    with _probe_lock:
        _probe_result = (time.monotonic(), result)
    return result


# --------------------------------------------------------------------------------------------
# Sizes from the architecture
# --------------------------------------------------------------------------------------------
def _meta_model(kind: str, config: dict[str, Any], src: Path | None = None):
    """(model on the meta device, quantization skip patterns) for a config dict."""
    import torch

    if kind in ("tiny", "tinyllava_official"):
        from tinyr1.models.tinyllava import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration

        if config.get("model_type") == "tinyllava":
            from tinyr1.models.tinyllava.convert import official_config

            cfg = official_config(src or Path("."), config)
        else:
            cfg = TinyLlavaVideoConfig.from_dict(config)
        with torch.device("meta"):
            return TinyLlavaVideoForConditionalGeneration(cfg), list(QUANT_SKIP_MODULES)
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        cfg = Qwen2_5_VLConfig.from_dict(dict(config))
        with torch.device("meta"):
            return Qwen2_5_VLForConditionalGeneration(cfg), list(QWEN_QUANT_SKIP_MODULES)
    raise ValueError(f"unknown policy kind {kind!r}")


def memory_bytes(model, skip_modules: list[str], *, compute_bytes: int = 2, nf4_blocksize: int = 64) -> dict[str, int]:
    """Bytes of the weights (parameters and buffers) of ``model`` (any device, meta included) in
    "fp32", "bf16", "int8" and "nf4", following where transformers + bitsandbytes put each one:
    every nn.Linear whose name no skip pattern matches (transformers' ``should_convert_module``) is
    quantized — int8: 1 byte per weight + a float32 scale per output row; nf4: half a byte per
    weight + a float32 absmax per ``nf4_blocksize`` weights + a 16-entry float32 code book per
    layer — and everything else (biases, embeddings, norms, skipped modules) stays in the compute
    dtype, ``compute_bytes`` per value (2: bf16 on a GPU; 4: float32, tinyr1's CPU default).
    Buffers keep their own dtype."""
    from torch import nn
    from transformers.quantizers.quantizers_utils import should_convert_module

    quantized: dict[int, tuple[int, int]] = {}  # id(weight) -> (numel, out_features)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name and should_convert_module(name, skip_modules):
            quantized[id(module.weight)] = (module.weight.numel(), module.out_features)
    params = {id(p): p for p in model.parameters()}  # tied weights once
    other = sum(p.numel() for i, p in params.items() if i not in quantized)
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    q_numel = sum(n for n, _ in quantized.values())
    rows = sum(o for _, o in quantized.values())
    blocks = sum(-(-n // nf4_blocksize) for n, _ in quantized.values())
    return {
        "fp32": (other + q_numel) * 4 + buffers,
        "bf16": (other + q_numel) * 2 + buffers,
        "int8": q_numel + rows * 4 + other * compute_bytes + buffers,
        "nf4": (q_numel + 1) // 2 + blocks * 4 + len(quantized) * 16 * 4 + other * compute_bytes + buffers,
    }


def measured_bytes(model) -> int:
    """Bytes a loaded model's weights occupy: every parameter and buffer once, plus the scales
    bitsandbytes keeps beside quantized weights (4-bit ``quant_state.absmax`` / ``code``, int8 ``SCB``)."""
    seen: set[int] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()

    for t in [*model.parameters(), *model.buffers()]:
        add(t)
        state = getattr(t, "quant_state", None)
        if state is not None:
            add(getattr(state, "absmax", None))
            add(getattr(state, "code", None))
        add(getattr(t, "SCB", None))
    return total


def _parts(kind: str, model) -> dict[str, int]:
    counts: dict[str, int] = {"vision_tower": 0, "connector": 0, "language_model": 0}
    if kind == "qwen2_5_vl":
        from tinyr1.models.qwen2_5_vl import part_of

        for name, p in model.named_parameters():
            counts[part_of(name)] += p.numel()
    else:
        for name, p in model.named_parameters():
            counts[model.part_of(name)] += p.numel()
    return counts


def _kv_cache_mb_per_1k(kind: str, model) -> float:
    text = model.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 2  # K and V, bf16
    return round(per_token * 1000 / 1e6, 3)


@functools.lru_cache(maxsize=32)
def _sizes_cached(kind: str, config_json: str, src: str | None) -> dict[str, Any]:
    model, skip = _meta_model(kind, json.loads(config_json), Path(src) if src else None)
    mem = memory_bytes(model, skip)
    keys = ("fp32", "bf16", "int8", "nf4") if kind == "tiny" else ("bf16", "int8", "nf4")
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "memory_bytes": mem,
        "memory_gb": {k: round(mem[k] / GB, 4 if kind == "tiny" else 2) for k in keys},
        "parts": _parts(kind, model),
        "kv": _kv_cache_mb_per_1k(kind, model),
    }


def architecture_config(spec: PolicySpec, path: Path | None = None) -> dict[str, Any] | None:
    """The config dict sizes are computed from: the local config.json if the weights are here,
    else the published one (ARCHITECTURES), else None."""
    if path is not None and (path / "config.json").is_file():
        try:
            return json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            pass
    return dict(ARCHITECTURES[spec.architecture]) if spec.architecture else None


def policy_sizes(spec: PolicySpec, path: Path | None = None) -> dict[str, Any] | None:
    """{"params", "memory_bytes", "memory_gb", "parts", "kv"} for ``spec`` (None when unknown)."""
    config = architecture_config(spec, path)
    if config is None:
        return None
    try:
        return _sizes_cached(spec.kind, json.dumps(config, sort_keys=True), str(path) if path else None)
    except Exception:  # noqa: BLE001 - a malformed local config must not break the listing
        return None


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------
def find_spec(name: str) -> PolicySpec | None:
    """The spec whose id or alias is ``name`` (case-insensitive), else None."""
    key = name.strip().lower()
    for spec in SPECS:
        if key == spec.id.lower() or key in (a.lower() for a in spec.aliases):
            return spec
    return None


def _how_to_get(spec: PolicySpec, sizes: dict[str, Any] | None) -> str:
    if spec.kind == "tiny":
        return _TINY_HOW.get(spec.id, f"put a tinyr1 policy directory at {spec.source}")
    size = f" (~{sizes['memory_gb']['bf16']:.1f} GB)" if sizes else ""
    where = _shown(models_dir() / spec.source.split("/")[-1])
    return (f"download the weights{size} on a machine with internet: `hf download {spec.source} "
            f"--local-dir {where}` (or any folder, then pass that path as --policy), or run with the hub "
            f"reachable and HF_HUB_OFFLINE unset to download on first use")


def _shown(path: Path) -> str:
    """A path as a person would type it: ``~/...`` under the home folder (commands are copied
    from the app's banner onto other machines)."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)


def _entry(spec: PolicySpec, probe_network: bool) -> PolicyEntry:
    path = local_path(spec)
    downloadable = spec.kind != "tiny" and path is None and probe_network and hub_reachable()
    sizes = policy_sizes(spec, path)
    available = path is not None or downloadable
    if path is not None:
        how = f"ready: {path}"
    elif downloadable:
        how = f"will be downloaded from the hub on first use ({spec.source})"
    else:
        how = _how_to_get(spec, sizes)
    num_frames = spec.num_frames
    if spec.kind == "tiny" and path is not None:  # the shipped policy's own frame count
        num_frames = int((architecture_config(spec, path) or {}).get("num_frames", num_frames))
    return PolicyEntry(
        id=spec.id, label=spec.label, kind=spec.kind, source=spec.source,
        params=sizes["params"] if sizes else None, memory_gb=dict(sizes["memory_gb"]) if sizes else {},
        template=spec.template, settings=dict(spec.settings), num_frames=num_frames, available=available,
        how_to_get=how, local_path=str(path) if path else None, downloadable=downloadable,
        description=spec.description, parameters_by_part=dict(sizes["parts"]) if sizes else {},
        kv_cache_mb_per_1k_tokens=sizes["kv"] if sizes else None, aliases=spec.aliases,
    )


def list_policies(*, probe_network: bool = True) -> list[PolicyEntry]:
    """Every registry entry as it stands now, in display order (tiny first). ``probe_network``:
    check whether absent weights could be downloaded (skipped under HF_HUB_OFFLINE=1; at most
    PROBE_TIMEOUT_S seconds, remembered PROBE_TTL_S)."""
    return [_entry(spec, probe_network) for spec in SPECS]


def get_policy(name: str, *, probe_network: bool = True) -> PolicyEntry:
    """The entry for an id or alias; PolicyError naming the known ids otherwise."""
    spec = find_spec(name)
    if spec is None:
        known = ", ".join(s.id for s in SPECS)
        raise PolicyError(f"no policy {name!r} in the registry; known: {known} (or give a directory)")
    return _entry(spec, probe_network)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def download(repo_id: str) -> Path:
    """Fetch ``repo_id``'s weights, configs and tokenizer into the Hugging Face cache (only when
    the hub is allowed and reachable: PolicyError otherwise, without waiting)."""
    if not network_allowed():
        raise PolicyError(f"{repo_id} is not on this machine and HF_HUB_OFFLINE=1 forbids downloading it")
    if not hub_reachable():
        raise PolicyError(f"{repo_id} is not on this machine and the hub cannot be reached (no network?)")
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; the message says what
        raise PolicyError(f"could not download {repo_id}: {exc}") from exc
    if not _has_weights(path):
        raise PolicyError(f"downloaded {repo_id} to {path}, but it holds no config.json and weights")
    return path


def resolve_policy(name_or_path: str | os.PathLike, *, download_missing: bool = True) -> ResolvedPolicy:
    """The local directory for a path, a registry id or alias, or a hub id.

    A path that exists is returned as it is (with its entry when it is a registry policy's
    location). A registry id whose weights are here resolves to them; otherwise, and for other hub
    ids (``owner/name``), the weights are downloaded when ``download_missing`` and the hub is
    allowed and reachable; else PolicyError says how to get them and where to put them."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        entry = None
        for spec in SPECS:
            if spec.kind == "tiny" and Path(spec.source).resolve() == path.resolve():
                entry = _entry(spec, probe_network=False)
        return ResolvedPolicy(path, entry)
    spec = find_spec(text)
    if spec is not None:
        local = local_path(spec)
        entry = _entry(spec, probe_network=False)
        if local is not None:
            return ResolvedPolicy(local, entry)
        if spec.kind == "tiny" or not download_missing or not network_allowed() or not hub_reachable():
            why = ("HF_HUB_OFFLINE=1 forbids downloading" if spec.kind != "tiny" and not network_allowed()
                   else "the hub cannot be reached" if spec.kind != "tiny" and download_missing else "")
            reason = f" ({why})" if why else ""
            raise PolicyError(f"{spec.id} is not available on this machine{reason}: {entry.how_to_get}")
        return ResolvedPolicy(download(spec.source), _entry(spec, probe_network=False))
    if _looks_like_hub_id(text):
        cached = hub_cache_path(text)
        if cached is not None:
            return ResolvedPolicy(cached, None)
        if download_missing and network_allowed() and hub_reachable():
            return ResolvedPolicy(download(text), None)
        raise PolicyError(
            f"no directory {text} here, and {text} is not in the Hugging Face cache; download it on a machine "
            f"with internet (`hf download {text} --local-dir DIR`) and pass DIR, or unset "
            "HF_HUB_OFFLINE where the hub is reachable")
    raise PolicyError(f"no policy at {text}: not a directory, a registry id ({', '.join(s.id for s in SPECS)}) "
                      "or a hub id (owner/name)")


def loading_defaults(entry: PolicyEntry | None) -> dict[str, Any]:
    """Kind-specific loading defaults of an entry (e.g. a Qwen2.5-VL policy's template and max_pixels)."""
    if entry is None:
        return {}
    spec = find_spec(entry.id)
    return dict(spec.extra) if spec else {}


__all__ = [
    "ARCHITECTURES",
    "KINDS",
    "PolicyEntry",
    "PolicySpec",
    "ResolvedPolicy",
    "SPECS",
    "architecture_config",
    "download",
    "find_spec",
    "get_policy",
    "hub_cache_path",
    "hub_reachable",
    "list_policies",
    "loading_defaults",
    "local_path",
    "measured_bytes",
    "memory_bytes",
    "models_dir",
    "network_allowed",
    "policy_sizes",
    "resolve_policy",
]


# ---------------------------------------------------------------------- policies of an app root
# The app's pickers (Reason's Policy, GRPO's starting policy) list this registry's available
# entries, then the folders an app root holds (assets/policies/*, runs/*/final, $TINYR1_POLICY).
# The app may serve another root than this repository, so the tiny entries are looked for under
# that root. Listing may probe the hub (one TCP connection, at most PROBE_TIMEOUT_S, never under
# HF_HUB_OFFLINE=1): callers list once and again on request.

#: The policies this repository trains and ships (assets/policies/<name>), the default first
#: (owned by the torch-free tinyr1.policy.spec).
EMBEDDED = DEFAULT_POLICIES


def find_policies(root: str | Path) -> dict[str, str]:
    """Policies found under ``root``: label -> directory, the default first.

    Looked for: ``$TINYR1_POLICY`` when set, every directory with a ``config.json`` under
    ``assets/policies/`` (the embedded ones first, in DEFAULT_POLICIES' order), and
    every ``runs/*/final`` with a ``config.json`` (policies trained with GRPO in the app)."""
    root = Path(root)
    found: dict[str, str] = {}
    env = os.environ.get("TINYR1_POLICY")
    if env and (Path(env) / "config.json").is_file():
        found[f"{Path(env).name} ($TINYR1_POLICY)"] = str(Path(env).resolve())
    shipped = root / "assets" / "policies"
    if shipped.is_dir():
        rank = {name: i for i, name in enumerate(EMBEDDED)}
        dirs = sorted(
            (p for p in shipped.iterdir() if (p / "config.json").is_file()),
            key=lambda p: (rank.get(p.name, len(rank)), p.name),
        )
        for path in dirs:
            found[f"{path.name} (embedded)" if path.name in rank else path.name] = str(path.resolve())
    runs = root / "runs"
    if runs.is_dir():
        for config in sorted(runs.glob("*/final/config.json")):
            found[f"runs/{config.parent.parent.name}"] = str(config.parent.resolve())
    return found


@dataclass(frozen=True)
class PolicyOption:
    """One choice of the policy pickers."""

    key: str  # what a picker sends and /reason's `policy` takes: a registry id, runs/NAME, a folder name
    label: str  # what the picker shows
    target: str  # what load_policy gets: a directory, or a registry id (the registry finds or downloads it)
    entry: Any = None  # the registry's PolicyEntry; None for the root's folders ($TINYR1_POLICY, runs, others)


def registry_entries(root: str | Path, *, probe_network: bool = True) -> list[Any]:
    """The registry's entries (``PolicyEntry``, display order) as an app serving ``root`` sees
    them: the embedded tiny policies are looked for under ``<root>/assets/policies/<id>``."""
    shipped = Path(root).resolve() / "assets" / "policies"
    out = []
    for e in list_policies(probe_network=probe_network):
        if e.kind == "tiny" and Path(e.source).resolve() != (shipped / e.id):
            e = _rebased(e, shipped / e.id)
        out.append(e)
    return out


def _rebased(e: Any, path: Path) -> Any:
    """A tiny registry entry whose weights are expected at ``path`` instead."""
    from dataclasses import replace

    spec = replace(find_spec(e.id), source=str(path))
    local = local_path(spec)
    sizes = policy_sizes(spec, local) if local is not None else None
    if local is not None:
        how = f"ready: {local}"
    elif e.local_path:  # the repository has it, this root does not
        how = f"copy {e.local_path} to {path}"
    else:
        how = e.how_to_get
    num_frames = e.num_frames
    if local is not None:
        try:
            num_frames = int(json.loads((local / "config.json").read_text()).get("num_frames", num_frames))
        except (OSError, ValueError, TypeError):
            pass
    return replace(
        e, source=str(path), available=local is not None, local_path=str(local) if local else None, how_to_get=how,
        num_frames=num_frames, params=sizes["params"] if sizes else e.params,
        memory_gb=dict(sizes["memory_gb"]) if sizes else dict(e.memory_gb),
        parameters_by_part=dict(sizes["parts"]) if sizes else dict(e.parameters_by_part),
        kv_cache_mb_per_1k_tokens=sizes["kv"] if sizes else e.kv_cache_mb_per_1k_tokens,
    )


def policy_options(root: str | Path, entries: Any) -> dict[str, PolicyOption]:
    """What the pickers offer, key -> option, the default first: ``$TINYR1_POLICY`` (an explicit
    choice), the registry's available entries in its order (embedded tiny policies, then the
    official TinyLLaVA-Video-R1 pair and the Qwen2.5-VL policies whose weights are here or can be
    downloaded), the other folders under ``assets/policies/``, then ``runs/*/final``."""
    found = find_policies(root)
    covered = {str(Path(e.source).resolve()) for e in entries if e.kind == "tiny"}  # the registry's folders
    out: dict[str, PolicyOption] = {}
    for label, path in found.items():
        if label.endswith("($TINYR1_POLICY)"):
            out[label] = PolicyOption(label, label, path)
    for e in entries:
        if not e.available:
            continue
        label = e.label
        if not e.local_path:
            size = f" ~{e.memory_gb['bf16']:.1f} GB" if e.memory_gb.get("bf16") else ""
            label = f"{e.label} · downloads{size} on first use"
        # tiny: its folder under this root; others: the id, so the registry also applies its loading
        # defaults (template, frames, max_pixels) and finds the weights where it listed them
        out[e.id] = PolicyOption(e.id, label, e.local_path if e.kind == "tiny" else e.id, e)
    for label, path in found.items():
        if label not in out and path not in covered:
            out[label] = PolicyOption(label, label, path)
    return out


__all__ += ["EMBEDDED", "PolicyOption", "find_policies", "policy_options", "registry_entries"]
