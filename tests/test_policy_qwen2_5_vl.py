"""Qwen2.5-VL policies (tinyr1.policy.qwen2_5_vl): the runtime on a tiny random Qwen2.5-VL.

    .venv/bin/pytest tests/test_policy_qwen2_5_vl.py -q

The runtime tests check tinyr1's path (video encoded once, 3-D positions computed once) against
transformers' own Qwen2.5-VL path from ``input_ids`` + ``pixel_values_videos``, then the policy
contract: batched G-sampling, log-probs equal to the sampler's with gradients, end tokens,
never-emitted tokens, nf4 with the vision tower in full precision, GRPO with LoRA, save and load.
The model-side patchifier and prompt are tests/test_models_qwen2_5_vl.py's.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyr1.models.qwen2_5_vl import IM_END, VIDEO_PAD, preprocess_video
from tinyr1.policy import GenerationSettings, PolicyError, load_policy, policy_from_model
from tinyr1.policy.qwen2_5_vl import QwenVLPolicy, tiny_qwen_vl_policy

torch.set_num_threads(1)

GREEDY = GenerationSettings(max_new_tokens=8, temperature=0.0)
QUESTION = ("How many squares appear?", ["1", "2", "3"])


def _frames(n: int = 4, h: int = 40, w: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


# ======================================================================================= runtime
@pytest.fixture(scope="module")
def policy() -> QwenVLPolicy:
    return tiny_qwen_vl_policy(seed=0)


@pytest.fixture(scope="module")
def policy_dir(policy, tmp_path_factory) -> Path:
    return policy.save(tmp_path_factory.mktemp("qwen") / "tiny-qwen")


def _items():
    return [(_frames(seed=0), *QUESTION), (_frames(seed=1), "Which way does the red square move now?", ["up", "down"])]


def test_tinyr1_path_equals_transformers_own_qwen_path(policy) -> None:
    """Same logits as Qwen2_5_VLForConditionalGeneration fed input_ids + pixel_values_videos (the
    official processor's layout), and the same raw greedy tokens as its own generate."""
    core, items = policy.core, _items()
    batch = policy.build_inputs(items)  # left-padded: the prompts differ in length
    assert int(batch.attention_mask.sum(1).min()) < batch.input_ids.shape[1]
    videos = [preprocess_video(f, policy.processing) for f, _, _ in items]
    official = dict(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask,
        pixel_values_videos=torch.cat([v.pixel_values_videos for v in videos]),
        video_grid_thw=torch.cat([v.video_grid_thw for v in videos]),
        mm_token_type_ids=(batch.input_ids == core.config.video_token_id).int() * 2,
        second_per_grid_ts=torch.tensor([1.0, 1.0]),  # temporal patch 2 / 2 frames per second
    )
    _, ours = policy._generation_inputs(batch, 1)
    with torch.no_grad():
        want = core(**official).logits
        got = core(**ours).logits
        valid = batch.attention_mask.bool()
        assert float((got - want)[valid].abs().max()) <= 1e-5  # measured: 0
        core.model.rope_deltas = None
        kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=policy.pad_token_id, eos_token_id=policy.end_token_ids)
        theirs = core.generate(**official, **kw)[:, batch.input_ids.shape[1]:]
        mine = core.generate(**ours, **kw)
    assert torch.equal(mine, theirs)


def test_sample_draws_G_per_prompt_in_one_call_with_logprobs_equal_to_recompute(policy) -> None:
    items = _items()
    settings = GenerationSettings(max_new_tokens=10, temperature=1.0, seed=3)
    batch = policy.sample(items, G=3, settings=settings)
    assert len(batch) == 6 and batch.prompt_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.completion_ids.shape == batch.logprobs.shape == batch.completion_mask.shape
    lp = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)
    assert float((lp.detach() - batch.logprobs).abs().max()) <= 1e-4  # fp32; measured ~1e-5
    policy.model.zero_grad()
    (lp * batch.completion_mask).sum().backward()
    groups = policy.parameter_groups()
    for part in ("language_model", "connector", "vision_tower"):  # the video features carry gradients too
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for _, p in groups[part]), part
    policy.model.zero_grad()


