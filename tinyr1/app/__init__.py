"""The tinyr1 Gradio app: Reason, Reward lab and GRPO tabs. The only package that imports gradio.

    python app.py                              # http://127.0.0.1:7860: TinyLLaVA-Video-R1 nf4 on a CUDA GPU,
                                               # else the embedded tiny policy
    TINYR1_POLICY=tiny-grpo python app.py      # open on another policy (TINYR1_QUANTIZATION too)
    TINYR1_QUEUE_SIZE=32 python app.py         # let more requests wait for the model

    from tinyr1.app import build_app, launch_kwargs
    build_app(root).launch(**launch_kwargs(root))

Layout of the package:
- ``settings``: serving settings (queue size, upload limit, disk rules ...; some from the
  environment) and the ZeroGPU hook;
- ``guard``: every request checked against tinyr1.limits before model work, upload totals, the
  disk check, Markdown-safe messages (docs/RELIABILITY.md, "Public app");
- ``tables``: the gradio-free tables and charts (reward breakdown, landscape, GRPO plots);
- ``policies``: the policy picker (tinyr1.registry's entries as this root sees them, the banner);
- ``reason``: ``Workbench`` (the app's state, the Reason generator) and the Reason tab;
- ``reward_lab``: the Reward lab tab;
- ``uploads``, ``grpo_runner``, ``grpo``: uploaded datasets, the GRPO tab's work over
  ``tinyr1.runs`` (gradio-free), and the GRPO tab.

Each tab is a class whose methods are its listeners; a listener that updates several outputs
returns a dict keyed by component (the ones left out stay as they are). The API names are stable:
``/reason`` (streams), ``/reward``, ``/train`` (streams one update per step), ``/resume`` (streams),
``/follow`` (streams the run that trains), ``/stop_training``, ``/use_in_reason``. Reason runs in
the model queue (one generation at a time); GRPO runs in the app's training worker
(tinyr1/app/training.py), so a run never holds Reason. Serving rules: docs/DESIGN.md, "Serving the app".
"""
from __future__ import annotations

import os

# Offline by default: no usage analytics from gradio, no telemetry from huggingface_hub (set
# before either is imported; a launcher that sets them otherwise wins).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from tinyr1.app.grpo import TRAIN_QUEUE, GRPOTab  # noqa: E402
from tinyr1.app.reason import ReasonTab, Workbench  # noqa: E402
from tinyr1.app.reward_lab import build_reward_lab  # noqa: E402
from tinyr1.app.settings import CSS, MAX_FILE_SIZE, QUEUE_SIZE, THEME, UPLOAD_MAX_AGE_S, UPLOAD_SWEEP_S  # noqa: E402
from tinyr1.app.settings import cuda_available, on_zero_gpu  # noqa: E402

__all__ = ["Workbench", "build_app", "build_demo", "launch_kwargs", "opening_policy"]


def build_app(root: str | Path, *, workbench: Workbench | None = None) -> gr.Blocks:
    """The app's Blocks (queue set up). ``workbench`` lets tests give their own loaders."""
    bench = workbench or Workbench(root)
    bench.policy_choices()  # the first use lists the registry (see PolicyCatalog.registry_entries)
    default_policy, quantization = opening_policy(bench)
    # delete_cache: gradio's copies of uploads and outputs go after UPLOAD_MAX_AGE_S (examples stay).
    with gr.Blocks(title="tinyr1 — small video reasoning models",
                   delete_cache=(UPLOAD_SWEEP_S, UPLOAD_MAX_AGE_S)) as demo:
        gr.Markdown(
            "# tinyr1 · small video reasoning models\n"
            "A video LMM trained with GRPO (the TinyLLaVA-Video-R1 recipe) answers questions about a video by "
            "writing `<think>…</think><answer>…</answer>`. **Reason**: run a policy on a clip and watch its "
            "reward. **Reward lab**: see how the paper scores any completion. **GRPO**: fine-tune."
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Reason", id="reason"):
                reason = ReasonTab(bench, default_policy, quantization)
            with gr.Tab("Reward lab", id="reward"):
                build_reward_lab()
            with gr.Tab("GRPO", id="grpo"):
                grpo = GRPOTab(bench, reason.policy_dd, tabs)
        # A page opened (or reopened) while a run trains follows it: runs outlive a tab.
        demo.load(grpo.follow, outputs=grpo.outputs, api_name="follow", concurrency_id=TRAIN_QUEUE,
                  concurrency_limit=None)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


def opening_policy(bench: Workbench) -> tuple[str | None, str | None]:
    """The policy (and quantization) the app opens on (``PolicyCatalog.serving_default``: the
    quantized TinyLLaVA-Video-R1 where a CUDA device is, else the embedded tiny policy). On
    ZeroGPU it is loaded here, once, at start-up: ZeroGPU's documented pattern (weights placed at
    start-up, only the work inside ``spaces.GPU`` calls), so no click reloads 3.6B parameters."""
    policy, quantization, why = bench.serving_default(cuda_available())
    print(f"[tinyr1.app] opening on {policy} ({quantization or 'full precision'}): {why}")
    if policy is not None and on_zero_gpu():
        try:
            bench.load_policy(policy, quantization)
        except Exception as exc:  # the app still starts: a Reason click then says what is wrong
            print(f"[tinyr1.app] could not load {policy} at start-up: {exc}")
    return policy, quantization


#: The name app.py, the tests and bench/bench_load.py have used; the same function.
build_demo = build_app


def launch_kwargs(root: str | Path | None = None) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: theme and css (Gradio 6 takes them here), the upload
    limit, and no extra readable path: gradio copies the example clips into its own cache when the
    Blocks are built, so the server needs to read nothing but that cache and the uploads."""
    return dict(
        theme=THEME,
        css=CSS,
        max_file_size=MAX_FILE_SIZE,
        allowed_paths=[],
        footer_links=["api", "gradio"],
    )
