"""What a policy is, without torch: errors, paths, embedded ids, quantization choices, settings.

    from tinyr1.policy.spec import GenerationSettings, PolicyError, POLICIES_DIR, QUANTIZATIONS
    settings = GenerationSettings(temperature=0.0)            # greedy
    path = default_policy_path()                              # the embedded tiny-temporal-grpo, usually
    serving_default(["tiny-temporal-grpo", GPU_POLICY], cuda=True)   # what the app opens on: R1 in nf4

This module is the leaf of tinyr1.policy: it imports nothing heavy (no torch, no transformers),
so the registry, the CLI's argument parsing and the app's plain functions can use these facts
without paying for torch. Everything here has one owner: the embedded policy ids, the
quantization choices and the modules quantization skips per family, and the CPU-thread rule.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


class PolicyError(ValueError):
    """A policy directory or a request the runtime cannot use (missing, incompatible, bad settings)."""


# --------------------------------------------------------------------------------------------
# Files and the embedded policies
# --------------------------------------------------------------------------------------------
#: Free-form metadata (name, seed, data, accuracy...) beside a policy's weights.
POLICY_META = "policy.json"
#: Where the embedded policies live (``assets/policies/<name>``), next to the package.
POLICIES_DIR = Path(__file__).resolve().parents[2] / "assets" / "policies"
#: The embedded policy trained for temporal, faithful reasoning (the default for answering): a
#: cold start whose traces state each shape's places, then GRPO on the world without single-frame
#: shortcuts (version 3) with a consistency reward (docs/DESIGN.md, "The default policy").
TEMPORAL_POLICY = "tiny-temporal-grpo"
#: The embedded policy after GRPO with the paper's recipe on world 2 (the reproduction's policy).
GRPO_POLICY = "tiny-grpo"
#: The embedded cold start (SFT): where GRPO starts, as in the paper's pipeline.
COLDSTART_POLICY = "tiny-coldstart"
#: The embedded policies in order of preference for answering.
DEFAULT_POLICIES = (TEMPORAL_POLICY, GRPO_POLICY, COLDSTART_POLICY)

# --------------------------------------------------------------------------------------------
# Model families and quantization
# --------------------------------------------------------------------------------------------
#: config.json ``model_type`` of each family the runtime loads.
TINYLLAVA_VIDEO = "tinyllava_video"  # tinyr1's TinyLLaVA-Video layout (tinyr1.models.tinyllava)
TINYLLAVA_OFFICIAL = "tinyllava"  # an official TinyLLaVA-Video checkpoint, converted in memory
QWEN2_5_VL = "qwen2_5_vl"

#: Quantizations the runtime knows (None: full precision).
QUANTIZATIONS = (None, "nf4", "int8")
#: The same as command-line / UI choices ("none" for None).
QUANTIZATION_CHOICES = ("none", "nf4", "int8")
#: Spellings of "no quantization" that ``normalize_quantization`` accepts.
_NO_QUANTIZATION = ("none", "", "fp32", "full", "bf16")

#: TinyLLaVA-Video modules kept in full precision under bitsandbytes quantization (matched by
#: name): the connector is small and sensitive, and the vision tower is ~11% of the real model's
#: weights but feeds everything visual and is the costly part of the tiny one, so quantizing it
#: buys little memory for a quality and speed risk.
QUANT_SKIP_MODULES = ["vision_tower", "connector", "lm_head"]
#: Qwen2.5-VL's: the vision tower with its patch merger, and the LM head (matched from the start
#: of a module name, transformers' rule).
QWEN_QUANT_SKIP_MODULES = ["model.visual", "lm_head"]


def normalize_quantization(quantization: str | None) -> str | None:
    """None, "nf4" or "int8" for any accepted spelling; PolicyError for an unknown one."""
    if quantization in _NO_QUANTIZATION:
        return None
    if quantization not in QUANTIZATIONS:
        raise PolicyError(f"unknown quantization {quantization!r}; use one of none, nf4, int8")
    return quantization


# --------------------------------------------------------------------------------------------
# CPU threads
# --------------------------------------------------------------------------------------------
#: Below this many language-model parameters, CPU generation runs on one thread: per-step costs of a
#: tiny model are dominated by operator overhead, and intra-op threads only add synchronisation
#: (measured: 128 tokens of the embedded-size policy took 0.6 s on 1 thread, 6-9 s on 2 busy cores).
#: docs/DESIGN.md, "CPU facts".
SINGLE_THREAD_BELOW = 50_000_000


#: Completion positions x vocabulary entries of float32 logits ``Policy.logprobs`` holds at once
#: (one chunk through the LM head: 2**24 floats = 64 MiB, about 110 positions of a 151,936-token
#: vocabulary); tinyr1.plan counts the same chunk.
LOGPROB_CHUNK_ELEMENTS = 1 << 24


def cpu_threads_for(language_model_parameters: int) -> int | None:
    """The thread rule for CPU work on a model: 1 below ``SINGLE_THREAD_BELOW`` language-model
    parameters, else None (leave torch's setting)."""
    return 1 if language_model_parameters < SINGLE_THREAD_BELOW else None


# --------------------------------------------------------------------------------------------
# Decoding settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationSettings:
    """How to decode. ``temperature=0`` is greedy (deterministic); ``seed=None`` leaves torch's
    random state alone. ``num_frames`` is how many frames to sample from a video (None: the
    policy's own ``num_frames``); the runtime itself uses whatever frames it is given."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = 0
    num_frames: int | None = None

    def __post_init__(self) -> None:
        if int(self.max_new_tokens) < 1:
            raise PolicyError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not float(self.temperature) >= 0:
            raise PolicyError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < float(self.top_p) <= 1:
            raise PolicyError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_frames is not None and int(self.num_frames) < 1:
            raise PolicyError(f"num_frames must be >= 1, got {self.num_frames}")

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0

    @property
    def logprob_temperature(self) -> float:
        """The T of the log-prob definition: the temperature, or 1 when greedy."""
        return 1.0 if self.greedy else float(self.temperature)


# --------------------------------------------------------------------------------------------
# Where policies are
# --------------------------------------------------------------------------------------------
def default_policy_path() -> Path:
    """The policy used when none is named: $TINYR1_POLICY if set, else the first embedded one
    present of DEFAULT_POLICIES (``assets/policies/tiny-temporal-grpo``, ``tiny-grpo``,
    ``tiny-coldstart``)."""
    env = os.environ.get("TINYR1_POLICY")
    if env:
        return Path(env)
    for name in DEFAULT_POLICIES:
        candidate = POLICIES_DIR / name
        if (candidate / "config.json").exists():
            return candidate
    raise PolicyError(
        f"no embedded policy found (looked for {', '.join(DEFAULT_POLICIES)} in {POLICIES_DIR}); "
        "pass --policy PATH, set TINYR1_POLICY, or make a random one with "
        "`python -m tinyr1.policy.random OUT_DIR`"
    )


#: The policy the app opens on where a CUDA device can run it (its weights here, or the hub
#: reachable), and how it is quantized there: 3.2 GB of nf4 weights fit a T4's 16 GB with room for
#: 16 frames and 1024 new tokens (docs/POLICIES.md).
GPU_POLICY = "Zhang199/TinyLLaVA-Video-R1"
GPU_QUANTIZATION = "nf4"


def serving_default(available: "list[str] | tuple[str, ...]", *, cuda: bool, env: "dict[str, str] | None" = None,
                    ) -> tuple[str | None, str | None, str]:
    """(policy key, quantization, why) the app opens on, from the keys its pickers offer
    (``available``, the default first) and whether a CUDA device is here.

    ``TINYR1_POLICY`` (a key the pickers offer, a registry id or a folder already listed first)
    and ``TINYR1_QUANTIZATION`` (none, nf4, int8) override; otherwise TinyLLaVA-Video-R1 in nf4
    when ``cuda`` and it is offered, else the first key (the embedded tiny policy) in full
    precision. ``why`` is one sentence for the log and the banner."""
    env = dict(os.environ if env is None else env)
    chosen_env = (env.get("TINYR1_POLICY") or "").strip()
    quant_env = (env.get("TINYR1_QUANTIZATION") or "").strip().lower()
    quantization: str | None = None
    if quant_env:
        try:
            quantization = normalize_quantization(quant_env)
        except PolicyError as exc:
            quant_env = ""
            print(f"[tinyr1] ignoring TINYR1_QUANTIZATION: {exc}")
    first = next(iter(available), None)
    chosen, why = first, ("no CUDA device here" if not cuda else f"{GPU_POLICY} is neither here nor downloadable")
    if first is not None and first.endswith("($TINYR1_POLICY)"):
        chosen, why = first, "TINYR1_POLICY names this folder"
    elif chosen_env and any(k.lower() == chosen_env.lower() for k in available):
        chosen, why = next(k for k in available if k.lower() == chosen_env.lower()), "TINYR1_POLICY names it"
    else:
        if chosen_env:
            print(f"[tinyr1] TINYR1_POLICY={chosen_env!r} is not among the policies here ({', '.join(available) or 'none'})")
        if cuda and GPU_POLICY in available:
            chosen, why = GPU_POLICY, "a CUDA device is here"
    if chosen == GPU_POLICY and cuda and not quant_env:
        quantization = GPU_QUANTIZATION  # its memory figure on a GPU (nf4 needs CUDA)
    return chosen, quantization, why


def default_start_policy_path() -> Path:
    """Where GRPO starts when no policy is named: the embedded cold start
    (``assets/policies/tiny-coldstart``, the paper's pipeline: GRPO follows the cold start), else
    ``default_policy_path()``."""
    coldstart = POLICIES_DIR / COLDSTART_POLICY
    return coldstart if (coldstart / "config.json").exists() else default_policy_path()


def checkpoint_kind(path: Path) -> str | None:
    """config.json's model_type for a directory, None if unreadable (the loader then explains)."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def is_path_like(text: str) -> bool:
    """A name that can only be a filesystem path (absolute, relative with ./ ../ ~, or deeper than owner/name)."""
    return text.startswith(("/", ".", "~")) or text.count("/") != 1 or (os.sep != "/" and os.sep in text)


__all__ = [
    "COLDSTART_POLICY",
    "DEFAULT_POLICIES",
    "GPU_POLICY",
    "GPU_QUANTIZATION",
    "GRPO_POLICY",
    "GenerationSettings",
    "POLICIES_DIR",
    "POLICY_META",
    "PolicyError",
    "QUANTIZATIONS",
    "QUANTIZATION_CHOICES",
    "QUANT_SKIP_MODULES",
    "QWEN2_5_VL",
    "QWEN_QUANT_SKIP_MODULES",
    "SINGLE_THREAD_BELOW",
    "TINYLLAVA_OFFICIAL",
    "TINYLLAVA_VIDEO",
    "checkpoint_kind",
    "cpu_threads_for",
    "default_policy_path",
    "default_start_policy_path",
    "is_path_like",
    "normalize_quantization",
    "serving_default",
]
