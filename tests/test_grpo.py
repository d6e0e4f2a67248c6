"""The GRPO loop's specification: the objective's pure functions against hand computations, the
config's validation, then the loop on a tiny random policy (what trains, resume, stop).

    .venv/bin/pytest tests/test_grpo.py -q
"""
from __future__ import annotations

import math

import pytest
import torch

from tinyr1.grpo.config import GRPOConfig, GRPOConfigError, preset
from tinyr1.grpo.objective import (
    aggregate_loss,
    build_scheduler,
    group_advantages,
    k3_kl,
    temporal_bonus,
    token_loss,
)

# ----------------------------------------------------------------------------- advantages


def _noise(shape, seed):
    return 0.02 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "group",
    [
        [0.0] * 8,  # all failed alike
        [1.50625] * 8,  # all right with the same think length: the rounding of the mean must not leak
        [-2.0, -2.0, -2.0, -2.0],  # all broken format
        [0.1] * 7,  # a value whose mean is inexact in binary
    ],
)
def test_constant_group_gives_exactly_the_noise(group):
    r = torch.tensor([group])
    adv = group_advantages(r, generator=torch.Generator().manual_seed(3))
    assert torch.equal(adv, _noise(r.shape, 3))


@pytest.mark.parametrize(
    "group",
    [
        [1.0, -1.0],  # the smallest group
        [2.0, -1.0, -1.0, -1.0, 0.5, 1.5, -2.0, 1.0],  # the paper's G = 8, mixed
        [1e3, 1e3 + 1, 1e3 + 2, 1e3 + 4],  # far from zero: centring removes the offset
    ],
)
def test_advantages_have_zero_mean_and_unit_std_before_noise(group):
    adv = group_advantages(torch.tensor([group]), noise_std=0.0)
    assert abs(float(adv.mean())) < 1e-6
    # (R - mean) / (std + 1e-4): unit unbiased std up to the epsilon
    assert float(adv.std()) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("scale", [0.01, 3.0, 1000.0])
@pytest.mark.parametrize("shift", [0.0, -5.0])
def test_advantages_are_invariant_to_reward_scale_and_shift(scale, shift):
    r = torch.tensor([[1.0, 0.0, 0.5, -1.0], [2.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    a = group_advantages(r, noise_std=0.0, eps=1e-12)
    b = group_advantages(r * scale + shift, noise_std=0.0, eps=1e-12)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_advantages_hand_computed_with_eps_and_dr_grpo_centring():
    r = torch.tensor([[2.0, 0.0, 1.0, 1.0]])
    std = math.sqrt((1 + 1 + 0 + 0) / 3)  # unbiased, as the official code and TRL
    want = torch.tensor([[1.0, -1.0, 0.0, 0.0]]) / (std + 1e-4)
    torch.testing.assert_close(group_advantages(r, noise_std=0.0), want)
    # Dr. GRPO: centred only
    torch.testing.assert_close(group_advantages(r, noise_std=0.0, scale=False), torch.tensor([[1.0, -1.0, 0.0, 0.0]]))


def test_groups_are_normalised_separately():
    r = torch.tensor([[1.0, 0.0], [100.0, 100.0]])
    adv = group_advantages(r, noise_std=0.0)
    assert adv[0, 0] > 0 > adv[0, 1]
    assert torch.equal(adv[1], torch.zeros(2))  # the constant group is not dragged by the other


def test_a_group_of_one_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        group_advantages(torch.tensor([[1.0]]))


# ----------------------------------------------------------------------------------- KL


@pytest.mark.parametrize(
    "logp, ref",
    [
        (-1.0, -1.0),  # identical: 0
        (-1.0, -2.0),  # reference less likely
        (-2.0, -0.5),  # reference more likely
        (-0.1, -7.0),  # far apart
    ],
)
def test_k3_kl_matches_hand_computation(logp, ref):
    d = ref - logp
    want = math.exp(d) - d - 1
    got = float(k3_kl(torch.tensor(logp), torch.tensor(ref)))
    assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert got >= 0


def test_k3_kl_is_clamped_like_the_official_code():
    assert float(k3_kl(torch.tensor(-200.0), torch.tensor(0.0))) == 100.0


def test_k3_kl_estimates_the_true_kl_on_policy_samples():
    # E_{x~p}[k3] = KL(p || q) for categorical p, q
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.5, 0.3])
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)
    est = float(k3_kl(p.log()[x], q.log()[x]).mean())
    assert est == pytest.approx(float((p * (p / q).log()).sum()), rel=0.03)


