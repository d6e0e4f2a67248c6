"""Data parallel for the GRPO loop, on plain ``torch.distributed``.

Launched by ``torchrun --nproc_per_node N`` or ``accelerate launch`` (both set RANK, WORLD_SIZE,
MASTER_ADDR...), ``init_distributed()`` joins the process group: NCCL when the process has a GPU,
gloo on CPU. Each rank keeps the whole model; the loop averages the trainable gradients with one
all-reduce per update, so every rank applies the same update from the same weights.

Why not ``DistributedDataParallel`` or accelerate's ``prepare``: a GRPO step runs the model in
several ways (batched sampling through ``generate``, no-grad reference and old log-probs, one or
more graded forward passes in micro-batches), and DDP's hooks expect one forward and one backward
per step; an explicit all-reduce after the backward passes is short, works the same under both
launchers and both backends, and is easy to check (tests/test_grpo_ddp.py).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.distributed as dist


class World:
    """This process's place in a data-parallel run (a single process when not distributed)."""

    def __init__(self) -> None:
        self.enabled = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.enabled else 0
        self.size = dist.get_world_size() if self.enabled else 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average_(self, tensors: Sequence[torch.Tensor]) -> None:
        """All-reduce and average ``tensors`` in place, as one flat buffer (one collective)."""
        if not self.enabled or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            values = values.clone()
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's equally shaped ``rows`` in rank order."""
        if not self.enabled:
            return rows
        out = [torch.empty_like(rows) for _ in range(self.size)]
        dist.all_gather(out, rows.contiguous())
        return torch.cat(out)

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        if self.enabled:
            for t in tensors:
                dist.broadcast(t, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed() -> World:
    """Join the process group when launched by torchrun / accelerate (``WORLD_SIZE`` > 1) and it
    is not joined yet: NCCL when this process has a GPU, gloo otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return World()


class _Solo(World):
    """The world seen by one rank that leaves early: no collectives."""

    def __init__(self, world: World) -> None:
        self.enabled, self.rank, self.size = False, world.rank, world.size
