"""The lean loss forward on both families: chunked completion log-probs, the packed shared-prompt
pass, activation checkpointing, and the vision tower run once per prompt.

    .venv/bin/pytest tests/test_lean_logprobs.py -q

The reference is the computation ``Policy.logprobs`` used before it went lean, kept here: every
prompt repeated G times, one pass over [prompt; completion] through the whole causal LM (the
library's own 2-D mask), float32 logits over every position and the whole vocabulary, then
log_softmax and gather. Tiny random policies (tests/tiny.py, tiny_qwen_vl_policy); nothing is
downloaded.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_frames, tiny_policy

from tinyr1.policy import GenerationSettings
from tinyr1.policy.qwen2_5_vl import tiny_qwen_vl_policy
from tinyr1.policy.runtime import chunked_logprobs

torch.set_num_threads(1)

SAMPLED = GenerationSettings(max_new_tokens=10, temperature=1.3, top_p=0.9, seed=5)
G = 3


def _qwen_frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (4, 40, 50, 3), dtype=np.uint8)


def _tinyllava():
    items = [(tiny_frames(seed=0), "How many squares?", ["1", "2"]),
             (tiny_frames(seed=1), "Which way does the red square move across the frame?", ["left", "right"])]
    return tiny_policy(), items


def _qwen():
    items = [(_qwen_frames(0), "How many squares appear?", ["1", "2", "3"]),
             (_qwen_frames(1), "Which way does the red square move now?", ["up", "down"])]
    return tiny_qwen_vl_policy(seed=0), items


FAMILIES = {"tinyllava": _tinyllava, "qwen2_5_vl": _qwen}


def _reference_logprobs(pol, batch) -> torch.Tensor:
    """The full computation: repeated prompts, [rows, T, vocab] float32 logits, log_softmax."""
    core, backend = pol.core, pol.backend
    p = batch.prompts
    repeated = type(p)(p.input_ids.repeat_interleave(G, 0), p.attention_mask.repeat_interleave(G, 0),
                       p.pixel_values.repeat_interleave(G, 0))
    embeds, mask, positions = backend.prompt_inputs(core, repeated, pol.device)
    ids = batch.completion_ids
    t = ids.shape[1]
    tokens = core.get_input_embeddings()(ids).to(embeds.dtype)
    steps = torch.arange(1, t + 1, dtype=positions.dtype)
    lm = core.language_model if backend.kind == "tinyllava_video" else core
    out = lm(inputs_embeds=torch.cat([embeds, tokens], 1),
             attention_mask=torch.cat([mask, torch.ones_like(ids, dtype=mask.dtype)], 1),
             position_ids=torch.cat([positions, positions[..., -1:] + steps], -1), use_cache=False)
    logits = out.logits[:, mask.shape[1] - 1 : -1].float()
    logits = logits.index_fill(2, torch.tensor(pol.suppressed_token_ids), float("-inf"))
    lp = torch.log_softmax(logits / batch.settings.logprob_temperature, -1).gather(2, ids[..., None]).squeeze(-1)
    return torch.where(batch.completion_mask > 0, lp, torch.zeros_like(lp))


def _grads(pol, lp: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    pol.model.zero_grad()
    (lp * weights).sum().backward()
    grads = {n: q.grad.clone() for n, q in pol.model.named_parameters() if q.grad is not None}
    pol.model.zero_grad()
    return grads


def _assert_same_grads(a: dict, b: dict, rel: float) -> None:
    assert a.keys() == b.keys() and len(a) > 10
    scale = max(float(g.abs().max()) for g in b.values())
    for name, g in b.items():  # relative to the largest gradient: sums of many terms
        assert float((a[name] - g).abs().max()) <= rel * scale, name


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def sampled(request):
    pol, items = FAMILIES[request.param]()
    batch = pol.sample(items, G=G, settings=SAMPLED)
    assert len(set(batch.lengths.tolist())) > 1 or not batch.finished.all()
    weights = torch.randn(batch.completion_ids.shape, generator=torch.Generator().manual_seed(0))
    pol.model.train()
    return pol, batch, weights


def test_lean_logprobs_and_gradients_equal_the_full_computation(sampled) -> None:
    pol, batch, weights = sampled
    reference = _reference_logprobs(pol, batch)
    reference_grads = _grads(pol, reference, weights)
    lean = pol.logprobs(batch, batch.completion_ids, batch.completion_mask)
    torch.testing.assert_close(lean.detach(), reference.detach(), atol=1e-5, rtol=0)
    assert (lean[batch.completion_mask == 0] == 0).all()
    _assert_same_grads(_grads(pol, lean, weights), reference_grads, 1e-5)


def test_chunks_of_a_few_positions_give_the_same_values_and_gradients(sampled) -> None:
    pol, batch, weights = sampled
    core, backend = pol.core, pol.backend
    temperature = batch.settings.logprob_temperature

    def run(chunk_elements: int):
        hidden = backend.completion_hidden(core, batch.prompts, G, batch.completion_ids, pol.device)
        return chunked_logprobs(hidden, backend.lm_head(core), batch.completion_ids, batch.completion_mask,
                                pol.suppressed_token_ids, temperature, chunk_elements)

    vocab = backend.lm_head(core).out_features
    one_chunk = run(10**9)
    small = run(3 * vocab)  # 3 positions per chunk: many chunks, one partial
    assert int(batch.completion_mask.sum()) > 9
    torch.testing.assert_close(small.detach(), one_chunk.detach(), atol=1e-5, rtol=0)
    _assert_same_grads(_grads(pol, small, weights), _grads(pol, one_chunk, weights), 1e-5)


def test_checkpointing_gives_equal_gradients(sampled) -> None:
    pol, batch, weights = sampled
    plain = _grads(pol, pol.logprobs(batch, batch.completion_ids, batch.completion_mask), weights)
    pol.backend.set_checkpointing(pol.core, True)
    try:
        assert pol.backend.decoder(pol.core).is_activation_checkpointing
        checkpointed = _grads(pol, pol.logprobs(batch, batch.completion_ids, batch.completion_mask), weights)
    finally:
        pol.backend.set_checkpointing(pol.core, False)
    assert not pol.backend.decoder(pol.core).is_activation_checkpointing
    _assert_same_grads(checkpointed, plain, 1e-6)


def _vision_module(pol):
    return pol.core.vision_tower if pol.backend.kind == "tinyllava_video" else pol.core.model.visual


def test_vision_features_run_once_per_prompt_in_sampling_and_in_the_loss(sampled) -> None:
    pol, batch, _ = sampled
    seen: list[int] = []
    tower = _vision_module(pol)
    count_into = tower.embeddings if pol.backend.kind == "tinyllava_video" else tower
    handle = count_into.register_forward_hook(lambda m, args, out: seen.append(int(args[0].shape[0])))
    try:
        pol.sample([(f, q, o) for f, q, o in _items_of(pol, batch)], G=G, settings=SAMPLED)
        sampling = list(seen)
        seen.clear()
        pol.logprobs(batch, batch.completion_ids, batch.completion_mask)
    finally:
        handle.remove()
    assert len(sampling) == 1 and len(seen) == 1  # one call for the batch's two prompts, not per completion
    assert seen == sampling  # the same number of frames (or patches) as the prompts alone hold


def _items_of(pol, batch):
    """Items with the same number of frames as the batch (frames themselves do not matter here)."""
    if pol.backend.kind == "tinyllava_video":
        return [(tiny_frames(seed=i), "q?", None) for i in range(len(batch.prompts))]
    return [(_qwen_frames(i), "q?", None) for i in range(len(batch.prompts))]


def test_a_grpo_step_with_checkpointing_updates_like_one_without(tmp_path) -> None:
    """The option reaches the model (on when asked, off by default for a tiny policy) and the
    update it makes is the one without it."""
    from tinyr1.data import load_dataset
    from tinyr1.grpo import GRPOConfig, train
    from tinyr1.policy import load_policy
    from tinyr1.policy.random import make_random_policy
    from tinyr1.world import write_split

    policy_dir = make_random_policy(tmp_path / "tiny", "test", seed=0)
    rows = load_dataset(write_split("train", 4, tmp_path / "world", progress=False))
    quick = dict(prompts_per_step=2, num_generations=3, max_new_tokens=8, warmup_ratio=0.0, checkpoint_every=0,
                 learning_rate=1e-3)
    weights = {}
    for on in (False, True):
        pol = load_policy(policy_dir, device="cpu")
        config = GRPOConfig(steps=1, gradient_checkpointing=True if on else None, **quick)
        list(train(config, pol, rows, tmp_path / f"run-{on}"))
        assert pol.backend.decoder(pol.core).is_activation_checkpointing == on
        weights[on] = {n: p.detach().clone() for n, p in pol.model.named_parameters()}
    moved = [n for n in weights[False] if not torch.equal(weights[False][n], weights[True][n])]
    assert all(torch.allclose(weights[True][n], weights[False][n], atol=1e-6) for n in weights[False]), moved
    assert GRPOConfig().checkpointing_for(3_000_000_000) and not GRPOConfig().checkpointing_for(2_000_000)
    assert not GRPOConfig(gradient_checkpointing=False).checkpointing_for(3_000_000_000)
