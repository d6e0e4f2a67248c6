"""The GRPO tab's work, gradio-free: ``GRPORunner`` prepares a run's data (the synthetic world or
an upload) into ``runs/<YYYYmmdd-HHMMSS>/``, follows ``tinyr1.runs.run_grpo`` and turns its events
into ``TrainUpdate``s (what the tab shows at each moment); Resume, Stop's checkpoint, and the tuned
policy handed to the Reason tab.

    runner = GRPORunner(Workbench("/path/to/root"))
    for update in runner.start(world_n=64, steps=20, preset_name="tiny"):
        print(update.status)
"""
from __future__ import annotations

import json
import math
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd

from tinyr1 import runs
from tinyr1.app.guard import LimitError, check_disk, check_grpo, relative_paths, remove_uploads, safe_block
from tinyr1.app.reason import Workbench
from tinyr1.app.settings import MIN_FREE_DISK_MB, RUNS_MAX_AGE_HOURS, RUNS_MAX_COUNT, UPLOAD_ROOT
from tinyr1.app.tables import accuracy_change, empty_group, eval_table, group_table, group_title, plot_frames, step_values
from tinyr1.app.uploads import HELDOUT_MIN_ROWS, HELDOUT_SHARE, prepare_upload, split_heldout
from tinyr1.limits import GRPO_MINUTES, WORLD_QUESTIONS
from tinyr1.runs import RUN_FILE, list_runs, newest_step, run_dir_of, run_label

#: The per-step values the plots draw, kept in the run folder so Resume redraws the steps before it.
PLOT_FILE = "plots.jsonl"
#: The clock of a run's time limit (a test replaces it).
_clock = time.monotonic
DATA_SOURCES = {"world": "Synthetic world (train split)", "upload": "Upload a JSONL with its videos"}


def grpo_defaults(preset_name: str = "paper") -> dict[str, Any]:
    """The recipe fields the tab shows, as the preset sets them (``tinyr1.grpo.config``)."""
    from tinyr1.grpo.config import PRESETS, GRPOConfig

    c = GRPOConfig(**PRESETS[preset_name])
    return dict(
        num_generations=c.num_generations, temperature=c.temperature, max_new_tokens=c.max_new_tokens,
        learning_rate=c.learning_rate, beta=c.beta, epsilon=c.epsilon, num_iterations=c.num_iterations,
        loss_type=c.loss_type, reward=c.rewards[0], steps=c.steps, prompts_per_step=c.prompts_per_step, seed=c.seed,
    )


def grpo_config(preset_name: str = "paper", **fields: Any) -> Any:
    """A validated ``GRPOConfig``: the preset, overridden by the tab's fields (numbers from the
    UI arrive as floats: the integer fields are rounded). Raises ``GRPOConfigError``."""
    from tinyr1.grpo.config import preset

    ints = ("num_generations", "max_new_tokens", "num_iterations", "steps", "prompts_per_step", "seed")
    overrides: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if name == "reward":
            overrides["rewards"] = (str(value),)
        elif name in ints:
            overrides[name] = int(round(float(value)))
        elif name == "loss_type":
            overrides[name] = str(value)
        else:
            overrides[name] = float(value)
    return preset(preset_name, **overrides)  # GRPOConfigError for an unknown preset or a bad value


def reward_names() -> list[str]:
    from tinyr1.rewards import REWARDS

    return list(REWARDS)


@dataclass
class TrainUpdate:
    """One streamed state of a GRPO run (what the tab shows at that moment). ``None`` fields
    are unchanged since the last update."""

    status: str
    phase: str  # prepare | eval | step | warning (cannot learn) | done | stopped | error | busy
    run: str | None = None  # runs/<name>
    step: int = 0
    steps: int = 0
    plots: dict[str, pd.DataFrame] | None = None
    group: pd.DataFrame | None = None
    group_title: str | None = None
    evals: pd.DataFrame | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    new_run: bool = False  # the run folder was just made (the run dropdown learns it)


def _error(message: str, run: str | None = None) -> TrainUpdate:
    """The last update of a run that could not start."""
    return TrainUpdate(status=f"⚠️ {message}", phase="error", run=run, error=message,
                       result={"phase": "error", "error": message, "run": run, "done": True})


