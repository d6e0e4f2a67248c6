"""The app's tables and charts as plain DataFrames and Markdown, gradio-free: the reward's
breakdown (the Reason tab and the Reward lab), the reward landscape, and the GRPO tab's plots,
latest group and evaluation table. Tests call them directly.

    from tinyr1.app.tables import reward_lab
    result, chart, table, summary = reward_lab(completion, answer="B")
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tinyr1.app.guard import safe_code
from tinyr1.format import LETTERS, format_completion
from tinyr1.rewards import RewardBreakdown, RewardConfig, score

#: The Reward lab's first completion: a right answer in the paper's format.
LAB_EXAMPLE = format_completion(
    "The red square starts on the left and ends on the right in the last frame, so it moves right. "
    "Option B says right.",
    "B",
)


def options_from_lines(text: str | None) -> list[str] | None:
    """Options typed one per line (the Reward lab); ``None`` when there are none."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines or None


def reward_config(r0: float, r1: float, max_len: float, tie_r2: bool, r2: float | None, official: bool) -> RewardConfig:
    """A RewardConfig from UI values; ``tie_r2`` (or an empty r2) means r2 = r0 + r1 (the paper)."""
    if tie_r2 or r2 is None or (isinstance(r2, float) and math.isnan(r2)):
        r2 = None
    return RewardConfig(r0=r0, r1=r1, max_len=int(round(max_len)), r2=r2, official_corner=bool(official))


# ---------------------------------------------------------------------------- reward displays

#: The bars, in this order (a state shows four of them: with or without a correct answer).
#: One colour for all: gradio 6.31's plots fix a colour column's domain at the first data they
#: draw, so a part appearing later (a run without an answer after one with) would be invisible.
PART_ORDER = ["format", "length", "accuracy", "total", "if right", "if wrong"]
TABLE_COLUMNS = ["part", "value", "why"]
TABLE_WIDTHS = ["23%", "17%", "60%"]


def empty_table() -> pd.DataFrame:
    """No breakdown yet. Typed columns: a plot reads an untyped (object) value column as
    categories and would draw the numbers as labels."""
    return pd.DataFrame({"part": pd.Series(dtype=str), "value": pd.Series(dtype=float), "why": pd.Series(dtype=str)})


def reward_table(b: RewardBreakdown, config: RewardConfig, *, generating: bool = False) -> pd.DataFrame:
    """The breakdown as rows (part, value, why). With a ground truth: format, length, accuracy and
    total. Without one: format, length and the totals if the answer were right or wrong."""
    rows: list[tuple[str, float, str]] = []
    if b.format_ok:
        rows.append(("format", b.format_reward - b.length_reward, f"r0 {config.r0:g}: tags in order <think>…</think><answer>…</answer>"))
        rows.append(("length", b.length_reward, f"min(1, {b.think_chars} / {config.max_len} think chars) × r1 {config.r1:g}"))
    else:
        why = "still generating" if generating else "format fails"
        rows.append(("format", 0.0, f"{why}: {b.format_error}"))
        rows.append(("length", 0.0, "earned only when the format holds"))
    if b.correct is not None:
        said = "no <answer> block" if b.answer_text is None else f"answer {b.answer_text!r}"
        verdict = "right" if b.correct else "wrong"
        rows.append(("accuracy", float(b.accuracy_reward or 0.0), f"{said} is {verdict} (r2 {config.r2:g} if right)"))
        rows.append(("total", float(b.total), _total_why(b.format_ok, b.correct, config)))
    else:
        rows.append(("if right", b.total_if_right, "total if the answer were right: " + _total_why(b.format_ok, True, config)))
        rows.append(("if wrong", b.total_if_wrong, "total if the answer were wrong: " + _total_why(b.format_ok, False, config)))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["value"] = table["value"].astype(float).round(4)  # the JSON result keeps the exact numbers
    return table


def _total_why(format_ok: bool, correct: bool, config: RewardConfig) -> str:
    if format_ok:
        return "accuracy + format + length" if correct else "−(format + length): a wrong answer loses what the format earned"
    if correct and config.official_corner:
        return "official-code corner: a right answer with a broken format gets +r2"
    return f"broken format: −(r0 + r1 + r2) = −{config.penalty:g}"


def reward_chart(table: pd.DataFrame) -> pd.DataFrame:
    """The table as the bar chart's data (part, value), parts kept in the table's order."""
    return table[["part", "value"]].copy()


