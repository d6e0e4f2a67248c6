"""The GRPO loop: a generator that trains a policy in place and yields one record per step.

    from tinyr1.grpo.loop import train
    gen = train(config, policy, rows, "runs/grpo")      # resumes from runs/grpo if it can
    for record in gen:                                   # StepRecord: metrics + the step's groups
        draw(record.metrics, record.groups)
        if stop_pressed:
            gen.close()                                  # leaves a checkpoint load_policy opens

Files in ``out_dir``: ``run.json`` (the config, the starting policy, the data), ``metrics.jsonl``
(one line per step, TRL's metric names), ``rollouts.jsonl`` (the completions of every step, with
their reward breakdowns and advantages), ``checkpoints/step-N/`` (see checkpoint.py) and, at the
end, ``final/`` (a policy directory).

Data parallel: started under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) the loop
joins the process group itself (gloo on CPU, NCCL on CUDA); each rank rolls out its own slice
of every step's prompts and the trainable gradients are averaged with one all-reduce before the
update. Rank 0 writes the files.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import random
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

from tinyr1.files import append_jsonl, read_jsonl, remove_stale_temporaries, repair_jsonl, rewrite_jsonl, write_json
from tinyr1.grpo import checkpoint as ckpt
from tinyr1.grpo.config import GRPOConfig, GRPOConfigError
from tinyr1.grpo.distributed import World, _Solo, init_distributed
from tinyr1.grpo.objective import aggregate_loss, build_scheduler, group_advantages, temporal_bonus, token_loss

#: Settings that may differ between a run and its resumption: bookkeeping, and ``steps`` (to
#: extend a run; with a decaying schedule the remaining steps then follow the longer schedule).
#: ``gradient_checkpointing`` changes memory and time, not the result (tests/test_lean_logprobs.py).
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "keep_checkpoints", "eval_every", "gradient_checkpointing")
#: The run's append-only logs: a fresh run starts them empty, a resumed one cuts them back to the
#: checkpoint's step (and drops a torn last line a crash left).
LOGS = ("metrics.jsonl", "rollouts.jsonl")
LORA_TARGETS = r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


def adamw_implementation(device_type: str) -> dict[str, Any]:
    """AdamW's implementation for parameters on ``device_type``: the fused kernel on CUDA, torch's
    default elsewhere.

    Why fused on CUDA: torch's default there (foreach) computes sqrt(exp_avg_sq) for every
    parameter at once, a temporary as large as all trainable weights, held beside the weights,
    gradients and optimizer state at the step's peak: 6.4 GB of the 40.1 GB `tinyr1 plan`
    predicts for full bf16 fine-tuning of TinyLLaVA-Video-R1 at the paper's settings, the part that
    took it over an A100-40G. The fused kernel updates each parameter in place without it
    (docs/DESIGN.md, "The GRPO recipe", memory). The CPU keeps the per-parameter default the shipped
    tiny policies were trained with (its temporary is one tensor's)."""
    return {"fused": True} if device_type == "cuda" else {}


# ------------------------------------------------------------------------------------ records
@dataclass
class GroupRecord:
    """One prompt's G completions as the step saw them (what the app draws)."""

    index: int  # row index in the dataset
    id: str | None
    question: str
    options: list[str]
    answer: str | None
    family: str | None
    completions: list[str]
    rewards: list[float]  # the total that trained (weighted sum of the rewards, plus any bonus)
    reward_parts: list[dict[str, float]]  # per reward name (and "temporal" with T-GRPO)
    breakdowns: list[dict[str, Any]]  # tinyr1.rewards.score(...).to_dict() per completion
    advantages: list[float]
    lengths: list[int]  # completion tokens, end token included
    shuffled_accuracy: float | None = None  # T-GRPO: accuracy of the G samples on shuffled frames

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepRecord:
    """What one step did. ``step`` counts completed steps (1 after the first)."""

    step: int
    metrics: dict[str, float]
    groups: list[GroupRecord] = field(default_factory=list)
    checkpoint: str | None = None  # the folder written at this step, if any
    eval: dict[str, Any] | None = None  # the eval hook's result at this step, if it ran

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "metrics": self.metrics, "groups": [g.to_dict() for g in self.groups],
                "checkpoint": self.checkpoint, "eval": self.eval}


