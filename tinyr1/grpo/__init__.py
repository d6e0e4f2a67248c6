"""GRPO for video policies: the TinyLLaVA-Video-R1 recipe as a resumable, observable loop.

    from tinyr1.grpo import GRPOConfig, train
    for record in train(GRPOConfig(steps=200), policy, rows, "runs/grpo"):
        print(record.step, record.metrics["reward"], record.metrics["accuracy"])

    tinyr1 train --policy assets/policies/tiny-coldstart --world-split train --world-n 400 \\
        --preset tiny --steps 200 --out runs/grpo --eval-before --eval-after
    torchrun --nproc_per_node 2 -m tinyr1 train ...          # data parallel (gloo on CPU)

The recipe (paper preset = ``GRPOConfig()``; the official training code's values):

1. Each step takes ``prompts_per_step`` = 8 video questions (a seeded permutation per epoch,
   sharded over processes) and samples G = 8 completions per prompt in ONE batched call, at
   temperature 1.0, at most 512 new tokens, 16 frames sampled uniformly.
2. Each completion is scored by the paper's reward (format + think length + accuracy,
   docs/DESIGN.md, "The reward"), or by any registered rewards with weights (``rewards/<name>``
   metrics).
3. Advantages are normalised within each group: ``(R - mean) / (std + 1e-4)`` (unbiased std),
   plus Gaussian noise N(0, 0.02^2), so a group that scored all alike still teaches a little.
4. Loss per completion token: ``-A * ratio + beta * k3`` with ``ratio = exp(logp - logp.detach())``
   (one on-policy update per rollout, so no clipping acts) and the k3 KL
   ``exp(ref - logp) - (ref - logp) - 1`` to the frozen starting policy, ``beta = 0.01``;
   aggregated as the token mean per completion, then the mean over completions.
5. AdamW at 1e-6 (weight decay 0, betas 0.9/0.999), 3 % linear warm-up then cosine decay to 0,
   gradient norm clipped to 1.0 (the transformers Trainer's defaults the official run used).
   The language model and the connector train; the vision tower is frozen.

Options: ``num_iterations > 1`` updates per rollout with the ratio to the rollout policy clipped
to ``1 +- epsilon`` (0.2), ``beta = 0`` (no reference model is kept), ``loss_type`` ``dr_grpo`` /
``dapo`` (TRL's definitions), ``scale_rewards=False`` (Dr. GRPO's centring), LoRA on the language
model (``lora_r``), ``freeze_vision=False``, ``freeze`` (more parameters kept frozen, by name:
``embed_tokens``, ``connector``, ...), and Video-R1's temporal contrast (``temporal``:
also sample G completions on shuffled frames; when the group's ordered accuracy is at least 0.8 x
its shuffled accuracy, every correct ordered completion gets +0.3).

Simplifications, stated up front (nanochat style):

- The reference is the policy as it was when the run started (resume rebuilds it from the same
  ``--policy``), held in memory as a frozen copy, or the LoRA base with the adapter switched off.
- The rollout is on-policy and synchronous: sample, score, update, then sample again. No vLLM, no
  generation server, no replay: the batched sampler (all G samples of a prompt in one call) is
  the speed-up over the official loop's one-sample-at-a-time generation.
- With ``num_iterations = 1`` the "old" log-probs are the recomputed ones, detached (as TRL and
  the official code do), not the sampler's; the sampler's log-probs are only used for
  ``num_iterations > 1`` as the ratio's denominator after a no-grad recomputation.
- Shuffled-frame rollouts of T-GRPO only decide the bonus; they are not trained on (Video-R1).
  The bonus is judged per group (Video-R1 judges per device batch, which is one group there).
- Data parallel is plain ``torch.distributed``: every rank holds the whole model, rolls out its
  own shard of the step's prompts, and the trainable gradients are all-reduced (averaged) before
  the clip and the update, so every rank applies the same update. No ZeRO / FSDP sharding.
- Rewards are computed on the rank that sampled; metrics are all-reduced for the log.
- The frames of each video are decoded once and cached (small LRU); frame sampling is the
  policy's (uniform).

Modules: ``config`` (GRPOConfig, presets), ``objective`` (advantages, k3 KL, clipped ratio,
loss aggregations, T-GRPO bonus, schedule), ``checkpoint`` (atomic, resumable), ``distributed``
(the process group and the gradient all-reduce), ``loop`` (the generator ``train`` and its
records). The command line is ``tinyr1 train`` (tinyr1/cli/train.py); the step-time benchmark
is bench/bench_grpo.py.
"""
from tinyr1.grpo.config import LOSS_TYPES, PRESETS, GRPOConfig, GRPOConfigError, preset

# The loop and the objective import torch (seconds): loaded on first use, so that the torch-free
# config (what `tinyr1 train` checks its flags with) is importable at once.
_LAZY = {
    "train": "loop", "StepRecord": "loop", "GroupRecord": "loop", "World": "loop", "init_distributed": "loop",
    "aggregate_loss": "objective", "build_scheduler": "objective", "group_advantages": "objective",
    "k3_kl": "objective", "temporal_bonus": "objective", "token_loss": "objective",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"tinyr1.grpo.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinyr1.grpo' has no attribute {name!r}")


__all__ = [
    "train",
    "StepRecord",
    "GroupRecord",
    "World",
    "init_distributed",
    "GRPOConfig",
    "GRPOConfigError",
    "LOSS_TYPES",
    "PRESETS",
    "preset",
    "aggregate_loss",
    "group_advantages",
    "k3_kl",
    "build_scheduler",
    "temporal_bonus",
    "token_loss",
]
