"""GRPO runs: the run folder on disk and the one "load -> evaluate -> train -> evaluate" sequence
that ``tinyr1 train``, the app's GRPO tab and bench/reproduce.py (through ``tinyr1 train``) share.

    from tinyr1 import runs
    for event in runs.run_grpo(config, lambda: load_policy(path), rows, "runs/mine",
                               eval_rows=held_out, evaluate=my_eval, eval_before=True):
        if isinstance(event, runs.Step): print(event.step, event.record.metrics)
        elif isinstance(event, runs.Failed): raise event.error

``run_grpo`` is a generator of events (``RunStarted``, ``Evaluating``, ``Evaluated``,
``Training``, ``Step``, ``CannotLearn``, ``Trained``, ``Finished``, ``Stopped``, ``Failed``); every caller turns
them into its own output (a progress bar, the app's streamed updates). Stopping keeps what the completed steps
learned in both ways it can happen: closing the generator (the app's Stop, Ctrl-C) closes the
training loop, which writes a checkpoint of the last completed step; ``should_stop`` returning
true ends the run after the current step the same way and says so with a ``Stopped`` event.

The run folder (docs/DESIGN.md, "Files and runs"): ``metrics.jsonl``, ``rollouts.jsonl`` and
``checkpoints/step-NNNNNN/`` are the loop's (tinyr1.grpo), ``final/`` the tuned policy,
``eval.json`` the evaluations before and after. Runs the app starts live in
``<root>/runs/<YYYYmmdd-HHMMSS>/`` with an ``app.json`` saying how they were started (so Resume
can rebuild them) and ``plots.jsonl`` (the plotted values per step, read back on Resume).

A run that cannot learn says so: ``diagnose`` reads the last steps' metrics, and when the format
never held or most groups gave every answer the same reward (advantage 0: nothing to learn from),
``run_grpo`` yields one ``CannotLearn`` during the run and ``Finished.diagnosis`` carries the
verdict of the last steps; both hold a plain message and what to change.

Gradio-free and torch-free at import: the app imports this module to list runs.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

#: Where the app writes its runs, under its root: runs/<YYYYmmdd-HHMMSS>/.
RUNS_DIR = "runs"
#: The file (in a run folder) that says how the app started the run, so Resume can rebuild it.
RUN_FILE = "app.json"
#: The evaluations of a run: {"eval_before": report, "eval_after": report}.
EVAL_FILE = "eval.json"

# ----------------------------------------------------------------------------- the run store


def new_run_dir(root: str | Path) -> Path:
    """A fresh ``runs/<YYYYmmdd-HHMMSS>`` folder (``-2``, ``-3`` ... when two start in a second)."""
    base = Path(root) / RUNS_DIR
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 1000):
        path = base / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not make a run folder under {base}")


def run_label(run_dir: Path) -> str:
    """``runs/<name>``: how the app names a run (its folder relative to the root)."""
    return f"{RUNS_DIR}/{Path(run_dir).name}"


def run_dir_of(root: str | Path, label: str | None) -> Path:
    """The folder behind a run label (``runs/<name>``); anything else is refused, so a label
    typed into the API can never point outside the app's runs folder."""
    name = (label or "").strip()
    if name.startswith(RUNS_DIR + "/"):
        name = name[len(RUNS_DIR) + 1 :]
    base = (Path(root) / RUNS_DIR).resolve()
    path = (base / name).resolve()
    if not name or "/" in name or "\\" in name or path.parent != base or not (path / RUN_FILE).is_file():
        known = ", ".join(list_runs(root)) or "none yet"
        raise ValueError(f"no run {label!r} started from this app; runs: {known}")
    return path


def list_runs(root: str | Path) -> list[str]:
    """Runs the app started (``runs/<name>`` with an app.json), newest first."""
    base = Path(root) / RUNS_DIR
    if not base.is_dir():
        return []
    return [run_label(p) for p in sorted(base.iterdir(), key=lambda p: p.name, reverse=True) if (p / RUN_FILE).is_file()]


