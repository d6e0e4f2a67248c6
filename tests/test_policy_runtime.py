"""The generic policy runtime (tinyr1.policy.runtime) on the TinyLLaVA-Video backend: streaming,
batched sampling, seeds, masks, log-probs equal to the sampler's with gradients, the shared-prompt pass.

    .venv/bin/pytest tests/test_policy_runtime.py -q

Tiny random policies from tests/tiny.py; nothing is downloaded. Loading, saving and quantization
are tests/test_policy_load.py's; the torch-free facts tests/test_policy_spec.py's.
"""
from __future__ import annotations

import threading
import time

import pytest
import torch
from tiny import GREEDY, ITEMS, SAMPLED, TEXT_INIT_STD, tiny_frames, tiny_policy
from torch import nn

import tinyr1.policy as policy_mod
from tinyr1.format import END_TOKEN
from tinyr1.policy import (
    GenerationSettings,
    PolicyError,
    SampleBatch,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy():
    return tiny_policy()


def _biased_head(policy, token_id: int, bias: float = 50.0) -> None:
    """Replace the LM head by zero weights plus a bias favouring ``token_id`` (untied)."""
    lm = policy.core.language_model
    head = nn.Linear(lm.config.hidden_size, lm.lm_head.out_features, bias=True)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    with torch.no_grad():
        head.bias[token_id] = bias
    lm.lm_head = head


# --- generation ---------------------------------------------------------------------------------
def test_stream_yields_growing_text_ending_with_the_full_completion(policy) -> None:
    settings = GenerationSettings(max_new_tokens=24, temperature=1.0, seed=5)
    parts = list(policy.stream(*ITEMS[0], settings))
    assert len(parts) > 1
    assert all(b.startswith(a) for a, b in zip(parts, parts[1:]))  # each item is the whole text so far
    assert parts[-1] == policy.generate(*ITEMS[0], settings)


def test_stream_surfaces_an_exception_from_the_generation_thread(policy, monkeypatch) -> None:
    lm = policy.core.language_model

    def broken(*args, streamer=None, **kwargs):
        streamer.put(torch.tensor([[]], dtype=torch.long))  # the (empty) prompt
        streamer.put(torch.tensor([5]))
        raise RuntimeError("boom in generate")

    monkeypatch.setattr(lm, "generate", broken)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="boom in generate"):
        list(policy.stream(*ITEMS[0], GREEDY, timeout=30))
    assert time.perf_counter() - start < 5  # surfaced at once, not after the 30 s timeout


def test_stream_times_out_when_no_token_comes(policy, monkeypatch) -> None:
    monkeypatch.setattr(policy.core.language_model, "generate", lambda *a, **k: time.sleep(0.6))
    with pytest.raises(PolicyError, match="no token"):
        list(policy.stream(*ITEMS[0], GREEDY, timeout=0.2))


def test_closing_a_stream_early_stops_generation(policy) -> None:
    stream = policy.stream(*ITEMS[0], GenerationSettings(max_new_tokens=1900, temperature=1.0, seed=0))
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "tinyr1-generate"]


def test_a_prompt_and_new_tokens_beyond_the_context_are_refused_before_generating(policy) -> None:
    limit = policy.max_positions
    assert limit == policy.core.language_model.config.max_position_embeddings
    too_many = GenerationSettings(max_new_tokens=limit)  # the prompt needs positions too
    with pytest.raises(PolicyError, match="context of"):
        next(policy.stream(*ITEMS[0], too_many))
    with pytest.raises(PolicyError, match="context of"):
        policy.generate(*ITEMS[0], too_many)
    assert not [t for t in threading.enumerate() if t.name == "tinyr1-generate"]


def test_closing_a_stream_does_not_wait_for_a_stuck_generation(policy, monkeypatch) -> None:
    """Close returns within STOP_JOIN_SECONDS even when generate ignores the stop (here: blocked
    on an event the test sets only after close returned); the lock is released when it ends."""
    gate, seen = threading.Event(), {}

    def stuck(*args, streamer=None, **kwargs):
        streamer.put(torch.tensor([[]], dtype=torch.long))
        streamer.put(torch.tensor([5]))
        seen["released_after_close"] = gate.wait(30)
        return torch.tensor([[5]])

    monkeypatch.setattr(policy.core.language_model, "generate", stuck)
    stream = policy.stream(*ITEMS[0], GREEDY, timeout=30)
    next(stream)
    stream.close()  # before: waited for the thread (up to the 120 s timeout)
    gate.set()
    for t in [t for t in threading.enumerate() if t.name == "tinyr1-generate"]:
        t.join(10)
    assert seen["released_after_close"] is True
    assert policy._lock.acquire(timeout=5)
    policy._lock.release()


