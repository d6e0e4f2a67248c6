"""Resumable GRPO checkpoints, in tinyr1's one checkpoint format (tinyr1.checkpoints).

A checkpoint is a folder ``<out>/checkpoints/step-000050/`` holding

- the policy itself, as ``Policy.save`` writes it (so ``load_policy`` opens a checkpoint);
- ``tensors.safetensors``: the trainable weights, by parameter name;
- ``trainer_state.pt``: the optimizer and scheduler states, the RNG states of python / numpy /
  torch (as plain lists and tensors), the step, the data order and the run config; plain data
  only, read with ``torch.load(weights_only=True)``;
- ``trainer_state.json``: the same facts a person wants to read (step, config, last metrics);
- ``rng-rank<r>.pt`` for the other ranks of a data-parallel run;
- ``manifest.json``, last: every file's size and sha256.

Written under a temporary name and renamed into place; resume takes the newest checkpoint whose
manifest checks out and falls back to the one before when it does not (docs/DESIGN.md, "Files
and runs").
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from tinyr1 import checkpoints as _fmt
from tinyr1.checkpoints import CheckpointError, rng_state, set_rng_state, step_dir_name

STATE_FILE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"

__all__ = [
    "CheckpointError", "STATE_FILE", "STATE_JSON", "checkpoint_root", "latest_checkpoint", "list_checkpoints",
    "load_rank_rng", "load_state", "load_trainable", "load_trainable_state", "newest_intact", "rng_state",
    "save_checkpoint", "set_rng_state", "step_dir_name", "trainable_state",
]


def checkpoint_root(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """The run's checkpoint folders, oldest first, as (step, folder), intact or not."""
    return _fmt.list_checkpoints(checkpoint_root(out_dir))


def newest_intact(out_dir: str | os.PathLike, log: Callable[[str], None] = print) -> tuple[int, Path] | None:
    """(step, folder) of the newest checkpoint that validates (see tinyr1.checkpoints)."""
    return _fmt.newest_intact(checkpoint_root(out_dir), log)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest intact checkpoint folder, or None (nothing is moved or reported)."""
    for _, folder in reversed(list_checkpoints(out_dir)):
        try:
            _fmt.validate(folder)
        except CheckpointError:
            continue
        return folder
    return None


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train, by name (frozen ones come back from the starting policy)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(trainable - set(state)), sorted(set(state) - trainable)
    if missing or unexpected:
        raise ValueError(
            "the checkpoint's trainable weights do not match this policy's: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''} "
            "(was it written with other freeze_vision / lora settings, or for another policy?)"
        )
    with torch.no_grad():
        for n, t in state.items():
            if params[n].shape != t.shape:
                raise ValueError(f"checkpoint weight {n} has shape {tuple(t.shape)}, the policy's is {tuple(params[n].shape)}")
            params[n].copy_(t)


def save_checkpoint(
    out_dir: str | os.PathLike,
    step: int,
    *,
    save_policy: Callable[[Path], None] | None,
    trainable: dict[str, torch.Tensor],
    state: dict[str, Any],
    summary: dict[str, Any],
    rank_rng: dict[int, dict[str, Any]] | None = None,
    keep: int = 2,
) -> Path:
    """Write the checkpoint of ``step`` atomically; keep the newest ``keep``; return its folder."""
    pickles = {STATE_FILE: state, **{f"rng-rank{r}.pt": s for r, s in (rank_rng or {}).items()}}
    return _fmt.save(checkpoint_root(out_dir), step, tensors=trainable, pickles=pickles,
                     jsons={STATE_JSON: summary}, extra=save_policy, keep=keep)


def load_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The trainer state of a checkpoint (plain data; validate the folder first)."""
    if not (Path(folder) / STATE_FILE).is_file():
        raise CheckpointError(f"{folder} is not a GRPO checkpoint (no {STATE_FILE})")
    return _fmt.load_plain(folder, STATE_FILE)


def load_trainable(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    return _fmt.load_tensors(folder)


def load_rank_rng(folder: str | os.PathLike, rank: int) -> dict[str, Any] | None:
    name = f"rng-rank{rank}.pt"
    return _fmt.load_plain(folder, name) if (Path(folder) / name).is_file() else None
