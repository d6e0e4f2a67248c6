"""The miniature reproduction of the paper's result: GRPO on the cold-start tiny policy raises its
held-out accuracy; the same run without the length reward shows what that term does.

    .venv/bin/python bench/reproduce.py                       # the documented run (docs/RESULTS.md)
    .venv/bin/python bench/reproduce.py --steps 20 --train-n 64 --eval-n 40 --out /tmp/repro   # a quick look

What it does, in one process tree:

1. writes (once, cached) the synthetic world's train split and the first ``--eval-n`` questions of
   its test split (disjoint from train by construction, tinyr1/world.py);
2. evaluates the starting policy on the test questions: greedy, and sampled at T = 1 with
   ``--eval-samples`` samples per question (the greedy number has a ~3-point standard error on
   200 questions, docs/DESIGN.md, "The embedded tiny policy", so the sampled one is the finer
   measure);
3. runs two GRPO trainings from it with the same seed and settings (``--preset``, ``--steps``),
   one with the paper's reward (format + think length + accuracy) and one with format + accuracy
   alone (``format_accuracy``: r1 = 0, r2 kept at 1), as two ``tinyr1 train`` processes side by
   side (one core each; ``--sequential`` runs them one after the other). Each follows
   ``tinyr1.runs.run_grpo``, the sequence the app's GRPO tab follows too; processes, not threads,
   so the two runs train in parallel;
4. evaluates both trained policies with the same settings as in step 2;
5. writes ``OUT/results.json``, ``OUT/RESULTS.md`` (the tables) and a PNG (``--plot``): per step,
   the think length and the reward components (format, length, accuracy, total) of both runs;
6. with ``--ship DIR``, copies one run's policy (``--ship-run``: paper by default) to DIR with a
   card (README.md) that says where it came from and what it scores; with ``--write-docs PAGE``, replaces the generated block
   of PAGE (docs/RESULTS.md: between its reproduce markers; the rest of the page is hand-written).

The greedy traces of every policy are also audited statement by statement against the clips'
ground truth (tinyr1.tiny.audit), so the card shows whether GRPO kept them truthful.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"paper": "paper", "format_accuracy": "format_accuracy"}  # run name -> reward
#: what a tiny cold start's policy.json says of its own training (tinyr1 train-tiny)
COLD_START_KEYS = ("note", "resumed", "training_minutes", "validation", "train_clips", "recipe", "machine")


def evaluate_both(policy, rows, args) -> dict[str, Any]:
    """Greedy on every question, and ``eval_samples`` samples at T = 1 of every question."""
    from tinyr1.evaluate import evaluate
    from tinyr1.policy import GenerationSettings

    from tinyr1.tiny.audit import audit

    greedy = evaluate(policy, rows, GenerationSettings(temperature=0.0, max_new_tokens=args.max_new_tokens, seed=0),
                      batch_size=64, keep_records=True)
    greedy["audit"] = audit(greedy.pop("records"), rows)  # do the traces still describe the clips?
    sampled = evaluate(policy, list(rows) * args.eval_samples,
                       GenerationSettings(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=args.seed),
                       batch_size=64)
    return {"greedy": greedy, "sampled": sampled}


def train_command(args, name: str, reward: str) -> list[str]:
    cmd = [sys.executable, "-m", "tinyr1", "train", "--policy", str(args.policy), "--world-split", "train",
           "--world-n", str(args.train_n), "--world-seed", str(args.seed), "--steps", str(args.steps),
           "--out", str(args.out / name), "--preset", args.preset, "--rewards", reward, "--seed", str(args.seed),
           "--max-new-tokens", str(args.max_new_tokens), "--threads", "1", "--quiet", "--json",
           "--world-version", str(args.world_version)]
    if args.learning_rate:
        cmd += ["--learning-rate", str(args.learning_rate)]
    return cmd + list(args.extra)


def per_step_components(run_dir: Path, steps: int) -> dict[str, list[float]]:
    """Mean think length and reward components of steps 1..steps, from the run's rollouts.jsonl."""
    from tinyr1 import runs

    out: dict[str, list[float]] = {k: [] for k in ("step", "think_chars", "format", "length", "accuracy", "total",
                                                   "correct", "format_ok")}
    for rec in runs.read_history(run_dir / "rollouts.jsonl", steps):
        bds = [b for g in rec["groups"] for b in g["breakdowns"]]
        n = len(bds)
        out["step"].append(rec["step"])
        out["think_chars"].append(sum(b["think_chars"] for b in bds) / n)
        out["format"].append(sum(b["format_reward"] - b["length_reward"] for b in bds) / n)
        out["length"].append(sum(b["length_reward"] for b in bds) / n)
        out["accuracy"].append(sum(b["accuracy_reward"] or 0.0 for b in bds) / n)
        out["total"].append(sum(b["total"] for b in bds) / n)
        out["correct"].append(sum(bool(b["correct"]) for b in bds) / n)
        out["format_ok"].append(sum(bool(b["format_ok"]) for b in bds) / n)
    return out