@dataclass
class _Rollout:
    """One step's samples on this rank and what was made of them (tensors are [prompts, G])."""

    rows: list[Any]
    indices: list[int]
    batch: Any  # tinyr1.policy.SampleBatch
    parts: torch.Tensor  # [prompts, G, rewards]
    totals: torch.Tensor
    breakdowns: list[list[dict[str, Any]]]
    correct: torch.Tensor
    bonus: torch.Tensor
    applied: torch.Tensor  # [prompts]: T-GRPO's condition held
    shuffled_acc: list[float | None]
    advantages: torch.Tensor = field(default_factory=lambda: torch.zeros(0))


# ------------------------------------------------------------------------------------- data
def derived_seed(*parts: int) -> int:
    """A 31-bit seed from integers (seed, step, rank, purpose): independent streams per step."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0]) & 0x7FFFFFFF


def step_indices(step: int, n_rows: int, prompts_per_step: int, seed: int, rank: int = 0, world: int = 1) -> list[int]:
    """Dataset rows of ``step`` (0-based) for ``rank``: the run walks a fresh seeded permutation
    of the rows each epoch, ``prompts_per_step`` at a time; rank r takes the r-th equal slice."""
    per_rank = prompts_per_step // world
    start = step * prompts_per_step + rank * per_rank
    out = []
    for k in range(start, start + per_rank):
        epoch, pos = divmod(k, n_rows)
        out.append(int(np.random.default_rng([seed, epoch]).permutation(n_rows)[pos]))
    return out


def dataset_fingerprint(rows: Sequence[Any]) -> str:
    h = hashlib.sha1()
    for r in rows:
        h.update(json.dumps([r.id, r.question, list(r.options), r.answer, Path(r.video).name]).encode())
    return h.hexdigest()[:16]


class FrameCache:
    """Decoded frames per (video, num_frames), least recently used out beyond ``max_bytes``."""

    def __init__(self, num_frames: int, max_bytes: int = 512 << 20) -> None:
        self.num_frames, self.max_bytes = num_frames, max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0

    def __call__(self, video: str) -> np.ndarray:
        if video in self._items:
            self._items.move_to_end(video)
            return self._items[video]
        from tinyr1.video import load_frames

        frames = load_frames(video, self.num_frames).frames
        self._items[video] = frames
        self._bytes += frames.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return frames


# ---------------------------------------------------------------------------------- rewards
@dataclass
class _Reward:
    name: str
    fn: Callable[..., list[float | None]]
    weight: float


def build_rewards(config: GRPOConfig) -> list[_Reward]:
    from tinyr1.rewards import REWARDS, get_reward

    out = []
    for name, weight in zip(config.rewards, config.weights):
        params = config.reward_params.get(name, {})
        try:  # a reward registered by a user (REWARDS[name] = fn) is taken as it is
            fn = get_reward(name, **params) if params or name not in REWARDS else REWARDS[name]
        except ValueError as exc:
            raise GRPOConfigError(f"reward {name!r}: {exc}") from None
        out.append(_Reward(name, fn, weight))
    return out


def _breakdown_config(rewards: Sequence[_Reward]):
    """The RewardConfig the per-completion breakdowns use: the first reward's, else the default."""
    from tinyr1.rewards import DEFAULT_CONFIG

    for r in rewards:
        cfg = getattr(r.fn, "config", None)
        if cfg is not None:
            return cfg
    return DEFAULT_CONFIG


# ------------------------------------------------------------------------------ trainability
def setup_trainable(policy: Any, config: GRPOConfig) -> list[tuple[str, torch.nn.Parameter]]:
    """Apply the config's choice of what trains (in place) and return the trainable parameters:
    the language model and the connector, the vision tower unless ``freeze_vision`` is off; with
    ``lora_r`` the language model trains through LoRA adapters (peft) and its weights stay put."""
    if config.lora_r:
        from peft import LoraConfig, PeftModel, get_peft_model

        if not isinstance(policy.model, PeftModel):
            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=LORA_TARGETS, bias="none")
            policy.model = get_peft_model(policy.model, lora)
            from tinyr1.policy import disable_cpu_weight_repacking

            disable_cpu_weight_repacking(policy.model)
    groups = policy.parameter_groups()
    for part, params in groups.items():
        for name, p in params:
            if part == "vision_tower":
                p.requires_grad_(not config.freeze_vision)
            elif part == "connector":
                p.requires_grad_(not any(f in name for f in config.freeze))
            elif any(f in name for f in config.freeze):
                p.requires_grad_(False)
            else:  # language model: all of it, or only the adapters
                p.requires_grad_("lora_" in name if config.lora_r else True)
    trainable = [(n, p) for n, p in policy.model.named_parameters() if p.requires_grad]
    if not trainable:
        raise GRPOConfigError("nothing to train: every parameter is frozen")
    if any(not p.is_floating_point() for _, p in trainable):
        raise GRPOConfigError("a quantized policy trains only through LoRA: set lora_r (e.g. 16)")
    return trainable