def accuracy_change(after: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    """Held-out accuracy with its sample size and standard error, and how far a change is from
    noise: "87.5% ± 11.7 on 8 questions (was 75.0% ± 15.3; the change is 0.6 standard errors:
    within noise)". The standard error is the binomial one, sqrt(p (1 - p) / n); that of a change
    adds both (independent evaluations), floored at 1/n so a 100% is not read as certain."""

    def se(report: dict[str, Any]) -> float:
        n = max(1, int(report.get("n") or 0))
        p = float(report["accuracy"])
        return max(math.sqrt(p * (1 - p) / n), 1 / n)

    n = int(after.get("n") or 0)
    text = f"{after['accuracy']:.1%} ± {se(after):.1%} on {n} question{'s' if n != 1 else ''}"
    if not before:
        return text
    diff = float(after["accuracy"]) - float(before["accuracy"])
    z = diff / math.hypot(se(after), se(before))
    verdict = "within noise" if abs(z) < 2 else "beyond noise"
    return f"{text} (was {before['accuracy']:.1%} ± {se(before):.1%}; the change is {abs(z):.1f} standard errors: {verdict})"


def reward_summary(b: RewardBreakdown) -> str:
    """One Markdown line: the total (or the what-ifs) and the format verdict."""
    # A code span that the error's own backticks cannot close (it quotes the completion's text).
    fmt = "format ok" if b.format_ok else f"format fails: {safe_code(b.format_error)}"
    if b.total is None:
        return f"**No correct answer given** · if right: **{b.total_if_right:+.3f}** · if wrong: **{b.total_if_wrong:+.3f}** · {fmt}"
    verdict = "right" if b.correct else "wrong"
    return f"**Total reward {b.total:+.3f}** · answer {verdict} · {fmt} · {b.think_chars} think chars"


def reward_lab(
    completion: str,
    answer: str = "",
    options: str = "",
    r0: float = 0.5,
    r1: float = 0.5,
    max_len: float = 1200,
    tie_r2: bool = True,
    r2: float | None = 1.0,
    official: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, str]:
    """The Reward lab: (breakdown as JSON, chart data, table, summary) of one completion.

    ``options`` is one option per line; an empty ``answer`` means no ground truth; ``tie_r2``
    (the paper's choice) makes ``r2 = r0 + r1`` whatever ``r2`` says. Bad parameters give a summary that says what is wrong and empty tables."""
    try:
        config = reward_config(r0, r1, max_len, tie_r2, r2, official)
    except (ValueError, TypeError) as exc:
        empty = empty_table()
        return {"error": str(exc)}, reward_chart(empty), empty, f"⚠️ {exc}"
    b = score(completion or "", (answer or "").strip() or None, options_from_lines(options), config)
    table = reward_table(b, config)
    result = {**b.to_dict(), "config": {"r0": config.r0, "r1": config.r1, "max_len": config.max_len, "r2": config.r2, "official_corner": config.official_corner}}
    return result, reward_chart(table), table, reward_summary(b)


LANDSCAPE_CASES = ("right answer", "wrong answer", "broken format")


def reward_landscape(
    r0: float = 0.5,
    r1: float = 0.5,
    max_len: float = 1200,
    tie_r2: bool = True,
    r2: float | None = 1.0,
    official: bool = False,
    points: int = 31,
) -> pd.DataFrame:
    """Total reward against think length (0 to 1.5 ML) for a right answer, a wrong answer and a
    broken format (a right answer with text after ``</answer>``), computed by ``score`` itself.
    Long format: columns think_chars, total, case."""
    try:
        config = reward_config(r0, r1, max_len, tie_r2, r2, official)
    except (ValueError, TypeError):
        return pd.DataFrame({"think_chars": pd.Series(dtype=int), "total": pd.Series(dtype=float), "case": pd.Series(dtype=str)})
    rows = []
    for n in np.linspace(0, 1.5 * config.max_len, points).round().astype(int):
        think = "x" * int(n)
        texts = {
            "right answer": (format_completion(think, "A"), "A"),
            "wrong answer": (format_completion(think, "B"), "A"),
            "broken format": (format_completion(think, "A") + " and more", "A"),  # text after </answer>
        }
        for case, (text, truth) in texts.items():
            rows.append((int(n), float(score(text, truth, None, config).total), case))
    return pd.DataFrame(rows, columns=["think_chars", "total", "case"])


def landscape_y_lim(df: pd.DataFrame) -> list[float] | None:
    """The landscape's y range with a margin, so the flat broken-format line is not on the frame."""
    if df.empty:
        return None
    lo, hi = float(df["total"].min()), float(df["total"].max())
    pad = 0.08 * ((hi - lo) or 1.0)
    return [lo - pad, hi + pad]


# ------------------------------------------------------------------------------ GRPO displays

#: Which series each live plot draws, each with a fixed colour (the same in every run, and the
#: legend lists them all from the first step).
PLOT_SERIES: dict[str, dict[str, str]] = {
    "reward": {"reward": "#4f46e5", "format": "#0891b2", "length": "#d97706", "accuracy": "#16a34a"},
    "quality": {"accuracy": "#16a34a", "format rate": "#0891b2"},
    "think": {"think chars": "#d97706"},
    "kl": {"kl": "#dc2626"},
}
GROUP_COLUMNS = ["#", "completion", "answer", "right?", "format", "think", "reward", "advantage"]
GROUP_WIDTHS = ["4%", "36%", "10%", "8%", "12%", "8%", "10%", "12%"]


def step_values(metrics: dict[str, float], groups: Sequence[Any]) -> dict[str, float]:
    """The plotted values of one step, keyed ``plot/series``. The reward's parts are the means
    over the step's completions of what each part earned (a wrong answer then loses format +
    length, so ``reward`` is not their sum)."""
    bds = [b for g in groups for b in g.breakdowns]
    n = max(len(bds), 1)
    values = {
        "reward/reward": metrics["reward"],
        "reward/format": sum(b["format_reward"] - b["length_reward"] for b in bds) / n,
        "reward/length": sum(b["length_reward"] for b in bds) / n,
        "reward/accuracy": sum(b["accuracy_reward"] or 0.0 for b in bds) / n,
        "quality/accuracy": metrics["accuracy"],
        "quality/format rate": metrics["format_rate"],
        "think/think chars": metrics["think_chars"],
    }
    if "kl" in metrics:
        values["kl/kl"] = metrics["kl"]
    return {k: float(v) for k, v in values.items()}


def empty_plot() -> pd.DataFrame:
    return pd.DataFrame({"step": pd.Series(dtype=int), "name": pd.Series(dtype=str), "value": pd.Series(dtype=float)})


def plot_frames(history: Sequence[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Long-format DataFrames (step, name, value), one per plot, from the per-step values."""
    out = {}
    for plot, series in PLOT_SERIES.items():
        rows = [(int(h["step"]), name, float(h[f"{plot}/{name}"])) for h in history for name in series if f"{plot}/{name}" in h]
        out[plot] = pd.DataFrame(rows, columns=["step", "name", "value"]) if rows else empty_plot()
    return out


def empty_group() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("reward", "advantage") else str) for c in GROUP_COLUMNS})


def group_table(group: Any) -> pd.DataFrame:
    """One group's completions with what each earned and its advantage (the push it got)."""
    rows = []
    for i, (text, reward, adv, b) in enumerate(zip(group.completions, group.rewards, group.advantages, group.breakdowns)):
        fmt = "ok" if b["format_ok"] else f"fails: {b['format_error']}"
        right = "" if b["correct"] is None else ("✓" if b["correct"] else "✗")
        said = b.get("answer_text") or ""
        said = said if len(said) <= 40 else said[:39] + "…"  # the completion column shows all of it
        rows.append([str(i + 1), text, said, right, fmt, str(b["think_chars"]), round(float(reward), 4), round(float(adv), 4)])
    return pd.DataFrame(rows, columns=GROUP_COLUMNS) if rows else empty_group()


def group_title(step: int, group: Any) -> str:
    """What the latest group was asked (Markdown)."""
    opts = " · ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(group.options))
    rewards = np.asarray(group.rewards, dtype=float)
    fam = f" ({group.family})" if group.family else ""
    return (
        f"**Step {step}, latest group** — question {group.id or group.index}{fam}: {group.question}"
        + (f"  \n{opts}" if opts else "")
        + f"  \nright answer **{group.answer}** · group reward {rewards.mean():+.3f} ± {rewards.std(ddof=1) if len(rewards) > 1 else 0.0:.3f}"
        + " · the advantage is each reward's distance from the group mean in group stds (plus the paper's small noise)"
    )


EVAL_ROWS = [("accuracy", "accuracy", "{:.1%}"), ("format rate", "format_rate", "{:.1%}"),
             ("think chars (mean)", "mean_think_chars", "{:.0f}"), ("reward (mean)", "mean_reward", "{:+.3f}"),
             ("questions", "n", "{:d}")]


def eval_table(before: dict[str, Any] | None, after: dict[str, Any] | None) -> pd.DataFrame:
    """Before / after as text cells (``—`` where not run), then accuracy per question family."""
    def cell(report: dict[str, Any] | None, key: str, fmt: str) -> str:
        return "—" if not report or key not in report else fmt.format(report[key])

    rows = [[name, cell(before, key, fmt), cell(after, key, fmt)] for name, key, fmt in EVAL_ROWS]
    families = sorted(set((before or {}).get("per_family", {})) | set((after or {}).get("per_family", {})))
    if len(families) > 1:
        for fam in families:
            rows.append([f"accuracy · {fam}", cell((before or {}).get("per_family", {}).get(fam), "accuracy", "{:.1%}"),
                         cell((after or {}).get("per_family", {}).get(fam), "accuracy", "{:.1%}")])
    return pd.DataFrame(rows, columns=["metric", "before", "after"])

