"""The tiny policy's tokenizer (tinyr1.tokenizer): byte-level round trips, special vs. added tokens.

    .venv/bin/pytest tests/test_tokenizer.py -q
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import tiny_tokenizer
from transformers import AutoTokenizer

from tinyr1.format import END_TOKEN, IMAGE_TOKEN, TAGS, build_prompt, format_completion
from tinyr1.tokenizer import PAD_TOKEN, default_corpus, train_tokenizer


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_any_text_round_trips(text: str) -> None:
    tok = tiny_tokenizer()
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text


@pytest.mark.parametrize(
    "token, special",
    [
        (END_TOKEN, True),   # eos: dropped from decoded completions
        (PAD_TOKEN, True),   # pad: never part of the text
        *[(tag, False) for tag in TAGS],  # tags: single tokens that skip_special_tokens keeps
    ],
)
def test_token_is_single_and_specialness(token: str, special: bool) -> None:
    tok = tiny_tokenizer()
    ids = tok.encode(token, add_special_tokens=False)
    assert len(ids) == 1, f"{token} should be one token, got {tok.convert_ids_to_tokens(ids)}"
    assert (ids[0] in tok.all_special_ids) is special
    kept = tok.decode(ids, skip_special_tokens=True)
    assert kept == ("" if special else token)


def test_decoding_a_completion_keeps_tags_and_drops_eos() -> None:
    tok = tiny_tokenizer()
    completion = format_completion("two squares", "B")
    ids = tok.encode(completion + END_TOKEN, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == completion


def test_ids_and_padding_conventions() -> None:
    tok = tiny_tokenizer()
    assert tok.eos_token == END_TOKEN and tok.pad_token == PAD_TOKEN
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.bos_token is None
    assert tok.padding_side == "left"
    # No automatic special tokens: the prompt is exactly its text.
    assert tok("hello")["input_ids"] == tok.encode("hello", add_special_tokens=False)


def test_image_placeholder_is_not_a_token() -> None:
    tok = tiny_tokenizer()
    assert len(tok.encode(IMAGE_TOKEN, add_special_tokens=False)) > 1
    with pytest.raises(ValueError, match="must not be a token"):
        train_tokenizer(default_corpus(), 300, added_tokens=[IMAGE_TOKEN])


def test_added_tokens_fuse_strings_without_being_special() -> None:
    tok = train_tokenizer(default_corpus(), 300, added_tokens=["A:right", "B:left"])
    ids = tok.encode("A:right ; B:left", add_special_tokens=False)
    tokens = tok.convert_ids_to_tokens(ids)
    assert "A:right" in tokens and "B:left" in tokens
    assert tok.decode(ids, skip_special_tokens=True) == "A:right ; B:left"


def test_vocab_size_bounds_and_validation() -> None:
    tok = train_tokenizer(default_corpus() * 3, 300)
    assert 258 <= len(tok) <= 300 + len(TAGS)  # bytes + specials <= size <= requested + tags
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["x"], 100)


def test_save_load_round_trip(tmp_path) -> None:
    tok = tiny_tokenizer()
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    prompt = build_prompt("How many squares?", ["1", "2"])
    assert again.encode(prompt, add_special_tokens=False) == tok.encode(prompt, add_special_tokens=False)
    assert (again.eos_token_id, again.pad_token_id, again.padding_side) == (tok.eos_token_id, tok.pad_token_id, "left")
    assert again.decode(again.encode("<think>x</think>", add_special_tokens=False), skip_special_tokens=True) == "<think>x</think>"
