"""What each visual token should carry, from the world's ground truth: the vision stage's targets.

A from-scratch vision tower and resampler, trained only through a language model that is itself
random, learned nothing here: within ~25 steps the resampler's output became the same for every
clip (measured: spread across clips 0.18 -> 0.02) and the language model learned to ignore the
video. So, like the real policy's SigLIP, which arrives pretrained, the tiny policy's vision side
is first trained on its own: a linear head (used in training only, never saved) reads each visual
token and predicts what is in the part of the frame that token summarises. With frames of 48 px,
patches of 16 px and ``chunks_per_frame = 9``, a token summarises one patch, one cell of the
frame's 3 x 3 grid (the thirds the traces speak of), and its targets are:

- for each colour, whether a shape of that colour covers pixels of the cell (6 labels);
- for each shape kind, whether one covers pixels of the cell (4 labels);
- for each colour, whether the centre of a shape of that colour lies in the cell (6 labels).

Which token it is says where, in space and time. The head's loss stays on (weighted) in the later
stages so the visual tokens keep carrying it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from tinyr1.world import COLORS, SHAPES, shape_mask

COLOR_NAMES = tuple(COLORS)
#: per token: colours covering pixels of its region, shape kinds covering pixels, colours whose
#: shape's centre lies in the region
NUM_LABELS = 2 * len(COLOR_NAMES) + len(SHAPES)


def patch_labels(facts: dict[str, Any], frame: int, grid: int) -> np.ndarray:
    """float32 [grid, grid, NUM_LABELS]: the labels of each patch of one video frame (the frame
    cut into grid x grid equal squares, as the vision tower's patches cut the resized frame)."""
    size = int(facts["size"])
    out = np.zeros((grid, grid, NUM_LABELS), np.float32)
    nc = len(COLOR_NAMES)
    for obj in facts["objects"]:
        if not obj["visible"][frame]:
            continue
        s, x0, y0 = int(obj["size"]), obj["x"][frame], obj["y"][frame]
        ys, xs = np.nonzero(shape_mask(obj["kind"], s))
        rows = np.clip(((ys + y0 + 0.5) * grid / size).astype(int), 0, grid - 1)
        cols = np.clip(((xs + x0 + 0.5) * grid / size).astype(int), 0, grid - 1)
        c, k = COLOR_NAMES.index(obj["color"]), SHAPES.index(obj["kind"])
        out[rows, cols, c] = 1.0
        out[rows, cols, nc + k] = 1.0
        cy = min(grid - 1, int((y0 + s / 2) * grid / size))
        cx = min(grid - 1, int((x0 + s / 2) * grid / size))
        out[cy, cx, nc + len(SHAPES) + c] = 1.0
    return out


def token_targets(facts: dict[str, Any], indices: Sequence[int], grid: int, chunks: int) -> np.ndarray:
    """float32 [len(indices) * chunks, NUM_LABELS]: the labels of each visual token, frame-major
    (the resampler's output order). Each frame's grid x grid patches (row-major) are split into
    ``chunks`` runs of equal length; a token's labels are the union over its patches."""
    per = grid * grid // chunks
    out = []
    for f in indices:
        patches = patch_labels(facts, f, grid).reshape(grid * grid, NUM_LABELS)
        out.append(patches.reshape(chunks, per, NUM_LABELS).max(axis=1))
    return np.concatenate(out)


class ProbeHead(nn.Module):
    """A linear read-out of the visual tokens (training only; never part of the policy)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, NUM_LABELS)

    def loss(self, visual: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(BCE loss, F1 of the labels predicted present) for visual [B, T, D] and targets
        [B, T, NUM_LABELS] (F1: most labels are absent, so plain accuracy says little)."""
        logits = self.linear(visual)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        pred, gold = logits.detach() > 0, targets > 0.5
        tp = float((pred & gold).sum())
        f1 = 2 * tp / max(1.0, float(pred.sum() + gold.sum()))
        return loss, f1
