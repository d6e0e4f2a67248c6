"""``tinyr1 train``: GRPO fine-tuning of a policy on video questions, with a progress bar.

    tinyr1 train --policy assets/policies/tiny-coldstart --world-split train --world-n 400 \\
        --preset tiny --steps 200 --out runs/grpo --eval-before --eval-after
    tinyr1 train --policy PATH --data train.jsonl --steps 500 --out runs/mine        # the paper preset
    tinyr1 train ... --out runs/grpo                        # again: resumes from the last checkpoint
    torchrun --nproc_per_node 2 -m tinyr1 train ...         # data parallel (gloo on CPU, NCCL on GPU)

Every field of ``tinyr1.grpo.GRPOConfig`` is an option (``--num-generations``, ``--beta``,
``--loss-type``, ``--lora-r``, ``--temporal`` ...; ``tinyr1 train --help`` lists them with their
help); ``--preset`` picks the starting values (``paper``: the official recipe, the default;
``tiny``: what the embedded tiny policy learns with on a CPU) and the options given override it.

Writes OUT/metrics.jsonl (one line per step), OUT/rollouts.jsonl, OUT/checkpoints/step-N/ and
OUT/final/ (a policy directory: ``tinyr1 reason --policy OUT/final``, or pick it in the app).
Ctrl-C stops after writing a checkpoint of the last completed step; the same command resumes.
``--eval-before`` / ``--eval-after`` evaluate on held-out questions (``tinyr1 eval``'s report,
greedy unless ``--eval-temperature``): the world's test split, or ``--eval-data``; both go to
OUT/eval.json. The sequence (load, evaluate, train, evaluate) is tinyr1.runs', as in the app.
A run that cannot learn (the format never holds, or most groups score all answers alike) is said
during the run and at the end, with what to change (tinyr1.runs.diagnose).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any

from tinyr1 import runs
from tinyr1.cli import UserError, options
from tinyr1.policy.spec import QUANTIZATION_CHOICES


def _config_fields() -> list[dataclasses.Field]:
    from tinyr1.grpo.config import GRPOConfig

    return [f for f in dataclasses.fields(GRPOConfig) if f.name != "steps"]


def _add_config_options(group: argparse._ArgumentGroup) -> None:
    """One option per GRPOConfig field, typed from its annotation; default None = the preset's."""
    from tinyr1.grpo import config as config_module

    hints = typing.get_type_hints(config_module.GRPOConfig)
    for f in _config_fields():
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        help_ = f.metadata.get("help", "")
        kind = hint
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: the option takes an X
            kind = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(kind)
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif origin is tuple:
            item = typing.get_args(kind)[0]
            group.add_argument(flag, nargs="+", type=item, default=None, metavar=item.__name__.upper(), help=help_)
        elif origin is dict or kind is dict:
            group.add_argument(flag, type=json.loads, default=None, metavar="JSON", help=help_)
        elif f.name in ("loss_type", "lr_scheduler"):
            choices = config_module.LOSS_TYPES if f.name == "loss_type" else config_module.SCHEDULERS
            group.add_argument(flag, choices=choices, default=None, help=help_)
        else:
            group.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper(), help=help_)