# ------------------------------------------------------------------------- loss aggregation

# Two sequences: 3 and 1 completion tokens, padding after.
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
PER_TOKEN = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    "loss_type, want",
    [
        ("grpo", ((1 + 2 + 3) / 3 + 4 / 1) / 2),  # per-sequence token mean, then mean: paper
        ("dr_grpo", (1 + 2 + 3 + 4) / (2 * 8)),  # sum / (sequences x max_new_tokens = 8)
        ("dapo", (1 + 2 + 3 + 4) / 4),  # token mean over the batch
    ],
)
def test_loss_aggregations_by_hand(loss_type, want):
    got = aggregate_loss(PER_TOKEN, MASK, loss_type, max_completion_length=8)
    assert float(got) == pytest.approx(want)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_padding_never_changes_the_loss_or_its_gradient(loss_type):
    junk = PER_TOKEN.clone()
    junk[MASK == 0] = torch.tensor([1e6, float("-inf"), float("nan"), 7.0])  # anything at padded places
    a = aggregate_loss(PER_TOKEN, MASK, loss_type, max_completion_length=8)
    b = aggregate_loss(junk, MASK, loss_type, max_completion_length=8)
    assert float(a) == float(b)
    # and the gradient reaching a padded position is zero
    x = junk.clone().requires_grad_(True)
    aggregate_loss(x, MASK, loss_type, max_completion_length=8).backward()
    assert torch.all(x.grad[MASK == 0] == 0)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_micro_batches_add_up_to_the_full_batch(loss_type):
    full = aggregate_loss(PER_TOKEN, MASK, loss_type, max_completion_length=8)
    parts = sum(
        aggregate_loss(PER_TOKEN[i : i + 1], MASK[i : i + 1], loss_type, max_completion_length=8,
                       num_sequences=2, num_tokens=float(MASK.sum()))
        for i in range(2)
    )
    assert float(parts) == pytest.approx(float(full))


def test_prompt_tokens_never_reach_the_loss_through_token_loss():
    # token_loss works on completion-aligned tensors; a masked position's inputs do not matter
    logp = torch.tensor([[-1.0, -2.0, -50.0]], requires_grad=True)
    loss, _ = token_loss(logp, logp.detach(), torch.tensor([1.0]))
    total = aggregate_loss(loss, torch.tensor([[1, 1, 0]]))
    total.backward()
    assert logp.grad[0, 2] == 0


# ------------------------------------------------------------------------ clipped objective


@pytest.mark.parametrize(
    "ratio, adv, want_loss, want_grad_flows",
    [
        (1.0, 1.0, -1.0, True),  # on-policy: -A, gradient A * dlogp
        (1.1, 1.0, -1.1, True),  # inside the band: unclipped
        (1.5, 1.0, -1.2, False),  # above 1+e with A > 0: capped at 1.2, no gradient
        (1.5, -1.0, 1.5, True),  # above the band with A < 0: the pessimistic unclipped term
        (0.5, -1.0, 0.8, False),  # below 1-e with A < 0: capped at 0.8, no gradient
        (0.5, 1.0, -0.5, True),  # below the band with A > 0: unclipped
    ],
)
def test_clipped_ratio_table(ratio, adv, want_loss, want_grad_flows):
    old = torch.tensor([[-1.0]])
    logp = (old + math.log(ratio)).clone().requires_grad_(True)
    loss, stats = token_loss(logp, old, torch.tensor([adv]), epsilon=0.2)
    assert float(loss.detach()) == pytest.approx(want_loss, rel=1e-6)
    loss.sum().backward()
    assert (float(logp.grad) != 0) == want_grad_flows
    assert bool(stats["clipped"].item()) == (not want_grad_flows)


