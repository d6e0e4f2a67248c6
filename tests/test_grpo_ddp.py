"""Data-parallel GRPO: two CPU processes under torchrun (gloo) end a run with identical weights.

    .venv/bin/pytest tests/test_grpo_ddp.py -q

Each rank rolls out a different half of every step's prompts (so its gradients differ), and
the loop averages the trainable gradients across ranks before the update: after the steps every
rank must hold bit-identical trainable weights, and they must have moved.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

WORKER = textwrap.dedent(
    """
    import json, sys, torch
    torch.set_num_threads(1)
    from tinyr1.data import load_dataset
    from tinyr1.grpo.config import GRPOConfig
    from tinyr1.grpo.loop import train, World
    from tinyr1.policy import load_policy

    policy_dir, data, out = sys.argv[1:4]
    policy = load_policy(policy_dir, device="cpu")
    config = GRPOConfig(steps=2, prompts_per_step=4, num_generations=4, max_new_tokens=8, learning_rate=1e-3,
                        warmup_ratio=0.0, checkpoint_every=0)
    records = list(train(config, policy, load_dataset(data), out))
    world = World()
    torch.save({"trainable": {n: p.detach() for n, p in policy.model.named_parameters() if p.requires_grad},
                "rows": [[g.index for g in r.groups] for r in records],
                "world": world.size, "metrics": records[-1].metrics},
               f"{out}/rank{world.rank}.pt")
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tinyr1.policy.random import make_random_policy
    from tinyr1.world import write_split

    root = tmp_path_factory.mktemp("ddp")
    policy = make_random_policy(root / "policy", "test", seed=0)
    data = write_split("train", 8, root / "world", progress=False)
    return root, policy, data


def test_two_processes_end_with_identical_trainable_weights(setup):
    root, policy_dir, data = setup
    script = root / "worker.py"
    script.write_text(WORKER)
    out = root / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(policy_dir), str(data), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # disjoint prompts per rank at every step
    for a, b in zip(r0["rows"], r1["rows"]):
        assert not set(a) & set(b)
    # identical trainable weights on both ranks ...
    assert r0["trainable"].keys() == r1["trainable"].keys()
    for name, w in r0["trainable"].items():
        assert torch.equal(w, r1["trainable"][name]), name
    # ... which moved from the start, and what rank 0 saved is that
    from tinyr1.policy import load_policy

    start = dict(load_policy(policy_dir).model.named_parameters())
    assert any(not torch.equal(w, start[n]) for n, w in r0["trainable"].items())
    final = dict(load_policy(out / "final").model.named_parameters())
    assert all(torch.equal(w, final[n]) for n, w in r0["trainable"].items())
    # metrics are over all ranks: the same numbers on both
    assert r0["metrics"]["reward"] == r1["metrics"]["reward"]
