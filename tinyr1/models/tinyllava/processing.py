"""Turning (frames, prompt) into model inputs, without torchvision.

- ``preprocess_frames(frames, image_size, mean, std)``: uint8 [N, H, W, 3] -> float [N, 3, S, S].
  Resizing matches the official SigLIP image processor that TinyLLaVA-Video used (transformers
  4.x ``SiglipImageProcessor``: numpy frames go through PIL, resized to exactly S x S with
  **PIL bicubic** and no aspect-ratio padding, rescaled by 1/255, normalised with mean 0.5 /
  std 0.5). Frames already S x S are not resampled.
- ``prompt_ids(tokenizer, prompt, num_visual_tokens)``: the prompt tokenized in chunks around
  "<image>" (no special tokens added, as the official ``tokenizer_image_token`` does with Qwen2),
  with the placeholder repeated once per visual token, so batches can be left-padded up front.
- ``left_pad(rows, pad_id)``: a left-padded LongTensor and its attention mask.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from tinyr1.format import IMAGE_TOKEN, IMAGE_TOKEN_INDEX


def as_uint8_frames(frames: np.ndarray) -> np.ndarray:
    """Validate frames [N, H, W, 3] (or one [H, W, 3]) and return them as uint8 (float frames in
    [0, 1] are scaled); shared by the TinyLLaVA and Qwen2.5-VL preprocessing."""
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must be an array [N, H, W, 3], got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("no frames to preprocess")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0  # float frames in [0, 1]
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return arr


def preprocess_frames(
    frames: np.ndarray,
    image_size: int,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] (or one frame [H, W, 3]) -> float32 [N, 3, S, S], normalised."""
    arr = as_uint8_frames(frames)
    if arr.shape[1:3] != (image_size, image_size):
        arr = np.stack([np.asarray(Image.fromarray(f).resize((image_size, image_size), Image.BICUBIC)) for f in arr])
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def prompt_ids(tokenizer, prompt: str, num_visual_tokens: int, *, image_token_index: int = IMAGE_TOKEN_INDEX) -> list[int]:
    """Token ids of ``prompt`` with its one "<image>" replaced by ``num_visual_tokens`` placeholders."""
    chunks = prompt.split(IMAGE_TOKEN)
    if len(chunks) != 2:
        raise ValueError(f"the prompt must contain {IMAGE_TOKEN!r} exactly once, found {len(chunks) - 1}")
    before, after = (tokenizer(c, add_special_tokens=False)["input_ids"] if c else [] for c in chunks)
    return [*before, *([image_token_index] * num_visual_tokens), *after]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [B, L], attention_mask [B, L]) with every row right-aligned."""
    if not rows:
        raise ValueError("no rows to pad")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids, mask