def smooth(values: list[float], k: int) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > k:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def plot(curves: dict[str, dict[str, list[float]]], evals: dict[str, Any], path: Path, k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    colors = {"paper": "tab:blue", "format_accuracy": "tab:orange"}
    label = {"paper": "paper reward (format + length + accuracy)", "format_accuracy": "format + accuracy only"}
    ax = axes[0, 0]
    for name, c in curves.items():
        ax.plot(c["step"], smooth(c["think_chars"], k), color=colors[name], label=label[name])
    ax.set_title("think length (characters, rollouts)")
    ax.set_xlabel("step")
    ax.legend()
    ax = axes[0, 1]
    for name, c in curves.items():
        ax.plot(c["step"], smooth(c["correct"], k), color=colors[name], label=f"{name}: accuracy")
        ax.plot(c["step"], smooth(c["format_ok"], k), color=colors[name], ls=":", label=f"{name}: format rate")
    for name, e in evals.items():
        if name != "start":
            ax.axhline(e["sampled"]["accuracy"], color=colors[name], ls="--", lw=0.8)
    ax.axhline(evals["start"]["sampled"]["accuracy"], color="gray", ls="--", lw=0.8, label="held-out sampled acc. (start / end)")
    ax.set_ylim(0, 1.02)
    ax.set_title("rollout accuracy and format rate")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    for ax, name in zip(axes[1], curves):
        c = curves[name]
        for comp, style in (("format", "-"), ("length", "-"), ("accuracy", "-"), ("total", "--")):
            ax.plot(c["step"], smooth(c[comp], k), ls=style, label=comp)
        ax.set_title(f"reward components per step: {label[name]}")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.suptitle(f"GRPO on the cold-start tiny policy (moving average over {k} steps)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(evals: dict[str, Any]) -> str:
    names = {"start": "cold start", "paper": "GRPO, paper reward", "format_accuracy": "GRPO, format + accuracy"}
    fams = sorted(evals["start"]["greedy"]["per_family"])
    lines = ["| policy | greedy acc. | sampled acc. (T = 1) | format (greedy) | think chars (greedy) | "
             + " | ".join(f"{f} (sampled)" for f in fams) + " |",
             "|---" * (5 + len(fams)) + "|"]
    for key, e in evals.items():
        g, s = e["greedy"], e["sampled"]
        lines.append(f"| {names[key]} | {100 * g['accuracy']:.1f}% | {100 * s['accuracy']:.1f}% | "
                     f"{100 * g['format_rate']:.1f}% | {g['mean_think_chars']:.0f} | "
                     + " | ".join(f"{100 * s['per_family'][f]['accuracy']:.1f}%" for f in fams) + " |")
    return "\n".join(lines)


def audit_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    a, b = before["greedy"]["audit"], after["greedy"]["audit"]
    def cell(report: dict[str, Any], name: str) -> str:
        return f"{100 * report[name]['rate']:.1f}% (n={report[name]['n']})" if name in report else "-"

    lines = ["| statement in the greedy traces | cold start | after GRPO |", "|---|---|---|"]
    for name in sorted(set(a) | set(b)):
        lines.append(f"| {name} | {cell(a, name)} | {cell(b, name)} |")
    return "\n".join(lines)


def ship(run: str, dest: Path, summary: dict[str, Any], command: str, out: Path) -> None:
    from tinyr1.policy import load_policy

    policy = load_policy(out / run / "final")
    # GRPO keeps the cold start's metadata under "start"; the card keeps what says how the cold start
    # was trained (its recipe, training time, validation) under "cold_start", and names the start
    # relative to the repository, not this machine's path.
    inherited = {k: v for k, v in policy.metadata.pop("start", {}).items() if k in COLD_START_KEYS}
    started = Path(policy.metadata.get("started_from", ""))
    if started.is_absolute() and started.is_relative_to(ROOT):
        policy.metadata["started_from"] = str(started.relative_to(ROOT))
    start, end = summary["evals"]["start"], summary["evals"][run]
    reward = {"paper": "the paper's reward (format + think length + accuracy)",
              "format_accuracy": "format + accuracy alone (the paper's reward without its think-length term)"}[run]
    meta = {"name": dest.name, "kind": "grpo", "command": command, "seed": summary["seed"], "reward": run,
            "accuracy": {"greedy": end["greedy"]["accuracy"], "sampled": end["sampled"]["accuracy"]},
            "accuracy_before": {"greedy": start["greedy"]["accuracy"], "sampled": start["sampled"]["accuracy"]},
            "cold_start": inherited}
    policy.save(dest, metadata=meta)
    card = f"""# {dest.name}

The embedded tiny policy after GRPO: the cold start (`assets/policies/tiny-coldstart`) trained
with tinyr1's GRPO loop and {reward} on the synthetic world's train split.
It only knows the synthetic world's coloured shapes.

- Made by: `{command}` (bench/reproduce.py; its `{run}` run, {summary['settings']['steps']}
  steps, seed {summary['seed']}, preset `{summary['settings']['preset']}`, {summary['settings']['train_n']} training questions,
  {summary['runs'][run]['seconds'] / 60:.1f} min of training on this project's 2-core CPU, beside the other run).
- Held-out test split, {summary['settings']['eval_n']} questions (greedy; sampled at T = 1 with
  {summary['settings']['eval_samples']} samples per question):

{table({'start': start, run: end})}

Do its greedy traces describe the clips? Every statement checked against the generator's facts
(`tinyr1 eval --audit`, tinyr1/tiny/audit.py), before and after GRPO:

{audit_table(start, end)}

Details, the curves and the comparison without the length reward: docs/RESULTS.md.
"""
    (dest / "README.md").write_text(card)


START, END = "<!-- reproduce:start -->", "<!-- reproduce:end -->"


def write_block(path: Path, text: str) -> None:
    """Replace the text between the reproduce markers of ``path`` (the rest of the page is
    written by hand); a page without the markers gets the block appended."""
    page = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{START}\n{text}\n{END}"
    if START in page and END in page:
        page = page[: page.index(START)] + block + page[page.index(END) + len(END):]
    else:
        page = page + ("\n" if page else "") + block + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)


def train_both(args) -> dict[str, Any] | None:
    """The two ``tinyr1 train`` runs (side by side unless ``--sequential``): each one's JSON
    summary by run name, or None when one failed (its log says why)."""
    from tinyr1 import runs

    procs = {}
    for name, reward in RUNS.items():
        cmd = train_command(args, name, reward)
        log = open(args.out / f"{name}.log", "w")
        procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT), log)
        if args.sequential:
            procs[name][0].wait()
    results = {}
    for name, (proc, log) in procs.items():
        out, _ = proc.communicate()
        log.close()
        if proc.returncode != 0 or not runs.is_finished(args.out / name):
            print(f"[reproduce] the {name} run failed; see {args.out / (name + '.log')}", file=sys.stderr)
            return None
        results[name] = json.loads(out)
    return results


