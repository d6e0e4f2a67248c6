"""Qwen2.5-VL, model side (tinyr1.models.qwen2_5_vl): the torchvision-free patchifier against the
official video processor's recorded output, and the chat prompt.

    .venv/bin/pytest tests/test_models_qwen2_5_vl.py -q

``tests/fixtures/qwen_vl_patchify/`` was written by ``bench/qwen_vl_patchify_reference.py`` running
transformers' own ``Qwen2VLVideoProcessor`` (torchvision 0.29.1, transformers 5.24.0) on seeded
frames; tinyr1 must reproduce its ``pixel_values_videos`` and ``video_grid_thw`` (measured: bit for
bit).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyr1.format import GRPO_SUFFIX
from tinyr1.models.qwen2_5_vl import (
    VideoProcessing,
    build_chat_prompt,
    patchify,
    preprocess_video,
    smart_resize,
    user_text,
)

FIXTURE = Path(__file__).parent / "fixtures" / "qwen_vl_patchify"


def _frames(n: int = 4, h: int = 40, w: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


# ==================================================================================== patchifier
_META = json.loads((FIXTURE / "cases.json").read_text())


@pytest.fixture(scope="module")
def recorded():
    return np.load(FIXTURE / "cases.npz")


@pytest.mark.parametrize("case", _META["cases"], ids=[c["name"] for c in _META["cases"]])
def test_patchifier_reproduces_the_official_video_processor(recorded, case) -> None:
    # One row per case (see cases.json "why"): upscale below min_pixels with an odd frame count,
    # the max_pixels floor branch, the min_pixels ceil branch, no resampling, a wide 5-frame clip.
    proc = VideoProcessing(min_pixels=case["min_pixels"], max_pixels=case["max_pixels"])
    ours = preprocess_video(recorded[f"{case['name']}/frames"], proc)
    want = recorded[f"{case['name']}/pixel_values_videos"]
    assert ours.video_grid_thw.tolist() == recorded[f"{case['name']}/video_grid_thw"].tolist()
    assert ours.pixel_values_videos.shape == want.shape
    assert float(np.abs(ours.pixel_values_videos.numpy() - want).max()) <= 1e-6  # measured: 0


def test_smart_resize_gives_the_official_sizes() -> None:
    # typical video sizes at the processor defaults and Video-R1's training / evaluation budgets
    for row in _META["smart_resize"]:
        got = smart_resize(row["height"], row["width"], 28, row["min_pixels"], row["max_pixels"])
        assert list(got) == row["result"], row


def test_patch_rows_follow_the_merge_windows_by_hand() -> None:
    """Every value says where it came from (frame, channel, y, x); check each row and column."""
    n, c, h, w, p = 3, 3, 56, 84, 14
    f, ch, y, x = np.meshgrid(np.arange(n), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    video = torch.from_numpy((f * 1e6 + ch * 1e5 + y * 1e2 + x).astype(np.float64))[None]
    flat, grid = patchify(video, VideoProcessing())
    assert grid.tolist() == [[2, 4, 6]]  # 3 frames padded to 4 by repeating the last one
    rows = flat.numpy().reshape(2, 2, 3, 2, 2, c, 2, p, p)  # t, h/2, w/2, 2, 2 | c, 2, 14, 14
    for t, bh, bw, my, mx in np.ndindex(2, 2, 3, 2, 2):
        for cc, tt in np.ndindex(c, 2):
            block = rows[t, bh, bw, my, mx, cc, tt]
            frame = min(2 * t + tt, n - 1)
            y0, x0 = (2 * bh + my) * p, (2 * bw + mx) * p
            want = frame * 1e6 + cc * 1e5 + np.add.outer(np.arange(y0, y0 + p) * 1e2, np.arange(x0, x0 + p))
            np.testing.assert_array_equal(block, want)


# ======================================================================================== prompt
def test_chat_prompt_is_qwen_template_with_the_r1_question() -> None:
    text = build_chat_prompt("How many?", ["1", "2"], num_video_tokens=2)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|video_pad|><|vision_end|>"
        f"How many?\nA. 1\nB. 2\n{GRPO_SUFFIX}<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize(
    "options, contains, ends",
    [
        (["1", "2"], "How many?Options:\nA. 1\nB. 2\n\nPlease think", "(e.g., A, B, C, D, etc.) within the <answer> </answer> tags."),
        (None, "How many?\nPlease think", "Please provide your text answer within the <answer> </answer> tags."),
    ],
)
def test_video_r1_template_is_its_evaluation_prompt(options, contains, ends) -> None:
    text = user_text("How many?", options, "video_r1")
    assert contains in text and text.endswith(ends) and "<think> and </think>" in text


def test_unknown_template_and_empty_question_are_refused() -> None:
    with pytest.raises(ValueError, match="template"):
        user_text("q", None, "chatml")
    with pytest.raises(ValueError, match="empty"):
        build_chat_prompt("  ")