class _RunView:
    """What the tab knows of one run while it streams: the result JSON so far, the evaluations,
    the plotted history; ``update`` makes the next ``TrainUpdate``."""

    def __init__(self, run_dir: Path, steps: int, start_step: int) -> None:
        self.run_dir, self.label, self.steps, self.start_step = run_dir, run_label(run_dir), steps, start_step
        self.result: dict[str, Any] = {"phase": "prepare", "run": self.label, "step": 0, "steps": steps, "done": False,
                                       "error": None, "final": None, "diagnosis": None}
        self.evals: dict[str, Any] = runs.read_evals(run_dir)
        self.plot_file = run_dir / PLOT_FILE
        self.history = runs.read_history(self.plot_file, start_step)
        self.seconds = 0.0  # the training loop's time, once it ended
        self.eval_n = 0  # questions of the evaluation under way
        self.policy_label = ""
        self.warning = ""  # runs.CannotLearn's text, repeated under every later step

    def update(self, status: str, phase: str, **kw: Any) -> TrainUpdate:
        self.result.update(phase=phase, **{k: v for k, v in kw.items()
                                           if k in ("step", "metrics", "error", "final", "done", "diagnosis")})
        self.result.update(eval_before=self.evals.get("eval_before"), eval_after=self.evals.get("eval_after"))
        return TrainUpdate(status=status, phase=phase, run=self.label, step=self.result["step"], steps=self.steps,
                           result=dict(self.result), error=self.result.get("error"), new_run=kw.get("new_run", False),
                           plots=kw.get("plots"), group=kw.get("group"), group_title=kw.get("group_title"),
                           evals=kw.get("evals"))

    def fail(self, message: str) -> TrainUpdate:
        return self.update(f"⚠️ {message}", "error", error=message, done=True)

    def step(self, event: runs.Step, resume: bool) -> TrainUpdate:
        record = event.record
        values = {"step": record.step, **step_values(record.metrics, record.groups)}
        self.history.append(values)
        runs.append_history(self.plot_file, values)
        m = record.metrics
        pace = event.seconds / max(1, record.step - self.start_step)
        first = record.step == self.start_step + 1
        note = f" (resumed from the checkpoint of step {self.start_step})" if first and resume and self.start_step else ""
        kl = f" · KL {m['kl']:.4f}" if "kl" in m else " · no KL (β = 0)"
        group = record.groups[-1] if record.groups else None
        return self.update(
            f"**Step {record.step}/{self.steps}**{note} · reward {m['reward']:+.3f} · accuracy {m['accuracy']:.0%} · "
            f"format {m['format_rate']:.0%} · think {m['think_chars']:.0f} chars{kl} · {pace:.2f} s/step. "
            + (f"\n\n⚠️ {self.warning}" if self.warning else "Stop keeps a checkpoint of the last step; Resume continues it."),
            "step", step=record.step, metrics={k: round(float(v), 6) for k, v in m.items()},
            plots=plot_frames(self.history),
            group=group_table(group) if group else None,
            group_title=group_title(record.step, group) if group else None,
        )

    def show(self, event: Any, resume: bool) -> TrainUpdate | None:
        """The update an event of ``tinyr1.runs`` shows (None: nothing to show)."""
        if isinstance(event, runs.Step):
            return self.step(event, resume)
        if isinstance(event, runs.CannotLearn):
            self.warning = event.diagnosis.text()
            return self.update(f"**Step {event.step}/{self.steps}** · ⚠️ {self.warning}", "warning",
                               diagnosis=event.diagnosis.to_dict())
        if isinstance(event, runs.Evaluating):
            self.eval_n = event.n
        if isinstance(event, runs.Evaluating) and event.which == "before":
            return self.update(f"Evaluating the starting policy on {event.n} held-out questions (greedy)…", "eval")
        if isinstance(event, runs.Evaluated):
            self.evals = dict(event.evals)
            if event.which == "before":
                return self.update(f"Before training: accuracy {event.report['accuracy']:.1%} on {self.eval_n} "
                                   "held-out questions. Starting GRPO…", "eval", evals=eval_table(event.report, None))
            return None
        if isinstance(event, runs.Trained):
            self.seconds = event.seconds
            return None
        if isinstance(event, runs.Evaluating):
            return self.update(f"Trained {self.steps} steps in {self.seconds:.0f} s. Evaluating the tuned policy on "
                               f"{event.n} held-out questions…", "eval", final=str(self.run_dir / "final"))
        if isinstance(event, runs.Finished):
            before, after = self.evals.get("eval_before"), self.evals.get("eval_after")
            verdict = ""
            if after:
                verdict = f" Held-out accuracy {accuracy_change(after, before)}."
            d = event.diagnosis
            if d is not None:
                return self.update(
                    f"**Done, but this run learned (almost) nothing**: {self.steps} steps in {event.seconds:.0f} s.{verdict} "
                    f"{d.message}\n\n**What to change**: {d.advice} (The policy is written anyway: `{self.label}/final`.)",
                    "done", final=str(event.final), done=True, evals=eval_table(before, after), diagnosis=d.to_dict())
            return self.update(f"**Done**: {self.steps} steps in {event.seconds:.0f} s.{verdict} The tuned policy is "
                               f"`{self.label}/final`: press **Use in Reason** to try it.", "done",
                               final=str(event.final), done=True, evals=eval_table(before, after), diagnosis=None)
        if isinstance(event, runs.Stopped):
            return self.update(stopped_message(self.label, event.step), "stopped", step=event.step, done=True)
        if isinstance(event, runs.Failed):
            return self.fail(_failure(event, self.policy_label))
        return None