def results_lines(summary: dict[str, Any], evals: dict[str, Any], curves: dict[str, Any]) -> list[str]:
    """RESULTS.md's lines: the command, the table, the gains and the think lengths of both runs."""
    md = [f"Command: `{summary['command']}`; {summary['total_minutes']:.1f} minutes in all "
          f"(training both: {summary['train_minutes']:.1f}).", "", table(evals), ""]
    for name in RUNS:
        md.append(f"- {name}: greedy {100 * (evals[name]['greedy']['accuracy'] - evals['start']['greedy']['accuracy']):+.1f} "
                  f"points, sampled {100 * (evals[name]['sampled']['accuracy'] - evals['start']['sampled']['accuracy']):+.1f} points")
    md += ["", "Think length (mean characters of the rollouts' think text, first 10 steps -> last 10 steps):", ""]
    for name in RUNS:
        t = curves[name]["think_chars"]
        md.append(f"- {name}: {sum(t[:10]) / max(1, len(t[:10])):.0f} -> {sum(t[-10:]) / max(1, len(t[-10:])):.0f}")
    return md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", type=Path, default=ROOT / "assets" / "policies" / "tiny-coldstart")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduce")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--learning-rate", type=float, default=None, help="default: the preset's")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="of the rollouts and the evaluations")
    ap.add_argument("--train-n", type=int, default=2000, help="training questions (world train split)")
    ap.add_argument("--eval-n", type=int, default=200, help="held-out questions (world test split)")
    ap.add_argument("--eval-samples", type=int, default=8, help="samples per question for the sampled accuracy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-seed", type=int, default=None,
                    help="base seed of the held-out test questions (default: --seed; 101 is fresh, bench/fresh_eval.py)")
    ap.add_argument("--world-version", type=int, default=None, help="world version (default: tinyr1.world.WORLD_VERSION)")
    ap.add_argument("--sequential", action="store_true", help="run the two trainings one after the other")
    ap.add_argument("--plot", type=Path, default=None, help="PNG path (default: OUT/grpo_reproduction.png)")
    ap.add_argument("--smooth", type=int, default=10, help="moving-average window of the plot, in steps")
    ap.add_argument("--ship", type=Path, default=None, help="copy the paper-reward policy here, with a card")
    ap.add_argument("--ship-run", choices=sorted(RUNS), default="paper", help="which run --ship copies (default paper)")
    ap.add_argument("--write-docs", type=Path, default=None,
                    help="replace the block between the reproduce markers of this page (e.g. docs/RESULTS.md)")
    ap.add_argument("--overwrite", action="store_true",
                    help="delete OUT's earlier runs first (without it, a folder holding them is refused)")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `tinyr1 train` options for both runs")
    args = ap.parse_args(argv)
    args.extra = [a for a in args.extra if a != "--"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from tinyr1.evaluate import world_rows
    from tinyr1.policy import load_policy

    t0 = time.perf_counter()
    # Refuse before any work: `tinyr1 train` would resume an earlier run found there (or refuse
    # it when the settings differ), and the comparison needs two fresh runs.
    earlier = [args.out / name for name in RUNS if (args.out / name).exists()]
    if earlier and not args.overwrite:
        print(f"[reproduce] {args.out} already holds runs ({', '.join(p.name for p in earlier)}): "
              "pass --overwrite to replace them, or another --out", file=sys.stderr)
        return 2
    for path in earlier:
        shutil.rmtree(path)
    args.out.mkdir(parents=True, exist_ok=True)
    from tinyr1.world import WORLD_VERSION, WorldConfig

    args.world_version = args.world_version or WORLD_VERSION
    args.eval_seed = args.seed if args.eval_seed is None else args.eval_seed
    world = WorldConfig(version=args.world_version)
    world_rows("train", args.train_n, seed=args.seed, config=world, progress=True)
    test = world_rows("test", args.eval_n, seed=args.eval_seed, config=world, progress=True)
    print(f"[reproduce] data ready ({time.perf_counter() - t0:.0f} s); evaluating the start", file=sys.stderr)
    evals = {"start": evaluate_both(load_policy(args.policy), test, args)}
    t_train = time.perf_counter()
    results = train_both(args)
    if results is None:
        return 1
    train_s = time.perf_counter() - t_train
    print(f"[reproduce] trained both in {train_s / 60:.1f} min; evaluating", file=sys.stderr)
    for name in RUNS:
        evals[name] = evaluate_both(load_policy(args.out / name / "final"), test, args)
    curves = {name: per_step_components(args.out / name, args.steps) for name in RUNS}
    plot_path = args.plot or args.out / "grpo_reproduction.png"
    plot(curves, evals, plot_path, args.smooth)
    for e in evals.values():
        for kind in e.values():
            kind.pop("records", None)
    command = "python bench/reproduce.py " + " ".join(argv if argv is not None else sys.argv[1:])
    summary = {
        "command": command.strip(),
        "seed": args.seed,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "evals": evals,
        "train_minutes": round(train_s / 60, 2),
        "total_minutes": round((time.perf_counter() - t0) / 60, 2),
        "runs": {name: {"seconds": r["seconds"], "last_metrics": r["last_metrics"], "config": r["config"]}
                 for name, r in results.items()},
        "curves": curves,
        "plot": str(plot_path),
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = results_lines(summary, evals, curves)
    (args.out / "RESULTS.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    if args.write_docs:
        write_block(args.write_docs, "\n".join(md + ["", f"![GRPO curves]({os.path.relpath(plot_path, args.write_docs.parent)})"]))
    if args.ship:
        ship(args.ship_run, args.ship, summary, summary["command"], args.out)
        print(f"[reproduce] shipped {args.ship}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