def test_on_policy_gradient_is_advantage_times_score_plus_kl():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -2.0]])
    loss, stats = token_loss(logp, logp.detach(), torch.tensor([0.7]), beta=0.01, ref_logp=ref)
    loss.sum().backward()
    # d/dlogp [-A r] = -A ; d/dlogp k3 = 1 - exp(ref - logp)
    want = -0.7 + 0.01 * (1 - torch.exp(ref - logp.detach()))
    torch.testing.assert_close(logp.grad, want)
    torch.testing.assert_close(stats["kl"], k3_kl(logp.detach(), ref))


def test_beta_without_reference_is_an_error():
    with pytest.raises(ValueError, match="ref_logp"):
        token_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), beta=0.1)


# ------------------------------------------------------------------------------- T-GRPO


@pytest.mark.parametrize(
    "ordered, shuffled, applied, bonus",
    [
        ([1, 1, 0, 0], [1, 0, 0, 0], True, [0.3, 0.3, 0, 0]),  # order helps: bonus to the right ones
        ([1, 0, 0, 0], [1, 1, 1, 0], False, [0, 0, 0, 0]),  # shuffled does better: no bonus
        ([1, 1, 1, 1], [1, 1, 1, 1], True, [0.3] * 4),  # equal: 1 >= 0.8 x 1
        ([1, 1, 1, 0], [1, 1, 1, 1], False, [0, 0, 0, 0]),  # 0.75 < 0.8
        ([0, 0, 0, 0], [0, 0, 0, 0], True, [0, 0, 0, 0]),  # nothing right: nothing to reward
    ],
)
def test_temporal_bonus_follows_video_r1(ordered, shuffled, applied, bonus):
    got, was_applied = temporal_bonus(torch.tensor(ordered), torch.tensor(shuffled), bonus=0.3, ratio=0.8)
    assert was_applied == applied
    torch.testing.assert_close(got, torch.tensor(bonus, dtype=torch.float32))


# ------------------------------------------------------------------------------ schedule


def _closed_form(update: int, total: int, warmup: int, kind: str) -> float:
    """The schedule's closed form: linear warm-up from 0, then cosine / linear decay to 0, or flat."""
    if warmup and update < warmup:
        return update / warmup
    if kind == "constant":
        return 1.0
    progress = min(max((update - warmup) / max(1, total - warmup), 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress


def _factors(kind: str, total: int, warmup: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, kind, total, warmup)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
@pytest.mark.parametrize("total, warmup", [(100, 3), (7, 0), (1, 0), (50, 10), (1500, 45)])
def test_schedule_is_transformers_and_matches_the_closed_form(kind, total, warmup):
    got = _factors(kind, total, warmup)
    want = [_closed_form(u, total, warmup, kind) for u in range(total)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_cosine_schedule_with_warmup_like_transformers():
    f = _factors("cosine", 100, 3)  # the paper: 3 % warm-up
    assert f[0] == 0.0 and f[1] == pytest.approx(1 / 3) and f[3] == pytest.approx(1.0)
    assert f[3 + 97 // 2] == pytest.approx(0.5, abs=0.02) and f[99] < 0.001
    assert _factors("constant", 100, 0)[50] == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        build_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), "step", 10, 0)


# ------------------------------------------------------------------------------- config


def test_default_config_is_the_paper_preset():
    c = GRPOConfig()
    assert (c.num_generations, c.max_new_tokens, c.temperature) == (8, 512, 1.0)
    assert (c.learning_rate, c.lr_scheduler, c.warmup_ratio) == (1e-6, "cosine", 0.03)
    assert (c.beta, c.loss_type, c.num_iterations) == (0.01, "grpo", 1)
    assert (c.advantage_eps, c.advantage_noise, c.freeze_vision, c.rewards) == (1e-4, 0.02, True, ("paper",))
    assert preset("paper") == c
    assert all(f.metadata.get("help") for f in c.__dataclass_fields__.values())


@pytest.mark.parametrize(
    "bad, says",
    [
        ({"num_generations": 1}, "num_generations must be an integer >= 2"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"loss_type": "ppo"}, "loss_type must be one of grpo, dr_grpo, dapo"),
        ({"beta": -0.1}, "beta must be >= 0"),
        ({"rewards": ("nope",)}, "unknown reward 'nope'"),
        ({"rewards": ("paper", "format"), "reward_weights": (1.0,)}, "one weight per reward"),
        ({"epsilon": 1.5}, "epsilon"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"lr_scheduler": "step"}, "lr_scheduler"),
        ({"steps": 0}, "steps must be an integer >= 1"),
    ],
)
def test_config_rejects_bad_values_with_what_was_expected(bad, says):
    with pytest.raises(GRPOConfigError, match=says):
        GRPOConfig(**bad)


