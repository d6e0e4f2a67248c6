"""A small byte-level BPE tokenizer for the tiny policy, trained in seconds with ``tokenizers``.

    from tinyr1.tokenizer import train_tokenizer
    tok = train_tokenizer(corpus_texts, vocab_size=512)
    tok.save_pretrained("assets/policies/x")        # saved beside the policy's weights

What it guarantees (tests/test_tokenizer.py):
- byte-level: any string round-trips through encode/decode (unknown characters become bytes);
- ``END_TOKEN`` ("<|endoftext|>") is the eos token and ``PAD_TOKEN`` ("<|pad|>") a separate pad token,
  both special (dropped by ``decode(..., skip_special_tokens=True)``);
- the four tags ``<think> </think> <answer> </answer>`` are single tokens that are *not* special, so
  streaming with ``skip_special_tokens=True`` keeps them in the text;
- no BOS and no automatic special tokens, like Qwen2's tokenizer: the prompt is exactly its text;
- left padding (generation and GRPO batches pad prompts on the left).

``<image>`` is deliberately not a token: the prompt is tokenized in chunks around it and the
placeholder id -200 goes between the chunks (tinyr1.models.tinyllava.processing), as with the real Qwen
tokenizer. ``added_tokens`` lets the tiny-policy trainer fuse strings (e.g. "A:right") into
single non-special tokens.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tinyr1.format import END_TOKEN, IMAGE_TOKEN, TAGS

PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (END_TOKEN, PAD_TOKEN)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 512,
    *,
    added_tokens: Sequence[str] = (),
    min_frequency: int = 2,
    model_max_length: int = 4096,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts``; return a transformers fast tokenizer.

    ``vocab_size`` counts the 256 byte symbols, the merges and the two special tokens; the tags
    and ``added_tokens`` come on top (``len(tokenizer)`` is the size the model's embedding needs).
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (256 bytes + specials), got {vocab_size}")
    extra = [t for t in added_tokens if t]
    if IMAGE_TOKEN in extra:
        raise ValueError(f"{IMAGE_TOKEN!r} must not be a token: the prompt is split around it (placeholder id -200)")

    core = Tokenizer(models.BPE())
    # add_prefix_space=False: like GPT-2/Qwen, " word" and "word" are different tokens and the
    # text is never altered (so decode(encode(s)) == s).
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)

    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=END_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    # normalized=False: matched on the raw text; special=False: kept by skip_special_tokens=True.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (*TAGS, *extra)])
    return tok


def default_corpus() -> list[str]:
    """A few lines of the prompt and output format, enough to train a working tokenizer for a
    random policy (tests, ``python -m tinyr1.policy.random``); real training uses its own data."""
    from tinyr1.format import SYSTEM_PROMPT, build_question, format_completion

    questions = [
        ("How many squares appear in the video?", ["1", "2", "3", "4"]),
        ("Which way does the red square move?", ["left", "right", "up", "down"]),
        ("What colour is the square that appears first?", ["red", "green", "blue", "yellow"]),
    ]
    lines = [SYSTEM_PROMPT]
    for q, opts in questions:
        lines.append(f"USER: {build_question(q, opts)} ASSISTANT:")
        lines.append(format_completion("the square moves to the right, so the answer is B.", "B") + END_TOKEN)
    return lines * 4