def test_batched_greedy_equals_one_prompt_at_a_time(policy) -> None:
    items = _items()
    batch = policy.sample(items, G=2, settings=GREEDY)
    singles = [policy.generate(f, q, o, GREEDY) for f, q, o in items]
    assert batch.texts == [singles[0], singles[0], singles[1], singles[1]]


def test_stream_grows_to_the_generated_text(policy) -> None:
    frames, q, o = _items()[0]
    seen = list(policy.stream(frames, q, o, GREEDY))
    assert seen and all(b.startswith(a) for a, b in zip(seen, seen[1:]))
    assert seen[-1] == policy.generate(frames, q, o, GREEDY)


def _push(policy, token_ids, value: float = 1e4):
    """Make the LM head prefer ``token_ids`` overwhelmingly (a hook; remove the returned handle)."""
    ids = torch.tensor(token_ids)

    def hook(module, args, out):
        out = out.clone()
        out[..., ids] += value
        return out

    return policy.core.lm_head.register_forward_hook(hook)


def test_sampling_never_emits_vision_pad_or_rows_beyond_the_tokenizer(policy) -> None:
    banned = policy.suppressed_token_ids
    names = {policy.tokenizer.convert_ids_to_tokens(i) for i in banned if i < len(policy.tokenizer)}
    assert {"<|video_pad|>", "<|image_pad|>", "<|vision_start|>", "<|vision_end|>", "<|pad|>"} <= names
    assert max(banned) == policy.core.get_input_embeddings().weight.shape[0] - 1  # the extra rows
    handle = _push(policy, banned)
    try:
        for settings in (GREEDY, GenerationSettings(max_new_tokens=8, temperature=1.0, seed=0)):
            batch = policy.sample(_items(), G=2, settings=settings)
            assert not torch.isin(batch.completion_ids[batch.completion_mask > 0], torch.tensor(banned)).any()
    finally:
        handle.remove()


@pytest.mark.parametrize("end", [IM_END, "<|endoftext|>"])  # the chat turn's end, the text's end
def test_a_completion_ends_at_either_end_token(policy, end) -> None:
    end_id = policy.tokenizer.convert_tokens_to_ids(end)
    handle = _push(policy, [end_id])
    try:
        batch = policy.sample(_items()[:1], G=1, settings=GREEDY)
    finally:
        handle.remove()
    assert batch.completion_ids[0, 0] == end_id and float(batch.completion_mask[0].sum()) == 1.0
    assert bool(batch.finished[0]) and batch.texts == [""]


def test_bad_inputs_are_policy_errors(policy) -> None:
    with pytest.raises(PolicyError, match="same number of frames"):
        policy.build_inputs([(_frames(4), "q", None), (_frames(6), "q", None)])
    with pytest.raises(PolicyError, match="video placeholders"):
        policy.build_inputs([(_frames(), f"what is {VIDEO_PAD}?", None)])
    with pytest.raises(PolicyError, match="question is empty"):
        policy.generate(_frames(), " ", None, GREEDY)


def test_a_tokenizer_from_another_model_is_refused(policy) -> None:
    from tinyr1.policy.qwen2_5_vl import tiny_qwen_vl_model, tiny_qwen_vl_tokenizer

    other = tiny_qwen_vl_tokenizer()
    model = tiny_qwen_vl_model(other)
    model.config.video_token_id = other.convert_tokens_to_ids("<|image_pad|>")
    with pytest.raises(PolicyError, match="video_token_id"):
        QwenVLPolicy(model, other)