def test_config_round_trips_through_a_dict():
    c = GRPOConfig(rewards=("format", "accuracy"), reward_weights=(0.5, 2.0), loss_type="dapo")
    assert GRPOConfig.from_dict(c.to_dict()) == c
    with pytest.raises(GRPOConfigError, match="unknown GRPO settings: lr"):
        GRPOConfig.from_dict({"lr": 1})


# =========================================================================== the loop (tiny)
# A random "test"-preset policy (~0.2M parameters) and 8 clips of the synthetic world: every step
# samples for real, scores, recomputes log-probs with gradients and updates, in ~0.1-0.3 s.

import json  # noqa: E402

from tinyr1 import rewards as rewards_module  # noqa: E402
from tinyr1.grpo.loop import StepRecord, setup_trainable, step_indices, train  # noqa: E402

QUICK = dict(prompts_per_step=2, num_generations=4, max_new_tokens=8, warmup_ratio=0.0, checkpoint_every=0,
             learning_rate=1e-3)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    from tinyr1.policy.random import make_random_policy

    return make_random_policy(tmp_path_factory.mktemp("policy") / "tiny", "test", seed=0)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from tinyr1.data import load_dataset
    from tinyr1.world import write_split

    return load_dataset(write_split("train", 8, tmp_path_factory.mktemp("world"), progress=False))


def _load(policy_dir):
    from tinyr1.policy import load_policy

    torch.set_num_threads(1)
    return load_policy(policy_dir, device="cpu")


def _weights(policy, part=None):
    groups = policy.parameter_groups()
    names = [part] if part else list(groups)
    return {n: p.detach().clone() for g in names for n, p in groups[g]}


def test_data_order_is_a_seeded_permutation_per_epoch_split_over_ranks():
    steps = [step_indices(s, 6, 3, seed=1) for s in range(4)]  # two epochs of 6 rows
    assert sorted(steps[0] + steps[1]) == list(range(6)) == sorted(steps[2] + steps[3])
    assert steps[0] + steps[1] != steps[2] + steps[3]  # a fresh order each epoch
    ranks = [step_indices(5, 6, 4, seed=1, rank=r, world=2) for r in range(2)]
    assert ranks[0] + ranks[1] == step_indices(5, 6, 4, seed=1)  # disjoint slices of the same prompts