def run_choices(root: str | Path) -> list[tuple[str, str]]:
    """(what a run picker shows, the run label): where each run stands."""
    out = []
    for label in list_runs(root):
        path = Path(root) / label
        try:
            info = json.loads((path / RUN_FILE).read_text())
            steps = int(info["config"]["steps"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        state = "finished" if is_finished(path) else f"step {newest_step(path)}/{steps}"
        out.append((f"{label} · {state}", label))
    return out


def is_finished(run_dir: Path) -> bool:
    """Whether the run wrote its tuned policy (``final/``)."""
    return (Path(run_dir) / "final" / "config.json").is_file()


#: Written last into a checkpoint folder by tinyr1.checkpoints (its MANIFEST; named here so that
#: listing runs does not import torch).
CHECKPOINT_MANIFEST = "manifest.json"


def newest_step(run_dir: Path) -> int:
    """The step of the newest complete checkpoint of a run (0 when none). Read from the folder
    names (checkpoints/step-NNNNNN holding its trainer_state.pt and, written last, its
    manifest.json), without importing torch."""
    steps = [int(p.name[5:]) for p in (Path(run_dir) / "checkpoints").glob("step-*")
             if p.name[5:].isdigit() and (p / "trainer_state.pt").is_file() and (p / CHECKPOINT_MANIFEST).is_file()]
    return max(steps, default=0)


def prune_app_runs(root: str | Path, *, max_age_hours: float, max_count: int | None, now: float | None = None,
                   keep: Sequence[str | Path] = ()) -> list[str]:
    """Delete the runs the app started (``created_by: app`` in their app.json) that are older than
    ``max_age_hours`` (by the app.json's time; 0: no age limit), and beyond the newest
    ``max_count`` (None: no count limit); runs in ``keep`` (one training now) stay. Runs of the CLI
    are never touched. Returns the labels deleted."""
    import shutil

    base = Path(root) / RUNS_DIR
    if not base.is_dir():
        return []
    now = time.time() if now is None else now
    kept = {Path(k).resolve() for k in keep}
    mine: list[tuple[float, Path]] = []
    for path in base.iterdir():
        info = path / RUN_FILE
        try:
            if json.loads(info.read_text()).get("created_by") != "app":
                continue
            mine.append((info.stat().st_mtime, path))
        except (OSError, ValueError, AttributeError):
            continue  # not a run of the app, or one being written: left alone
    mine.sort(reverse=True)  # newest first
    doomed = [p for i, (t, p) in enumerate(mine)
              if (max_age_hours and now - t > max_age_hours * 3600) or (max_count is not None and i >= max_count)]
    deleted = []
    for path in doomed:
        if path.resolve() in kept:
            continue
        shutil.rmtree(path, ignore_errors=True)
        deleted.append(run_label(path))
    return deleted


def read_evals(run_dir: Path) -> dict[str, Any]:
    """The run's evaluations so far ({} when none)."""
    path = Path(run_dir) / EVAL_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def read_history(path: Path, upto: int) -> list[dict[str, Any]]:
    """The per-step lines (``{"step": N, ...}``) of a JSONL file for steps 1..upto."""
    if upto < 1 or not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            values = json.loads(line)
        except ValueError:
            continue
        if 1 <= int(values.get("step", 0)) <= upto:
            out.append(values)
    return out


def truncate_history(path: Path, upto: int) -> None:
    """Keep only steps up to the checkpoint resumed from (later ones are redone), as the loop
    does with its own logs."""
    kept = read_history(path, upto)
    Path(path).write_text("".join(json.dumps(v) + "\n" for v in kept))


def append_history(path: Path, values: dict[str, Any]) -> None:
    """One step's line appended to a per-step JSONL file."""
    with open(path, "a") as f:
        f.write(json.dumps(values) + "\n")


# ---------------------------------------------------------------------- can this run learn?

#: Steps whose metrics ``diagnose`` judges (the last ones; all of a shorter run).
DIAGNOSIS_STEPS = 4
#: Share of groups with zero reward spread (all G answers scored alike) from which a run is said
#: to learn (almost) nothing: such a group's advantages are all 0, so it adds no gradient.
ZERO_SPREAD_SHARE = 0.75


@dataclass
class Diagnosis:
    """Why a run cannot learn: ``problem`` is "no_format" (the format never held) or
    "no_spread" (most groups scored all their answers alike); ``message`` says it plainly and
    ``advice`` what to change. ``steps``: how many steps were judged."""

    problem: str
    message: str
    advice: str
    steps: int

    def text(self) -> str:
        return f"{self.message} {self.advice}"

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "message": self.message, "advice": self.advice, "steps": self.steps}


def diagnose(history: Sequence[dict[str, float]], steps: int = DIAGNOSIS_STEPS) -> Diagnosis | None:
    """The verdict on the last ``steps`` steps' metrics (tinyr1.grpo's: ``format_rate``,
    ``accuracy``, ``frac_reward_zero_std``); None when the run has a signal to learn from."""
    last = [m for m in history[-steps:] if m]
    if not last:
        return None
    n = len(last)
    mean = lambda key: sum(float(m.get(key, 0.0)) for m in last) / n  # noqa: E731
    if all(float(m.get("format_rate", 0.0)) == 0.0 for m in last):
        return Diagnosis(
            "no_format",
            f"The format never held: in the last {n} steps no answer followed <think>…</think><answer>…</answer>, "
            "so every answer earned the same format penalty and GRPO has nothing to push towards.",
            "Start from a policy that follows the format (a cold-start one, e.g. tiny-coldstart), allow more new "
            "tokens (answers cut off before </answer> fail the format), or raise the temperature so that some "
            "answers happen to follow it.", n)
    zero = mean("frac_reward_zero_std")
    if zero >= ZERO_SPREAD_SHARE:
        accuracy = mean("accuracy")
        which = ("all wrong: the questions are too hard for this policy" if accuracy < 0.5
                 else "all right: the questions are too easy for this policy")
        return Diagnosis(
            "no_spread",
            f"The run is learning almost nothing: in the last {n} steps {zero:.0%} of the groups gave every answer "
            f"the same reward (mostly {which}), so their advantage is 0.",
            "Use a larger G (answers per question), a higher temperature, or data closer to what the policy can "
            "answer (some right, some wrong), or start from a stronger policy.", n)
    return None


# --------------------------------------------------------------------------------- the events


@dataclass
class RunStarted:
    """The starting policy is loaded; ``start_step`` is the checkpoint resumed from (0: none)."""

    run_dir: Path
    policy: Any
    start_step: int
    rows: int
    eval_rows: int


@dataclass
class Evaluating:
    """An evaluation (``which``: "before" or "after") on ``n`` held-out questions begins."""

    which: str
    n: int


@dataclass
class Evaluated:
    """An evaluation ended; ``evals`` holds every evaluation of the run so far (eval.json)."""

    which: str
    report: dict[str, Any]
    evals: dict[str, Any]


@dataclass
class Training:
    """The training loop starts (from ``start_step``, the checkpoint resumed from, or 0)."""

    start_step: int
    steps: int


@dataclass
class Step:
    """One completed GRPO step (``record``: tinyr1.grpo's StepRecord); ``seconds`` since the
    training loop started."""

    record: Any
    start_step: int
    seconds: float

    @property
    def step(self) -> int:
        return int(self.record.step)


@dataclass
class CannotLearn:
    """Said once, during the run, the first time ``diagnose`` finds the last steps give nothing
    to learn from (the run goes on: it may recover, e.g. once a sampled answer follows the format)."""

    step: int
    diagnosis: Diagnosis


@dataclass
class Trained:
    """The training loop completed its steps and wrote ``final``; ``seconds`` it took."""

    final: Path
    seconds: float
    last_metrics: dict[str, float]


@dataclass
class Finished:
    """The run completed: ``final`` is the tuned policy, ``seconds`` the training loop's time."""

    run_dir: Path
    final: Path
    steps: int
    seconds: float
    evals: dict[str, Any]
    last_metrics: dict[str, float] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None  # the last steps' verdict: None when the run had a signal


@dataclass
class Stopped:
    """``should_stop`` ended the run after ``step``: its checkpoint is written, the same
    call with ``resume=True`` continues it."""

    step: int
    checkpoint: Path | None


@dataclass
class Failed:
    """The run could not go on. ``stage``: "load", "eval_before", "train" or "eval_after";
    ``error`` the exception (callers say it their way, or raise it)."""

    stage: str
    error: Exception

    @property
    def message(self) -> str:
        return str(self.error)


Event = RunStarted | Evaluating | Evaluated | Training | Step | CannotLearn | Trained | Finished | Stopped | Failed

# --------------------------------------------------------------------------------- the run


def run_grpo(
    config: Any,
    policy: Any | Callable[[], Any],
    rows: Sequence[Any],
    run_dir: str | Path,
    *,
    resume: bool = False,
    eval_rows: Sequence[Any] = (),
    evaluate: Callable[[Any, Sequence[Any]], dict[str, Any]] | None = None,
    eval_before: bool = False,
    eval_after: bool = False,
    evals: dict[str, Any] | None = None,
    eval_fn: Callable[[Any], dict[str, Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Load the policy (``policy``: a policy, or a function that loads one), evaluate it on
    ``eval_rows`` (``eval_before``), train it with ``tinyr1.grpo.train`` into ``run_dir`` (one
    ``Step`` per step), evaluate it again (``eval_after``), then ``Finished``.

    ``evaluate(policy, rows)`` returns a report (tinyr1.evaluate's); without it, or without
    ``eval_rows``, nothing is evaluated. Each evaluation is added to ``evals`` (the run's earlier
    ones, e.g. ``read_evals(run_dir)`` on resume) and written to ``run_dir/eval.json``.
    ``eval_fn`` is the loop's periodic evaluation hook (``config.eval_every``). Errors end the
    stream with a ``Failed`` event; KeyboardInterrupt propagates (the loop checkpoints first)."""
    run_dir = Path(run_dir)
    evals = dict(evals or {})
    try:
        model = policy() if callable(policy) else policy
    except Exception as exc:  # a missing or broken checkpoint
        yield Failed("load", exc)
        return
    start_step = newest_step(run_dir) if resume else 0
    yield RunStarted(run_dir, model, start_step, len(rows), len(eval_rows))
    can_evaluate = evaluate is not None and len(eval_rows) > 0
    if eval_before and can_evaluate:
        failed = yield from _evaluate("before", model, eval_rows, evaluate, evals, run_dir)
        if failed:
            return
    trained = yield from _train(config, model, rows, run_dir, resume, start_step, eval_fn, should_stop)
    if trained is None:
        return
    seconds, last, verdict = trained
    yield Trained(run_dir / "final", seconds, last)
    if eval_after and can_evaluate:
        failed = yield from _evaluate("after", model, eval_rows, evaluate, evals, run_dir)
        if failed:
            return
    yield Finished(run_dir, run_dir / "final", config.steps, seconds, evals, last, verdict)


def _evaluate(which: str, policy: Any, rows: Sequence[Any], evaluate: Callable, evals: dict[str, Any],
              run_dir: Path) -> Iterator[Event]:
    """One evaluation as events; returns True when it failed."""
    yield Evaluating(which, len(rows))
    try:
        report = evaluate(policy, rows)
    except Exception as exc:
        yield Failed(f"eval_{which}", exc)
        return True
    evals[f"eval_{which}"] = report
    run_dir.mkdir(parents=True, exist_ok=True)  # a new run's folder may not exist before training
    from tinyr1.files import atomic_file

    with atomic_file(run_dir / EVAL_FILE) as fh:  # a crash mid-write keeps the previous evaluations
        fh.write(json.dumps(evals, indent=2) + "\n")
    yield Evaluated(which, report, dict(evals))
    return False


def _train(config: Any, policy: Any, rows: Sequence[Any], run_dir: Path, resume: bool, start_step: int,
           eval_fn: Callable | None, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
    """The training loop as events; returns (seconds, last metrics, the last steps' diagnosis)
    when it completed, else None.
    Closing this generator closes the loop, which writes a checkpoint of the last completed step."""
    from tinyr1.grpo import train

    yield Training(start_step, config.steps)
    started = time.perf_counter()
    try:
        gen = train(config, policy, rows, run_dir, resume=resume, eval_fn=eval_fn)
    except Exception as exc:  # settings the loop refuses (GRPOConfigError)
        yield Failed("train", exc)
        return None
    last: dict[str, float] = {}
    history: list[dict[str, float]] = []
    said = False  # CannotLearn is said once per run
    try:
        for record in gen:
            last = record.metrics
            history.append(last)
            yield Step(record, start_step, time.perf_counter() - started)
            verdict = diagnose(history) if len(history) >= min(DIAGNOSIS_STEPS, config.steps - start_step) else None
            if verdict is not None and not said:
                said = True
                yield CannotLearn(record.step, verdict)
            if should_stop is not None and should_stop():
                gen.close()  # writes a checkpoint of the last completed step
                step = newest_step(run_dir)
                folder = run_dir / "checkpoints" / f"step-{step:06d}"
                yield Stopped(step, folder if step else None)
                return None
    except Exception as exc:  # resume refused (other settings, data or policy), or a failing step
        yield Failed("train", exc)
        return None
    finally:
        gen.close()
    return time.perf_counter() - started, last, diagnose(history)
