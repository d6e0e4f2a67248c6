"""Record the official TinyLLaVA-Video-R1 code's outputs on a tiny random model (the equivalence fixture).

This script is ours; the code it drives is not. It builds a TINY random configuration of the
official architecture (SigLIP vision tower, ``groupresampler`` connector, Qwen2 language model)
with the official classes, saves it in the official checkpoint layout, reloads it with the official
loader, and records what that model computes on fixed frames and a fixed prompt. tinyr1's converter
(``tinyr1.models.tinyllava.convert``) must reproduce those numbers: ``tests/test_models_tinyllava_convert.py`` checks it in CI
without the official code. See docs/EQUIVALENCE.md for the figures.

How the fixture in tests/fixtures/official_tiny/ was made (outside the repository):

    # 1. a checkout of the public repository ZhangXJ199/TinyLLaVA-Video-R1 outside this repo, at
    #    the commit named in the fixture's expected.json (efe76a1dacb1...), in /work/ref/official-src
    # 2. a reference venv with the libraries the official code was written for
    python3.11 -m venv /work/ref/venv
    /work/ref/venv/bin/pip install torch==2.13.0          # the CPU build (any recent torch works)
    /work/ref/venv/bin/pip install transformers==4.49.0 tokenizers==0.21.0 accelerate==1.4.0 \
        einops einops-exts sentencepiece pillow numpy safetensors
    # 3. patch ONLY what keeps the official code from importing / running on a CPU
    #    (a working copy outside the repo; the diff is kept as /work/ref/official-cpu.patch):
    #    - tinyllava/utils/train_utils.py: the peft and deepspeed imports (training only) are made
    #      optional (try/except ImportError);
    #    - tinyllava/data/dataset_coldstart.py: the av and pytorchvideo imports (video decoding for
    #      training) are made optional;
    #    - tinyllava/model/connector/groupresampler.py: the sinusoidal positional encoding is built on
    #      the input's device instead of the hard-coded 'cuda' (still in float16, as the original);
    #    - tinyllava/data/template/formatter.py: the Formatter dataclasses get unsafe_hash=True,
    #      because Python 3.11 rejects an unhashable dataclass instance as a field default.
    #    Nothing else changes: no numerics, no names.
    # 4. run this script with the reference venv
    HF_HUB_OFFLINE=1 /work/ref/venv/bin/python bench/official_reference.py \
        --official-src /work/ref/official-src --out tests/fixtures/official_tiny

What it writes into --out (about 0.8 MB):

    checkpoint/          the official layout: config.json (TinyLlavaConfig, with the extra ``group``
                         key the connector reads), one flat model.safetensors (fp32), the Qwen2
                         tokenizer files the training recipe saves beside them, generation_config.json
    base/tiny-qwen2/     what config.json's llm_model_name_or_path names (Qwen2 config + tokenizer):
    base/tiny-siglip/    and vision_model_name_or_path (SigLIP vision config + preprocessor config);
                         the official loader reads them, relative to --out, when it builds the model
    frames.npy           uint8 [5, 40, 48, 3] random frames (seeded)
    pixel_values.npy     fp32 [5, 3, 32, 32]: the official VideoPreprocess (SiglipImageProcessor) of them
    logits.npy           fp32 [T, vocab]: the official forward's logits over the whole spliced
                         sequence (prompt with the first 4 frames' visual tokens in place of -200)
    greedy_step_logits.npy  fp32 [8, vocab]: raw logits at each greedy step (KV-cached decoding)
    vision_features.npy  fp32 [4, 15, 32]: vision tower output for the first 4 frames (layer -2,
                         first token dropped)
    connector_out.npy    fp32 [1, 8, 16]: connector output (visual tokens) for the first 4 frames
    remainder_*.npy      the same model on all 5 frames (75 tokens in 4 groups: 19, 19, 19, 18), to
                         pin the uneven split: last-position logits and connector output
    expected.json        prompt text, question, options, input_ids (with -200), greedy tokens (8 per
                         case), shapes, seeds, library versions and the official commit

Run time: a few seconds on one CPU core.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

SEED = 1234
NUM_NEW_TOKENS = 8
FRAME_SHAPE = (40, 48)  # raw frames are not square and not the model's size: the resize is exercised
#: A fixed multiple-choice question, rendered the way tinyr1 and the official R1 eval do it.
QUESTION = "What does the red square do?"
OPTIONS = ["moves left", "moves right", "stays still", "disappears"]
GRPO_SUFFIX = (
    "Output the thinking process in <think> </think> and final answer (option) in <answer> </answer> tags."
)

# Tiny sizes: small enough for a < 1 MB fixture, large enough that every structural choice
# (layer -2 of several, grouped-query attention, tied head, 2 resampler layers, 2 latents per
# group, an uneven split) is exercised.
TEXT = dict(
    hidden_size=16, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
    num_key_value_heads=1, max_position_embeddings=512, rope_theta=1000000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True, use_sliding_window=False, hidden_act="silu", torch_dtype="float32",
)
VISION = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
    image_size=32, patch_size=8, num_channels=3, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
)
CONNECTOR = dict(connector_type="groupresampler", num_queries=8, num_resampler_layers=2, group=4)
BPE_MERGES = 200  # tokenizer: 256 byte symbols + 200 merges + 3 special tokens
VOCAB_SIZE = 464
# Random-init scales: with tied embeddings a random LM tends to repeat one token forever; small
# embeddings and a stronger residual branch give varied greedy tokens (a better test of the cache).
EMBED_SCALE = 0.2
RESIDUAL_GAIN = 3.0  # the model's vocabulary is larger than the tokenizer's, as Qwen2.5's is


def build_question() -> str:
    """The user turn's text: question, option lines ``A. ...``, then the GRPO suffix."""
    lines = [QUESTION] + [f"{letter}. {text}" for letter, text in zip("ABCD", OPTIONS)] + [GRPO_SUFFIX]
    return "\n".join(lines)