def test_gradients_reach_only_the_trainable_parameters(policy_dir, rows):
    from tinyr1.policy import GenerationSettings
    from tinyr1.video import load_frames

    policy = _load(policy_dir)
    trainable = dict(setup_trainable(policy, GRPOConfig()))
    groups = policy.parameter_groups()
    assert set(trainable) == {n for part in ("connector", "language_model") for n, _ in groups[part]}
    items = [(load_frames(r.video, policy.num_frames).frames, r.question, r.options) for r in rows[:2]]
    batch = policy.sample(items, 2, GenerationSettings(max_new_tokens=6, seed=0))
    policy.logprobs(batch, batch.completion_ids, batch.completion_mask).sum().backward()
    assert all(p.grad is None for _, p in groups["vision_tower"])  # frozen: no gradient at all
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in groups["connector"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in groups["language_model"])


def test_a_step_moves_the_trainable_weights_and_not_the_vision_tower(policy_dir, rows, tmp_path):
    policy = _load(policy_dir)
    before = _weights(policy)
    records = list(train(GRPOConfig(steps=2, **QUICK), policy, rows, tmp_path / "run"))
    after = _weights(policy)
    vision = {n for n, _ in policy.parameter_groups()["vision_tower"]}
    assert all(torch.equal(before[n], after[n]) for n in vision)  # bit-identical
    for part in ("connector", "language_model"):
        names = [n for n, _ in policy.parameter_groups()[part]]
        assert any(not torch.equal(before[n], after[n]) for n in names), f"no {part} weight moved"
    # one record per step with TRL's metric names and the step's groups
    assert [r.step for r in records] == [1, 2]
    m = records[-1].metrics
    for key in ("reward", "reward_std", "rewards/paper/mean", "rewards/paper/std", "frac_reward_zero_std",
                "completions/mean_length", "kl", "accuracy", "format_rate", "think_chars", "step_time", "lr",
                "loss", "grad_norm"):
        assert key in m and math.isfinite(m[key]), key
    g = records[-1].groups[0]
    assert len(g.completions) == len(g.rewards) == len(g.advantages) == len(g.breakdowns) == 4
    assert {"format_ok", "think_chars", "total", "correct"} <= set(g.breakdowns[0])
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in log] == [1, 2] and log[1]["reward"] == m["reward"]


def test_freeze_keeps_the_named_parameters_bit_identical(policy_dir, rows, tmp_path):
    policy = _load(policy_dir)
    before = _weights(policy)
    config = GRPOConfig(steps=2, freeze=("embed_tokens", "connector"), **QUICK)
    list(train(config, policy, rows, tmp_path / "run"))
    after = _weights(policy)
    frozen = [n for n in before if "embed_tokens" in n or "connector" in n]
    assert any("embed_tokens" in n for n in frozen) and any("connector" in n for n in frozen)
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    rest = [n for n, _ in policy.parameter_groups()["language_model"] if n not in frozen]
    assert any(not torch.equal(before[n], after[n]) for n in rest)  # the rest of the LM still learns


def test_freeze_names_must_not_be_blank():
    with pytest.raises(GRPOConfigError, match="freeze"):
        GRPOConfig(freeze=("",))


def test_reward_rises_on_a_toy_setting(policy_dir, rows, tmp_path, monkeypatch):
    # Toy reward: how many "<think>" tags the completion holds. A random policy writes one in
    # ~4% of its 12-token completions; GRPO should make it the policy's favourite token.
    def think_tags(completions, **kwargs):
        return [float(t.count("<think>")) for t in completions]

    monkeypatch.setitem(rewards_module.REWARDS, "think_tags", think_tags)
    config = GRPOConfig(steps=15, prompts_per_step=2, num_generations=8, max_new_tokens=12, learning_rate=1e-2,
                        lr_scheduler="constant", warmup_ratio=0.0, beta=0.0, rewards=("think_tags",), checkpoint_every=0)
    rewards = [r.metrics["reward"] for r in train(config, _load(policy_dir), rows, tmp_path / "toy")]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 1.0, rewards


def _run(policy_dir, rows, out, config, stop_after=None):
    gen = train(config, _load(policy_dir), rows, out)
    records = []
    for record in gen:
        records.append(record)
        if stop_after is not None and record.step == stop_after:
            gen.close()
            break
    return records