def test_saved_policy_loads_back_identical(policy, policy_dir) -> None:
    loaded = load_policy(policy_dir)
    assert isinstance(loaded, QwenVLPolicy)
    assert loaded.processing == policy.processing and loaded.num_frames == policy.num_frames
    frames, q, o = _items()[0]
    assert loaded.generate(frames, q, o, GREEDY) == policy.generate(frames, q, o, GREEDY)
    described = json.loads(json.dumps(loaded.describe()))
    assert described["kind"] == "qwen2_5_vl" and described["template"] == "r1"


def test_nf4_keeps_vision_merger_and_head_in_full_precision(policy_dir) -> None:
    nf4 = load_policy(policy_dir, quantization="nf4")
    kinds = {name: type(m).__name__ for name, m in nf4.core.named_modules()}
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] == "Linear4bit"
    assert kinds["model.language_model.layers.1.mlp.down_proj"] == "Linear4bit"
    assert not any(k == "Linear4bit" for n, k in kinds.items() if n.startswith(("model.visual", "lm_head")))
    batch = nf4.sample(_items(), G=2, settings=GenerationSettings(max_new_tokens=6, seed=1))
    with torch.no_grad():
        lp = nf4.logprobs(batch, batch.completion_ids, batch.completion_mask)
    assert float((lp - batch.logprobs).abs().max()) <= 1e-4
    with pytest.raises(PolicyError, match="cannot save"):
        nf4.save(policy_dir.parent / "nope")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from tinyr1.data import load_dataset
    from tinyr1.world import write_split

    return load_dataset(write_split("train", 4, tmp_path_factory.mktemp("world"), progress=False))


QUICK = dict(prompts_per_step=2, num_generations=3, max_new_tokens=6, warmup_ratio=0.0, checkpoint_every=0,
             learning_rate=1e-2)


def test_grpo_with_lora_on_nf4_trains_adapters_and_connector_only(policy_dir, rows, tmp_path) -> None:
    from tinyr1.grpo import GRPOConfig, train

    nf4 = load_policy(policy_dir, quantization="nf4")
    before = {part: {n: p.detach().clone() for n, p in params} for part, params in nf4.parameter_groups().items()}
    records = list(train(GRPOConfig(steps=2, lora_r=4, **QUICK), nf4, rows, tmp_path / "run"))
    assert len(records) == 2 and np.isfinite(records[-1].metrics["loss"])
    after = {part: {n.replace("base_model.model.", "").replace(".base_layer", ""): p for n, p in params}
             for part, params in nf4.parameter_groups().items()}
    lora = [p for n, p in nf4.model.named_parameters() if "lora_B" in n]
    assert lora and all(".language_model." in n for n, _ in nf4.model.named_parameters() if "lora_" in n)
    assert any(float(p.abs().sum()) > 0 for p in lora)  # adapters moved (B starts at zero)
    assert all(torch.equal(after["language_model"][n], p) for n, p in before["language_model"].items())
    assert all(torch.equal(after["vision_tower"][n], p) for n, p in before["vision_tower"].items())  # frozen
    assert any(not torch.equal(after["connector"][n], p) for n, p in before["connector"].items())
    assert (tmp_path / "run" / "final" / "adapter").is_dir()


def test_grpo_full_finetune_with_a_reference_saves_a_loadable_policy(policy_dir, rows, tmp_path) -> None:
    from tinyr1.grpo import GRPOConfig, train

    trained = load_policy(policy_dir)
    ref = policy_from_model(trained.core, trained.tokenizer, name="ref")  # how the loop builds its reference
    assert isinstance(ref, QwenVLPolicy) and ref.processing == trained.processing
    list(train(GRPOConfig(steps=1, beta=0.04, **QUICK), trained, rows, tmp_path / "run"))
    final = load_policy(tmp_path / "run" / "final")
    frames, q, o = _items()[0]
    assert isinstance(final, QwenVLPolicy)
    assert final.generate(frames, q, o, GREEDY) == trained.generate(frames, q, o, GREEDY)