def weights_checksum(model: torch.nn.Module) -> float:
    """A cheap fingerprint of a model's weights (resume checks it is the same starting policy)."""
    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum() for p in model.parameters() if p.is_floating_point()))


# ------------------------------------------------------------------------------------ train
def train(
    config: GRPOConfig,
    policy: Any,
    dataset: Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    eval_fn: Callable[[Any], dict[str, Any]] | None = None,
) -> Iterator[StepRecord]:
    """Train ``policy`` (a tinyr1.policy.Policy, modified in place) on ``dataset`` (VideoQA rows
    with answers) with GRPO, yielding a StepRecord after each step. ``resume``: continue from the
    newest checkpoint in ``out_dir`` (same config and data; the policy must be the run's starting
    policy, since it is also the KL reference). ``eval_fn(policy) -> dict`` runs every
    ``config.eval_every`` steps on rank 0. Closing the generator writes a checkpoint of the last
    completed step; finishing writes the last checkpoint and ``out_dir/final``."""
    world = init_distributed()
    if config.prompts_per_step % world.size:
        raise GRPOConfigError(
            f"prompts_per_step ({config.prompts_per_step}) must divide by the number of processes ({world.size})")
    rows = list(dataset)
    if not rows:
        raise GRPOConfigError("the dataset is empty")
    missing = [r.id or i for i, r in enumerate(rows) if r.answer is None or not str(r.answer).strip()]
    if missing:
        raise GRPOConfigError(f"{len(missing)} rows have no answer (GRPO needs the ground truth), e.g. {missing[:5]}")
    return _Trainer(config, policy, rows, Path(out_dir), world, eval_fn).run(resume)