def test_resume_gives_the_same_run_as_no_interruption(policy_dir, rows, tmp_path):
    config = GRPOConfig(steps=4, **{**QUICK, "lr_scheduler": "cosine", "warmup_ratio": 0.25})
    straight = _run(policy_dir, rows, tmp_path / "a", config)
    first = _run(policy_dir, rows, tmp_path / "b", config, stop_after=2)
    assert [r.step for r in first] == [1, 2]
    rest = _run(policy_dir, rows, tmp_path / "b", config)  # resumes from step 2
    assert [r.step for r in rest] == [3, 4]
    for a, b in zip(straight[2:], rest):
        assert [g.completions for g in a.groups] == [g.completions for g in b.groups]
        for key in ("reward", "loss", "kl", "grad_norm", "lr"):
            assert a.metrics[key] == b.metrics[key], key
    from tinyr1.policy import load_policy

    wa, wb = _weights(load_policy(tmp_path / "a" / "final")), _weights(load_policy(tmp_path / "b" / "final"))
    assert all(torch.equal(wa[n], wb[n]) for n in wa)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def _steps_logged(path):
    from tinyr1.files import read_jsonl

    return [r["step"] for r in read_jsonl(path)]


def test_a_damaged_newest_checkpoint_and_a_torn_log_line_resume_from_the_one_before(policy_dir, rows, tmp_path, capsys):
    """A crash that damaged the newest checkpoint (truncated weights) and tore the last log lines:
    resume says so, goes back to the checkpoint before, and lands on the uninterrupted run."""
    config = GRPOConfig(steps=4, **{**QUICK, "checkpoint_every": 1, "keep_checkpoints": 3})
    straight = _run(policy_dir, rows, tmp_path / "a", config)
    _run(policy_dir, rows, tmp_path / "b", config, stop_after=3)
    run = tmp_path / "b"
    weights = run / "checkpoints" / "step-000003" / "tensors.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    for name in ("metrics.jsonl", "rollouts.jsonl"):
        with open(run / name, "ab") as fh:
            fh.write(b'{"step": 4, "reward": 0.')  # a write the crash cut short
    (run / "checkpoints" / ".tmp-step-000004-99").mkdir()  # a checkpoint the crash never finished
    rest = _run(policy_dir, rows, run, config)
    err = capsys.readouterr().err
    assert "skipping checkpoint step-000003" in err and "torn last line" in err and ".tmp-step-000004-99" in err
    assert [r.step for r in rest] == [3, 4]
    assert rest[-1].metrics["reward"] == straight[-1].metrics["reward"]
    assert _steps_logged(run / "metrics.jsonl") == [1, 2, 3, 4] == _steps_logged(run / "rollouts.jsonl")
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_a_fresh_run_never_reads_a_previous_runs_logs(policy_dir, rows, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_bytes(b'{"step": 9}\n\xff torn')
    list(train(GRPOConfig(steps=1, **QUICK), _load(policy_dir), rows, run, resume=False))
    assert _steps_logged(run / "metrics.jsonl") == [1]


def test_a_full_disk_is_a_clear_error_and_leaves_no_torn_line(policy_dir, rows, tmp_path, capsys, monkeypatch):
    import errno

    from tinyr1 import files
    from tinyr1.cli import main
    from tinyr1.data import write_dataset

    data = write_dataset(rows, tmp_path / "train.jsonl")
    out = tmp_path / "run"
    # The JSONL is written away from its clips (absolute paths): --allow-outside-paths trusts it.
    base = ["train", "--policy", str(policy_dir), "--data", str(data), "--allow-outside-paths", "--out", str(out),
            "--quiet", "--threads", "1", "--prompts-per-step", "2", "--num-generations", "2", "--max-new-tokens", "6", "--checkpoint-every", "1"]
    assert main([*base, "--steps", "1"]) == 0
    real_fsync = files.os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    assert main([*base, "--steps", "2"]) == 2
    assert "no space left on the disk" in capsys.readouterr().err
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert _steps_logged(out / "metrics.jsonl") == [1]
    assert (out / "metrics.jsonl").read_bytes().endswith(b"\n")
    assert main([*base, "--steps", "2"]) == 0  # space again: the run goes on
    assert _steps_logged(out / "metrics.jsonl") == [1, 2]


def test_stop_leaves_a_checkpoint_that_load_policy_opens(policy_dir, rows, tmp_path):
    from tinyr1.grpo.checkpoint import latest_checkpoint
    from tinyr1.policy import load_policy

    policy = _load(policy_dir)
    gen = train(GRPOConfig(steps=10, **QUICK), policy, rows, tmp_path / "run")
    assert next(gen).step == 1
    gen.close()  # the app's Stop button
    folder = latest_checkpoint(tmp_path / "run")
    assert folder is not None and folder.name == "step-000001"
    loaded = _weights(load_policy(folder))
    trained = _weights(policy)
    assert all(torch.equal(loaded[n], trained[n]) for n in trained)
    assert not (tmp_path / "run" / "final").exists()


def test_resume_refuses_other_settings(policy_dir, rows, tmp_path):
    _run(policy_dir, rows, tmp_path / "run", GRPOConfig(steps=1, **QUICK))
    with pytest.raises(GRPOConfigError, match="beta: 0.01 -> 0.0"):
        next(train(GRPOConfig(steps=2, **{**QUICK, "beta": 0.0}), _load(policy_dir), rows, tmp_path / "run"))


@pytest.mark.parametrize(
    "options, expect",
    [
        ({"loss_type": "dr_grpo", "num_iterations": 2}, "clip_ratio/region_mean"),  # clipped, 2 updates
        ({"loss_type": "dapo", "beta": 0.0, "scale_rewards": False}, "loss"),  # no reference kept
        ({"temporal": True}, "temporal/applied"),  # T-GRPO: a shuffled-frame rollout per prompt
        ({"rewards": ("format_accuracy_consistency",)}, "rewards/format_accuracy_consistency/mean"),
        ({"rewards": ("format_accuracy", "consistency"), "reward_weights": (1.0, 0.5)}, "rewards/consistency/mean"),
        ({"prompts_per_forward": 1}, "loss"),  # micro-batched update
    ],
)
def test_options_run_a_step(policy_dir, rows, tmp_path, options, expect):
    records = list(train(GRPOConfig(steps=1, **{**QUICK, **options}), _load(policy_dir), rows, tmp_path / "run"))
    assert expect in records[0].metrics and math.isfinite(records[0].metrics[expect])
    assert ("kl" in records[0].metrics) == (options.get("beta", 0.01) > 0)


def test_t_grpo_samples_shuffled_frames_and_pays_the_bonus(policy_dir, rows, tmp_path):
    """T-GRPO end to end on a real tiny policy: each step samples the same prompts a second time on
    a real permutation of their frames, and the bonus follows Video-R1's rule on the two groups."""
    import numpy as np

    from tinyr1.rewards import score

    policy = _load(policy_dir)
    calls = []
    real_sample = policy.sample

    def spy(items, G, settings=None):
        batch = real_sample(items, G, settings)
        calls.append(([(np.array(f), q) for f, q, _ in items], list(batch.texts)))
        return batch

    policy.sample = spy
    config = GRPOConfig(steps=1, temporal=True, temporal_bonus=0.3, **{**QUICK, "temperature": 1.0})
    record = list(train(config, policy, rows, tmp_path / "run"))[0]
    assert len(calls) == 2  # the ordered rollout, then the shuffled one
    (ordered, texts), (shuffled, shuffled_texts) = calls
    assert [q for _, q in ordered] == [q for _, q in shuffled]
    for (a, _), (b, _) in zip(ordered, shuffled):
        assert not np.array_equal(a, b)  # never the identity
        assert sorted(x.tobytes() for x in a) == sorted(x.tobytes() for x in b)  # the same frames, reordered
    G = config.num_generations
    expected = []
    for i, group in enumerate(record.groups):
        right = [bool(b["correct"]) for b in group.breakdowns]
        sh = [bool(score(t, group.answer, group.options).correct) for t in shuffled_texts[i * G:(i + 1) * G]]
        applied = np.mean(right) >= 0.8 * np.mean(sh)
        expected += [0.3 * r * applied for r in right]
        assert group.shuffled_accuracy == pytest.approx(np.mean(sh))
    assert record.metrics["rewards/temporal/mean"] == pytest.approx(float(np.mean(expected)))


def test_micro_batches_update_like_the_whole_batch(policy_dir, rows, tmp_path):
    a, b = _load(policy_dir), _load(policy_dir)
    list(train(GRPOConfig(steps=1, **QUICK), a, rows, tmp_path / "a"))
    list(train(GRPOConfig(steps=1, **{**QUICK, "prompts_per_forward": 1}), b, rows, tmp_path / "b"))
    wa, wb = _weights(a), _weights(b)
    assert all(torch.allclose(wa[n], wb[n], atol=1e-6) for n in wa)


def test_lora_trains_adapters_and_the_connector_and_saves_merged(policy_dir, rows, tmp_path):
    from tinyr1.policy import load_policy

    policy = _load(policy_dir)
    lm_before = _weights(policy, "language_model")
    connector_before = _weights(policy, "connector")
    list(train(GRPOConfig(steps=2, lora_r=4, **{**QUICK, "learning_rate": 1e-2}), policy, rows, tmp_path / "run"))
    lm_after = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
                for n, p in _weights(policy, "language_model").items() if "lora_" not in n}
    assert all(torch.equal(lm_before[n], lm_after[n]) for n in lm_before)  # base weights untouched
    merged = _weights(load_policy(tmp_path / "run" / "final"), "language_model")
    assert set(merged) == set(lm_before)  # a plain policy, adapters merged in
    assert any(not torch.equal(merged[n], lm_before[n]) for n in merged)
    connector = {n.replace("base_model.model.", ""): p for n, p in _weights(policy, "connector").items()}
    assert any(not torch.equal(connector[n], connector_before[n]) for n in connector_before)  # trained fully


