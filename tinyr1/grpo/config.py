"""GRPO run settings: one dataclass whose defaults are the paper's recipe, validated on creation.

    from tinyr1.grpo.config import GRPOConfig, preset
    GRPOConfig()                                # the paper preset
    preset("tiny", steps=200)                   # what the tiny CPU policy trains with
    GRPOConfig(loss_type="dapo", num_iterations=2, beta=0.0)

Every field carries ``metadata["help"]`` (the CLI builds its options from it) and
``__post_init__`` rejects a bad value with a message that says what was expected, before any
model is touched.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
#: ``gradient_checkpointing=None`` turns checkpointing on from this many language-model parameters:
#: real-size policies (0.5B and up) have activations of gigabytes per update and the recompute
#: costs a fraction of a rollout, while the tiny CPU policies (under 10M) gain nothing but time.
CHECKPOINTING_FROM_PARAMETERS = 100_000_000
SCHEDULERS = ("cosine", "constant", "linear")


class GRPOConfigError(ValueError):
    """A GRPO setting out of range, or two settings that contradict each other."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class GRPOConfig:
    """Settings of a GRPO run. Defaults = the paper preset (official TinyLLaVA-Video-R1 training)."""

    # --- rollout ---
    steps: int = _f(100, "number of rollout steps (each: prompts_per_step prompts x num_generations samples)")
    num_generations: int = _f(8, "G: completions sampled per prompt (paper: 8)")
    prompts_per_step: int = _f(8, "prompts per step over all processes (paper: 8 GPUs x 1); must divide by the number of processes")
    max_new_tokens: int = _f(512, "longest completion in tokens (paper: 512; the tiny policy needs far fewer)")
    temperature: float = _f(1.0, "sampling temperature of the rollouts (paper: 1.0); > 0")
    top_p: float = _f(1.0, "nucleus sampling mass of the rollouts (paper: 1.0, i.e. off)")
    num_frames: int | None = _f(None, "frames per video; None = the policy's own (paper: 16)")
    # --- reward ---
    rewards: tuple[str, ...] = _f(("paper",), "reward names from tinyr1.rewards.REWARDS, summed with reward_weights")
    reward_weights: tuple[float, ...] | None = _f(None, "one weight per reward (None = all 1.0)")
    reward_params: dict[str, dict[str, Any]] = _f({}, "keyword arguments per reward name, as JSON on the command line, e.g. {\"paper\": {\"max_len\": 300}}")
    # --- advantages ---
    scale_rewards: bool = _f(True, "divide by the group's std (paper, GRPO); False = Dr. GRPO's mean-only centring")
    advantage_eps: float = _f(1e-4, "added to the group std before dividing (paper: 1e-4)")
    advantage_noise: float = _f(0.02, "std of the Gaussian noise added to every advantage (paper: 0.02; 0 = off)")
    # --- objective ---
    beta: float = _f(0.01, "weight of the k3 KL to the frozen reference (paper: 0.01; 0 = no reference kept)")
    loss_type: str = _f("grpo", "loss aggregation: grpo (token mean per sequence, then mean; paper), dr_grpo, dapo")
    num_iterations: int = _f(1, "updates per rollout (paper: 1 = on-policy, no clipping); > 1 uses the clipped ratio")
    epsilon: float = _f(0.2, "clip range of the ratio to the rollout policy (only acts when num_iterations > 1)")
    # --- optimisation ---
    learning_rate: float = _f(1e-6, "peak learning rate of AdamW (paper: 1e-6)")
    lr_scheduler: str = _f("cosine", "learning-rate schedule after warm-up: cosine (paper), linear or constant")
    warmup_ratio: float = _f(0.03, "fraction of the updates spent warming up linearly (paper: 0.03)")
    weight_decay: float = _f(0.0, "AdamW weight decay (paper: 0)")
    adam_betas: tuple[float, float] = _f((0.9, 0.999), "AdamW betas (paper: the Trainer's 0.9, 0.999)")
    max_grad_norm: float = _f(1.0, "clip the gradient norm to this (paper: the Trainer's 1.0; 0 = off)")
    gradient_checkpointing: bool | None = _f(None, "recompute the language model's layer activations in the backward instead of keeping them (less memory, ~1 more forward); None = on for policies whose language model has >= CHECKPOINTING_FROM_PARAMETERS (100M) parameters, off for the tiny ones")
    prompts_per_forward: int | None = _f(None, "prompts (each with its G completions) per forward/backward of the update; None = all of a process's prompts at once")
    # --- what trains ---
    freeze_vision: bool = _f(True, "keep the vision tower frozen (paper: frozen); the LM and connector train")
    freeze: tuple[str, ...] = _f((), "more to keep frozen: parameter names containing any of these, e.g. embed_tokens (and a tied LM head), connector (paper: none)")
    lora_r: int = _f(0, "LoRA rank on the language model's linear layers (0 = full fine-tuning; for large policies)")
    lora_alpha: int = _f(16, "LoRA alpha")
    lora_dropout: float = _f(0.0, "LoRA dropout")
    # --- Video-R1's temporal contrast (T-GRPO) ---
    temporal: bool = _f(False, "T-GRPO: also sample on shuffled frames; bonus for right ordered answers when order helps")
    temporal_bonus: float = _f(0.3, "T-GRPO bonus added to a correct completion's reward (Video-R1: 0.3)")
    temporal_ratio: float = _f(0.8, "T-GRPO: bonus when ordered accuracy >= ratio x shuffled accuracy (Video-R1: 0.8)")
    # --- bookkeeping ---
    seed: int = _f(0, "seed of the data order, the samples and the advantage noise")
    checkpoint_every: int = _f(50, "write a resumable checkpoint every N steps (0 = only at the end or on stop)")
    keep_checkpoints: int = _f(2, "keep the newest N checkpoints (older ones are deleted)")
    eval_every: int = _f(0, "call the eval hook every N steps (0 = never)")

    def __post_init__(self) -> None:
        self.rewards = tuple(self.rewards) if not isinstance(self.rewards, str) else (self.rewards,)
        if self.reward_weights is not None:
            self.reward_weights = tuple(float(w) for w in self.reward_weights)
        self.adam_betas = tuple(float(b) for b in self.adam_betas)  # type: ignore[assignment]
        self.freeze = tuple(str(f) for f in ([self.freeze] if isinstance(self.freeze, str) else self.freeze))
        self.reward_params = {k: dict(v) for k, v in dict(self.reward_params).items()}
        problems = list(_problems(self))
        if problems:
            raise GRPOConfigError("invalid GRPO settings:\n  - " + "\n  - ".join(problems))

    # --- derived values ---
    @property
    def total_updates(self) -> int:
        """Optimizer updates in the whole run (the schedule's length)."""
        return self.steps * self.num_iterations

    @property
    def warmup_updates(self) -> int:
        return int(math.ceil(self.warmup_ratio * self.total_updates))

    @property
    def weights(self) -> tuple[float, ...]:
        return self.reward_weights if self.reward_weights is not None else (1.0,) * len(self.rewards)

    def checkpointing_for(self, language_model_parameters: int) -> bool:
        """Whether the update checkpoints activations for a language model of this size."""
        if self.gradient_checkpointing is not None:
            return bool(self.gradient_checkpointing)
        return language_model_parameters >= CHECKPOINTING_FROM_PARAMETERS

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GRPOConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise GRPOConfigError(f"unknown GRPO settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def replace(self, **changes: Any) -> "GRPOConfig":
        return dataclasses.replace(self, **changes)


def _problems(c: GRPOConfig):
    def positive_int(name: str, minimum: int = 1):
        v = getattr(c, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            yield f"{name} must be an integer >= {minimum}, got {v!r}"

    for name in ("steps", "prompts_per_step", "max_new_tokens", "num_iterations"):
        yield from positive_int(name)
    yield from positive_int("num_generations", 2)  # a group of one has no baseline to compare against
    for name in ("checkpoint_every", "eval_every", "lora_r"):
        yield from positive_int(name, 0)
    yield from positive_int("keep_checkpoints", 1)
    if c.num_frames is not None:
        yield from positive_int("num_frames")
    if c.prompts_per_forward is not None:
        yield from positive_int("prompts_per_forward")
    if not c.temperature > 0:
        yield f"temperature must be > 0 for sampled rollouts, got {c.temperature!r} (greedy groups would be all alike)"
    if not 0 < c.top_p <= 1:
        yield f"top_p must be in (0, 1], got {c.top_p!r}"
    if not c.rewards:
        yield "rewards must name at least one reward (e.g. 'paper')"
    else:
        try:
            from tinyr1.rewards import REWARDS
        except ImportError:  # rewards module not importable: checked again when the run starts
            REWARDS = None
        for name in c.rewards:
            if REWARDS is not None and name not in REWARDS:
                yield f"unknown reward {name!r}; known: {', '.join(sorted(REWARDS))}"
        if c.reward_weights is not None and len(c.reward_weights) != len(c.rewards):
            yield f"reward_weights needs one weight per reward ({len(c.rewards)}), got {len(c.reward_weights)}"
        for name in c.reward_params:
            if name not in c.rewards:
                yield f"reward_params names {name!r}, which is not among rewards {list(c.rewards)}"
    if c.advantage_eps < 0:
        yield f"advantage_eps must be >= 0, got {c.advantage_eps!r}"
    if c.scale_rewards and c.advantage_eps == 0:
        yield "advantage_eps must be > 0 when scale_rewards is on (a constant group would divide by zero)"
    if c.advantage_noise < 0:
        yield f"advantage_noise is a standard deviation: >= 0, got {c.advantage_noise!r}"
    if c.beta < 0:
        yield f"beta must be >= 0, got {c.beta!r}"
    if c.loss_type not in LOSS_TYPES:
        yield f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {c.loss_type!r}"
    if not 0 < c.epsilon < 1:
        yield f"epsilon (ratio clip range) must be in (0, 1), got {c.epsilon!r}"
    if not c.learning_rate > 0:
        yield f"learning_rate must be > 0, got {c.learning_rate!r}"
    if c.lr_scheduler not in SCHEDULERS:
        yield f"lr_scheduler must be one of {', '.join(SCHEDULERS)}, got {c.lr_scheduler!r}"
    if not 0 <= c.warmup_ratio < 1:
        yield f"warmup_ratio must be in [0, 1), got {c.warmup_ratio!r}"
    if c.weight_decay < 0:
        yield f"weight_decay must be >= 0, got {c.weight_decay!r}"
    if len(c.adam_betas) != 2 or not all(0 <= b < 1 for b in c.adam_betas):
        yield f"adam_betas must be two numbers in [0, 1), got {c.adam_betas!r}"
    if c.max_grad_norm < 0:
        yield f"max_grad_norm must be >= 0 (0 = off), got {c.max_grad_norm!r}"
    if c.lora_r and c.lora_alpha <= 0:
        yield f"lora_alpha must be > 0, got {c.lora_alpha!r}"
    if not 0 <= c.lora_dropout < 1:
        yield f"lora_dropout must be in [0, 1), got {c.lora_dropout!r}"
    if c.temporal_bonus < 0:
        yield f"temporal_bonus must be >= 0, got {c.temporal_bonus!r}"
    if not c.temporal_ratio > 0:
        yield f"temporal_ratio must be > 0, got {c.temporal_ratio!r}"
    if any(not part.strip() for part in c.freeze):
        yield f"freeze takes parts of parameter names (e.g. embed_tokens, connector), got {list(c.freeze)!r}"
    if not c.freeze_vision and c.lora_r:
        yield "freeze_vision=False with LoRA is not supported: LoRA adapts the language model only"


#: Named starting points. "paper" is the official recipe; "tiny" is what the embedded tiny policy
#: learns with on a CPU: the paper's lr 1e-6 moves it by nothing in minutes; a constant 1e-4
#: drifted away from our cold starts within 150 steps, 2e-5 to 5e-5 constant lifted them slowly,
#: and cosine from 7e-5 (the paper's schedule, 3% warm-up) gave the documented reproduction
#: (docs/RESULTS.md); traces are ~30-60 tokens.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "max_new_tokens": 96,
        "learning_rate": 7e-5,
        "lr_scheduler": "cosine",
        "beta": 0.0,
        "checkpoint_every": 25,
    },
}


def preset(name: str = "paper", **overrides: Any) -> GRPOConfig:
    """The named preset with ``overrides`` applied (validated together)."""
    if name not in PRESETS:
        raise GRPOConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return GRPOConfig(**{**PRESETS[name], **overrides})
