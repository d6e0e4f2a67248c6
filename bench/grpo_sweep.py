"""Short GRPO runs side by side, each evaluated the same way: the settings table of docs/RESULTS.md.

    .venv/bin/python bench/grpo_sweep.py --out runs/sweep --steps 300 \\
        "lr1e-5 --learning-rate 1e-5" "lr3e-5 --learning-rate 3e-5"

Each quoted argument is one run: a name, then `tinyr1 train` options added to
``--preset tiny --world-split train --world-n 2000 --threads 1``. The runs start together (one
core each: at most as many as there are cores), then each final policy (and, with
``--baseline``, the starting one) is evaluated on the first ``--eval-n`` test questions: greedy,
and ``--samples`` samples per question at T = 1 (max 96 new tokens, the rollouts' limit). Prints
one line per policy and writes OUT/sweep.json.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def evaluate_policy(path: Path, rows, samples: int) -> dict:
    from tinyr1.evaluate import evaluate
    from tinyr1.policy import GenerationSettings, load_policy

    policy = load_policy(path)
    greedy = evaluate(policy, rows, GenerationSettings(temperature=0.0, max_new_tokens=96), batch_size=100)
    sampled = evaluate(policy, list(rows) * samples, GenerationSettings(temperature=1.0, max_new_tokens=96, seed=0),
                       batch_size=100)
    return {"greedy": greedy["accuracy"], "sampled": sampled["accuracy"], "format_sampled": sampled["format_rate"],
            "sampled_per_family": {k: v["accuracy"] for k, v in sampled["per_family"].items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help='"NAME option ..." per run')
    ap.add_argument("--policy", type=Path, default=ROOT / "assets" / "policies" / "tiny-coldstart")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "sweep")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-n", type=int, default=200)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--baseline", action="store_true", help="also evaluate the starting policy")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from tinyr1.evaluate import world_rows

    args.out.mkdir(parents=True, exist_ok=True)
    procs = []
    for spec in args.runs:
        name, *options = shlex.split(spec)
        cmd = [sys.executable, "-m", "tinyr1", "train", "--policy", str(args.policy), "--world-split", "train",
               "--world-n", "2000", "--steps", str(args.steps), "--out", str(args.out / name), "--preset", "tiny",
               "--threads", "1", "--quiet", "--json", *options]
        log = open(args.out / f"{name}.log", "w")
        procs.append((name, options, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT), log))
    results = {}
    rows = world_rows("test", args.eval_n)
    if args.baseline:
        results["start"] = {"options": [], **evaluate_policy(args.policy, rows, args.samples)}
        print("start", json.dumps(results["start"]), flush=True)
    for name, options, proc, log in procs:
        proc.wait()
        log.close()
        if proc.returncode != 0:
            print(f"{name}: failed, see {args.out / (name + '.log')}", file=sys.stderr)
            continue
        results[name] = {"options": options, **evaluate_policy(args.out / name / "final", rows, args.samples)}
        print(name, json.dumps(results[name]), flush=True)
    (args.out / "sweep.json").write_text(json.dumps({"steps": args.steps, "policy": str(args.policy),
                                                     "eval_n": args.eval_n, "samples": args.samples,
                                                     "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
