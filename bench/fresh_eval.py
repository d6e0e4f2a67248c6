"""Headline figures on fresh data: policies evaluated on world questions from a base seed no run
used, greedy and sampled, per family, with consistency, the four ablations and standard errors.

    .venv/bin/python bench/fresh_eval.py                      # the documented run (docs/RESULTS.md)
    .venv/bin/python bench/fresh_eval.py --n 100 --samples 2 --out /tmp/fresh   # a quick look

Why: the recipe (cold-start length, learning rate, reward) was chosen on the first 500 questions
of the test split (base seed 0), so numbers measured there flatter it. Here the questions come
from the test split's base seed 101 (``tinyr1 world --split test --seed 101``): seeds no run,
check or choice used (train: train split seed 0; validation and test: seed 0; the checks of
issue 17: test seeds 7 and 8). ``--seed 103`` gave the default policy a second fresh check
(docs/RESULTS.md, "The default policy"), so it is no longer unused either. The clips are still
the test split's contents (tinyr1/world.py), so none can be a training clip.

Per policy: greedy (temperature 0), sampled at T = 1 (``--samples`` samples a question, seeds
0..k-1, the temperature GRPO trains at), and greedy on each ablation of the frames
(tinyr1.evaluate.ablate: empty scene, mismatched clip, reversed, first frame repeated).
Standard errors: binomial for greedy (``sqrt(p(1-p)/n)``); for several samples a question, the
questions are the clusters (the standard error of the per-question mean over questions). Gains
between policies are paired by question (the standard error of the per-question difference).

Writes OUT/results.json and OUT/RESULTS.md (the tables, pasted into docs/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRESH_SPLIT, FRESH_SEED = "test", 101
FAMILIES = ("count", "direction", "moving_color", "order")


def _se_binomial(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n > 0 else float("nan")


def _per_question(records_list: list[list[dict]], key: str) -> dict[str, float]:
    """question id -> mean of ``key`` over the runs (one run per sample)."""
    out: dict[str, list[float]] = {}
    for records in records_list:
        for r in records:
            out.setdefault(r["id"], []).append(float(bool(r[key])))
    return {q: float(np.mean(v)) for q, v in out.items()}


def _stat(values: list[float]) -> dict[str, float]:
    """Mean and its standard error over questions (the cluster standard error)."""
    a = np.asarray(values, float)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "se": se, "n": int(len(a))}


def summarize(records_list: list[list[dict]], family_of: dict[str, str]) -> dict[str, dict]:
    """Accuracy and consistency, overall and per family, with standard errors."""
    out: dict[str, dict] = {}
    for key in ("correct", "consistent"):
        per_q = _per_question(records_list, key)
        out[key] = {"all": _stat(list(per_q.values()))}
        for fam in FAMILIES:
            vals = [v for q, v in per_q.items() if family_of[q] == fam]
            if vals:
                out[key][fam] = _stat(vals)
    return out


def evaluate_policy(name: str, rows, args, frame_cache) -> dict:
    from tinyr1.evaluate import ABLATIONS, evaluate
    from tinyr1.policy import GenerationSettings, load_policy

    policy = load_policy(name)
    family_of = {r.id: r.family for r in rows}

    def loader(row, n):
        key = (row.id, n)
        if key not in frame_cache:
            from tinyr1.evaluate import load_video_frames

            frame_cache[key] = load_video_frames(row, n)
        return frame_cache[key]

    def run(settings, ablation=None):
        t0 = time.perf_counter()
        rep = evaluate(policy, rows, settings, batch_size=args.batch_size, keep_records=True, frames=loader,
                       ablation=ablation)
        print(f"  {name} {ablation or ('greedy' if settings.greedy else 'T=1 seed ' + str(settings.seed))}: "
              f"acc {rep['accuracy']:.3f} consistency {rep['consistency']:.3f} in {time.perf_counter() - t0:.0f} s",
              flush=True)
        return rep["records"]

    greedy = GenerationSettings(temperature=0.0, max_new_tokens=args.max_new_tokens)
    conditions: dict[str, list[list[dict]]] = {"greedy": [run(greedy)]}
    conditions["sampled"] = [run(GenerationSettings(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=s))
                             for s in range(args.samples)]
    for kind in ABLATIONS if args.ablations else ():
        conditions[kind] = [run(greedy, kind)]
    return {"num_frames": int(policy.num_frames), "conditions": {c: summarize(rl, family_of) for c, rl in conditions.items()},
            "per_question": {c: _per_question(rl, "correct") for c, rl in conditions.items() if c in ("greedy", "sampled")}}


def paired_gain(a: dict[str, float], b: dict[str, float], family_of: dict[str, str], family: str | None = None) -> dict:
    qs = [q for q in a if family is None or family_of[q] == family]
    return _stat([b[q] - a[q] for q in qs])


def _pct(s: dict) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['se']:.1f}"


def markdown(results: dict) -> str:
    lines = [f"Questions: {results['n']} of world version {results.get('world_version', 2)}'s split "
             f"`{results['split']}`, base seed {results['seed']} "
             f"({results['n'] // len(FAMILIES)} per family), {results['num_frames']} frames; greedy and "
             f"{results['samples']} samples a question at T = 1; ± is one standard error (binomial greedy, "
             f"clustered by question sampled). Command: `{results['command']}`; {results['minutes']:.1f} minutes.", ""]
    head = "| policy | condition | all | " + " | ".join(FAMILIES) + " | consistency (all) |"
    lines += [head, "|" + "---|" * (3 + len(FAMILIES) + 1)]
    for name, res in results["policies"].items():
        for cond, s in res["conditions"].items():
            acc = s["correct"]
            cells = [_pct(acc["all"])] + [_pct(acc[f]) if f in acc else "-" for f in FAMILIES]
            lines.append(f"| {name} | {cond} | " + " | ".join(cells) + f" | {_pct(s['consistent']['all'])} |")
    lines += ["", "Consistency (the answer chooses the option its own trace concludes; no conclusion counts as "
              "not consistent), per family:", "",
              "| policy | condition | " + " | ".join(FAMILIES) + " |", "|" + "---|" * (2 + len(FAMILIES))]
    for name, res in results["policies"].items():
        for cond in ("greedy", "sampled"):
            c = res["conditions"][cond]["consistent"]
            lines.append(f"| {name} | {cond} | " + " | ".join(_pct(c[f]) if f in c else "-" for f in FAMILIES) + " |")
    if results.get("gains"):
        lines += ["", "Gains, paired by question (points ± standard error):", ""]
        for label, g in results["gains"].items():
            lines.append(f"- {label}: " + "; ".join(f"{k} {100 * v['mean']:+.1f} ± {100 * v['se']:.1f}" for k, v in g.items()))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policies", nargs="+", default=["tiny-coldstart", "tiny-grpo"], help="registry ids or folders")
    p.add_argument("--n", type=int, default=1000, help="questions (default 1000, a multiple of 4 keeps families equal)")
    p.add_argument("--samples", type=int, default=4, help="samples a question at T = 1 (default 4)")
    p.add_argument("--seed", type=int, default=FRESH_SEED, help=f"world base seed (default {FRESH_SEED}: fresh)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="as the reproduction evaluates (default 96)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default="runs/fresh_eval", help="folder for results.json and RESULTS.md")
    p.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=True,
                   help="also greedy on each ablation of the frames (default; --no-ablations: greedy and sampled only)")
    p.add_argument("--world-version", type=int, default=None,
                   help="world version of the questions (default: tinyr1.world.WORLD_VERSION)")
    args = p.parse_args(argv)
    if args.n < 2 or args.samples < 1:
        p.error("--n must be >= 2 and --samples >= 1")

    import torch

    from tinyr1.evaluate import world_rows
    from tinyr1.world import WORLD_VERSION, WorldConfig

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    args.world_version = args.world_version or WORLD_VERSION
    rows = world_rows(FRESH_SPLIT, args.n, seed=args.seed, config=WorldConfig(version=args.world_version))
    family_of = {r.id: r.family for r in rows}
    print(f"{len(rows)} questions of {FRESH_SPLIT} seed {args.seed} ready in {time.perf_counter() - start:.0f} s", flush=True)
    frame_cache: dict = {}
    policies = {name: evaluate_policy(name, rows, args, frame_cache) for name in args.policies}
    gains = {}
    # Every later policy over every earlier one (the first is usually the cold start).
    pairs = [(a, b) for i, a in enumerate(args.policies) for b in args.policies[i + 1:]]
    for a, b in pairs:
        for cond in ("greedy", "sampled"):
            qa, qb = policies[a]["per_question"][cond], policies[b]["per_question"][cond]
            g = {"all": paired_gain(qa, qb, family_of)}
            g.update({f: paired_gain(qa, qb, family_of, f) for f in FAMILIES})
            gains[f"{b} over {a}, {cond}"] = g
    results = {
        "split": FRESH_SPLIT, "seed": args.seed, "n": len(rows), "samples": args.samples, "world_version": args.world_version,
        "num_frames": policies[args.policies[0]]["num_frames"], "max_new_tokens": args.max_new_tokens,
        "command": "python bench/fresh_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "minutes": (time.perf_counter() - start) / 60,
        "policies": {k: {"conditions": v["conditions"]} for k, v in policies.items()},
        "gains": gains,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "RESULTS.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