class _Trainer:
    def __init__(self, config: GRPOConfig, policy: Any, rows: list[Any], out: Path, world: World,
                 eval_fn: Callable[[Any], dict[str, Any]] | None) -> None:
        self.c, self.policy, self.rows, self.out, self.world, self.eval_fn = config, policy, rows, out, world, eval_fn
        self.rewards = build_rewards(config)
        self.breakdown_config = _breakdown_config(self.rewards)
        self.start_checksum = weights_checksum(policy.model)
        self.fingerprint = dataset_fingerprint(rows)
        self.trainable = setup_trainable(policy, config)
        lm_parameters = sum(p.numel() for p in policy.backend.language_model(policy.core).parameters())
        self.checkpointing = config.checkpointing_for(lm_parameters)
        policy.backend.set_checkpointing(policy.core, self.checkpointing)
        # The reference is the starting policy: a frozen copy, or the LoRA base (adapter off).
        self.ref = None
        if config.beta > 0 and not config.lora_r:
            from tinyr1.policy import policy_from_model

            core = copy.deepcopy(policy.core).eval().requires_grad_(False)
            self.ref = policy_from_model(core, policy.tokenizer, name=f"{policy.name}-reference")
        self.params = [p for _, p in self.trainable]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, betas=config.adam_betas,
                                           weight_decay=config.weight_decay, eps=1e-8,
                                           **adamw_implementation(policy.device.type))
        self.scheduler = build_scheduler(self.optimizer, config.lr_scheduler, config.total_updates,
                                         config.warmup_updates)
        self.frames = FrameCache(config.num_frames or policy.num_frames)
        self.step = 0  # completed steps
        self.saved_step = -1
        self.last_metrics: dict[str, float] = {}

    # -- bookkeeping ------------------------------------------------------------------------
    def run_info(self) -> dict[str, Any]:
        return {
            "config": self.c.to_dict(),
            "policy": {"name": self.policy.name, "path": str(getattr(self.policy, "path", None) or ""),
                       "checksum": self.start_checksum},
            "data": {"rows": len(self.rows), "fingerprint": self.fingerprint},
            "world_size": self.world.size,
        }

    def _resume(self) -> None:
        """Load the newest intact checkpoint (the bad ones newer than it are reported and moved
        aside by rank 0); leftovers of a crash (``.tmp-*``) go first."""
        found = None
        if self.world.main:
            for root in (self.out, ckpt.checkpoint_root(self.out)):
                for p in remove_stale_temporaries(root):
                    _say(f"removed {p.name}, a temporary left by an interrupted write")
            try:
                found = ckpt.newest_intact(self.out, log=_say)
            except ckpt.CheckpointError as exc:
                raise GRPOConfigError(f"cannot resume from {self.out}: {exc}") from None
        self.world.barrier()
        if self.world.main:
            folder = found[1] if found else None
        else:  # rank 0 has moved any bad ones aside: the newest intact one is the newest left
            folder = ckpt.latest_checkpoint(self.out)
        if folder is None:
            return
        try:
            state = ckpt.load_state(folder)
            self._check_compatible(state, folder)
            ckpt.load_trainable_state(self.policy.model, ckpt.load_trainable(folder))
            rng = ckpt.load_rank_rng(folder, self.world.rank) if self.world.rank else state["rng"]
        except ckpt.CheckpointError as exc:
            raise GRPOConfigError(f"cannot resume: {exc}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if rng is not None:
            ckpt.set_rng_state(rng)
        self.step = self.saved_step = int(state["step"])
        self.last_metrics = dict(state.get("metrics", {}))

    def _check_compatible(self, state: dict[str, Any], folder: Path) -> None:
        old = dict(state["config"])
        new = self.c.to_dict()
        diff = sorted(k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
        if diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise GRPOConfigError(
                f"cannot resume from {folder}: settings differ ({detail}); use the run's settings, "
                "or another output folder for a new run")
        if state["data"]["fingerprint"] != self.fingerprint:
            raise GRPOConfigError(f"cannot resume from {folder}: the dataset differs from the one the run started with")
        if state.get("world_size", 1) != self.world.size:
            raise GRPOConfigError(
                f"cannot resume from {folder}: it was written by {state.get('world_size', 1)} processes, this run has {self.world.size}")
        before = state["policy_checksum"]
        if abs(before - self.start_checksum) > 1e-6 * max(1.0, abs(before)):
            raise GRPOConfigError(
                f"cannot resume from {folder}: the policy given is not the one the run started from "
                "(pass the same --policy: it is also the KL reference)")

    def _truncate_logs(self) -> None:
        """Start the logs empty on a fresh run (never read a previous run's); on a resumed one cut
        a torn last line, then drop the lines of steps after the checkpoint (they will be redone)."""
        for name in LOGS:
            path = self.out / name
            if not path.exists():
                continue
            if self.step == 0:
                path.unlink()
                continue
            repair_jsonl(path, on_torn=_say)
            records = read_jsonl(path)
            kept = [r for r in records if r.get("step", 0) <= self.step]
            if len(kept) != len(records):
                rewrite_jsonl(path, kept)

    def save(self) -> Path | None:
        """Checkpoint the completed step (all ranks call; rank 0 writes, the others send RNG)."""
        rank_rng = {}
        if self.world.enabled:
            gathered: list[Any] = [None] * self.world.size
            dist.all_gather_object(gathered, ckpt.rng_state())
            rank_rng = {r: s for r, s in enumerate(gathered) if r}
        folder = None
        if self.world.main:
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": ckpt.rng_state(),  # lists and tensors: loadable with weights_only=True
                "config": self.c.to_dict(),
                "data": {"rows": len(self.rows), "fingerprint": self.fingerprint, "seed": self.c.seed,
                         "order": "numpy default_rng([seed, epoch]).permutation(rows), prompts_per_step per step"},
                "policy_checksum": self.start_checksum,
                "world_size": self.world.size,
                "metrics": self.last_metrics,
            }
            summary = {"step": self.step, "metrics": self.last_metrics, **self.run_info()}
            folder = ckpt.save_checkpoint(
                self.out, self.step, trainable=ckpt.trainable_state(self.policy.model), state=state, summary=summary,
                rank_rng=rank_rng, keep=self.c.keep_checkpoints, save_policy=self._save_policy)
        self.world.barrier()
        self.saved_step = self.step
        return folder

    def _save_policy(self, folder: Path) -> None:
        """The policy as a directory load_policy opens; a quantized base cannot be merged and
        saved in full precision, so then only the LoRA adapter is written (``folder/adapter``,
        peft's format; resume does not need it: the checkpoint's tensors.safetensors holds the adapter too)."""
        if getattr(self.policy, "quantization", None):
            self.policy.model.save_pretrained(folder / "adapter")
            (folder / "README.txt").write_text(
                f"LoRA adapter trained by tinyr1 GRPO on the {self.policy.quantization}-quantized policy "
                f"{self.policy.name}: load that policy unquantized and apply the adapter (peft) to use it.\n")
            return
        self.policy.save(folder, metadata=self._policy_meta(), inherit=False)

    def _policy_meta(self) -> dict[str, Any]:
        # The start's own metadata (its command, accuracy, description) is kept under "start", not
        # inherited: the app's banner shows top-level facts as this policy's.
        return {"name": f"{self.policy.name}-grpo", "kind": "grpo", "grpo_step": self.step,
                "grpo_steps": self.c.steps, "started_from": str(getattr(self.policy, "path", None) or self.policy.name),
                "start": dict(self.policy.metadata), "grpo_config": self.c.to_dict(),
                "data_fingerprint": self.fingerprint, "last_metrics": self.last_metrics}

    def _log(self, record: StepRecord) -> None:
        if not self.world.main:
            return
        line = {"step": record.step, **record.metrics}
        if record.eval:
            line.update({f"eval/{k}": v for k, v in record.eval.items() if isinstance(v, (int, float, str, bool))})
        append_jsonl(self.out / "metrics.jsonl", line)
        append_jsonl(self.out / "rollouts.jsonl", {"step": record.step, "groups": [g.to_dict() for g in record.groups]})

    # -- the loop ---------------------------------------------------------------------------
    def run(self, resume: bool) -> Iterator[StepRecord]:
        if self.world.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.world.barrier()
        if resume:
            self._resume()
        elif self.world.main and ckpt.list_checkpoints(self.out):
            raise GRPOConfigError(f"{self.out} already holds checkpoints: resume, or choose another output folder")
        # Every rank starts from rank 0's weights, whatever each loaded.
        self.world.broadcast_([p.data for p in self.params])
        if self.world.main:
            self._truncate_logs()
            write_json(self.out / "run.json", self.run_info())
        # True while the model, optimizer and step counter agree: between steps, and inside a step
        # until its first optimizer update (a Ctrl-C while sampling loses nothing).
        self.consistent = True
        try:
            while self.step < self.c.steps:
                record = self._one_step()
                self.step += 1
                self.consistent = True
                record.step = self.step
                self.last_metrics = record.metrics
                if self.c.eval_every and self.step % self.c.eval_every == 0 and self.eval_fn and self.world.main:
                    record.eval = self.eval_fn(self.policy)
                    self.policy.model.eval()
                # The log line before the checkpoint: a crash between the two then only redoes
                # the step (resume drops log lines after its checkpoint), never loses its line.
                self._log(record)
                if self.c.checkpoint_every and self.step % self.c.checkpoint_every == 0:
                    folder = self.save()
                    record.checkpoint = str(folder) if folder else None
                yield record
            if self.saved_step != self.step:
                self.save()
            if self.world.main:
                final = self.out / "final"
                if getattr(self.policy, "quantization", None):
                    final.mkdir(parents=True, exist_ok=True)
                self._save_policy(final)
            self.world.barrier()
        except (GeneratorExit, KeyboardInterrupt):
            # The consumer stopped (the app's Stop, Ctrl-C): keep what the completed steps learned.
            # (not when the interpreter is shutting down and collects an abandoned generator)
            if self.consistent and self.saved_step != self.step and self.step > 0 and not sys.is_finalizing():
                if self.world.enabled:  # the other ranks are not here to join collectives
                    self.world = _Solo(self.world)
                self.save()
            raise

    # -- one step ---------------------------------------------------------------------------
    def _one_step(self) -> StepRecord:
        c, world, step = self.c, self.world, self.step
        t0 = time.perf_counter()
        seed = lambda purpose: derived_seed(c.seed, step, world.rank, purpose)  # noqa: E731
        random.seed(seed(1))
        np.random.seed(seed(2))
        torch.manual_seed(seed(3))
        indices = step_indices(step, len(self.rows), c.prompts_per_step, c.seed, world.rank, world.size)
        ro = self._rollout([self.rows[i] for i in indices], indices, seed)
        t_rollout = time.perf_counter()
        losses, grad_norm, lr, kl_sum, clip_sum, global_tokens = self._update(ro)
        t_update = time.perf_counter()

        # metrics over all ranks
        n, G = ro.totals.shape
        bd = ro.breakdowns
        think = torch.tensor([[float(b["think_chars"]) for b in g] for g in bd], dtype=torch.float64)
        fmt = torch.tensor([[float(b["format_ok"]) for b in g] for g in bd], dtype=torch.float64)
        lengths = ro.batch.lengths.to("cpu").double().reshape(n, G)
        finished = ro.batch.finished.to("cpu").double().reshape(n, G)
        columns = [ro.totals, ro.correct.double(), fmt, think, lengths, finished, ro.bonus, *ro.parts.unbind(-1)]
        allrows = world.gather_rows(torch.stack(columns, dim=-1))  # [prompts of all ranks, G, C]
        shuffled_sum = sum(a for a in ro.shuffled_acc if a is not None)
        sums = world.sum(torch.tensor([kl_sum, clip_sum, float(np.mean(losses)), float(ro.applied.sum()), shuffled_sum],
                                      dtype=torch.float64))
        metrics = _metrics(allrows, [r.name for r in self.rewards], sums, global_tokens, world.size, c)
        metrics.update(grad_norm=grad_norm, lr=lr, step_time=time.perf_counter() - t0,
                       epoch=(step * c.prompts_per_step) / len(self.rows))
        # where the time went: sampling + scoring (T-GRPO's second rollout included), then the update
        metrics["time/rollout"], metrics["time/update"] = t_rollout - t0, t_update - t_rollout
        return StepRecord(step=step + 1, metrics=metrics, groups=self._groups(ro, lengths))

    def _rollout(self, rows: list[Any], indices: list[int], seed: Callable[[int], int]) -> "_Rollout":
        """Sample G completions per prompt, score them, add T-GRPO's bonus, compute advantages."""
        from tinyr1.policy import GenerationSettings
        from tinyr1.rewards import score

        c, G, n = self.c, self.c.num_generations, len(rows)
        items = [(self.frames(r.video), r.question, r.options or None) for r in rows]
        settings = GenerationSettings(max_new_tokens=c.max_new_tokens, temperature=c.temperature, top_p=c.top_p,
                                      seed=seed(4), num_frames=c.num_frames)
        batch = self.policy.sample(items, G, settings)

        def breakdown(text: str, row: Any) -> dict[str, Any]:
            return score(text, row.answer, row.options or None, self.breakdown_config).to_dict()

        parts = torch.zeros(n, G, len(self.rewards), dtype=torch.float64)  # [prompts, G, rewards]
        breakdowns = []
        for i, row in enumerate(rows):
            texts = batch.texts[i * G : (i + 1) * G]
            kw = {"answer": [row.answer] * G, "options": [list(row.options)] * G}
            for k, r in enumerate(self.rewards):
                values = r.fn(texts, **kw)
                if any(v is None for v in values):
                    raise GRPOConfigError(f"reward {r.name!r} gave no value for row {row.id or indices[i]}")
                parts[i, :, k] = torch.tensor(values, dtype=torch.float64)
            breakdowns.append([breakdown(t, row) for t in texts])
        totals = (parts * torch.tensor(c.weights, dtype=torch.float64)).sum(-1)
        correct = torch.tensor([[bool(b["correct"]) for b in g] for g in breakdowns])
        ro = _Rollout(rows=rows, indices=indices, batch=batch, parts=parts, totals=totals, breakdowns=breakdowns,
                      correct=correct, bonus=torch.zeros(n, G, dtype=torch.float64), applied=torch.zeros(n),
                      shuffled_acc=[None] * n)
        if c.temporal:  # the same prompts on shuffled frames: does order help this group?
            gen = torch.Generator().manual_seed(seed(5))
            shuffled_items = []
            for frames, q, o in items:
                perm = torch.randperm(len(frames), generator=gen)
                if len(frames) > 1 and bool((perm == torch.arange(len(frames))).all()):
                    perm = perm.roll(1)  # a shuffle that leaves every frame in place is no contrast
                shuffled_items.append((frames[perm.numpy()], q, o))
            shuffled = self.policy.sample(shuffled_items, G, dataclasses.replace(settings, seed=seed(6)))
            for i, row in enumerate(rows):
                sh_correct = torch.tensor([bool(breakdown(t, row)["correct"]) for t in shuffled.texts[i * G : (i + 1) * G]])
                b, was = temporal_bonus(correct[i], sh_correct, bonus=c.temporal_bonus, ratio=c.temporal_ratio)
                ro.bonus[i], ro.applied[i] = b.double(), float(was)
                ro.shuffled_acc[i] = float(sh_correct.float().mean())
            ro.totals = totals + ro.bonus
        ro.advantages = group_advantages(ro.totals, eps=c.advantage_eps, noise_std=c.advantage_noise,
                                         scale=c.scale_rewards, generator=torch.Generator().manual_seed(seed(7)))
        return ro

    def _update(self, ro: "_Rollout") -> tuple[list[float], float, float, float, float, float]:
        """``num_iterations`` optimizer updates on the rollout; returns the losses, the last
        gradient norm and learning rate, the KL and clipped-token sums and the global token count."""
        c, policy, world, batch = self.c, self.policy, self.world, ro.batch
        n, G = ro.totals.shape
        device = policy.device
        mask = batch.completion_mask.to(device)
        adv_rows = ro.advantages.reshape(-1).to(device)
        chunk = c.prompts_per_forward or n
        global_tokens = float(world.sum(torch.tensor([float(mask.sum())], dtype=torch.float64))[0])
        dapo_tokens = global_tokens / world.size  # TRL: the global token count over the processes
        old_lp: list[torch.Tensor] = []
        kl_sum = clip_sum = 0.0
        losses, grad_norm, lr = [], 0.0, self.scheduler.get_last_lr()[0]
        threads_before = torch.get_num_threads()
        threads = _update_threads(policy)
        if threads:
            torch.set_num_threads(threads)
        try:
            ref_lp = self._reference_logprobs(batch, chunk) if c.beta > 0 else None
            policy.model.train()
            for it in range(c.num_iterations):
                self.optimizer.zero_grad(set_to_none=True)
                loss_total = 0.0
                for k, (a, b) in enumerate(_chunks(n, chunk)):
                    rs, re_ = a * G, b * G
                    m = mask[rs:re_]
                    keep = m.bool()
                    lp = policy.logprobs(_sub_batch(batch, a, b), batch.completion_ids[rs:re_], m)
                    lp = torch.where(keep, lp, torch.zeros_like(lp))
                    if it == 0 and c.num_iterations > 1:
                        old_lp.append(lp.detach())  # the rollout policy's log-probs (no update yet)
                    old = lp.detach() if c.num_iterations == 1 else old_lp[k]
                    per_token, stats = token_loss(lp, old, adv_rows[rs:re_], epsilon=c.epsilon, beta=c.beta,
                                                  ref_logp=None if ref_lp is None else ref_lp[rs:re_])
                    loss = aggregate_loss(per_token, m, c.loss_type, max_completion_length=c.max_new_tokens,
                                          num_sequences=n * G, num_tokens=dapo_tokens)
                    loss.backward()
                    loss_total += float(loss.detach())
                    if it == 0 and "kl" in stats:
                        kl_sum += float(stats["kl"][keep].double().sum())
                    if it > 0:
                        clip_sum += float(stats["clipped"][keep].double().sum())
                grads = []
                for p in self.params:
                    if p.grad is None:  # unused this step: still part of the one all-reduce buffer
                        p.grad = torch.zeros_like(p)
                    grads.append(p.grad)
                world.average_(grads)
                max_norm = c.max_grad_norm if c.max_grad_norm > 0 else float("inf")
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
                lr = self.scheduler.get_last_lr()[0]
                self.consistent = False
                self.optimizer.step()
                self.scheduler.step()
                losses.append(loss_total)
        finally:
            policy.model.eval()
            self.optimizer.zero_grad(set_to_none=True)
            torch.set_num_threads(threads_before)
        return losses, grad_norm, lr, kl_sum, clip_sum, global_tokens

    def _groups(self, ro: "_Rollout", lengths: torch.Tensor) -> list[GroupRecord]:
        G = ro.totals.shape[1]
        groups = []
        for i, (row, idx) in enumerate(zip(ro.rows, ro.indices)):
            rp = [{r.name: float(ro.parts[i, j, k]) for k, r in enumerate(self.rewards)} for j in range(G)]
            if self.c.temporal:
                for j in range(G):
                    rp[j]["temporal"] = float(ro.bonus[i, j])
            groups.append(GroupRecord(
                index=idx, id=row.id, question=row.question, options=list(row.options), answer=row.answer,
                family=row.family, completions=list(ro.batch.texts[i * G : (i + 1) * G]),
                rewards=[float(x) for x in ro.totals[i]], reward_parts=rp, breakdowns=ro.breakdowns[i],
                advantages=[float(x) for x in ro.advantages[i]], lengths=[int(x) for x in lengths[i]],
                shuffled_accuracy=ro.shuffled_acc[i]))
        return groups

    @torch.no_grad()
    def _reference_logprobs(self, batch: Any, chunk: int) -> torch.Tensor:
        n, G = len(batch.prompts), batch.group_size
        out = []
        for a, b in _chunks(n, chunk):
            sub = _sub_batch(batch, a, b)
            ids, m = batch.completion_ids[a * G : b * G], batch.completion_mask[a * G : b * G]
            if self.ref is not None:
                out.append(self.ref.logprobs(sub, ids, m))
            else:  # LoRA: the base model is the reference
                with self.policy.model.disable_adapter():
                    out.append(self.policy.logprobs(sub, ids, m))
        return torch.cat(out).to(self.policy.device)


def _say(message: str) -> None:
    """What resume repaired or skipped, for the person running it (stderr, like the progress bar)."""
    print(f"tinyr1 grpo: {message}", file=sys.stderr)


def _update_threads(policy: Any) -> int | None:
    """CPU threads for the update: the policy's own choice for generation (one thread for tiny
    models, where intra-op threads only add synchronisation: an update of the test-size policy
    took 0.43 s on 2 busy cores against 0.02 s on one), else leave torch's setting."""
    threads = getattr(policy, "cpu_threads", None)
    if threads is not None or policy.device.type != "cpu":
        return threads
    from tinyr1.policy.spec import cpu_threads_for

    return cpu_threads_for(sum(p.numel() for p in policy._language_model_parameters()))  # any policy kind


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _sub_batch(batch: Any, a: int, b: int) -> Any:
    """Prompts a..b of a SampleBatch with their completions (whole batch when it is all of it)."""
    if a == 0 and b == len(batch.prompts):
        return batch
    from tinyr1.policy import PromptBatch, SampleBatch

    p = batch.prompts
    G = batch.group_size
    prompts = PromptBatch(p.input_ids[a:b], p.attention_mask[a:b], p.pixel_values[a:b])
    return SampleBatch(prompts=prompts, group_size=G, completion_ids=batch.completion_ids[a * G : b * G],
                       completion_mask=batch.completion_mask[a * G : b * G], logprobs=batch.logprobs[a * G : b * G],
                       texts=batch.texts[a * G : b * G], finished=batch.finished[a * G : b * G],
                       settings=batch.settings)


def _metrics(rows: torch.Tensor, names: list[str], sums: torch.Tensor, tokens: float, world: int,
             c: GRPOConfig) -> dict[str, float]:
    """TRL-named metrics from the gathered per-completion columns [prompts, G, C]."""
    totals, correct, fmt, think, lengths, finished, bonus = (rows[..., i] for i in range(7))
    group_std = totals.std(-1)
    m: dict[str, float] = {
        "reward": float(totals.mean()),
        "reward_std": float(group_std.mean()),
        "frac_reward_zero_std": float((group_std.abs() < 1e-8).double().mean()),
    }
    for k, name in enumerate(names):
        col = rows[..., 7 + k]
        m[f"rewards/{name}/mean"] = float(col.mean())
        m[f"rewards/{name}/std"] = float(col.std()) if col.numel() > 1 else 0.0
    m.update({
        "completions/mean_length": float(lengths.mean()),
        "completions/min_length": float(lengths.min()),
        "completions/max_length": float(lengths.max()),
        "completions/clipped_ratio": float(1.0 - finished.mean()),
        "accuracy": float(correct.mean()),
        "format_rate": float(fmt.mean()),
        "think_chars": float(think.mean()),
        "loss": float(sums[2]) / world,
    })
    if c.beta > 0:
        m["kl"] = float(sums[0]) / max(tokens, 1.0)
    if c.num_iterations > 1:
        m["clip_ratio/region_mean"] = float(sums[1]) / max(tokens * (c.num_iterations - 1), 1.0)
    if c.temporal:
        groups = totals.shape[0]
        m["rewards/temporal/mean"] = float(bonus.mean())
        m["temporal/applied"] = float(sums[3]) / groups
        m["temporal/shuffled_accuracy"] = float(sums[4]) / groups
    return m
