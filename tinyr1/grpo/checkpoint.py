"""Resumable GRPO checkpoints, written atomically.

A checkpoint is a folder ``<out>/checkpoints/step-000050/`` holding

- the policy itself, as ``Policy.save`` writes it (so ``load_policy`` opens a checkpoint);
- ``trainer_state.pt``: the trainable weights (by parameter name), the optimizer and scheduler
  states, the RNG states of python / numpy / torch, the step, the data order and the run config;
- ``trainer_state.json``: the same facts a person wants to read (step, config, last metrics);
- ``rng-rank<r>.pt`` for the other ranks of a data-parallel run.

It is written into a temporary sibling folder and renamed into place (``os.replace`` of a
directory is atomic on POSIX), so a crash mid-write never leaves a half checkpoint that resume
would pick up: resume takes the newest ``step-*`` folder, and temporary ones are ignored.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d{6,})$")


def checkpoint_root(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "checkpoints"


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first, as (step, folder)."""
    root = checkpoint_root(out_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


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
    state: dict[str, Any],
    summary: dict[str, Any],
    rank_rng: dict[int, dict[str, Any]] | None = None,
    keep: int = 2,
) -> Path:
    """Write the checkpoint of ``step`` atomically; keep the newest ``keep``; return its folder."""
    root = checkpoint_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{step_dir_name(step)}-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        if save_policy is not None:
            save_policy(tmp)
        torch.save(state, tmp / STATE_FILE)
        for r, s in (rank_rng or {}).items():
            torch.save(s, tmp / f"rng-rank{r}.pt")
        (tmp / STATE_JSON).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if final.exists():  # the same step written again (stop right after a periodic save)
            old = root / f".old-{final.name}-{time.time_ns()}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, p in list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def load_state(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a GRPO checkpoint (no {STATE_FILE})")
    # weights_only=False: the state holds python/numpy RNG tuples; it is our own file.
    return torch.load(path, map_location="cpu", weights_only=False)


def load_rank_rng(folder: str | os.PathLike, rank: int) -> dict[str, Any] | None:
    path = Path(folder) / f"rng-rank{rank}.pt"
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None
