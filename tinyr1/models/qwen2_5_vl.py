"""Qwen2.5-VL, model side: video input without torchvision, the R1 chat prompt, tokens, tiny models.

    from tinyr1.models.qwen2_5_vl import VideoProcessing, preprocess_video, build_chat_prompt
    proc = VideoProcessing()                                   # Qwen2-VL video processor defaults
    video = preprocess_video(frames_uint8, proc)               # VideoPatches
    video.pixel_values_videos, video.video_grid_thw            # what Qwen2_5_VLForConditionalGeneration takes
    prompt = build_chat_prompt("How many?", ["1", "2"], num_video_tokens=video.num_tokens)

Qwen2.5-VL's own video processor (transformers' ``Qwen2VLVideoProcessor``) imports torchvision,
which does not import beside tinyr1's CPU torch build. What it does, read in transformers 5.24's
source and reproduced here step by step (``bench/qwen_vl_patchify_reference.py`` runs the official
processor where torchvision is available and stores its output in ``tests/fixtures/qwen_vl_patchify``;
``tests/test_models_qwen2_5_vl.py`` checks this module against those numbers):

1. frames uint8 [N, H, W, 3] -> [N, 3, H, W];
2. ``smart_resize``: the size whose sides are multiples of ``patch_size * merge_size`` (28), nearest
   to the frame's (rounded), scaled down to at most ``max_pixels`` (floor) or up to at least
   ``min_pixels`` (ceil), aspect ratio kept as far as the rounding allows;
3. resize: bicubic with antialiasing, align_corners False, on the uint8 frames (torchvision's CPU
   path hands uint8 bicubic to ``torch.nn.functional.interpolate`` natively, which is what runs
   here); nothing happens when the size is already right;
4. rescale and normalise fused: ``(x - 255 * mean) / (255 * std)`` in float32, CLIP mean and std;
5. patchify: the frame count padded to a multiple of ``temporal_patch_size`` (2) by repeating the
   last frame; the video cut into [t, 2, C, h/2, 2, 14, w/2, 2, 14] and reordered to
   [t, h/2, w/2, 2, 2, C, 2, 14, 14], i.e. one row per 14x14x2 patch, the rows of one 2x2 merge
   window adjacent (the vision tower's patch merger relies on it), each row
   channel-major, then time, then the 14x14 pixels; ``video_grid_thw`` = (t, h/14, w/14).

The language model sees ``t * (h/14) * (w/14) / merge_size**2`` video tokens.

The prompt follows Qwen2.5-VL's chat template (a default system turn, the video first in the user
turn) with the question as the R1 policies are asked it (``tinyr1.format.build_question``: the
options as ``A. ...`` lines and the GRPO suffix; template "r1"), or Video-R1's own instruction
(template "video_r1", its evaluation prompt for multiple choice).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tinyr1.format import build_question, render_options
from tinyr1.models.tinyllava.processing import as_uint8_frames

#: CLIP's normalisation, which Qwen2-VL's processors use.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD = "<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM = "You are a helpful assistant."
TEMPLATES = ("r1", "video_r1")

# Video-R1's evaluation instruction (src/eval_bench.py of tulerfeng/Video-R1), multiple-choice type.
_VIDEO_R1_THINK = (
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> and </think> tags, and then give your final answer "
    "between the <answer> and </answer> tags."
)
_VIDEO_R1_TYPE = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
}


@dataclass(frozen=True)
class VideoProcessing:
    """The video processor's settings. Defaults are transformers' ``Qwen2VLVideoProcessor``'s
    (``min_pixels`` 128*28*28, ``max_pixels`` 768*28*28 per frame); a checkpoint's
    ``video_preprocessor_config.json`` / ``preprocessor_config.json`` override them."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD

    @property
    def factor(self) -> int:
        """Sides of a resized frame are multiples of this (28)."""
        return self.patch_size * self.merge_size

    @property
    def patch_dim(self) -> int:
        """Values per row of ``pixel_values_videos``: 3 * 2 * 14 * 14 = 1176."""
        return 3 * self.temporal_patch_size * self.patch_size * self.patch_size

    def with_pixels(self, min_pixels: int | None = None, max_pixels: int | None = None) -> "VideoProcessing":
        return replace(self, min_pixels=int(min_pixels or self.min_pixels), max_pixels=int(max_pixels or self.max_pixels))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_mean"], d["image_std"] = list(self.image_mean), list(self.image_std)
        return d

    @classmethod
    def from_dir(cls, path: str | Path) -> "VideoProcessing":
        """Settings from a checkpoint directory (video_preprocessor_config.json first, then
        preprocessor_config.json), defaults for what neither says."""
        fields: dict[str, Any] = {}
        for name in ("preprocessor_config.json", "video_preprocessor_config.json"):  # later wins
            f = Path(path) / name
            if not f.is_file():
                continue
            data = json.loads(f.read_text())
            size = data.get("size") or {}
            for key in ("patch_size", "temporal_patch_size", "merge_size"):
                if key in data:
                    fields[key] = int(data[key])
            lo = data.get("min_pixels", size.get("shortest_edge") if isinstance(size, dict) else None)
            hi = data.get("max_pixels", size.get("longest_edge") if isinstance(size, dict) else None)
            if lo:
                fields["min_pixels"] = int(lo)
            if hi:
                fields["max_pixels"] = int(hi)
            for key in ("image_mean", "image_std"):
                if data.get(key):
                    fields[key] = tuple(float(x) for x in data[key])
        return cls(**fields)


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 14 * 14 * 4 * 1280) -> tuple[int, int]:
    """(height, width) multiples of ``factor`` near the given size with min_pixels <= h*w <= max_pixels
    (Qwen2-VL's rule; raises ValueError beyond an aspect ratio of 200)."""
    if min(height, width) <= 0:
        raise ValueError(f"a frame must have a positive size, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} is above 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar





def target_size(frames: np.ndarray, proc: VideoProcessing) -> tuple[int, int]:
    """The (height, width) ``smart_resize`` gives these frames."""
    h, w = np.asarray(frames).shape[-3:-1]
    return smart_resize(int(h), int(w), proc.factor, proc.min_pixels, proc.max_pixels)


def video_tensor(frames: np.ndarray, proc: VideoProcessing, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Steps 1-4: uint8 frames [N, H, W, 3] -> normalised float32 [N, 3, h, w] at ``size``
    (default: ``target_size``). ``size`` must be multiples of ``proc.factor``."""
    arr = as_uint8_frames(frames)
    h, w = size or target_size(arr, proc)
    if h % proc.factor or w % proc.factor:
        raise ValueError(f"size {h}x{w} is not a multiple of {proc.factor}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous()
    if tuple(x.shape[-2:]) != (h, w):
        x = torch.nn.functional.interpolate(x, size=[h, w], mode="bicubic", align_corners=False, antialias=True)
    # The official fused rescale + normalise: mean and std scaled by 1 / rescale_factor, in float32.
    scale = 1.0 / (1.0 / 255.0)
    mean = torch.tensor(proc.image_mean) * scale
    std = torch.tensor(proc.image_std) * scale
    return (x.to(torch.float32) - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def patchify(videos: torch.Tensor, proc: VideoProcessing) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 5 for a batch of same-size videos [B, N, C, h, w] -> (pixel_values_videos
    [B * t * h/14 * w/14, C * 2 * 14 * 14], video_grid_thw [B, 3])."""
    if videos.ndim != 5:
        raise ValueError(f"videos must be [B, N, C, h, w], got shape {tuple(videos.shape)}")
    b, n, c, h, w = videos.shape
    p, tp, m = proc.patch_size, proc.temporal_patch_size, proc.merge_size
    if h % (p * m) or w % (p * m):
        raise ValueError(f"frame size {h}x{w} is not a multiple of {p * m}")
    if pad := -n % tp:
        videos = torch.cat([videos, videos[:, -1:].expand(-1, pad, -1, -1, -1)], dim=1)
        n += pad
    gt, gh, gw = n // tp, h // p, w // p
    x = videos.reshape(b, gt, tp, c, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    flat = x.reshape(b * gt * gh * gw, c * tp * p * p)
    grid = torch.tensor([[gt, gh, gw]] * b, dtype=torch.long)
    return flat, grid


@dataclass
class VideoPatches:
    """One video ready for Qwen2.5-VL: ``pixel_values_videos`` [t*h*w, 1176] and ``video_grid_thw`` [1, 3]."""

    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor
    merge_size: int = 2

    @property
    def num_tokens(self) -> int:
        """Video tokens the language model sees (patches / merge_size**2)."""
        return int(self.video_grid_thw.prod(-1).sum()) // self.merge_size**2


def preprocess_video(frames: np.ndarray, proc: VideoProcessing | None = None) -> VideoPatches:
    """uint8 frames [N, H, W, 3] -> the inputs Qwen2.5-VL's video processor would give."""
    proc = proc or VideoProcessing()
    flat, grid = patchify(video_tensor(frames, proc)[None], proc)
    return VideoPatches(flat, grid, proc.merge_size)


def num_video_tokens(num_frames: int, height: int, width: int, proc: VideoProcessing) -> int:
    """How many tokens a video of ``num_frames`` frames of height x width costs the language model."""
    h, w = smart_resize(height, width, proc.factor, proc.min_pixels, proc.max_pixels)
    t = -(-num_frames // proc.temporal_patch_size)
    return t * (h // proc.patch_size) * (w // proc.patch_size) // proc.merge_size**2


# ---------------------------------------------------------------------------------------- prompt
def user_text(question: str, options: Sequence[str] | None = None, template: str = "r1") -> str:
    """The user turn's text after the video."""
    if template == "r1":
        return build_question(question, options, suffix=True)
    if template == "video_r1":
        q = (question or "").strip()
        if not q:
            raise ValueError("the question is empty: ask something about the video")
        if options:
            q = q + "Options:\n" + render_options(options) + "\n"
            kind = "multiple choice"
        else:
            kind = "free-form"
        return f"{q}\n{_VIDEO_R1_THINK}{_VIDEO_R1_TYPE[kind]}"
    raise ValueError(f"unknown Qwen2.5-VL template {template!r}; known: {', '.join(TEMPLATES)}")


def build_chat_prompt(
    question: str,
    options: Sequence[str] | None = None,
    *,
    num_video_tokens: int = 1,
    template: str = "r1",
    system: str | None = DEFAULT_SYSTEM,
) -> str:
    """Qwen2.5-VL's chat-template rendering of one user turn (the video, then the question) and
    the opened assistant turn, with ``<|video_pad|>`` repeated ``num_video_tokens`` times (as the
    official processor expands it)."""
    text = user_text(question, options, template)
    head = f"{IM_START}system\n{system}{IM_END}\n" if system else ""
    video = VISION_START + VIDEO_PAD * int(num_video_tokens) + VISION_END
    return f"{head}{IM_START}user\n{video}{text}{IM_END}\n{IM_START}assistant\n"


# ---------------------------------------------------------------------------------------- tokens
#: Tokens that end a completion: the chat turn's end, then the text's end.
END_TOKENS = (IM_END, "<|endoftext|>")
#: Tokens sampling must never emit (vision markers and placeholders).
VISION_TOKENS = (VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD, "<|vision_pad|>")


def model_class():
    """transformers' ``Qwen2_5_VLForConditionalGeneration`` (imported on first use: it is large)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration


def part_of(param_name: str) -> str:
    """'vision_tower', 'connector' (the patch merger) or 'language_model' for a parameter name of
    Qwen2_5_VLForConditionalGeneration (peft's prefixes allowed)."""
    if ".visual.merger." in f".{param_name}" or param_name.startswith("visual.merger."):
        return "connector"
    if ".visual." in f".{param_name}":
        return "vision_tower"
    return "language_model"


# ------------------------------------------------------------------- tiny random (tests, benchmarks)
def tiny_qwen_vl_tokenizer(vocab_size: int = 400):
    """tinyr1's byte-level BPE (trained on the format lines) plus Qwen2.5-VL's chat and vision
    tokens as special tokens; pad "<|pad|>", ends "<|im_end|>" and "<|endoftext|>"."""
    from tinyr1.tokenizer import default_corpus, train_tokenizer

    tok = train_tokenizer(default_corpus(), vocab_size)
    tok.add_special_tokens({"additional_special_tokens": [IM_START, IM_END, *VISION_TOKENS[:4]]})
    return tok


def tiny_qwen_vl_model(tokenizer, *, seed: int = 0, init_std: float = 0.3, hidden: int = 32, layers: int = 2,
                       vision_depth: int = 1, extra_rows: int = 4):
    """A random Qwen2_5_VLForConditionalGeneration for ``tokenizer``: text ``hidden`` wide x ``layers``
    (2 heads / 1 KV head, M-RoPE sections scaled to the head size), vision ``vision_depth`` blocks of
    32 (patch 14, temporal patch 2, merge 2), tied embeddings with ``extra_rows`` rows beyond the
    tokenizer. ``init_std`` spreads the text weights so that outputs depend on the input."""
    from transformers import Qwen2_5_VLConfig

    half = hidden // 2 // 2  # rotary pairs per head (2 heads)
    side = (half - half // 4) // 2  # the real model's 16/24/24 split of 64 pairs, scaled
    sections = [half - 2 * side, side, side]
    ids = {key: tokenizer.convert_tokens_to_ids(tok) for key, tok in (
        ("video_token_id", VIDEO_PAD), ("image_token_id", IMAGE_PAD), ("vision_start_token_id", VISION_START),
        ("vision_end_token_id", VISION_END))}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer) + extra_rows, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096, rope_scaling={"type": "mrope", "mrope_section": sections},
                         initializer_range=init_std, bos_token_id=None,
                         eos_token_id=tokenizer.convert_tokens_to_ids(IM_END), pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(depth=vision_depth, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[0], tokens_per_second=2),
        tie_word_embeddings=True, **ids)
    torch.manual_seed(seed)
    return model_class()(config).eval()


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_SYSTEM",
    "END_TOKENS",
    "TEMPLATES",
    "VISION_TOKENS",
    "VideoPatches",
    "VideoProcessing",
    "build_chat_prompt",
    "num_video_tokens",
    "patchify",
    "preprocess_video",
    "smart_resize",
    "target_size",
    "user_text",
    "video_tensor",
    "model_class",
    "part_of",
    "tiny_qwen_vl_model",
    "tiny_qwen_vl_tokenizer",
]