def build_tokenizer(dirpath: Path, corpus: list[str]):
    """A tiny byte-level BPE in the Qwen2 file format (vocab.json + merges.txt), loaded with the
    official choice of class (the slow Qwen2Tokenizer, tokenizer_use_fast=False)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + BPE_MERGES, initial_alphabet=alphabet,
                                  show_progress=False)
    bpe.train_from_iterator(corpus, trainer)
    raw = dirpath / "_bpe"
    raw.mkdir(parents=True, exist_ok=True)
    bpe.model.save(str(raw))
    tok = Qwen2Tokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"),
                         additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    shutil.rmtree(raw)
    return tok


def randomize_(model, seed: int) -> None:
    """Replace every parameter by seeded random values of a scale that gives O(1) activations and
    logits (the default 0.02 init makes logits near-uniform, which would make a 1e-4 comparison
    and greedy tokens meaningless), and make every norm weight and bias differ from 1 / 0 so that a
    swapped or dropped norm cannot go unnoticed."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("latents"):
                p.copy_(noise)
            elif p.ndim == 1 and ("norm" in name or "layer_norm" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif p.ndim == 1:
                p.copy_(0.1 * noise)
            elif "embed_tokens" in name:
                p.copy_(EMBED_SCALE * noise)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                fan_in = p.shape[1]
                p.copy_(RESIDUAL_GAIN * noise / fan_in ** 0.5)
            else:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(noise / fan_in ** 0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-src", required=True, type=Path, help="a checkout of ZhangXJ199/TinyLLaVA-Video-R1 (CPU-patched)")
    parser.add_argument("--out", required=True, type=Path, help="fixture directory to (re)write")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    src = args.official_src.resolve()
    if not (src / "tinyllava" / "model" / "modeling_tinyllava.py").exists():
        raise SystemExit(f"{src} is not a TinyLLaVA-Video-R1 checkout (no tinyllava/model/modeling_tinyllava.py)")
    sys.path.insert(0, str(src))

    import torch
    import transformers
    from transformers import Qwen2Config, SiglipImageProcessor, SiglipVisionConfig

    from tinyllava.data import TextPreprocess, VideoPreprocess
    from tinyllava.model import TinyLlavaConfig, TinyLlavaForConditionalGeneration
    from tinyllava.utils.constants import IMAGE_TOKEN_INDEX
    from tinyllava.utils.message import Message

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "base").mkdir(parents=True)
    # The official config stores the base model names; relative ones resolve against the working
    # directory, so everything below runs from --out.
    os.chdir(out)

    # --- the base "models" the official config points at (config + tokenizer / preprocessor) ---
    question = build_question()
    system = ("A chat between a curious user and an artificial intelligence assistant. The assistant "
              "gives helpful, detailed, and polite answers to the user's questions.")
    corpus = [system, question, "USER: ASSISTANT: <think> </think> <answer> </answer>"] * 4
    tok = build_tokenizer(out / "base", corpus)
    eos_id = tok.convert_tokens_to_ids("<|endoftext|>")
    text_cfg = Qwen2Config(vocab_size=VOCAB_SIZE, bos_token_id=eos_id, eos_token_id=eos_id, **TEXT)
    qwen_dir, siglip_dir = Path("base/tiny-qwen2"), Path("base/tiny-siglip")
    text_cfg.save_pretrained(qwen_dir)
    tok.save_pretrained(qwen_dir)
    vision_cfg = SiglipVisionConfig(**VISION)
    vision_cfg.save_pretrained(siglip_dir)
    SiglipImageProcessor(
        size={"height": VISION["image_size"], "width": VISION["image_size"]},
        resample=3, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(siglip_dir)

    # --- the official model, random, saved in the official layout (as the training recipe does) ---
    config = TinyLlavaConfig(
        llm_model_name_or_path=str(qwen_dir), vision_model_name_or_path=str(siglip_dir),
        connector_type=CONNECTOR["connector_type"], num_queries=CONNECTOR["num_queries"],
        num_resampler_layers=CONNECTOR["num_resampler_layers"], group=CONNECTOR["group"],
        text_config=text_cfg.to_dict(), vision_config=vision_cfg.to_dict(),
        tokenizer_use_fast=False, tokenizer_model_max_length=3072, tokenizer_padding_side="right",
        image_aspect_ratio="square", vision_feature_layer=-2, vision_feature_select_strategy="patch",
        pad_token=tok.pad_token, pad_token_id=tok.pad_token_id, use_cache=True,
    )
    built = TinyLlavaForConditionalGeneration(config)
    randomize_(built, args.seed)
    ckpt = Path("checkpoint")
    built.tokenizer.save_pretrained(ckpt)
    built.config.save_pretrained(ckpt)
    built.save_pretrained(ckpt, safe_serialization=True)

    # --- reload through the official loader path (what load_pretrained_model does) ---
    model, info = TinyLlavaForConditionalGeneration.from_pretrained(ckpt, low_cpu_mem_usage=True, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"the official loader did not read the saved checkpoint cleanly: {problems}")
    for (n1, p1), (n2, p2) in zip(built.state_dict().items(), model.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    model.eval()
    tokenizer = model.tokenizer
    image_processor = model.vision_tower._image_processor

    # --- inputs: seeded frames through the official video preprocessing, the official template ---
    rng = np.random.default_rng(args.seed)
    frames = rng.integers(0, 256, size=(5, *FRAME_SHAPE, 3), dtype=np.uint8)
    video_pre = VideoPreprocess(image_processor, model.config)
    # The official eval decodes with pytorchvideo (decord), which yields float32 [C, H, W] frames
    # holding 0..255; VideoPreprocess then takes its "max > 1" branch (rescale by 1/255).
    pixel_values = torch.stack([video_pre(torch.from_numpy(f).permute(2, 0, 1).float()) for f in frames])
    from_uint8 = torch.stack([video_pre(torch.from_numpy(f).permute(2, 0, 1)) for f in frames])
    assert torch.equal(pixel_values, from_uint8), "float32 and uint8 frames preprocess differently"

    msg = Message()
    msg.add_message("<image>" + "\n" + question)
    encoded = TextPreprocess(tokenizer, "qwen2_base")(msg.messages, mode="eval")
    prompt, input_ids = encoded["prompt"], encoded["input_ids"].unsqueeze(0)
    assert int((input_ids == IMAGE_TOKEN_INDEX).sum()) == 1

    def run_case(n_frames: int) -> dict:
        video = pixel_values[:n_frames].unsqueeze(0)  # [1, N, 3, H, W], as the official eval passes it
        with torch.no_grad():
            kwargs = dict(vision_feature_layer=model.config.vision_feature_layer,
                          vision_feature_select_strategy=model.config.vision_feature_select_strategy)
            feats = model.vision_tower(video[0], **kwargs)
            conn = model.connector(feats.reshape(1, -1, feats.shape[-1]))
            logits = model(input_ids=input_ids, video=video).logits[0]
            gen = model.generate(input_ids, video=video, do_sample=False, num_beams=1,
                                 max_new_tokens=NUM_NEW_TOKENS, pad_token_id=tokenizer.pad_token_id,
                                 use_cache=True, output_logits=True, return_dict_in_generate=True)
        steps = torch.stack([s[0] for s in gen.logits]).float().numpy()  # [new tokens, vocab], raw
        top2 = np.sort(steps, axis=-1)[:, -2:]
        margin = float((top2[:, 1] - top2[:, 0]).min())
        # A greedy token decided by less than the comparison tolerance would make the test flaky.
        assert margin > 1e-2, f"greedy margin {margin} too small: pick another seed"
        return dict(feats=feats.float().numpy(), conn=conn.float().numpy(), logits=logits.float().numpy(),
                    greedy=gen.sequences[0].tolist(), step_logits=steps, margin=margin)

    aligned, remainder = run_case(4), run_case(5)
    splice = input_ids.shape[1] - 1 + aligned["conn"].shape[1]
    assert aligned["logits"].shape[0] == splice, (aligned["logits"].shape, splice)

    np.save("frames.npy", frames)
    np.save("pixel_values.npy", pixel_values.numpy().astype(np.float32))
    np.save("logits.npy", aligned["logits"].astype(np.float32))
    np.save("vision_features.npy", aligned["feats"].astype(np.float32))
    np.save("connector_out.npy", aligned["conn"].astype(np.float32))
    np.save("greedy_step_logits.npy", aligned["step_logits"].astype(np.float32))
    np.save("remainder_last_logits.npy", remainder["logits"][-1].astype(np.float32))
    np.save("remainder_connector_out.npy", remainder["conn"].astype(np.float32))

    from safetensors import safe_open

    with safe_open(str(ckpt / "model.safetensors"), framework="pt") as f:
        checkpoint_keys = {k: list(f.get_slice(k).get_shape()) for k in sorted(f.keys())}
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    expected = {
        "what": "outputs of the official TinyLLaVA-Video-R1 code on a tiny random model (bench/official_reference.py)",
        "official_commit": commit,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": sys.version.split()[0]},
        "seed": args.seed,
        "question": QUESTION, "options": OPTIONS, "question_text": question,
        "template": "qwen2_base", "prompt": prompt,
        "input_ids": input_ids[0].tolist(), "image_token_index": IMAGE_TOKEN_INDEX,
        "image_token_position": int((input_ids[0] == IMAGE_TOKEN_INDEX).nonzero()[0, 0]),
        "eos_token_id": eos_id, "pad_token_id": tokenizer.pad_token_id,
        "cases": {
            "aligned": {"frames": 4, "visual_tokens": int(aligned["conn"].shape[1]),
                        "sequence_length": int(aligned["logits"].shape[0]),
                        "greedy_tokens": aligned["greedy"], "greedy_min_margin": aligned["margin"],
                        "files": ["logits.npy", "vision_features.npy", "connector_out.npy",
                                  "greedy_step_logits.npy"]},
            "remainder": {"frames": 5, "visual_tokens": int(remainder["conn"].shape[1]),
                          "group_sizes": [19, 19, 19, 18],
                          "greedy_tokens": remainder["greedy"], "greedy_min_margin": remainder["margin"],
                          "files": ["remainder_last_logits.npy", "remainder_connector_out.npy"]},
        },
        "frames_used": "aligned: frames[:4]; remainder: frames[:5]; pixel_values.npy holds all 5",
        "checkpoint_keys": checkpoint_keys,
    }
    Path("expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    Path("README.md").write_text(
        "# official_tiny: the official TinyLLaVA-Video-R1 code's outputs on a tiny random model\n\n"
        "Generated by `bench/official_reference.py` (its header says how to rebuild the reference\n"
        "environment and which lines of the official code were patched to run on a CPU). Do not edit by\n"
        "hand: rerun the script. `tests/test_models_tinyllava_convert.py` loads `checkpoint/` with tinyr1's converter\n"
        "and compares with the recorded outputs; `docs/EQUIVALENCE.md` has the figures.\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB); prompt {input_ids.shape[1]} ids, "
          f"sequence {aligned['logits'].shape[0]}, greedy {aligned['greedy']} / {remainder['greedy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
