"""The official-checkpoint converter against outputs recorded from the official code itself.

    .venv/bin/pytest tests/test_models_tinyllava_convert.py -q

``tests/fixtures/official_tiny/`` was written by ``bench/official_reference.py``: a tiny random
model built, saved and reloaded by the official TinyLLaVA-Video-R1 code (transformers 4.49, CPU),
with what it computed on fixed frames and a fixed prompt. Here tinyr1's converter loads that
checkpoint and must reproduce those numbers (logits within 1e-4 in fp32, identical greedy tokens),
and must refuse, naming the keys, any checkpoint whose weights do not map one to one.
docs/EQUIVALENCE.md records the figures.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from tinyr1.format import GRPO_SUFFIX, IMAGE_TOKEN_INDEX, SYSTEM_PROMPT, build_prompt, build_question
from tinyr1.models import preprocess_frames, prompt_ids
from tinyr1.models.tinyllava.convert import (
    QWEN2_449_DEFAULTS,
    ConversionError,
    convert_official,
    is_official_checkpoint,
    official_key_to_ours,
)

FIXTURE = Path(__file__).parent / "fixtures" / "official_tiny"
CKPT = FIXTURE / "checkpoint"
TOL = 1e-4  # fp32 logits of a faithful port agree far closer (measured ~4e-6); 1e-4 leaves room for BLAS order


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURE / "expected.json").read_text())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return convert_official(CKPT, dtype=torch.float32)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(CKPT)


@pytest.fixture(scope="module")
def pixel_values() -> torch.Tensor:
    return torch.from_numpy(np.load(FIXTURE / "pixel_values.npy"))


def expanded(official_ids: list[int], visual_tokens: int) -> list[int]:
    """The official input_ids hold one -200; ours hold one per visual token."""
    out: list[int] = []
    for i in official_ids:
        out += [i] * visual_tokens if i == IMAGE_TOKEN_INDEX else [i]
    return out


@pytest.fixture(scope="module")
def input_ids(expected, tokenizer, model) -> torch.Tensor:
    return torch.tensor([prompt_ids(tokenizer, expected["prompt"], model.config.num_visual_tokens)])


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


# --- inputs: the prompt, its tokens, the frames ----------------------------------------------------
def test_official_prompt_is_the_qwen2_base_template_without_a_trailing_space(expected) -> None:
    # The official eval/GRPO prompt ends "ASSISTANT:" (its template renders an empty answer as
    # "ASSISTANT:"); the question is ours, rendered identically.
    question = build_question(expected["question"], expected["options"])
    assert question == expected["question_text"] and question.endswith(GRPO_SUFFIX)
    assert expected["prompt"] == f"{SYSTEM_PROMPT} USER: <image>\n{question} ASSISTANT:"


def test_build_prompt_equals_the_official_prompt(expected) -> None:
    assert build_prompt(expected["question"], expected["options"]) == expected["prompt"]


def test_prompt_tokenization_matches_official(expected, tokenizer, model, input_ids) -> None:
    # Chunks around "<image>" tokenized separately (so "USER: " keeps its own space token before
    # the video), no special tokens added; our single -200 becomes one per visual token.
    assert input_ids[0].tolist() == expanded(expected["input_ids"], model.config.num_visual_tokens)
    assert expected["input_ids"][expected["image_token_position"]] == IMAGE_TOKEN_INDEX


def test_frame_preprocessing_matches_the_official_siglip_processor(pixel_values, model) -> None:
    frames = np.load(FIXTURE / "frames.npy")  # uint8 [5, 40, 48, 3]: not square, not 32 px
    ours = preprocess_frames(frames, model.config.image_size, model.config.image_mean, model.config.image_std)
    assert ours.shape == pixel_values.shape
    assert max_diff(ours, pixel_values) <= 1e-6


# --- the model: intermediates, logits, greedy decoding -----------------------------------------------
def test_vision_features_and_connector_match_official(model, pixel_values) -> None:
    with torch.no_grad():
        feats = model.vision_features(pixel_values[:4])
        visual = model.encode_video(pixel_values[:4][None])
    assert max_diff(feats, np.load(FIXTURE / "vision_features.npy")) <= 1e-5
    assert max_diff(visual, np.load(FIXTURE / "connector_out.npy")) <= 1e-5


def test_logits_match_official_within_1e4(model, input_ids, pixel_values, expected) -> None:
    reference = np.load(FIXTURE / "logits.npy")
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values[:4][None]).logits[0]
    assert logits.shape == reference.shape == (expected["cases"]["aligned"]["sequence_length"], model.config.text_config.vocab_size)
    assert max_diff(logits, reference) <= TOL
    assert float(np.abs(reference).max()) > 1.0  # a 1e-4 bound on O(1) logits means something


def test_greedy_tokens_and_their_logits_match_official(model, input_ids, pixel_values, expected) -> None:
    case = expected["cases"]["aligned"]
    with torch.no_grad():
        out = model.generate(input_ids, pixel_values=pixel_values[:4][None], do_sample=False,
                             max_new_tokens=len(case["greedy_tokens"]), output_logits=True, return_dict_in_generate=True)
    assert out.sequences[0].tolist() == case["greedy_tokens"]
    steps = torch.stack([s[0] for s in out.logits])
    assert max_diff(steps, np.load(FIXTURE / "greedy_step_logits.npy")) <= TOL


def test_uneven_group_split_matches_official(model, input_ids, pixel_values, expected) -> None:
    # 5 frames x 15 tokens = 75 tokens in 4 groups: 19, 19, 19, 18 (tensor_split semantics).
    case = expected["cases"]["remainder"]
    video = pixel_values[: case["frames"]][None]
    with torch.no_grad():
        visual = model.encode_video(video)
        last = model(input_ids=input_ids, pixel_values=video).logits[0, -1]
        tokens = model.generate(input_ids, pixel_values=video, do_sample=False, max_new_tokens=len(case["greedy_tokens"]))
    assert max_diff(visual, np.load(FIXTURE / "remainder_connector_out.npy")) <= 1e-5
    assert max_diff(last, np.load(FIXTURE / "remainder_last_logits.npy")) <= TOL
    assert tokens[0].tolist() == case["greedy_tokens"]


# Each row breaks one fact the port rests on; the comparison must notice (it can fail).
MUTATIONS = [
    ("position encoding in fp32, not rounded to fp16", lambda m: setattr(m.connector, "position_encoding_fp16", False)),
    ("features from the last vision layer, not layer -2", lambda m: setattr(m.config, "vision_feature_layer", -1)),
    ("first vision token kept", lambda m: setattr(m.config, "drop_first_token", False)),
]


@pytest.mark.parametrize("what,mutate", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_comparison_detects_a_wrong_port(what, mutate, input_ids, pixel_values) -> None:
    wrong = convert_official(CKPT, dtype=torch.float32)
    mutate(wrong)
    with torch.no_grad():
        logits = wrong(input_ids=input_ids, pixel_values=pixel_values[:4][None]).logits[0]
    assert max_diff(logits, np.load(FIXTURE / "logits.npy")) > 2 * TOL, what


# --- configuration and names -------------------------------------------------------------------------
def test_config_mapping(model, expected) -> None:
    raw = json.loads((CKPT / "config.json").read_text())
    cfg = model.config
    text, vision = cfg.text_config, cfg.vision_config
    rows = [
        # (ours, official, why)
        (cfg.group, raw["group"], "the extra 'group' key the connector reads"),
        (cfg.num_queries, raw["num_queries"], "visual tokens per video"),
        (cfg.resampler_layers, raw["num_resampler_layers"], "renamed field"),
        ((cfg.resampler_heads, cfg.resampler_dim_head, cfg.resampler_ff_mult), (8, 64, 4), "fixed in the official code"),
        (cfg.vision_feature_layer, raw["vision_feature_layer"], "hidden state -2"),
        (cfg.drop_first_token, raw["vision_feature_select_strategy"] == "patch", "'patch' drops token 0"),
        (cfg.num_frames, raw["group"], "the official eval samples one frame per group"),
        (cfg.position_encoding_fp16, True, "the official encoding is float16"),
        (text.hidden_size, raw["text_config"]["hidden_size"], "LM width"),
        (text.num_key_value_heads, raw["text_config"]["num_key_value_heads"], "grouped-query attention"),
        (text.tie_word_embeddings, True, "no lm_head in the checkpoint"),
        (text.rope_parameters["rope_theta"], raw["text_config"]["rope_theta"], "rope_theta moved in transformers 5"),
        (text.rms_norm_eps, QWEN2_449_DEFAULTS["rms_norm_eps"], "absent from the file: 4.49 default"),
        (text.hidden_act, QWEN2_449_DEFAULTS["hidden_act"], "absent from the file: 4.49 default"),
        (vision.image_size, raw["vision_config"]["image_size"], "frames resized to this square"),
        (vision.layer_norm_eps, raw["vision_config"]["layer_norm_eps"], "SigLIP eps"),
        (vision.vision_use_head, False, "pooling head dropped"),
    ]
    for ours, official, why in rows:
        assert ours == official, why
    # The official file is a 4.49 diff: the defaulted fields really are absent from it.
    assert "rms_norm_eps" not in raw["text_config"] and "hidden_act" not in raw["text_config"]


def test_every_official_weight_is_mapped_or_deliberately_dropped(model, expected) -> None:
    ours = model.state_dict()
    targets = {}
    for key, shape in expected["checkpoint_keys"].items():
        target = official_key_to_ours(key)
        if target is None:
            assert ".head." in key  # only SigLIP's unused pooling head is dropped
            continue
        assert tuple(ours[target].shape) == tuple(shape), key
        targets[target] = key
    untied = set(ours) - {"language_model.lm_head.weight"}
    assert set(targets) == untied  # one to one, nothing of ours left unfilled
    assert "language_model.lm_head.weight" not in expected["checkpoint_keys"]  # tied head not stored


# --- refusing checkpoints that do not fit --------------------------------------------------------------
def _broken_copy(tmp_path: Path, *, weights=None, config=None) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(CKPT, dst)
    if weights is not None:
        tensors = load_file(str(dst / "model.safetensors"))
        weights(tensors)
        save_file(tensors, str(dst / "model.safetensors"))
    if config is not None:
        raw = json.loads((dst / "config.json").read_text())
        config(raw)
        (dst / "config.json").write_text(json.dumps(raw))
    return dst


TO_Q = "connector._connector.layers.1.0.to_q.weight"
BROKEN = [
    # (id, weights edit, config edit, words the error must contain)
    ("missing weight", lambda t: t.pop(TO_Q), None, ["missing", "connector.layers.1.0.to_q.weight"]),
    ("unknown prefix", lambda t: t.update({"mm_projector.0.weight": torch.zeros(2)}), None,
     ["left over", "mm_projector.0.weight"]),
    ("extra connector layer", lambda t: t.update({"connector._connector.layers.2.0.to_q.weight": t[TO_Q].clone()}), None,
     ["no place", "connector._connector.layers.2.0.to_q.weight"]),
    ("wrong shape", lambda t: t.update({TO_Q: torch.zeros(3, 3)}), None, ["shape", TO_Q]),
    ("untied head that differs", lambda t: t.update({"language_model.lm_head.weight": torch.zeros(464, 16)}), None,
     ["lm_head", "ties"]),
    ("no group", None, lambda c: c.pop("group"), ["group"]),
    ("other connector", None, lambda c: c.update(connector_type="mlp2x_gelu"), ["mlp2x_gelu", "groupresampler"]),
    ("not official", None, lambda c: c.update(model_type="tinyllava_video"), ["tinyllava_video", "load it directly"]),
]


@pytest.mark.parametrize("name,weights,config,words", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_checkpoint_that_does_not_fit_raises_naming_the_problem(tmp_path, name, weights, config, words) -> None:
    src = _broken_copy(tmp_path, weights=weights, config=config)
    with pytest.raises(ConversionError) as err:
        convert_official(src)
    for word in words:
        assert word in str(err.value), (name, str(err.value))


def test_sharded_bf16_checkpoint_converts_to_the_same_model(tmp_path, model) -> None:
    # The real R1 checkpoint (3.6B, bf16) is likely sharded: model-0000x-of-0000y + index.
    dst = tmp_path / "sharded"
    shutil.copytree(CKPT, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = {k: v.to(torch.bfloat16) for k, v in load_file(str(CKPT / "model.safetensors")).items()}
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: tensors[k] for k in part}, str(dst / name))
    index = {"metadata": {}, "weight_map": {k: n for n, part in shards.items() for k in part}}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index))
    converted = convert_official(dst)
    assert converted.dtype == torch.bfloat16  # dtype=None keeps the checkpoint's
    ref = model.state_dict()
    for key, value in converted.state_dict().items():
        assert torch.equal(value, ref[key].to(torch.bfloat16)), key


# --- the command --------------------------------------------------------------------------------------------
def test_cli_writes_a_policy_that_load_policy_runs_identically(tmp_path, input_ids, pixel_values, capsys) -> None:
    from tinyr1.cli import main
    from tinyr1.policy import load_policy

    out = tmp_path / "r1"
    assert main(["convert", str(CKPT), str(out)]) == 0
    assert "8 visual tokens in 4 groups" in capsys.readouterr().out
    assert is_official_checkpoint(CKPT) and not is_official_checkpoint(out) and not is_official_checkpoint(tmp_path)
    policy = load_policy(out, device="cpu")
    assert policy.num_frames == 4 and policy.eos_token_id == policy.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    with torch.no_grad():
        logits = policy.core(input_ids=input_ids, pixel_values=pixel_values[:4][None]).logits[0]
    assert max_diff(logits, np.load(FIXTURE / "logits.npy")) <= TOL
    # Refuses to overwrite, and reports a bad source as a user error (exit 2).
    assert main(["convert", str(CKPT), str(out)]) == 2
    assert main(["convert", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "not a directory" in capsys.readouterr().err