def test_generation_stops_at_the_end_token() -> None:
    pol = tiny_policy()
    _biased_head(pol, pol.eos_token_id)
    batch = pol.sample(ITEMS[:2], G=2, settings=GenerationSettings(max_new_tokens=8, temperature=1.0))
    assert batch.finished.all() and batch.lengths.tolist() == [1, 1, 1, 1]  # the end token only
    assert batch.texts == [""] * 4 and pol.generate(*ITEMS[0], GREEDY) == ""
    assert pol.tokenizer.convert_ids_to_tokens(int(batch.completion_ids[0, 0])) == END_TOKEN


@pytest.mark.parametrize("settings", [GenerationSettings(max_new_tokens=16, temperature=1.0, seed=0), GREEDY])
def test_sampling_never_emits_the_pad_token_even_when_the_model_prefers_it(settings) -> None:
    pol = tiny_policy()
    _biased_head(pol, pol.pad_token_id)  # pad would win every step if it were not masked
    batch = pol.sample(ITEMS, G=4, settings=settings)
    emitted = batch.completion_ids[batch.completion_mask > 0]
    assert pol.pad_token_id in pol.suppressed_token_ids
    assert not (emitted == pol.pad_token_id).any()


def test_masks_cover_up_to_and_including_the_first_end_token(policy) -> None:
    eos, pad = policy.eos_token_id, policy.pad_token_id
    ids = torch.tensor([[7, 8, eos, pad], [7, eos, eos, pad], [7, 8, 9, 10]])
    assert policy._completion_mask(ids).tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_same_seed_same_output_and_other_seed_other_output(policy) -> None:
    a = policy.sample(ITEMS, G=3, settings=SAMPLED)
    b = policy.sample(ITEMS, G=3, settings=SAMPLED)
    c = policy.sample(ITEMS, G=3, settings=GenerationSettings(max_new_tokens=12, temperature=0.8, top_p=0.9, seed=4))
    assert a.texts == b.texts and torch.equal(a.completion_ids, b.completion_ids)
    assert a.texts != c.texts


def test_batched_greedy_sampling_equals_one_prompt_at_a_time(policy) -> None:
    batch = policy.sample(ITEMS, G=2, settings=GREEDY)
    singles = [policy.sample([item], G=1, settings=GREEDY) for item in ITEMS]
    assert len(set(batch.texts)) > 1  # the prompts really differ (see tests/tiny.py: TEXT_INIT_STD)
    for i, single in enumerate(singles):
        assert batch.texts[2 * i] == batch.texts[2 * i + 1] == single.texts[0]
        n = int(single.lengths[0])  # the batch runs until its longest row ends
        assert int(batch.lengths[2 * i]) == n
        torch.testing.assert_close(batch.logprobs[2 * i, :n], single.logprobs[0, :n], atol=1e-4, rtol=0)


def test_sample_batch_layout(policy) -> None:
    batch = policy.sample(ITEMS, G=3, settings=SAMPLED)
    assert isinstance(batch, SampleBatch) and len(batch) == 9 and batch.group_size == 3
    assert batch.prompt_index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert batch.completion_ids.shape == batch.completion_mask.shape == batch.logprobs.shape
    assert batch.completion_mask.dtype == torch.float32
    assert (batch.logprobs[batch.completion_mask == 0] == 0).all()
    assert (batch.logprobs[batch.completion_mask > 0] < 0).all()


@pytest.mark.parametrize(
    "settings",
    [
        SAMPLED,                                                             # T 0.8, top-p 0.9
        GREEDY,                                                              # T = 1 in the definition
        GenerationSettings(max_new_tokens=12, temperature=1.7, top_p=1.0, seed=9),
    ],
)
def test_recomputed_logprobs_equal_the_samplers_and_carry_gradients(policy, settings) -> None:
    batch = policy.sample(ITEMS, G=2, settings=settings)
    policy.model.train()
    try:
        recomputed = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)
    finally:
        policy.model.eval()
    assert recomputed.requires_grad
    assert torch.isfinite(batch.logprobs).all() and torch.isfinite(recomputed).all()  # also after the end token
    torch.testing.assert_close(recomputed.detach(), batch.logprobs, atol=1e-4, rtol=0)
    policy.model.zero_grad()
    recomputed.sum().backward()
    lm_grads = [p.grad for _, p in policy.parameter_groups()["language_model"]]
    assert all(g is not None and torch.isfinite(g).all() for g in lm_grads)
    policy.model.zero_grad()


