"""The TinyLLaVA-Video architecture (tinyr1.models.tinyllava): config, connector, splice, preprocessing.

    .venv/bin/pytest tests/test_models_tinyllava.py -q

Everything runs on tiny random models built in-process (tests/tiny.py).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import tiny_frames, tiny_model, tiny_tokenizer
from transformers import SiglipVisionModel

from tinyr1.format import IMAGE_TOKEN_INDEX, build_prompt
from tinyr1.models import (
    GroupResampler,
    TinyLlavaVideoConfig,
    TinyLlavaVideoForConditionalGeneration,
    left_pad,
    preprocess_frames,
    prompt_ids,
)
from tinyr1.models.tinyllava.connector import chunk_sizes, sinusoidal_encoding

torch.set_num_threads(1)


def _inputs(model, frames_list, question="How many squares?"):
    tok = tiny_tokenizer()
    cfg = model.config
    rows = [prompt_ids(tok, build_prompt(question, ["1", "2"]), cfg.num_visual_tokens)] * len(frames_list)
    ids, mask = left_pad(rows, tok.pad_token_id)
    pv = torch.stack([preprocess_frames(f, cfg.image_size) for f in frames_list])
    return ids, mask, pv


# --- config -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(num_queries=10, group=4), "multiple of group"),  # 10 latents cannot split over 4 groups
        (dict(num_queries=2, group=4), "multiple of group"),   # fewer latents than groups
        (dict(group=0), "group must be"),                      # nothing to split into
        (dict(vision_feature_layer=5), "vision_feature_layer"),  # the test tower has 2 layers (states 0..2)
        (dict(vision_feature_layer=-4), "vision_feature_layer"),
        (dict(image_token_index=5), "negative"),               # would collide with a vocabulary id
    ],
)
def test_config_rejects_inconsistent_fields(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        TinyLlavaVideoConfig(**fields)


def test_config_round_trip_and_derived_sizes(tmp_path) -> None:
    cfg = TinyLlavaVideoConfig(num_queries=8, group=4, vision_config=dict(image_size=32, patch_size=8, num_hidden_layers=3))
    cfg.save_pretrained(tmp_path)
    again = TinyLlavaVideoConfig.from_pretrained(tmp_path)
    assert again.to_dict() == cfg.to_dict()
    assert again.tokens_per_frame == 16 - 1  # 4x4 patches minus the dropped first token
    assert again.feature_layer_index == 2    # -2 of 3 layers: the output of layer 2 of 3
    assert again.latents_per_group == 2


# --- connector ----------------------------------------------------------------------------------
@pytest.mark.parametrize("length, group", [(12, 4), (13, 4), (15, 4), (3, 4), (0, 2), (728 * 16, 16)])
def test_chunk_sizes_follow_tensor_split(length: int, group: int) -> None:
    expected = [c.shape[0] for c in torch.tensor_split(torch.arange(length), group)]
    assert chunk_sizes(length, group) == expected


def _naive_resampler(r: GroupResampler, features: torch.Tensor) -> torch.Tensor:
    """The connector written the slow, literal way: one chunk at a time, explicit softmax."""
    x = r.linear(features)
    outs = []
    for chunk in torch.tensor_split(x, r.group, dim=1):
        lat = r.latents.unsqueeze(0).expand(x.shape[0], -1, -1)
        for attn, ff in r.layers:
            media, l = attn.norm_media(chunk), attn.norm_latents(lat)
            q = attn.to_q(l)
            k, v = attn.to_kv(torch.cat([media, l], 1)).chunk(2, -1)
            split = lambda t: t.reshape(t.shape[0], t.shape[1], attn.heads, attn.dim_head).transpose(1, 2)
            q, k, v = split(q) * attn.dim_head**-0.5, split(k), split(v)
            a = (q @ k.transpose(-1, -2)).softmax(-1) @ v
            lat = attn.to_out(a.transpose(1, 2).reshape(x.shape[0], -1, attn.heads * attn.dim_head)) + lat
            lat = ff(lat) + lat
        outs.append(r.norm(lat))
    out = torch.cat(outs, 1)
    d = out.shape[-1]
    pe = torch.zeros(out.shape[1], d)
    for pos in range(out.shape[1]):
        for i in range(0, d, 2):
            angle = pos / (10000 ** (i / d))
            pe[pos, i], pe[pos, i + 1] = math.sin(angle), math.cos(angle)
    return out + pe.half().float()


@pytest.mark.parametrize(
    "frames, tokens_per_frame, group",
    [
        (4, 15, 4),   # 60 tokens, 4 groups: divisible (one frame per group, as the official 16/16)
        (3, 15, 4),   # 45 tokens: first chunk one longer
        (5, 15, 4),   # 75 tokens: first 3 chunks longer
        (1, 3, 4),    # fewer tokens than groups: the last chunk is empty, only latents are attended
        (8, 15, 2),   # many frames per group
    ],
)
def test_resampler_shapes_and_matches_naive_loop(frames: int, tokens_per_frame: int, group: int) -> None:
    torch.manual_seed(0)
    r = GroupResampler(12, 16, num_queries=group * 3, group=group, layers=2, heads=2, dim_head=8).eval()
    feats = torch.randn(2, frames * tokens_per_frame, 12)
    with torch.no_grad():
        out = r(feats)
        assert out.shape == (2, group * 3, 16)  # always num_queries tokens, whatever the frame count
        torch.testing.assert_close(out, _naive_resampler(r, feats), atol=1e-5, rtol=1e-5)


def test_positional_encoding_values_and_dtypes() -> None:
    pe = sinusoidal_encoding(5, 8, device=torch.device("cpu"), dtype=torch.float32, fp16=False)[0]
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0] * 4))  # position 0: sin 0, cos 0
    assert pe[3, 0] == pytest.approx(math.sin(3.0))
    half = sinusoidal_encoding(5, 8, device=torch.device("cpu"), dtype=torch.bfloat16, fp16=True)
    assert half.dtype == torch.bfloat16 and half.shape == (1, 5, 8)


# --- the model ----------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_logits(tmp_path) -> None:
    model = tiny_model(seed=1)
    ids, mask, pv = _inputs(model, [tiny_frames(seed=0), tiny_frames(seed=1)])
    with torch.no_grad():
        before = model(input_ids=ids, pixel_values=pv, attention_mask=mask).logits
    model.save_pretrained(tmp_path)
    again = TinyLlavaVideoForConditionalGeneration.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        after = again(input_ids=ids, pixel_values=pv, attention_mask=mask).logits
    assert torch.equal(before, after)
    tied = again.language_model
    assert tied.lm_head.weight.data_ptr() == tied.model.embed_tokens.weight.data_ptr()


def test_different_videos_give_different_logits_and_same_videos_same() -> None:
    model = tiny_model()
    a, b = tiny_frames(seed=0), tiny_frames(seed=1)
    ids, mask, pv = _inputs(model, [a, b, a])
    with torch.no_grad():
        logits = model(input_ids=ids, pixel_values=pv, attention_mask=mask).logits[:, -1]
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)  # the video reaches the answer
    torch.testing.assert_close(logits[0], logits[2])            # and only the video differs


def test_vision_features_are_layer_minus_two_without_the_first_token() -> None:
    model = tiny_model()
    pv = preprocess_frames(tiny_frames(n=2), model.config.image_size)
    tower = SiglipVisionModel(model.config.vision_config)
    tower.load_state_dict(model.vision_tower.state_dict())
    with torch.no_grad():
        ref = tower(pv, output_hidden_states=True).hidden_states[-2][:, 1:]
        ours = model.vision_features(pv)
    torch.testing.assert_close(ours, ref)


def test_placeholder_count_is_checked() -> None:
    model = tiny_model()
    pv = torch.zeros(1, 4, 3, 32, 32)
    one = torch.tensor([[5, IMAGE_TOKEN_INDEX, 6]])  # the official single placeholder: not expanded
    with pytest.raises(ValueError, match="exactly 8 image placeholders"):
        model(input_ids=one, pixel_values=pv)
    with pytest.raises(ValueError, match="no pixel_values"):
        model(input_ids=one)


def test_labels_on_placeholders_are_ignored() -> None:
    model = tiny_model()
    ids, mask, pv = _inputs(model, [tiny_frames()])
    labels = ids.clone()  # placeholders carry -200 labels: must not reach the loss
    labels[:, : ids.shape[1] // 2] = -100
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pv, attention_mask=mask, labels=labels)
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_runs_in_half_precision(dtype) -> None:
    model = tiny_model().to(dtype)
    ids, mask, pv = _inputs(model, [tiny_frames()])
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pv, attention_mask=mask)  # float32 pixels are cast
    assert out.logits.dtype == dtype and torch.isfinite(out.logits.float()).all()


def test_frozen_vision_tower_gets_no_gradient_but_connector_does() -> None:
    model = tiny_model().train()
    model.vision_tower.requires_grad_(False)
    ids, mask, pv = _inputs(model, [tiny_frames()])
    labels = ids.masked_fill(mask == 0, -100)
    model(input_ids=ids, pixel_values=pv, attention_mask=mask, labels=labels).loss.backward()
    assert all(p.grad is None for p in model.vision_tower.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.connector.parameters())


def test_parameter_groups_cover_every_parameter_once() -> None:
    model = tiny_model()
    groups = model.parameter_groups()
    names = [n for part in groups.values() for n, _ in part]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert {model.part_of(n) for n, _ in groups["connector"]} == {"connector"}


# --- preprocessing ------------------------------------------------------------------------------
def test_preprocess_resizes_with_pil_bicubic_and_normalises() -> None:
    frames = tiny_frames(n=2, size=(48, 40))
    x = preprocess_frames(frames, 32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    ref = np.asarray(Image.fromarray(frames[1]).resize((32, 32), Image.BICUBIC)).astype(np.float32)
    torch.testing.assert_close(x[1].permute(1, 2, 0), torch.from_numpy(ref / 255.0 * 2 - 1))


@pytest.mark.parametrize("value, expected", [(0, -1.0), (255, 1.0), (51, 51 / 255 * 2 - 1)])
def test_preprocess_maps_pixel_values(value: int, expected: float) -> None:
    frames = np.full((1, 32, 32, 3), value, np.uint8)  # already the right size: not resampled
    assert torch.allclose(preprocess_frames(frames, 32), torch.full((1, 3, 32, 32), expected))


def test_preprocess_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        preprocess_frames(np.zeros((2, 32, 32), np.uint8), 32)


def test_prompt_ids_split_around_the_image() -> None:
    tok = tiny_tokenizer()
    prompt = build_prompt("How many?", ["1", "2"])
    ids = prompt_ids(tok, prompt, 5)
    first = ids.index(IMAGE_TOKEN_INDEX)
    assert ids[first : first + 5] == [IMAGE_TOKEN_INDEX] * 5 and ids.count(IMAGE_TOKEN_INDEX) == 5
    before, after = prompt.split("<image>")
    assert tok.decode(ids[:first]) == before and tok.decode(ids[first + 5 :]) == after
    with pytest.raises(ValueError, match="exactly once"):
        prompt_ids(tok, "no image here", 5)


def test_left_pad_right_aligns_rows() -> None:
    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
