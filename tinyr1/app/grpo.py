"""The GRPO tab: data, policy and recipe, evaluation; Start / Stop / Resume; live plots, the latest
group's completions, the evaluation before and after; the tuned policy into the Reason tab. The
work is ``GRPORunner``'s (tinyr1/app/grpo_runner.py, gradio-free); this module lays out the tab
and adapts its ``TrainUpdate``s to the components.

Runs train in the app's ``TrainingWorker`` (tinyr1/app/training.py): one at a time, in a thread of
their own, never in the model queue that ``/reason`` uses. ``/train`` and ``/resume`` start a run
there and stream its updates (or say at once that one is training, and about how long it has
left); a closed tab or a cancelled client only stops following, and ``/follow`` (run on page
load) follows the run again. ``/stop_training`` (the Stop button) ends the run after its current
step with a checkpoint. ``/use_in_reason`` selects a run's tuned policy in the Reason tab.
"""
from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from tinyr1.app.grpo_runner import (
    DATA_SOURCES,
    GRPORunner,
    TrainUpdate,
    grpo_defaults,
    reward_names,
)
from tinyr1.app.policies import rescan_policies
from tinyr1.app.reason import Workbench
from tinyr1.app.training import TrainingWorker
from tinyr1.app.tables import GROUP_WIDTHS, PLOT_SERIES, empty_group, eval_table
from tinyr1.app.uploads import HELDOUT_SHARE
from tinyr1.runs import run_choices

TINY_PRESET_NOTE = (
    "**paper**: the official recipe (G 8, temperature 1.0, 512 new tokens, lr 1e-6 with cosine decay, "
    "β 0.01, one update per rollout). **tiny**: lr 7e-5 with cosine decay, β 0, 96 new tokens — the paper's lr 1e-6 "
    "moves a policy of a few million parameters by nothing visible in minutes; the tiny preset is what the "
    "embedded policy learns with on a CPU."
)
#: The recipe fields a preset sets, in the order of the tab's boxes.
PRESET_KEYS = ["num_generations", "temperature", "max_new_tokens", "learning_rate", "beta", "num_iterations",
               "epsilon", "loss_type", "reward"]
D = grpo_defaults("paper")  # the handlers' defaults, as /train's API shows them
#: The concurrency group of the listeners that follow a run (never the model queue).
TRAIN_QUEUE = "train"


def memory_line(policy: Any, prompts: Any, group_size: Any, max_new_tokens: Any, beta: Any) -> str:
    """One Markdown line: `tinyr1 plan`'s predicted peak of a step with these settings (full
    fine-tuning on this machine's device), and a warning when it exceeds the device's memory."""
    from tinyr1.plan import device_memory_gb, plan

    device, have = device_memory_gb()
    try:
        p = plan(str(policy), G=int(group_size), prompts=int(prompts), max_new_tokens=int(max_new_tokens),
                 beta=float(beta), device=device)
    except Exception as exc:  # noqa: BLE001 - a run folder or an odd value: no prediction, the tab stays up
        return f"Predicted peak memory: not available for this policy ({str(exc).splitlines()[0][:120]})."
    line = f"Predicted peak memory (`tinyr1 plan`, {device}): **{p['peak_gb']:.2f} GB**"
    if have is not None and p["peak_gb"] > have:
        return line + f" — ⚠ more than this machine's {have:.1f} GB: fewer questions per step, smaller G or fewer tokens."
    return line + (f" of {have:.1f} GB." if have is not None else ".")