def test_logprobs_stay_finite_and_equal_when_rows_end_at_different_steps() -> None:
    pol = tiny_policy()
    _biased_head(pol, pol.eos_token_id, bias=3.0)  # ~5% end token per step: some rows end early
    batch = pol.sample(ITEMS, G=4, settings=GenerationSettings(max_new_tokens=12, temperature=1.0, seed=1))
    assert batch.finished.any() and not batch.finished.all()
    assert len(set(batch.lengths.tolist())) > 1
    recomputed = pol.logprobs(batch, batch.completion_ids, batch.completion_mask)
    assert torch.isfinite(batch.logprobs).all() and torch.isfinite(recomputed).all()
    torch.testing.assert_close(recomputed.detach(), batch.logprobs, atol=1e-4, rtol=0)


def test_shared_prompt_pass_equals_one_pass_over_each_repeated_prompt() -> None:
    """The loss forward runs each prompt once and its G completions on its key/value cache; the
    logits and the gradients must be those of one pass over [prompt; completion] per row
    (compared in float64; a few steps, such as the rotary tables, stay float32 in transformers,
    so gradients agree to about float32's precision, far below what a wrong mask or a lost copy
    of the prompt's gradient would give)."""
    pol = tiny_policy()
    batch = pol.sample(ITEMS, G=3, settings=SAMPLED)
    pol.model.double()
    p = batch.prompts
    shared_prompts = policy_mod.PromptBatch(p.input_ids, p.attention_mask, p.pixel_values.double())
    repeated = policy_mod.PromptBatch(p.input_ids.repeat_interleave(3, 0), p.attention_mask.repeat_interleave(3, 0),
                                      p.pixel_values.double().repeat_interleave(3, 0))
    vocab = pol.core.config.text_config.vocab_size
    weights = torch.randn(batch.completion_ids.shape + (vocab,), generator=torch.Generator().manual_seed(0)).double()

    def logits_and_grads(prompts, g):
        pol.model.zero_grad()
        logits = pol._completion_logits(prompts, g, batch.completion_ids)
        (logits * weights * batch.completion_mask.unsqueeze(-1)).sum().backward()
        return logits.detach(), {n: q.grad.clone() for n, q in pol.model.named_parameters() if q.grad is not None}

    shared, shared_grads = logits_and_grads(shared_prompts, 3)
    single, single_grads = logits_and_grads(repeated, 1)
    keep = batch.completion_mask > 0
    torch.testing.assert_close(shared[keep], single[keep], atol=1e-10, rtol=1e-10)
    assert shared_grads.keys() == single_grads.keys() and len(shared_grads) > 10
    scale = max(float(g.abs().max()) for g in single_grads.values())
    for name, g in single_grads.items():  # relative to the largest gradient: sums of large terms
        assert float((shared_grads[name] - g).abs().max()) <= 1e-6 * scale, name


def test_frozen_vision_tower_gets_no_gradient_through_logprobs() -> None:
    pol = tiny_policy()
    batch = pol.sample(ITEMS[:2], G=2, settings=SAMPLED)
    for _, p in pol.parameter_groups()["vision_tower"]:
        p.requires_grad_(False)
    pol.logprobs(batch, batch.completion_ids, batch.completion_mask).sum().backward()
    assert all(p.grad is None for _, p in pol.parameter_groups()["vision_tower"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in pol.parameter_groups()["connector"])


def test_batches_need_equal_frame_counts(policy) -> None:
    with pytest.raises(PolicyError, match="same number of frames"):
        policy.build_inputs([(tiny_frames(n=4), "q?", None), (tiny_frames(n=3), "q?", None)])
    with pytest.raises(PolicyError, match="question is empty"):
        policy.build_inputs([(tiny_frames(), "  ", None)])


def test_text_init_spread_is_what_the_tests_assume() -> None:
    assert tiny_policy().config.text_config.initializer_range == TEXT_INIT_STD
