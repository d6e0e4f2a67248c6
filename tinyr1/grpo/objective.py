"""The GRPO objective as pure tensor functions: advantages, KL, clipped ratio, loss aggregation.

Nothing here knows about models or data; ``tests/test_grpo.py`` checks each function against
hand computations. Shapes: ``B`` sequences (prompts x G), ``T`` completion positions; ``mask`` is
1 on completion tokens that count (the end token included) and 0 on padding. Prompt tokens never
reach these functions: the policy returns completion-aligned log-probs.

    >>> import torch
    >>> group_advantages(torch.tensor([[1.0, 1.0, -1.0, -1.0]]), noise_std=0.0)
    tensor([[ 0.8660,  0.8660, -0.8660, -0.8660]])
"""
from __future__ import annotations

import torch

#: The official code clamps the per-token k3 KL to [-100, 100]; k3 is >= 0, so only the top bites.
KL_CLAMP = 100.0


def group_advantages(
    rewards: torch.Tensor,
    *,
    eps: float = 1e-4,
    noise_std: float = 0.02,
    scale: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Advantages of a ``[..., G]`` reward tensor, normalised within each group (last dim).

    ``(R - mean) / (std + eps)`` with the unbiased std (as the official code and TRL), or only
    ``R - mean`` when ``scale`` is off (Dr. GRPO), then ``+ N(0, noise_std^2)`` (the paper's noise,
    so a group whose samples all scored the same still moves the policy a little). A constant group
    is exactly zero before the noise, whatever rounding the mean would have.
    """
    if rewards.shape[-1] < 2:
        raise ValueError(f"a group needs at least 2 rewards to compare, got shape {tuple(rewards.shape)}")
    r = rewards.to(torch.float64)
    centred = r - r.mean(-1, keepdim=True)
    if scale:
        centred = centred / (r.std(-1, keepdim=True) + eps)
    constant = (r == r[..., :1]).all(-1, keepdim=True)
    adv = torch.where(constant, torch.zeros_like(centred), centred).to(torch.float32)
    if noise_std > 0:
        adv = adv + noise_std * torch.randn(adv.shape, generator=generator, dtype=torch.float32)
    return adv


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): ``exp(ref - logp) - (ref - logp) - 1``.

    Non-negative, zero where the two agree; unbiased for the KL when tokens come from the policy.
    Clamped at ``KL_CLAMP`` as the official code does (it guards a far-off reference token).
    """
    d = ref_logp - logp
    # expm1(d) - d == exp(d) - d - 1, without losing small differences to rounding (float32 would
    # return exactly 0 for |d| < ~1e-4, where the KL is ~d^2/2)
    return (torch.expm1(d) - d).clamp(max=KL_CLAMP)


def token_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon: float = 0.2,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token loss ``-min(r A, clip(r, 1-e, 1+e) A) + beta * k3`` with ``r = exp(logp - old)``.

    On-policy (``old_logp`` = ``logp.detach()``) ``r`` is 1, clipping never acts and the gradient
    is the paper's ``A * grad logp``. Returns the loss ``[B, T]`` and per-token stats: ``kl`` (when
    beta > 0), ``clipped`` (1 where the clipped branch was taken, i.e. its gradient is zero).
    """
    adv = advantages.reshape(-1, 1).to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    clipped_ratio = ratio.clamp(1 - epsilon, 1 + epsilon)
    unclipped_obj, clipped_obj = ratio * adv, clipped_ratio * adv
    loss = -torch.minimum(unclipped_obj, clipped_obj)
    stats = {"clipped": (clipped_obj < unclipped_obj).to(logp.dtype).detach()}
    if beta:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference log-probs (ref_logp)")
        kl = k3_kl(logp, ref_logp)
        loss = loss + beta * kl
        stats["kl"] = kl.detach()
    return loss, stats


def aggregate_loss(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str = "grpo",
    *,
    max_completion_length: int | None = None,
    num_sequences: int | None = None,
    num_tokens: float | None = None,
) -> torch.Tensor:
    """One scalar from a ``[B, T]`` per-token loss, as TRL's ``loss_type`` defines it.

    - ``grpo`` (paper): each sequence's token mean, then the mean over sequences;
    - ``dr_grpo``: the sum over all tokens / (sequences x max_completion_length), a constant, so
      long and short completions weigh per token alike (Dr. GRPO);
    - ``dapo``: the sum over all tokens / the number of tokens (DAPO's token-level mean).

    ``num_sequences`` / ``num_tokens`` give the whole step's counts when ``per_token`` is one
    micro-batch of it, so the micro-batch losses add up to the full-batch loss. Masked positions
    (padding) never change the value, even when they hold inf or nan: they are dropped before any sum.
    """
    keep = mask.bool()
    mask = mask.to(per_token.dtype)
    n = per_token.shape[0] if num_sequences is None else num_sequences
    # where, not a product: an inf or nan at a padded place must not leak (0 * inf = nan)
    masked = torch.where(keep, per_token, torch.zeros_like(per_token))
    if loss_type == "grpo":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / n
    if loss_type == "dr_grpo":
        if not max_completion_length:
            raise ValueError("dr_grpo needs max_completion_length (the rollout's max_new_tokens)")
        return masked.sum() / (n * max_completion_length)
    if loss_type == "dapo":
        tokens = mask.sum() if num_tokens is None else torch.as_tensor(float(num_tokens))
        return masked.sum() / tokens.clamp(min=1.0)
    raise ValueError(f"unknown loss_type {loss_type!r}; expected grpo, dr_grpo or dapo")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of ``x`` over the positions where ``mask`` is 1 (0.0 when there are none)."""
    keep = mask.bool()
    return float(torch.where(keep, x, torch.zeros_like(x)).sum() / keep.sum().clamp(min=1))


def temporal_bonus(
    correct: torch.Tensor, shuffled_correct: torch.Tensor, *, bonus: float = 0.3, ratio: float = 0.8
) -> tuple[torch.Tensor, bool]:
    """Video-R1's T-GRPO bonus for one group: ``(bonus per completion [G], applied)``.

    When the group's accuracy on ordered frames is at least ``ratio`` times its accuracy on
    shuffled frames (order helped, or at least did not hurt much), every correct ordered completion
    gets ``+bonus``; otherwise nobody does. ``applied`` is the condition (Video-R1 logs it as
    ``temporal_rewards``); with no correct completion it adds nothing either way.
    """
    c = correct.to(torch.float32)
    acc, shuffled_acc = float(c.mean()), float(shuffled_correct.to(torch.float32).mean())
    applied = acc >= ratio * shuffled_acc
    return (c * bonus if applied else torch.zeros_like(c)), applied


#: The config's schedule names -> transformers' (the warm-up is linear from 0 in all three).
SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def build_scheduler(optimizer: torch.optim.Optimizer, kind: str, total: int, warmup: int):
    """The learning-rate schedule over ``total`` optimizer updates: transformers' own
    ``get_scheduler`` (linear warm-up from 0 over ``warmup`` updates, then cosine / linear decay to
    0, or flat), so a run follows the schedule TRL's GRPOTrainer would (tests/test_grpo.py checks
    it against the closed forms)."""
    from transformers import get_scheduler

    if kind not in SCHEDULERS:
        raise ValueError(f"unknown schedule {kind!r}; expected one of {', '.join(SCHEDULERS)}")
    return get_scheduler(SCHEDULERS[kind], optimizer, num_warmup_steps=warmup, num_training_steps=total)