class GRPOTab:
    """The GRPO tab's components and listeners; built inside a ``gr.Tab``. ``policy_dd`` and
    ``tabs`` are the Reason tab's picker and the app's tabs (Use in Reason selects both)."""

    def __init__(self, bench: Workbench, policy_dd: gr.Dropdown, tabs: gr.Tabs) -> None:
        self.bench, self.runner, self.worker = bench, GRPORunner(bench), TrainingWorker()
        self.policy_dd, self.tabs = policy_dd, tabs
        gr.Markdown(
            "GRPO fine-tunes a policy on questions with known answers: for each question it samples **G** answers, "
            "scores each with the reward, and pushes the policy towards the answers that beat their group's average. "
            "Each run is saved under `runs/<time>/` (metrics, rollouts, checkpoints, `final/`); **Stop** keeps a "
            "checkpoint of the last step and **Resume** continues it.",
            elem_id="grpo-intro",
        )
        with gr.Row():
            with gr.Column(scale=4, min_width=340):
                with gr.Accordion("1 · Data", open=True):
                    self._data()
                with gr.Accordion("2 · Policy and recipe", open=True):
                    self._recipe()
                with gr.Accordion("3 · Evaluation", open=True):
                    self._evaluation()
            with gr.Column(scale=7):
                self._controls()
                self._plots()
                self._tables()
        self._wire()

    # -- layout
    def _data(self) -> None:
        self.source = gr.Radio(choices=[(text, key) for key, text in DATA_SOURCES.items()], value="world",
                               label="Training questions", elem_id="grpo-source")
        self.world_n = gr.Slider(1, 2000, value=64, step=1, label="Questions from the world's train split",
                                 info="clips of coloured shapes, written under the run folder", elem_id="grpo-world-n")
        with gr.Column(visible=False) as self.upload_box:
            self.jsonl = gr.File(
                label="Dataset: a .jsonl (video, question, options, answer per line) or a .zip with it and its videos",
                file_types=[".jsonl", ".zip"], elem_id="grpo-jsonl", height=110,
            )
            self.videos = gr.File(label="Its videos (rows find them by file name), or a .zip of them",
                                  file_count="multiple", file_types=["video", ".zip"], elem_id="grpo-videos", height=110)

    def _recipe(self) -> None:
        with gr.Row():
            self.start_policy = gr.Dropdown(
                choices=self.bench.policy_choices(), value=self.runner.default_start_policy(), label="Starting policy",
                elem_id="grpo-policy", scale=4, info="the same list as Reason's (the registry, then runs)",
            )
            self.rescan = gr.Button("↻", scale=0, size="sm", min_width=40)
        self.preset = gr.Radio(["paper", "tiny"], value="paper", label="Preset", elem_id="grpo-preset")
        gr.Markdown(TINY_PRESET_NOTE, elem_id="grpo-preset-note")
        number = dict(min_width=100)
        with gr.Row():
            self.steps = gr.Number(value=D["steps"], precision=0, minimum=1, label="Steps", elem_id="grpo-steps", **number)
            self.prompts = gr.Number(value=D["prompts_per_step"], precision=0, minimum=1, label="Questions per step",
                                     elem_id="grpo-prompts", **number)
            self.group_size = gr.Number(value=D["num_generations"], precision=0, minimum=2, label="G (answers per question)",
                                        elem_id="grpo-g", **number)
        with gr.Row():
            self.temperature = gr.Number(value=D["temperature"], minimum=0.01, step=0.1, label="Temperature",
                                         elem_id="grpo-temperature", **number)
            self.max_new = gr.Number(value=D["max_new_tokens"], precision=0, minimum=1, label="Max new tokens",
                                     elem_id="grpo-max-new", **number)
            self.lr = gr.Number(value=D["learning_rate"], minimum=0, step=1e-6, label="Learning rate", elem_id="grpo-lr", **number)
        with gr.Row():
            self.beta = gr.Number(value=D["beta"], minimum=0, step=0.01, label="β (KL weight)", elem_id="grpo-beta", **number)
            self.iterations = gr.Number(value=D["num_iterations"], precision=0, minimum=1, label="Updates per rollout",
                                        elem_id="grpo-iterations", **number)
            self.epsilon = gr.Number(value=D["epsilon"], minimum=0.01, step=0.05, label="Clip ε (if updates > 1)",
                                     elem_id="grpo-epsilon", **number)
        self.memory_md = gr.Markdown(memory_line(self.runner.default_start_policy(), D["prompts_per_step"],
                                                 D["num_generations"], D["max_new_tokens"], D["beta"]),
                                     elem_id="grpo-memory")
        with gr.Row():
            self.loss_type = gr.Dropdown(["grpo", "dr_grpo", "dapo"], value=D["loss_type"], label="Loss", elem_id="grpo-loss", **number)
            self.reward = gr.Dropdown(reward_names(), value=D["reward"], label="Reward", elem_id="grpo-reward", **number)
            self.seed = gr.Number(value=D["seed"], precision=0, label="Seed", elem_id="grpo-seed", **number)

    def _evaluation(self) -> None:
        with gr.Row():
            self.eval_before = gr.Checkbox(value=True, label="Evaluate the starting policy first", elem_id="grpo-eval-before")
            self.eval_n = gr.Number(value=32, precision=0, minimum=0, label="Held-out questions (0 = none)",
                                    elem_id="grpo-eval-n", min_width=100)
        gr.Markdown(
            "Greedy answers (temperature 0, the run's max new tokens, seed 0) to questions never trained on: "
            f"the world's validation split, or a seeded random {HELDOUT_SHARE:.0%} of an upload. "
            "After training runs when the run completes.",
            elem_id="grpo-eval-note",
        )

    def _controls(self) -> None:
        runs = run_choices(self.bench.root)
        with gr.Row(equal_height=False):
            self.start = gr.Button("Start", variant="primary", elem_id="grpo-start", scale=1, min_width=90)
            self.stop = gr.Button("Stop", variant="stop", elem_id="grpo-stop", scale=1, min_width=90)
            self.resume = gr.Button("Resume", elem_id="grpo-resume", scale=1, min_width=90)
            self.run_dd = gr.Dropdown(
                choices=runs, value=runs[0][1] if runs else None, label="Run", elem_id="grpo-run", scale=3,
                allow_custom_value=True,  # runs appear while the app serves; run_dir_of checks the label
                info="Resume continues it up to Steps; Use in Reason selects its tuned policy there",
            )
        self.status = gr.Markdown("Choose the data and the recipe on the left, then press **Start**.", elem_id="grpo-status")

    def _plots(self) -> None:
        # value=None at first, not an empty DataFrame: gradio 6.31 never draws a line in a
        # LinePlot with a colour column whose first data was empty (an empty update later is fine).
        args = dict(x="step", y="value", color="name", color_title=" ", height=230, x_title="step", min_width=280)
        with gr.Row():
            self.reward_plot = gr.LinePlot(
                value=None, title="Reward and the parts it earned (mean)", y_title="reward",
                color_map=PLOT_SERIES["reward"], y_lim=[-2.2, 2.2], elem_id="grpo-reward-plot", **args,
            )
            self.quality_plot = gr.LinePlot(
                value=None, title="Accuracy and format rate", y_title="share", y_lim=[-0.05, 1.05],
                color_map=PLOT_SERIES["quality"], elem_id="grpo-quality-plot", **args,
            )
        with gr.Row():
            self.think_plot = gr.LinePlot(value=None, title="Think length (characters, mean)", y_title="characters",
                                          color_map=PLOT_SERIES["think"], elem_id="grpo-think-plot", **args)
            self.kl_plot = gr.LinePlot(value=None, title="KL to the starting policy (only when β > 0)",
                                       y_title="KL per token", color_map=PLOT_SERIES["kl"], elem_id="grpo-kl-plot", **args)

    def _tables(self) -> None:
        self.group_md = gr.Markdown("", elem_id="grpo-group-title")
        self.group_df = gr.Dataframe(
            value=empty_group(), label="The latest group's completions: what each earned and its advantage",
            interactive=False, wrap=True, column_widths=GROUP_WIDTHS, max_height=420, elem_id="grpo-group",
        )
        self.evals_df = gr.Dataframe(value=eval_table(None, None), label="Held-out evaluation: before and after training",
                                     interactive=False, elem_id="grpo-eval")
        with gr.Row(equal_height=True):
            self.use = gr.Button("Use in Reason →", variant="secondary", elem_id="grpo-use", scale=1)
            self.use_msg = gr.Markdown("", elem_id="grpo-use-status")
        with gr.Accordion("Last update as JSON (what /train streams)", open=False):
            self.result = gr.JSON(label="Update", elem_id="grpo-json")

    # -- listeners
    def _wire(self) -> None:
        outputs = [self.status, self.reward_plot, self.quality_plot, self.think_plot, self.kl_plot, self.group_md,
                   self.group_df, self.evals_df, self.result, self.run_dd]
        recipe = [self.steps, self.prompts, self.group_size, self.temperature, self.max_new, self.lr, self.beta,
                  self.iterations, self.epsilon, self.loss_type, self.reward, self.seed]
        # Followers only wait for the worker's updates: their own group, any number at a time.
        queue = dict(concurrency_id=TRAIN_QUEUE, concurrency_limit=None)
        self.outputs = outputs
        self.start.click(
            self.train, inputs=[self.source, self.world_n, self.jsonl, self.videos, self.start_policy, self.preset,
                                *recipe, self.eval_before, self.eval_n],
            outputs=outputs, api_name="train", **queue)
        self.resume.click(self.resume_run, inputs=[self.run_dd, self.steps], outputs=outputs, api_name="resume", **queue)
        self.stop.click(self.stop_run, outputs=self.status, api_name="stop_training", queue=False)
        # The picker lists where each run stands now whenever it is opened (runs move on, stop,
        # finish, or are started by another visitor after this page was built).
        self.run_dd.focus(self.refresh_runs, inputs=self.run_dd, outputs=self.run_dd, queue=False,
                          api_visibility="private")
        self.use.click(self.use_in_reason, inputs=self.run_dd, outputs=[self.policy_dd, self.use_msg, self.tabs],
                       api_name="use_in_reason", queue=False)
        private = dict(api_visibility="private", queue=False)
        self.source.change(self.choose_source, inputs=self.source, outputs=[self.world_n, self.upload_box], **private)
        preset_fields = [self.group_size, self.temperature, self.max_new, self.lr, self.beta, self.iterations,
                         self.epsilon, self.loss_type, self.reward]
        self.preset.change(apply_preset, inputs=self.preset, outputs=preset_fields, **private)
        self.rescan.click(self.rescan_policies, inputs=self.start_policy, outputs=self.start_policy, **private)
        sizes = [self.start_policy, self.prompts, self.group_size, self.max_new, self.beta]
        for field in sizes:
            field.change(memory_line, inputs=sizes, outputs=self.memory_md, **private)

    def show(self, update: TrainUpdate) -> dict[Any, Any]:
        """One update as component updates; components left out are unchanged."""
        if update.error:
            gr.Warning(update.error.split("\n")[0].strip(":"))
        out: dict[Any, Any] = {self.status: update.status, self.result: update.result}
        plots = update.plots
        if plots:
            # An empty plot is sent as None: a LinePlot whose first data is empty never draws a line.
            for name, component in (("reward", self.reward_plot), ("quality", self.quality_plot), ("think", self.think_plot)):
                out[component] = None if plots[name].empty else plots[name]
            # The KL plot shows only when there is a KL (β > 0: the paper preset; the tiny one has none).
            kl = plots["kl"]
            out[self.kl_plot] = gr.update(value=None if kl.empty else kl, visible=not kl.empty or update.phase == "prepare")
        if update.group_title is not None:
            out[self.group_md] = update.group_title
        if update.group is not None:
            out[self.group_df] = update.group
        if update.evals is not None:
            out[self.evals_df] = update.evals
        if update.new_run or update.phase in ("done", "error") and update.run:
            out[self.run_dd] = gr.update(choices=run_choices(self.bench.root), value=update.run)
        return out

    def train(
        self,
        data_source: str = "world",
        world_n: float = 64,
        dataset: str | None = None,
        videos: list[str] | None = None,
        policy: str | None = None,
        preset: str = "paper",
        steps: float = D["steps"],
        prompts_per_step: float = D["prompts_per_step"],
        num_generations: float = D["num_generations"],
        temperature: float = D["temperature"],
        max_new_tokens: float = D["max_new_tokens"],
        learning_rate: float = D["learning_rate"],
        beta: float = D["beta"],
        num_iterations: float = D["num_iterations"],
        epsilon: float = D["epsilon"],
        loss_type: str = D["loss_type"],
        reward: str = D["reward"],
        seed: float = D["seed"],
        eval_before: bool = True,
        eval_n: float = 32,
        request: gr.Request | None = None,
    ) -> Iterator[dict[Any, Any]]:
        """Start a GRPO run and stream one update per step. data_source "world" (world_n questions
        of the synthetic world's train split) or "upload" (dataset: a .jsonl or .zip; videos: its
        video files). Outputs: status, four plots (long format: step, name, value), the latest
        group's title and completions, the evaluation table, the update as JSON (phase
        prepare/eval/step/done/error, run, step, steps, metrics, done, error, final,
        eval_before, eval_after) and the run dropdown."""
        fields = dict(steps=steps, prompts_per_step=prompts_per_step, num_generations=num_generations,
                      temperature=temperature, max_new_tokens=max_new_tokens, learning_rate=learning_rate, beta=beta,
                      num_iterations=num_iterations, epsilon=epsilon, loss_type=loss_type, reward=reward, seed=seed)
        session = getattr(request, "session_hash", None)
        yield from self._submit(lambda should_stop: self.runner.start(
            data_source=data_source, world_n=int(world_n or 0), jsonl=dataset, videos=videos, policy=policy,
            preset_name=preset, eval_before=eval_before, eval_n=int(eval_n or 0), session=session,
            should_stop=should_stop, **fields))

    def refresh_runs(self, current: str | None = None) -> Any:
        """The run picker's choices as the runs stand now, keeping the current run."""
        return gr.update(choices=run_choices(self.bench.root), value=current)

    def resume_run(self, run: str | None = None, steps: float | None = None) -> Iterator[dict[Any, Any]]:
        """Continue a run (default: the newest) from its last checkpoint with a freshly loaded
        starting policy, up to steps (empty: the run's own). Same outputs as /train."""
        yield from self._submit(lambda should_stop: self.runner.resume(
            run, int(steps) if steps else None, should_stop=should_stop))

    def _submit(self, make: Any) -> Iterator[dict[Any, Any]]:
        """Start a run in the worker and follow it, or say at once that one is training."""
        job = self.worker.submit(make)  # the runner checks the limits (tinyr1/app/guard.py) in the worker
        if isinstance(job, str):
            yield self.show(_notice(f"⏳ {job}", "busy", error=job))
            return
        for update in job.follow():
            yield self.show(update)

    def follow(self) -> Iterator[dict[Any, Any]]:
        """Follow the run that is training (a reopened page does this on load): its latest update,
        then each new one until it ends. Same outputs as /train; nothing when no run trains."""
        job = self.worker.current()
        if job is None:
            yield {}
            return
        for update in job.follow(replay=1):
            yield self.show(update)

    def stop_run(self) -> str:
        """Stop the run that is training after its current step (a checkpoint keeps it; Resume
        continues it) and say where it stands."""
        last = self.worker.stop()
        if last is None:
            return "Nothing is training."
        if not self.worker.current() and last.phase in ("stopped", "done", "error"):
            return last.status
        return "Stopping: the current step is still finishing; its checkpoint follows."

    def use_in_reason(self, run: str | None) -> dict[Any, Any]:
        """Select a run's tuned policy in the Reason tab and switch to it."""
        label, message = self.runner.use_in_reason(run)
        if label is None:
            return {self.use_msg: message}
        return {self.policy_dd: gr.update(choices=self.bench.policy_choices(), value=label), self.use_msg: message,
                self.tabs: gr.Tabs(selected="reason")}

    def choose_source(self, kind: str) -> tuple[Any, Any]:
        return gr.update(visible=kind == "world"), gr.update(visible=kind == "upload")

    def rescan_policies(self, current: str | None) -> Any:
        return rescan_policies(self.bench, current, self.runner.default_start_policy())


def _notice(status: str, phase: str, error: str | None = None) -> TrainUpdate:
    """An update for a run that does not start (busy, over a cap): said at once, nothing else changes."""
    return TrainUpdate(status=status, phase=phase, error=None if phase == "busy" else error,
                       result={"phase": phase, "error": error, "done": True})


def apply_preset(name: str) -> list[Any]:
    """The recipe boxes as the preset sets them."""
    values = grpo_defaults(name)
    return [gr.update(value=values[k]) for k in PRESET_KEYS]
