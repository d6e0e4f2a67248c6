"""The Reward lab tab: the paper's reward of any completion, with its parameters editable, and the
reward landscape (total reward against think length). The numbers come from tinyr1.app.tables
(gradio-free); this module lays out the tab and wires it. ``/reward`` is the breakdown's API.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from tinyr1.app.guard import LimitError, check_completion, md_text
from tinyr1.limits import OPTION_CHARS
from tinyr1.app.tables import (
    LAB_EXAMPLE,
    PART_ORDER,
    TABLE_WIDTHS,
    empty_table,
    landscape_y_lim,
    options_from_lines,
    reward_chart,
    reward_lab,
    reward_landscape,
)

LAB_DEFAULTS = dict(completion=LAB_EXAMPLE, answer="B", options="left\nright\nup\ndown", r0=0.5, r1=0.5, max_len=1200,
                    tie_r2=True, r2=1.0, official=False)
LANDSCAPE_COLOURS = {"right answer": "#16a34a", "wrong answer": "#dc2626", "broken format": "#64748b"}


def show_r2(r0: float, r1: float, tied: bool, r2: float) -> Any:
    """While tied, the r2 slider shows r0 + r1 and cannot be moved; untied, it is the person's."""
    return gr.update(value=r0 + r1 if tied else r2, interactive=not tied)


def checked_reward_lab(completion: str, answer: str = "", options: str = "", r0: float = 0.5, r1: float = 0.5,
                       max_len: float = 1200, tie_r2: bool = True, r2: float | None = 1.0,
                       official: bool = False) -> tuple[Any, ...]:
    """``/reward``: the breakdown of a completion (tables.reward_lab), after the limits: a
    completion over COMPLETION_CHARS or a bad option count is refused with a message, unscored."""
    try:
        check_completion(completion or "", options_from_lines(options))
        OPTION_CHARS.check(len(answer or ""), "the correct answer")  # a letter or an option's text
    except LimitError as exc:
        empty = empty_table()
        return {"error": str(exc)}, reward_chart(empty), empty, f"⚠️ {md_text(str(exc))}"
    return reward_lab(completion, answer, options, r0, r1, max_len, tie_r2, r2, official)


def landscape_plot(*params: Any) -> Any:
    """The landscape for the lab's parameters, with a y range that fits it."""
    df = reward_landscape(*params)
    return gr.update(value=df, y_lim=landscape_y_lim(df))


def build_reward_lab() -> None:
    """The tab's components and listeners (inside a ``gr.Tab``)."""
    lab_json, lab_chart, lab_table, lab_summary = reward_lab(**LAB_DEFAULTS)
    landscape = reward_landscape()
    gr.Markdown(
        "The paper's reward for any completion. **Format** r0 when the text is exactly "
        "`<think>…</think><answer>…</answer>`; **length** up to r1 for think text up to ML characters; "
        "**accuracy** r2 for a right answer. A wrong answer loses what the format earned; a broken "
        "format costs −(r0 + r1 + r2). Edit anything: the breakdown follows as you type."
    )
    with gr.Row():
        with gr.Column(scale=5):
            completion = gr.Textbox(value=LAB_EXAMPLE, label="Completion", lines=6, elem_id="lab-completion")
            with gr.Row():
                answer = gr.Textbox(value="B", label="Correct answer (empty = none given)", elem_id="lab-answer")
                options = gr.Textbox(value=LAB_DEFAULTS["options"], label="Options, one per line (optional)", lines=4)
            with gr.Row():
                r0 = gr.Slider(0, 2, value=0.5, step=0.05, label="r0 (format)")
                r1 = gr.Slider(0, 2, value=0.5, step=0.05, label="r1 (length, max)")
            with gr.Row():
                max_len = gr.Slider(50, 4000, value=1200, step=50, label="ML (think chars for the whole r1)")
            with gr.Row():
                tie_r2 = gr.Checkbox(value=True, label="r2 = r0 + r1 (the paper)", elem_id="lab-tie-r2")
                r2 = gr.Slider(0, 4, value=1.0, step=0.05, label="r2 (accuracy)", interactive=False, elem_id="lab-r2")
            official = gr.Checkbox(value=False, label="Official-code corner: a right answer with a broken format gets +r2")
        with gr.Column(scale=6):
            status = gr.Markdown(lab_summary, elem_id="lab-status")
            with gr.Row():
                bar = gr.BarPlot(
                    value=lab_chart, x="part", y="value", sort=PART_ORDER, height=280, title="This completion",
                    elem_id="lab-chart", x_title=" ", scale=1, min_width=260,
                )
                plot = gr.LinePlot(
                    value=landscape, y_lim=landscape_y_lim(landscape), x="think_chars", y="total", color="case",
                    color_map=LANDSCAPE_COLOURS, title="Total reward vs think length", x_title="think characters",
                    y_title="total reward", height=280, elem_id="lab-landscape", scale=1, min_width=300,
                )
            table = gr.Dataframe(value=lab_table, label="Breakdown", interactive=False, wrap=True, elem_id="lab-table",
                                 column_widths=TABLE_WIDTHS)
            with gr.Accordion("Breakdown as JSON (what /reward returns first)", open=False):
                result = gr.JSON(value=lab_json, label="Breakdown")
    gr.on([r0.change, r1.change, tie_r2.change], show_r2, inputs=[r0, r1, tie_r2, r2], outputs=r2,
          api_visibility="private", queue=False, show_progress="hidden")
    inputs = [completion, answer, options, r0, r1, max_len, tie_r2, r2, official]
    gr.on([c.change for c in inputs], checked_reward_lab, inputs=inputs, outputs=[result, bar, table, status],
          api_name="reward", concurrency_id="reward", concurrency_limit=4, trigger_mode="always_last",
          show_progress="hidden")
    params = [r0, r1, max_len, tie_r2, r2, official]
    gr.on([c.change for c in params], landscape_plot, inputs=params, outputs=plot,
          api_visibility="private", concurrency_id="reward", trigger_mode="always_last", show_progress="hidden")