def register(subparsers: argparse._SubParsersAction) -> None:
    from tinyr1.grpo.config import PRESETS

    p = subparsers.add_parser(
        "train",
        help="GRPO fine-tuning of a policy (the paper's recipe), resumable, with live metrics",
        description="GRPO fine-tuning of a video policy: sample G completions per question, score them with "
        "the paper's reward, update towards the better ones. Resumes from OUT's last checkpoint.",
    )
    p.add_argument("--policy", metavar="PATH", help="starting policy directory (default: the embedded cold start, assets/policies/tiny-coldstart)")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", metavar="JSONL", help="training questions (tinyr1.data format, with answers)")
    data.add_argument("--world-split", choices=["train", "validation", "test"],
                      help="train on a split of the synthetic world (written once to a cache folder)")
    options.add_allow_outside(p)
    p.add_argument("--world-n", type=int, default=400, help="questions of --world-split (default 400)")
    p.add_argument("--world-seed", type=int, default=0, help="seed of the world splits (default 0)")
    options.add_world_version(p)
    p.add_argument("--steps", type=int, required=True, help="GRPO steps")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (metrics, checkpoints, final policy)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from OUT's last checkpoint (--no-resume refuses a folder that has one)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="starting values of the options below (default: paper)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available; LOCAL_RANK under torchrun)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="weights dtype (default: float32 on CPU, bfloat16 on CUDA; full fine-tuning at the paper's "
                        "lr 1e-6 needs float32: bfloat16 rounds such small updates away)")
    p.add_argument("--quantization", choices=QUANTIZATION_CHOICES, default="none",
                   help="load the language model quantized (then it trains through LoRA: set --lora-r)")
    ev = p.add_argument_group("evaluation")
    ev.add_argument("--eval-before", action="store_true", help="evaluate the starting policy first")
    ev.add_argument("--eval-after", action="store_true", help="evaluate the trained policy at the end")
    ev.add_argument("--eval-data", metavar="JSONL", help="held-out questions (default: the world's test split)")
    ev.add_argument("--eval-n", type=int, default=200, help="questions of the world's test split to evaluate on (default 200)")
    ev.add_argument("--eval-temperature", type=float, default=0.0, help="0 = greedy (default)")
    ev.add_argument("--eval-max-new-tokens", type=int, default=None, help="default: --max-new-tokens of the run")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads per process (default: torch's choice; 1 is fastest on a busy machine)")
    p.add_argument("--json", action="store_true", help="print one JSON summary at the end instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p.add_argument_group("GRPO settings (default: the preset's)"))
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    from tinyr1.grpo.config import GRPOConfigError, preset

    overrides: dict[str, Any] = {"steps": args.steps}
    for f in _config_fields():
        value = getattr(args, f.name, None)
        if value is not None:
            overrides[f.name] = tuple(value) if isinstance(value, list) else value
    try:
        return preset(args.preset, **overrides)
    except GRPOConfigError as exc:
        raise UserError(str(exc)) from None


def _rows(args: argparse.Namespace, world) -> list:
    if args.data:
        return options.load_rows(args.data, args.allow_outside_paths)
    from tinyr1.evaluate import world_rows

    if args.world_n < 1:
        raise UserError(f"--world-n must be >= 1, got {args.world_n}")
    if world.main:  # one process writes the clips; the others read them after the barrier
        world_rows(args.world_split, args.world_n, seed=args.world_seed, config=options.world_config(args),
                   progress=not args.quiet)
    world.barrier()
    return world_rows(args.world_split, args.world_n, seed=args.world_seed, config=options.world_config(args),
                      progress=False)


def _eval_rows(args: argparse.Namespace) -> list:
    if args.eval_data:
        return options.load_rows(args.eval_data, args.allow_outside_paths)
    if args.data:
        raise UserError("--eval-before/--eval-after with --data need --eval-data (held-out questions)")
    from tinyr1.evaluate import world_rows

    return world_rows("test", args.eval_n, seed=args.world_seed, config=options.world_config(args),
                      progress=not args.quiet)


def _evaluate(policy, rows, args, config, progress: bool = True) -> dict[str, Any]:
    from tinyr1.evaluate import evaluate
    from tinyr1.policy import GenerationSettings

    settings = GenerationSettings(max_new_tokens=args.eval_max_new_tokens or config.max_new_tokens,
                                  temperature=args.eval_temperature, seed=0, num_frames=config.num_frames)
    report = evaluate(policy, rows, settings, progress=progress and not args.quiet)
    report.pop("records", None)
    return report


def _line(name: str, report: dict[str, Any]) -> str:
    fams = ", ".join(f"{f} {100 * m['accuracy']:.0f}%" for f, m in report.get("per_family", {}).items())
    return (f"{name}: accuracy {100 * report['accuracy']:.1f}% format {100 * report['format_rate']:.1f}% "
            f"think {report['mean_think_chars']:.0f} chars on {report['n']} questions ({fams})")


def _check(args: argparse.Namespace) -> None:
    """The flags that need no model, before torch is imported: UserError (exit 2) at once."""
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0, got {args.threads}")
    if args.device is not None and options.DEVICE_RE.fullmatch(args.device) is None:
        raise UserError(f"--device must be cpu, cuda, cuda:N, mps or auto, got {args.device!r}")
    if not (math.isfinite(args.eval_temperature) and args.eval_temperature >= 0):
        raise UserError(f"--eval-temperature must be a finite number >= 0 (0 = greedy), got {args.eval_temperature}")
    for f in _config_fields():  # inf or nan would reach the sampler (a torch error mid-run)
        value = getattr(args, f.name, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")
    for flag in ("seed", "world_seed"):
        value = getattr(args, flag, None)
        if value is not None and not 0 <= value <= options.SEED_MAX:
            raise UserError(f"--{flag.replace('_', '-')} must be between 0 and 2**63 - 1, got {value}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    config = build_config(args)  # cheap checks before any model loads (tinyr1.grpo.config is torch-free)

    import torch.distributed as dist

    from tinyr1.grpo.config import GRPOConfigError
    from tinyr1.grpo.loop import init_distributed
    from tinyr1.policy import default_start_policy_path, load_policy
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    world = init_distributed()
    device = args.device
    if device is None and world.enabled:
        import torch

        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    quant = None if args.quantization == "none" else args.quantization
    try:
        rows = _rows(args, world)
        evaluating = (args.eval_before or args.eval_after) and world.main
        eval_rows = _eval_rows(args) if evaluating else None
        policy = load_policy(args.policy or default_start_policy_path(), quantization=quant, device=device,
                             dtype=args.dtype)
        options.check_context(policy, config.max_new_tokens)
        if args.eval_max_new_tokens:
            options.check_context(policy, args.eval_max_new_tokens, "--eval-max-new-tokens")
        eval_fn = None
        if config.eval_every and world.main:
            if eval_rows is None:
                eval_rows = _eval_rows(args)
            eval_fn = lambda p: _evaluate(p, eval_rows, args, config, progress=False)  # noqa: E731
        summary: dict[str, Any] = {"out": str(Path(args.out).resolve()), "config": config.to_dict(),
                                   "policy": policy.name, "rows": len(rows), "processes": world.size}
        events = runs.run_grpo(
            config, policy, rows, args.out, resume=args.resume, eval_rows=eval_rows or [],
            evaluate=(lambda p, r: _evaluate(p, r, args, config)) if evaluating else None,
            eval_before=args.eval_before, eval_after=args.eval_after, eval_fn=eval_fn)
        if not _follow(events, args, world, summary):
            return 130
    except GRPOConfigError as exc:
        raise UserError(str(exc)) from None
    finally:
        if world.enabled and dist.is_initialized():
            dist.destroy_process_group()
    if world.main:
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            if summary.get("diagnosis"):  # said on stderr: stdout keeps its one line for scripts
                d = summary["diagnosis"]
                print(f"tinyr1 train: this run learned (almost) nothing. {d['message']}\nWhat to change: {d['advice']}",
                      file=sys.stderr)
            print(f"trained policy: {summary['final']}")
    return 0


def _follow(events, args: argparse.Namespace, world, summary: dict[str, Any]) -> bool:
    """Show the run's events (a progress bar, the evaluations) and fill ``summary``; False when
    Ctrl-C stopped it (closing the events closes the loop, which writes a checkpoint)."""
    from tqdm.auto import tqdm

    show = world.main and not args.json
    bar = tqdm(total=args.steps, desc="grpo", unit="step", disable=not world.main or args.quiet)
    try:
        for event in events:
            if isinstance(event, runs.Failed):
                raise event.error
            if isinstance(event, runs.Evaluated):
                summary[f"eval_{event.which}"] = event.report
                if show:
                    print(_line(event.which, event.report), file=sys.stderr)
            elif isinstance(event, runs.Step):
                record = event.record
                if bar.n == 0 and record.step > 1:
                    bar.update(record.step - 1)  # resumed: show where the run stands
                last = record.metrics
                bar.set_postfix(reward=f"{last['reward']:.3f}", acc=f"{last['accuracy']:.2f}",
                                fmt=f"{last['format_rate']:.2f}", think=f"{last['think_chars']:.0f}", refresh=False)
                bar.update(1)
                if record.eval and not args.json:
                    bar.write(_line(f"step {record.step}", record.eval))
            elif isinstance(event, runs.CannotLearn):
                if show:
                    bar.write(f"warning at step {event.step}: {event.diagnosis.text()}", file=sys.stderr)
            elif isinstance(event, runs.Finished):
                summary["seconds"] = round(event.seconds, 1)
                summary["last_metrics"] = event.last_metrics
                summary["final"] = str(event.final.resolve())
                summary["diagnosis"] = event.diagnosis.to_dict() if event.diagnosis else None
    except KeyboardInterrupt:
        events.close()  # writes a checkpoint of the last completed step
        bar.close()
        if world.main:
            print(f"tinyr1 train: stopped; the same command resumes from {args.out}/checkpoints", file=sys.stderr)
        return False
    finally:
        bar.close()
    return True