# ------------------------------------------------------------------------------------ CLI


def test_cli_trains_resumes_and_rejects_bad_settings(policy_dir, rows, tmp_path, capsys):
    from tinyr1.cli import main
    from tinyr1.data import write_dataset
    from tinyr1.policy import load_policy

    data = write_dataset(rows, tmp_path / "train.jsonl")
    out = tmp_path / "run"
    # The JSONL is written away from its clips (absolute paths): --allow-outside-paths trusts it.
    base = ["train", "--policy", str(policy_dir), "--data", str(data), "--allow-outside-paths", "--out", str(out),
            "--quiet", "--threads", "1", "--prompts-per-step", "2", "--num-generations", "2", "--max-new-tokens", "6", "--checkpoint-every", "1"]
    assert main([*base, "--steps", "1"]) == 0
    assert "trained policy:" in capsys.readouterr().out
    assert main([*base, "--steps", "2", "--json"]) == 0  # resumes: one more step
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"] == str((out / "final").resolve())
    load_policy(out / "final")
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    # a bad setting is the user's error (exit 2, a message), before any model loads
    assert main([*base, "--steps", "2", "--num-generations", "1"]) == 2
    assert "num_generations must be an integer >= 2" in capsys.readouterr().err
    assert main([*base, "--steps", "3", "--beta", "0.5"]) == 2  # other settings than the run's
    assert "cannot resume" in capsys.readouterr().err


def test_k3_kl_keeps_small_differences():
    d = 1e-4  # float32 exp(d) - d - 1 rounds this to 0
    got = float(k3_kl(torch.tensor(-1.0), torch.tensor(-1.0 + d)))
    assert got == pytest.approx(d * d / 2, rel=1e-2)
