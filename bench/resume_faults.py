"""Crash-safe resume under real kills: SIGKILL a ``tinyr1 train`` run again and again, damage
what a crash can damage, resume each time, and check the end result against an uninterrupted run.

    PYTHONPATH=$PWD .venv/bin/python bench/resume_faults.py                  # ~2-3 min on 2 busy cores
    PYTHONPATH=$PWD .venv/bin/python bench/resume_faults.py --rounds 8 --steps 10 --json out.json

Each round starts ``tinyr1 train --resume`` (a random test-size policy, 8 world clips, a
checkpoint every step), waits until it has logged a new step, sleeps a random 0-0.3 s (so the
kill lands anywhere: sampling, the update, a log append, a checkpoint write) and SIGKILLs it.
Then, in turn, it leaves the run as the kill left it, tears the last line of both logs, or
writes 4 KiB of garbage into the newest checkpoint's weights. A last resume runs to the end.
Reported: kills, the faults injected, whether every resume started, and whether the final
weights and the last step's metrics equal those of the same run never interrupted.
Results are recorded in docs/RELIABILITY.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAULTS = ("none", "torn-log", "garbage-checkpoint")


def _cli(policy: Path, data: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "tinyr1", "train", "--policy", str(policy), "--data", str(data), "--out", str(out),
            "--quiet", "--threads", "1", "--prompts-per-step", "2", "--num-generations", "4",
            "--max-new-tokens", "8", "--checkpoint-every", "1", "--steps", str(steps), "--resume"]


def _logged(out: Path) -> int:
    path = out / "metrics.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _inject(out: Path, fault: str) -> None:
    if fault == "torn-log":
        for name in ("metrics.jsonl", "rollouts.jsonl"):
            with open(out / name, "ab") as fh:
                fh.write(b'{"step": 99, "reward": 0.')
    elif fault == "garbage-checkpoint":
        newest = sorted((out / "checkpoints").glob("step-*"))
        if newest:
            weights = newest[-1] / "tensors.safetensors"
            data = bytearray(weights.read_bytes())
            mid = len(data) // 2
            data[mid : mid + 4096] = os.urandom(len(data[mid : mid + 4096]))
            weights.write_bytes(bytes(data))


def _final(out: Path) -> tuple[dict, dict, object]:
    import torch

    from tinyr1.files import read_jsonl
    from tinyr1.policy import load_policy

    weights = {n: p.detach().clone() for n, p in load_policy(out / "final").model.named_parameters()}
    return weights, read_jsonl(out / "metrics.jsonl")[-1], torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6, help="kills before the last, uninterrupted resume")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    from tinyr1.data import load_dataset, write_dataset
    from tinyr1.models.random import make_random_policy
    from tinyr1.world import write_split

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="resume-faults-") as tmp:
        tmp = Path(tmp)
        policy = make_random_policy(tmp / "policy", "test", seed=0)
        data = write_dataset(load_dataset(write_split("train", 8, tmp / "world", progress=False)), tmp / "train.jsonl")
        straight, run = tmp / "straight", tmp / "run"
        subprocess.run(_cli(policy, data, straight, args.steps), check=True, capture_output=True)
        rounds, resumes_failed = [], 0
        for k in range(args.rounds):
            before = _logged(run)
            proc = subprocess.Popen(_cli(policy, data, run, args.steps), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            while proc.poll() is None and _logged(run) <= before:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            finished = proc.poll() is not None
            if not finished:
                proc.send_signal(signal.SIGKILL)
            err = proc.communicate()[1]
            if finished and proc.returncode != 0:
                resumes_failed += 1
            fault = FAULTS[k % len(FAULTS)]
            if not finished:
                _inject(run, fault)
            rounds.append({"round": k + 1, "killed": not finished, "logged_steps": _logged(run),
                           "fault": fault if not finished else None, "rc": proc.returncode,
                           "said": [l for l in err.splitlines() if l.startswith("tinyr1 grpo:")]})
            if finished:
                break
        last = subprocess.run(_cli(policy, data, run, args.steps), capture_output=True, text=True)
        resumes_failed += last.returncode != 0
        wa, ma, torch = _final(straight)
        wb, mb, _ = _final(run)
        same_weights = wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)
        same_metrics = {k: ma[k] for k in ("step", "reward", "loss", "lr")} == {k: mb[k] for k in ("step", "reward", "loss", "lr")}
        from tinyr1.files import read_jsonl

        steps_logged = [r["step"] for r in read_jsonl(run / "metrics.jsonl")]
    result = {
        "rounds": rounds, "kills": sum(r["killed"] for r in rounds), "resumes_failed": resumes_failed,
        "faults": {f: sum(r["fault"] == f for r in rounds) for f in FAULTS},
        "final_weights_equal_uninterrupted": same_weights, "last_metrics_equal_uninterrupted": same_metrics,
        "steps_logged": steps_logged, "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    ok = same_weights and same_metrics and not resumes_failed and steps_logged == list(range(1, args.steps + 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