def stopped_message(label: str, step: int) -> str:
    """What the tab says of a run stopped after ``step`` (its checkpoint written)."""
    if not step:
        return f"**Stopped** `{label}` before its first step: nothing to keep. **Start** begins again."
    return (f"**Stopped** `{label}` after step {step}: checkpoint `{label}/checkpoints/step-{step:06d}` written. "
            "**Resume** continues from it.")


def _failure(event: runs.Failed, policy_label: str) -> str:
    """What the tab says of a failed run (the unexpected ones print their traceback)."""
    from tinyr1.grpo.config import GRPOConfigError

    exc = event.error
    if event.stage == "load":
        return f"Could not load policy {policy_label!r}: {exc}"
    if event.stage == "train" and isinstance(exc, (GRPOConfigError, ValueError)):
        return str(exc)  # settings the loop refuses, or a resume refused (other settings, data or policy)
    traceback.print_exception(exc)
    what = {"eval_before": "Evaluation failed", "eval_after": "Evaluation after training failed"}.get(
        event.stage, "Training failed")
    return f"{what}: {type(exc).__name__}: {exc}"


class GRPORunner:
    """The GRPO tab's work, gradio-free: prepare the data, follow ``tinyr1.runs.run_grpo`` with a
    freshly loaded starting policy, Resume, Stop, and hand the tuned policy to the Reason tab.
    Runs live in ``<root>/runs/<YYYYmmdd-HHMMSS>/``."""

    def __init__(self, bench: Workbench) -> None:
        self.bench = bench
        self.root = bench.root
        self._closing: dict[str, threading.Event] = {}  # run label -> set once its generator is closed

    def default_start_policy(self) -> str | None:
        """The policy GRPO starts from by default: the cold-start one (what the repository's own
        GRPO run starts from), else the first small one (a tiny registry entry or a folder: full
        fine-tuning of a 3B model is not a default), else the app's default."""
        options = self.bench.policy_options()
        small = [key for key, o in options.items() if o.entry is None or o.entry.kind == "tiny"]
        return next((key for key in small if key.startswith("tiny-coldstart")), next(iter(small), self.bench.default_policy()))

    # -- Start
    def start(
        self,
        *,
        data_source: str = "world",
        world_n: int = 64,
        jsonl: str | None = None,
        videos: Sequence[str] | None = None,
        policy: str | None = None,
        preset_name: str = "paper",
        eval_before: bool = True,
        eval_n: int = 32,
        session: str | None = None,
        should_stop: Callable[[], bool] | None = None,
        **fields: Any,
    ) -> Iterator[TrainUpdate]:
        """A new run: data, evaluation before (optional), one update per step, evaluation after.
        Every limit (tinyr1.limits, the app's disk rules) is checked before anything is written.
        ``should_stop()`` turning true ends it after the current step, with a checkpoint."""
        from tinyr1.grpo.config import GRPOConfigError

        try:
            config = grpo_config(preset_name, **fields)
            check_grpo(config)
            if data_source == "world":
                WORLD_QUESTIONS.check(int(world_n or 0), "synthetic-world questions")
                WORLD_QUESTIONS.check(int(eval_n or 0), "held-out questions")
            else:
                self.bench.uploads.charge(session, [jsonl, *(videos or [])])
            # Room for the run about to start: at most RUNS_MAX_COUNT of the app's runs afterwards.
            runs.prune_app_runs(self.root, max_age_hours=RUNS_MAX_AGE_HOURS,
                                max_count=RUNS_MAX_COUNT - 1 if RUNS_MAX_COUNT else None)
            check_disk(self.root / runs.RUNS_DIR, MIN_FREE_DISK_MB)
        except LimitError as exc:
            yield _error(str(exc))
            return
        except (GRPOConfigError, ValueError, TypeError) as exc:
            yield _error(f"Bad GRPO settings: {exc}")
            return
        option = self.bench.option(policy or self.default_start_policy())
        if option is None:
            yield _error(self.bench.why_unavailable(policy or self.default_start_policy()))
            return
        if data_source not in DATA_SOURCES:
            yield _error(f"unknown data source {data_source!r}; choose one of {', '.join(DATA_SOURCES)}")
            return
        run_dir = runs.new_run_dir(self.root)
        data: dict[str, Any] = {}
        try:
            yield from self._prepare_data(run_dir, config, data_source, int(world_n or 0), jsonl, videos,
                                          max(0, int(eval_n or 0)), data)
        finally:
            remove_uploads([jsonl, *(videos or [])], UPLOAD_ROOT)  # copied into the run (or refused)
        if not data:
            return
        info = {
            "policy": {"label": option.key, "path": option.target},
            "data": {"source": data_source, "train": str(data["train_file"].relative_to(run_dir)), "rows": len(data["rows"]),
                     "eval": str(data["eval_file"].relative_to(run_dir)) if data["eval_file"] else None,
                     "eval_source": data["eval_source"]},
            "eval": {"temperature": 0.0, "max_new_tokens": config.max_new_tokens, "seed": 0, "num_frames": config.num_frames},
            "preset": preset_name,
            "config": config.to_dict(),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "created_by": "app",  # what runs.prune_app_runs may delete
        }
        (run_dir / RUN_FILE).write_text(json.dumps(info, indent=2) + "\n")
        yield from self._run(run_dir, info, config, data["rows"], data["eval_rows"], eval_before=bool(eval_before),
                             resume=False, should_stop=should_stop)

    def _prepare_data(self, run_dir: Path, config: Any, source: str, world_n: int, jsonl: str | None,
                      videos: Sequence[str] | None, eval_n: int, out: dict[str, Any]) -> Iterator[TrainUpdate]:
        """The run's questions written under ``run_dir/data``; ``out`` gets rows, eval_rows,
        train_file, eval_file and eval_source, or stays empty (the run folder removed) when the
        data cannot be used."""
        from tinyr1.data import DatasetError, load_dataset, write_dataset

        label = run_label(run_dir)
        data = run_dir / "data"
        first = dict(phase="prepare", run=label, steps=config.steps, new_run=True, plots=plot_frames([]),
                     group=empty_group(), group_title="", evals=eval_table(None, None),
                     result={"phase": "prepare", "run": label, "done": False})
        try:
            if source == "world":
                from tinyr1.world import write_split

                if world_n < 1:
                    raise DatasetError(f"the world split needs at least 1 question, got {world_n}")
                yield TrainUpdate(status=f"Writing {world_n} synthetic-world clips (train split) under `{label}/data/`…", **first)
                train_file = write_split("train", world_n, data / "train", progress=False)
                eval_file = write_split("validation", eval_n, data / "validation", progress=False) if eval_n else None
                rows, eval_rows = load_dataset(train_file), load_dataset(eval_file) if eval_file else []
                eval_source = f"{len(eval_rows)} questions of the world's validation split"
            else:
                yield TrainUpdate(status="Checking the uploaded dataset…", **first)
                rows, eval_rows = split_heldout(prepare_upload(jsonl, videos, data / "upload"), eval_n, seed=0)
                eval_source = (f"{len(eval_rows)} held-out rows of your upload (a seeded random {HELDOUT_SHARE:.0%}, not trained on)"
                               if eval_rows else f"none: fewer than {HELDOUT_MIN_ROWS} rows to hold any out")
                train_file = write_dataset(rows, data / "train.jsonl")
                eval_file = write_dataset(eval_rows, data / "heldout.jsonl") if eval_rows else None
        except (DatasetError, ValueError) as exc:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing trained: leave no half run behind
            kind = "dataset" if isinstance(exc, DatasetError) else "data"
            yield _error(f"The {kind} cannot be used:\n{safe_block(relative_paths(str(exc), self.root))}")
            return
        out.update(rows=rows, eval_rows=eval_rows, train_file=train_file, eval_file=eval_file, eval_source=eval_source)

    # -- Resume
    def resume(self, run: str | None = None, steps: int | None = None,
               should_stop: Callable[[], bool] | None = None) -> Iterator[TrainUpdate]:
        """Continue ``run`` (default: the newest) from its newest checkpoint, with its own settings
        and data and a freshly loaded starting policy, up to ``steps`` (default: the run's own;
        more extends it, and a decaying learning rate then follows the longer schedule)."""
        from tinyr1.data import load_dataset
        from tinyr1.grpo.config import GRPOConfig

        try:
            run = run or next(iter(list_runs(self.root)), None)
            if run is None:
                raise ValueError("no run to resume: press Start first")
            run_dir = run_dir_of(self.root, run)
            info = json.loads((run_dir / RUN_FILE).read_text())
            config = GRPOConfig.from_dict(info["config"])
            if steps:
                config = config.replace(steps=int(steps))
            check_grpo(config)  # LimitError is a ValueError: said below
            rows = load_dataset(run_dir / info["data"]["train"])
            eval_rows = load_dataset(run_dir / info["data"]["eval"]) if info["data"].get("eval") else []
        except (ValueError, KeyError, OSError) as exc:
            yield _error(f"Cannot resume: {relative_paths(str(exc), self.root)}", run)
            return
        done_at = newest_step(run_dir)
        if done_at >= config.steps:
            label = run_label(run_dir)
            where = (f"has finished its {done_at} steps; its tuned policy is `{label}/final`" if runs.is_finished(run_dir)
                     else f"is at step {done_at}")
            yield TrainUpdate(
                status=f"`{label}` {where}. To train it further, set **Steps** above {done_at} and press **Resume**.",
                phase="done", run=label, step=done_at, steps=config.steps,
                result={"phase": "done", "run": label, "step": done_at, "steps": config.steps, "done": True,
                        "error": None, "final": str(run_dir / "final")})
            return
        yield from self._run(run_dir, info, config, rows, eval_rows, eval_before=False, resume=True, should_stop=should_stop)

    # -- the run itself
    def _run(self, run_dir: Path, info: dict[str, Any], config: Any, rows: list[Any], eval_rows: list[Any],
             *, eval_before: bool, resume: bool, should_stop: Callable[[], bool] | None = None) -> Iterator[TrainUpdate]:
        view = _RunView(run_dir, config.steps, newest_step(run_dir) if resume else 0)
        view.policy_label = info["policy"]["label"]
        what = "Resuming" if resume else "Loading"
        held_out = info["data"].get("eval_source") or "none"
        yield view.update(f"{what} **{view.policy_label}** for `{view.label}` ({len(rows)} training questions; held out "
                          f"for evaluation: {held_out})…", "prepare", new_run=resume,
                          plots=plot_frames(view.history), group=empty_group(), group_title="",
                          evals=eval_table(view.evals.get("eval_before"), view.evals.get("eval_after")))
        settings = self._eval_settings(info)
        events = runs.run_grpo(
            config, lambda: self.bench.fresh_policy(info["policy"]["path"]), rows, run_dir, resume=resume,
            eval_rows=eval_rows, evaluate=lambda policy, questions: self._evaluate(policy, questions, settings),
            eval_before=eval_before, eval_after=True, evals=view.evals, should_stop=should_stop)
        closing = threading.Event()
        waiting = False  # True while this generator waits at a yield: a close then is Stop
        deadline = _clock() + GRPO_MINUTES.value * 60  # a public app's run is bounded in time
        try:
            for event in events:
                if isinstance(event, runs.Training):
                    self._closing[view.label] = closing
                    runs.truncate_history(view.plot_file, view.start_step)
                update = view.show(event, resume)
                if update is not None:
                    waiting = True
                    yield update
                    waiting = False
                if isinstance(event, runs.Step) and _clock() > deadline:
                    events.close()  # writes the checkpoint of this step: Resume continues it
                    # A stop, not a failure: nothing went wrong, and the run goes on with Resume.
                    yield view.update(f"{stopped_message(view.label, event.record.step)} It reached the time "
                                      f"limit of {GRPO_MINUTES.value} minutes (set {GRPO_MINUTES.env} to raise it).",
                                      "stopped", step=event.record.step, done=True)
                    break
        except Exception as exc:  # the tab's own displays: say it, keep serving
            traceback.print_exc()
            yield view.fail(f"Training failed: {type(exc).__name__}: {exc}")
        finally:
            if waiting:
                # Stop (gradio closes this generator): closing the run closes the loop, which writes a
                # checkpoint of the last completed step. In a thread: gradio closes generators on its
                # event loop, and saving a large policy there would freeze every other request meanwhile.
                threading.Thread(target=_close_and_signal, args=(events, closing), name=f"close-{view.label}").start()
            else:
                events.close()
                closing.set()

    @staticmethod
    def _eval_settings(info: dict[str, Any]) -> Any:
        from tinyr1.policy import GenerationSettings

        e = info["eval"]
        return GenerationSettings(max_new_tokens=int(e["max_new_tokens"]), temperature=float(e["temperature"]),
                                  seed=int(e["seed"]), num_frames=e.get("num_frames"))

    @staticmethod
    def _evaluate(policy: Any, rows: list[Any], settings: Any) -> dict[str, Any]:
        from tinyr1.evaluate import evaluate

        report = evaluate(policy, rows, settings, batch_size=16)
        report.pop("records", None)
        return report

    # -- Stop and the Reason tab
    def wait_closed(self, run: str | None, timeout: float = 120.0) -> str:
        """After Stop: wait until the run's generator is closed (its checkpoint written) and say
        where the run stands."""
        event = self._closing.get(run or "")
        if event is None:
            return "Nothing is training." if not run else f"`{run}` is not training in this app."
        if not event.wait(timeout):
            return f"Stopping `{run}`: the current step is still finishing; its checkpoint follows."
        run_dir = self.root / run
        step = newest_step(run_dir)
        if runs.is_finished(run_dir):
            return f"`{run}` had finished: its tuned policy is `{run}/final`."
        return stopped_message(run, step)

    def use_in_reason(self, run: str | None) -> tuple[str | None, str]:
        """(the Reason tab's policy label of ``run``'s tuned policy, a message)."""
        try:
            run_dir = run_dir_of(self.root, run or next(iter(list_runs(self.root)), None))
        except ValueError as exc:
            return None, f"⚠️ {exc}"
        label = run_label(run_dir)
        if label not in self.bench.policies():
            step = newest_step(run_dir)
            return None, (f"⚠️ `{label}` has no tuned policy yet (stopped at step {step}): press **Resume** to finish it; "
                          "the policy is written at the end of the run.")
        return label, f"`{label}/final` is now selected in the **Reason** tab."


def _close_and_signal(gen: Any, event: threading.Event) -> None:
    try:
        gen.close()
    except Exception:
        traceback.print_exc()
    finally:
        event.set()
