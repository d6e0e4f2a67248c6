"""The tinyr1 Gradio app: Reason, Reward lab and GRPO tabs. The only module that imports gradio.

    python app.py                              # http://127.0.0.1:7860 on the embedded tiny policy
    TINYR1_QUEUE_SIZE=32 python app.py         # let more requests wait for the model

Layout of this file:
- plain functions (no gradio): policies (tinyr1.registry's entries as this app's root sees them,
  the folders on disk, the pickers' options, the registry's size / memory / how-to-get table) and
  examples found on disk, option and answer input, reward tables and charts, the reward landscape,
  the reward lab. They take paths, strings and numbers and return plain values / DataFrames, so
  tests call them directly.
- ``Workbench``: the state one app holds (where to look, the registry as last listed, which policy
  is loaded) and the Reason generator, also gradio-free: it yields ``ReasonStep``s.
- GRPO: the runs folder (``runs/<YYYYmmdd-HHMMSS>/``), uploads checked into it, the plots' data,
  and ``GRPORunner`` (gradio-free too): Start / Resume generators over ``tinyr1.grpo.train`` that
  yield one ``TrainUpdate`` per step, Stop's checkpoint, the tuned policy handed to Reason.
- ``build_demo``: the Blocks. Its listeners are thin adapters over the above.
- ``launch_kwargs``: what ``demo.launch`` needs (theme and css go there in Gradio 6, the upload
  limit, no extra readable path).

Serving rules (DESIGN sections 8 and 9): every listener that runs the model shares one
``concurrency_id`` (``"model"``) with concurrency 1, so one generation runs at a time and the
rest wait in a bounded queue (``TINYR1_QUEUE_SIZE``, default 16) that turns people away when full
instead of letting waits grow. Reason is a generator, so Stop (``cancels=``) interrupts it between
two streamed updates. GRPO training shares that queue (``/train`` and ``/resume`` are generators
too: Stop closes them, and closing the loop writes a checkpoint of the last completed step).
The API names are stable: ``/reason`` (streams), ``/reward``, ``/train`` (streams one update per
step), ``/resume`` (streams), ``/use_in_reason``.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

import gradio as gr

from tinyr1.format import LETTERS, format_completion, partial_view
from tinyr1.rewards import RewardBreakdown, RewardConfig, score

# ----------------------------------------------------------------------------------- settings

#: How many requests may wait for the model before new ones are turned away ("queue is full").
QUEUE_SIZE = int(os.environ.get("TINYR1_QUEUE_SIZE", "16"))
#: Upload limit checked by the server before a handler runs. Short clips are what a small policy
#: samples 4-16 frames from; 50 MB is minutes of 720p H.264, and keeps a Space's disk safe.
MAX_FILE_SIZE = os.environ.get("TINYR1_MAX_FILE_SIZE", "50mb")
#: Least seconds between two streamed updates (the last text is always sent): the browser redraws
#: the chart on each, and the tiny policy writes hundreds of tokens a second.
STREAM_INTERVAL = 0.05
#: ZeroGPU time asked per Reason call (seconds): room for the longest generation the sliders
#: allow (1024 tokens); not yet measured on ZeroGPU hardware.
GPU_SECONDS = 120
#: Frames are decoded at most this many pixels on their long side (see Workbench.load_frames).
FRAME_SIDE = 448
#: The side of the frame thumbnails shown in the gallery (pixels); the policy gets the frames.
THUMB_SIDE = 256
#: The option boxes of the Reason tab (A-D, as in the paper's multiple-choice sets).
OPTION_LETTERS = LETTERS[:4]
QUANTIZATIONS = ("none", "nf4", "int8")
#: The policies this repository trains and ships (assets/policies/<name>), the default first: the
#: same as tinyr1.policy.DEFAULT_POLICIES (a test checks), kept here so importing the UI's plain
#: functions does not import torch.
EMBEDDED = ("tiny-grpo", "tiny-coldstart")

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")
CSS = """
#tinyr1-banner {border-left: 4px solid var(--color-accent); padding-left: 0.8em;}
#reason-answer textarea {font-size: 1.25em; font-weight: 600;}
#reason-status, #lab-status {min-height: 2em;}
"""

DEFAULT_QUESTION = "What happens in this video?"
LAB_EXAMPLE = format_completion(
    "The red square starts on the left and ends on the right in the last frame, so it moves right. "
    "Option B says right.",
    "B",
)

# ---------------------------------------------------------------------------- policies on disk


def find_policies(root: str | Path) -> dict[str, str]:
    """Policies found under ``root``: label -> directory, the default first.

    Looked for: ``$TINYR1_POLICY`` when set, every directory with a ``config.json`` under
    ``assets/policies/`` (the embedded ones first: ``tiny-grpo``, then ``tiny-coldstart``), and
    every ``runs/*/final`` with a ``config.json`` (policies you trained with GRPO)."""
    root = Path(root)
    found: dict[str, str] = {}
    env = os.environ.get("TINYR1_POLICY")
    if env and (Path(env) / "config.json").is_file():
        found[f"{Path(env).name} ($TINYR1_POLICY)"] = str(Path(env).resolve())
    shipped = root / "assets" / "policies"
    if shipped.is_dir():
        rank = {name: i for i, name in enumerate(EMBEDDED)}
        dirs = sorted(
            (p for p in shipped.iterdir() if (p / "config.json").is_file()),
            key=lambda p: (rank.get(p.name, len(rank)), p.name),
        )
        for path in dirs:
            found[f"{path.name} (embedded)" if path.name in rank else path.name] = str(path.resolve())
    runs = root / "runs"
    if runs.is_dir():
        for config in sorted(runs.glob("*/final/config.json")):
            found[f"runs/{config.parent.parent.name}"] = str(config.parent.resolve())
    return found


def policy_metadata(path: str | Path) -> dict[str, Any]:
    """The free-form ``policy.json`` of a policy directory ({} when absent or unreadable)."""
    try:
        return json.loads((Path(path) / "policy.json").read_text())
    except (OSError, ValueError):
        return {}


def policy_banner(
    label: str | None, path: str | None, loaded: dict[str, Any] | None = None, entry: Any = None
) -> str:
    """The honest banner of what the selected policy is (Markdown), from its ``policy.json``, its
    registry entry (``entry``: description, size, memory per quantization, recommended settings)
    and, once loaded, from ``Policy.describe()`` (parameters, device, quantization)."""
    if not label or not path:
        return (
            "**No policy found.** Put a policy directory under `assets/policies/` (the embedded tiny "
            "policies are built by `tinyr1 train-tiny`), get one of the registry's (the **Policies** table "
            "under the picker says how), or train one in the GRPO tab."
        )
    meta = (loaded or {}).get("metadata") or policy_metadata(path)
    name = Path(path).name
    model_type = meta.get("kind") or _model_type(path)
    if meta.get("kind") == "random":
        what = "random weights, for testing the app: the text it writes is noise."
    elif name in EMBEDDED or meta.get("kind") in ("embedded", "tiny"):
        what = (
            "the embedded tiny policy, trained by this repository on a synthetic world of coloured "
            "shapes. It only knows coloured shapes: on real videos its thinking and answers are "
            "guesses, and its `<think>…</think><answer>…</answer>` format may break."
        )
    elif entry is not None and entry.kind != "tiny":
        what = str(entry.description).rstrip(".") + "."
        if not entry.local_path:
            what += f" Not on this machine yet: the first run downloads it from the hub ({entry.source})."
    elif label.startswith("runs/"):
        what = f"a policy you fine-tuned with GRPO (`{label}/final`)."
    elif model_type in ("tinyllava", "tinyllava_official"):
        what = f"an official TinyLLaVA-Video checkpoint (`{path}`), converted to tinyr1's architecture in memory."
    elif model_type == "qwen2_5_vl":
        what = f"a Qwen2.5-VL checkpoint (`{path}`), asked with the R1 prompt (think, then answer)."
    else:
        what = f"`{path}`."
    facts = []
    described = meta.get("description") or meta.get("note")
    if described and meta.get("kind") != "random":
        facts.append(str(described).rstrip(".") + ".")
    elif entry is not None and entry.kind == "tiny":
        facts.append(str(entry.description).rstrip(".") + ".")
    for key, title in (("accuracy", "accuracy"), ("data", "data"), ("seed", "seed")):
        if key in meta and not isinstance(meta[key], (dict, list)):
            facts.append(f"{title}: {meta[key]}")
    if isinstance(meta.get("accuracy"), dict):
        acc = ", ".join(f"{k} {v:.1%}" if isinstance(v, float) and 0 <= v <= 1 else f"{k} {v}"
                        for k, v in meta["accuracy"].items() if not isinstance(v, (dict, list)))
        if acc:
            facts.append(f"accuracy: {acc}")
    if entry is not None and not loaded:
        size = f"{_count_text(entry.params)} parameters; " if entry.params else ""
        memory = memory_text(entry)
        if memory:
            facts.append(f"{size}weights {memory} (activations and the KV cache come on top).")
        recommended = recommended_settings(entry)
        frames = f"{recommended['frames']} frames, " if recommended["frames"] else ""
        facts.append(f"Recommended: {frames}temperature {recommended['temperature']:g}, "
                     f"{recommended['max_new_tokens']} new tokens (set below when you pick it).")
    if loaded:
        params = (loaded.get("parameters") or {}).get("total")
        bits = [f"{params / 1e6:.1f}M parameters" if params else None, loaded.get("device"),
                loaded.get("quantization") or None, f"{loaded.get('num_frames')} frames" if loaded.get("num_frames") else None]
        facts.append(" · ".join(b for b in bits if b))
    tail = (" " + " ".join(f for f in facts if f)) if facts else ""
    return f"**Policy: {label}** — {what}{tail}"


def _model_type(path: str | Path) -> str | None:
    """config.json's model_type of a directory (None when it is no directory or unreadable)."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


# ---------------------------------------------------------------------- the policy registry
# The pickers (Reason's Policy, GRPO's starting policy) list tinyr1.registry's entries that are
# available (weights here or downloadable), then the app's own folders. The listing is computed
# once per Workbench (lazily, at the first use: build_demo) and again on Rescan: it may probe the
# hub (one TCP connection, at most registry.PROBE_TIMEOUT_S, never under HF_HUB_OFFLINE=1).


@dataclass(frozen=True)
class PolicyOption:
    """One choice of the policy pickers."""

    key: str  # what the dropdown sends and /reason's `policy` takes: a registry id, runs/NAME, a folder name
    label: str  # what the dropdown shows
    target: str  # what load_policy gets: a directory, or a registry id (the registry finds or downloads it)
    entry: Any = None  # the registry's PolicyEntry; None for the app's folders ($TINYR1_POLICY, runs, others)


def registry_entries(root: str | Path, *, probe_network: bool = True) -> list[Any]:
    """tinyr1.registry's entries (``PolicyEntry``, display order) as this app sees them: the
    embedded tiny policies are looked for under ``<root>/assets/policies/<id>`` (the registry
    looks in the repository's own assets; the app may serve another root)."""
    from tinyr1 import registry

    shipped = Path(root).resolve() / "assets" / "policies"
    out = []
    for e in registry.list_policies(probe_network=probe_network):
        if e.kind == "tiny" and Path(e.source).resolve() != (shipped / e.id):
            e = _rebased(e, shipped / e.id)
        out.append(e)
    return out


def _rebased(e: Any, path: Path) -> Any:
    """A tiny registry entry whose weights are expected at ``path`` instead."""
    from tinyr1 import registry

    spec = dataclasses.replace(registry.find_spec(e.id), source=str(path))
    local = registry.local_path(spec)
    sizes = registry.policy_sizes(spec, local) if local is not None else None
    if local is not None:
        how = f"ready: {local}"
    elif e.local_path:  # the repository has it, this app's root does not
        how = f"copy {e.local_path} to {path}"
    else:
        how = e.how_to_get
    num_frames = e.num_frames
    if local is not None:
        try:
            num_frames = int(json.loads((local / "config.json").read_text()).get("num_frames", num_frames))
        except (OSError, ValueError, TypeError):
            pass
    return dataclasses.replace(
        e, source=str(path), available=local is not None, local_path=str(local) if local else None, how_to_get=how,
        num_frames=num_frames, params=sizes["params"] if sizes else e.params,
        memory_gb=dict(sizes["memory_gb"]) if sizes else dict(e.memory_gb),
        parameters_by_part=dict(sizes["parts"]) if sizes else dict(e.parameters_by_part),
        kv_cache_mb_per_1k_tokens=sizes["kv"] if sizes else e.kv_cache_mb_per_1k_tokens,
    )


def policy_options(root: str | Path, entries: Sequence[Any]) -> dict[str, PolicyOption]:
    """What the pickers offer, key -> option, the default first: ``$TINYR1_POLICY`` (your explicit
    choice), the registry's available entries in its order (embedded tiny policies, then the
    official TinyLLaVA-Video-R1 pair and the Qwen2.5-VL policies whose weights are here or can be
    downloaded), the other folders under ``assets/policies/``, then ``runs/*/final``."""
    found = find_policies(root)
    covered = {str(Path(e.source).resolve()) for e in entries if e.kind == "tiny"}  # the registry's folders
    out: dict[str, PolicyOption] = {}
    for label, path in found.items():
        if label.endswith("($TINYR1_POLICY)"):
            out[label] = PolicyOption(label, label, path)
    for e in entries:
        if not e.available:
            continue
        label = e.label
        if not e.local_path:
            size = f" ~{e.memory_gb['bf16']:.1f} GB" if e.memory_gb.get("bf16") else ""
            label = f"{e.label} · downloads{size} on first use"
        # tiny: its folder under this root; others: the id, so the registry also applies its loading
        # defaults (template, frames, max_pixels) and finds the weights where it listed them
        out[e.id] = PolicyOption(e.id, label, e.local_path if e.kind == "tiny" else e.id, e)
    for label, path in found.items():
        if label not in out and path not in covered:
            out[label] = PolicyOption(label, label, path)
    return out


def _count_text(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def _bytes_text(gb: float) -> str:
    if gb <= 0:  # the registry rounds a big model's figures to 0.01 GB: a tiny copy of one reads 0
        return "<0.01 GB"
    return f"{gb:.2f} GB" if gb >= 1 else f"{gb * 1000:.2f} MB" if gb >= 1e-3 else f"{gb * 1e6:.0f} KB"


def memory_text(entry: Any) -> str:
    """The weights' size per quantization, e.g. ``7.23 GB bf16 · 4.46 GB int8 · 3.24 GB nf4``."""
    order = ("fp32", "bf16", "int8", "nf4")
    return " · ".join(f"{_bytes_text(entry.memory_gb[k])} {k}" for k in order if k in (entry.memory_gb or {}))


def recommended_settings(entry: Any) -> dict[str, Any]:
    """The Reason tab's generation settings for a registry entry (its ``settings``), kept within
    the sliders' ranges: frames 0 = the policy's own, temperature 0-2, top-p 0.05-1, 16-1024 new
    tokens (Video-R1's top-p 0.001 becomes 0.05: with temperature 0.1 both are nearly greedy)."""
    s = dict(entry.settings or {})
    return {
        "frames": int(min(32, max(0, s.get("num_frames") or 0))),
        "temperature": float(min(2.0, max(0.0, s.get("temperature", 0.0)))),
        "top_p": float(min(1.0, max(0.05, s.get("top_p", 1.0)))),
        "max_new_tokens": int(min(1024, max(16, s.get("max_new_tokens", 256)))),
        "seed": int(s.get("seed", 0)),
    }


def policy_info(entries: Sequence[Any]) -> str:
    """The registry as Markdown, one item per policy (it sits in a narrow column): its size, its
    weights per quantization, whether it is here, and what to do to get it when it is not."""
    if not entries:
        return "The policy registry could not be read (see the server log)."
    items = []
    for e in entries:
        if e.local_path:
            here = "✓ on this machine"
        elif e.available:
            here = f"⤓ downloads on first use ({e.source})"
        else:
            here = f"✗ not here — {e.how_to_get}"
        size = f"{_count_text(e.params)} parameters" if e.params else "size unknown until it is here"
        memory = f" · weights {memory_text(e)}" if e.memory_gb else ""
        items.append(f"- **{e.label}** (`{e.id}`): {size}{memory} · {here}".replace("\n", " "))
    missing = sum(not e.available for e in entries)
    head = (f"{missing} of the {len(entries)} policies tinyr1 knows are not on this machine: each says what to do, "
            "then press **↻ Rescan**." if missing else f"All {len(entries)} policies tinyr1 knows are available.")
    return head + " Weights only: activations and the KV cache come on top.\n\n" + "\n".join(items)


# ------------------------------------------------------------------------------------ examples


def find_examples(root: str | Path, per_file: int = 8, limit: int = 16) -> list[list[str]]:
    """Example rows ``[video, question, A, B, C, D, answer]`` from ``assets/examples/``.

    A JSONL there (the synthetic world's rows, or real clips with their questions) gives full rows
    through ``tinyr1.data.load_dataset`` (the first ``per_file`` with at most four options); a
    video not named by any JSONL gets the generic question and no options.
    """
    folder = Path(root) / "assets" / "examples"
    if not folder.is_dir():
        return []
    rows: list[list[str]] = []
    named: set[str] = set()
    for jsonl in sorted(folder.rglob("*.jsonl")):
        try:
            from tinyr1.data import load_dataset

            items = load_dataset(jsonl)
        except Exception as exc:  # an example file must never stop the app from starting
            print(f"[tinyr1.ui] skipping examples in {jsonl}: {exc}")
            continue
        taken = 0
        for item in items:
            if taken >= per_file or not Path(item.video).is_file() or len(item.options or []) > len(OPTION_LETTERS):
                continue
            taken += 1
            options = [str(o) for o in (item.options or [])][: len(OPTION_LETTERS)]
            options += [""] * (len(OPTION_LETTERS) - len(options))
            rows.append([str(Path(item.video).resolve()), item.question, *options, item.answer or ""])
            named.add(str(Path(item.video).resolve()))
    for video in sorted(p for ext in ("mp4", "webm", "mov", "avi", "mkv") for p in folder.rglob(f"*.{ext}")):
        if str(video.resolve()) not in named:
            rows.append([str(video.resolve()), DEFAULT_QUESTION, "", "", "", "", ""])
    return rows[:limit]


# ------------------------------------------------------------------------------- input helpers


def collect_options(*boxes: str | None) -> list[str] | None:
    """The filled option boxes, in order; ``None`` when all are empty. Gaps are an input error
    (option C without B would shift every letter after it)."""
    texts = [(b or "").strip() for b in boxes]
    last = max((i for i, t in enumerate(texts) if t), default=-1)
    if last < 0:
        return None
    missing = [LETTERS[i] for i in range(last + 1) if not texts[i]]
    if missing:
        raise ValueError(f"option {', '.join(missing)} is empty but a later one is filled: fill the options in order A, B, C, D")
    if last == 0:
        raise ValueError("one option is not a choice: give at least A and B, or leave the options empty")
    return texts[: last + 1]


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


def reward_summary(b: RewardBreakdown) -> str:
    """One Markdown line: the total (or the what-ifs) and the format verdict."""
    fmt = "format ok" if b.format_ok else f"format fails: `{b.format_error}`"  # backticks: tags show as text
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


# ------------------------------------------------------------------------------------- frames


def frame_gallery(frames: np.ndarray, timestamps: Sequence[float], side: int = THUMB_SIDE) -> list[tuple[np.ndarray, str]]:
    """(thumbnail, caption "#i · 1.25 s": the frame's number and its time in the video) per frame."""
    from PIL import Image

    items = []
    for i, (frame, t) in enumerate(zip(frames, timestamps)):
        image = Image.fromarray(np.ascontiguousarray(frame))
        image.thumbnail((side, side))
        items.append((np.asarray(image), f"#{i + 1} · {float(t):.2f} s"))
    return items


def save_frames(items: Sequence[tuple[np.ndarray, str]], folder: Path) -> list[tuple[str, str]]:
    """Thumbnails written as JPEG files in ``folder``: (path, caption) for the gallery.

    Files, not arrays: gradio 6.31 saves an array under a name derived from its content and
    rewrites that file on every request that shows the same frame (two people on the same example),
    truncating it while another client downloads it. A file is copied into the cache atomically,
    once."""
    from PIL import Image

    out = []
    for i, (image, caption) in enumerate(items):
        path = folder / f"frame_{i:03d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        out.append((str(path), caption))
    return out


# ------------------------------------------------------------------------------------ Reason


@dataclass
class ReasonStep:
    """One streamed state of a Reason run (what every panel shows at that moment)."""

    status: str
    frames: list[tuple[np.ndarray, str]] | None = None  # set once, when the frames are loaded
    think: str = ""
    answer: str = ""
    table: pd.DataFrame | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # a message for the person (bad upload, bad input): shown, not raised
    banner: str | None = None  # the policy banner, once the policy is loaded


class Workbench:
    """What one app holds: the repo root (assets, runs), how to load policies and frames, and the
    policy currently loaded (one at a time: a second would double the memory a Space pays for)."""

    def __init__(
        self,
        root: str | Path,
        *,
        policy_loader: Callable[..., Any] | None = None,
        frame_loader: Callable[..., Any] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self._policy_loader = policy_loader
        self._frame_loader = frame_loader
        self._loaded: tuple[tuple[str, str | None], Any] | None = None
        self._lock = threading.Lock()  # the GRPO tab and Reason may both ask for a policy
        self._entries: list[Any] | None = None  # the registry as listed at the first use / last Rescan
        self._entries_lock = threading.Lock()

    # -- discovery
    def registry_entries(self, refresh: bool = False) -> list[Any]:
        """The registry's entries for this root (``registry_entries``), listed once and again on
        ``refresh`` (Rescan): listing may probe the hub, which no request should wait for twice.
        A registry that cannot be read leaves the pickers with the folders on disk."""
        with self._entries_lock:
            if self._entries is None or refresh:
                try:
                    self._entries = registry_entries(self.root)
                except Exception:  # the app must start whatever the registry's state
                    traceback.print_exc()
                    self._entries = []
            return list(self._entries)

    def refresh_policies(self) -> None:
        """List the registry again (weights downloaded or removed since, the hub now reachable)."""
        self.registry_entries(refresh=True)

    def policy_options(self) -> dict[str, PolicyOption]:
        """key -> option, the default first (``policy_options``); the folders are looked at anew
        on every call (a GRPO run that just finished is there at once)."""
        return policy_options(self.root, self.registry_entries())

    def policies(self) -> dict[str, str]:
        """key -> what ``load_policy`` gets (a directory, or a registry id)."""
        return {key: option.target for key, option in self.policy_options().items()}

    def policy_choices(self) -> list[tuple[str, str]]:
        """The pickers' choices: (what the dropdown shows, key)."""
        return [(option.label, key) for key, option in self.policy_options().items()]

    def policy_info(self) -> str:
        """The registry's table (size, memory, here or how to get it), Markdown."""
        return policy_info(self.registry_entries())

    def default_policy(self) -> str | None:
        return next(iter(self.policies()), None)

    def option(self, key: str | None) -> PolicyOption | None:
        """The option behind a key; a registry alias (``tinyllava-video-r1``) finds its entry's."""
        options = self.policy_options()
        if key in options:
            return options[key]
        from tinyr1.registry import find_spec

        spec = find_spec(key or "") if key else None
        return options.get(spec.id) if spec else None

    def recommended_settings(self, key: str | None) -> dict[str, Any] | None:
        """The generation settings the registry recommends for ``key`` (None for a folder)."""
        option = self.option(key)
        return recommended_settings(option.entry) if option and option.entry else None

    def banner(self, label: str | None) -> str:
        option = self.option(label)
        if option is None:
            return policy_banner(label, None)
        loaded = None
        if self._loaded and self._loaded[0][0] == option.target:
            loaded = _describe(self._loaded[1])
        return policy_banner(option.label, option.target, loaded, option.entry)

    def why_unavailable(self, key: str | None) -> str:
        """What to say for a key that is no choice: how to get a registry policy, else what there is."""
        from tinyr1.registry import find_spec

        spec = find_spec(key or "")
        entry = next((e for e in self.registry_entries() if spec and e.id == spec.id), None)
        if entry is not None:
            return f"{entry.label} is not on this machine: {entry.how_to_get}"
        known = ", ".join(self.policies()) or "none"
        return f"unknown policy {key!r}; available: {known}"

    # -- loading
    def load_policy(self, label: str, quantization: str | None) -> Any:
        """The policy behind ``label`` (cached: a Reason run after the first starts at once)."""
        option = self.option(label)
        if option is None:
            raise ValueError(self.why_unavailable(label))
        key = (option.target, None if quantization in (None, "", "none") else quantization)
        with self._lock:
            if self._loaded is None or self._loaded[0] != key:
                self._loaded = None  # drop the old one before loading the next: one in memory at a time
                gc.collect()
                loader = self._policy_loader
                if loader is None:
                    from tinyr1.policy import load_policy as loader
                self._loaded = (key, loader(key[0], quantization=key[1]))
            return self._loaded[1]

    def load_frames(self, video: str, num_frames: int) -> Any:
        """``num_frames`` frames sampled uniformly (tinyr1.video), decoded at most FRAME_SIDE
        pixels on their long side: the policy resizes to its own input (384 px for the real
        one) anyway, and 16 frames of a 4K video would otherwise hold 400 MB per request."""
        if self._frame_loader is not None:
            return self._frame_loader(video, num_frames=num_frames)
        from tinyr1.video import load_frames, probe

        meta = probe(video)
        scale = FRAME_SIDE / max(meta.width, meta.height, 1)
        size = None
        if scale < 1:
            size = (max(2, round(meta.height * scale)), max(2, round(meta.width * scale)))
        return load_frames(video, num_frames, size=size)

    # -- the Reason run
    def reason(
        self,
        video: str | None,
        question: str,
        options: Sequence[str] | None = None,
        answer: str | None = None,
        policy: str | None = None,
        *,
        num_frames: int = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        quantization: str = "none",
        config: RewardConfig = RewardConfig(),
    ) -> Iterator[ReasonStep]:
        """Stream one answer: frames first, then the think and answer text with the reward of the
        text so far, then the final result. Bad input ends the stream with ``error`` set."""
        started = time.perf_counter()
        answer = (answer or "").strip() or None
        options = list(options) if options else None

        def fail(message: str) -> ReasonStep:
            return ReasonStep(status=f"⚠️ {message}", error=message, result={"error": message, "done": True})

        if not video:
            yield fail("No video: upload a clip or pick one of the examples below.")
            return
        if not (question or "").strip():
            yield fail("The question is empty: ask something about the video.")
            return
        policy = policy or self.default_policy()
        if policy is None:
            yield fail("No policy available: the Policies table under the picker says how to get one.")
            return

        yield ReasonStep(status=f"Loading policy **{policy}**…")
        try:
            model = self.load_policy(policy, quantization)
        except Exception as exc:  # a missing/broken checkpoint or a quantization this machine lacks
            yield fail(f"Could not load policy {policy!r}: {exc}")
            return
        banner = self.banner(policy)
        n = int(num_frames) if num_frames and int(num_frames) > 0 else int(getattr(model, "num_frames", 16) or 16)

        try:
            clip = self.load_frames(video, n)
        except Exception as exc:
            if type(exc).__name__ != "VideoError":  # VideoError already says what is wrong
                traceback.print_exc()
                exc = f"could not read this video ({type(exc).__name__}: {exc})"
            yield fail(f"{str(exc).rstrip('.')}. Upload a video file (mp4, webm, mov…) that plays in a video player.")
            return
        frames = frame_gallery(clip.frames, clip.timestamps)
        meta = getattr(clip, "meta", None)
        clip_info = f"{len(frames)} frames of a {getattr(meta, 'duration', 0) or 0:.1f} s clip" if meta else f"{len(frames)} frames"
        result: dict[str, Any] = {
            "policy": policy,
            "timestamps": [round(float(t), 3) for t in clip.timestamps],
            "done": False,
            "error": None,
        }
        yield ReasonStep(status=f"Generating with **{policy}** on {clip_info}…", frames=frames, banner=banner, result=dict(result))

        from tinyr1.policy import GenerationSettings  # only here: the import pulls in torch

        try:
            settings = GenerationSettings(
                max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_p=float(top_p),
                seed=int(seed), num_frames=n,
            )
        except ValueError as exc:  # PolicyError: a setting out of range, said plainly
            yield fail(f"Bad generation settings: {exc}")
            return
        text, last = "", 0.0
        stream = model.stream(clip.frames, question, options, settings)
        try:
            for text in stream:
                now = time.perf_counter()
                if now - last < STREAM_INTERVAL:
                    continue  # the final text is yielded after the loop in any case
                last = now
                yield self._step(text, answer, options, config, result, started, done=False)
        except Exception as exc:
            traceback.print_exc()
            yield fail(f"Generation failed: {type(exc).__name__}: {exc}")
            return
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # on Stop: ends the policy's generation thread too
        yield self._step(text, answer, options, config, result, started, done=True)

    @staticmethod
    def _step(
        text: str,
        answer: str | None,
        options: list[str] | None,
        config: RewardConfig,
        result: dict[str, Any],
        started: float,
        done: bool,
    ) -> ReasonStep:
        think, said = partial_view(text)
        b = score(text, answer, options, config)
        seconds = time.perf_counter() - started
        result.update(completion=text, think=think, answer=said, reward=b.to_dict(), done=done, seconds=round(seconds, 3))
        if done:
            status = f"Done in {seconds:.1f} s · " + reward_summary(b)
        else:
            status = f"Generating… {len(text)} characters so far ({seconds:.1f} s)"
        return ReasonStep(status=status, think=think, answer=said, table=reward_table(b, config, generating=not done), result=dict(result))


def _describe(policy: Any) -> dict[str, Any] | None:
    describe = getattr(policy, "describe", None)
    try:
        described = describe() if describe is not None else None
    except Exception:  # a banner must never break a run
        return None
    return described if isinstance(described, dict) else None


# ------------------------------------------------------------------------------- ZeroGPU hook


def zero_gpu(fn: Callable) -> Callable:
    """``spaces.GPU(duration=GPU_SECONDS)(fn)`` when the ``spaces`` package is importable (a
    Hugging Face Space), else ``fn`` unchanged. Off ZeroGPU hardware ``spaces.GPU`` is a no-op."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(duration=GPU_SECONDS)(fn)


# -------------------------------------------------------------------------------------- GRPO

#: Where the GRPO tab writes its runs, under the app's root: runs/<YYYYmmdd-HHMMSS>/.
RUNS_DIR = "runs"
#: The file (in a run folder) that says how the app started the run, so Resume can rebuild it.
RUN_FILE = "app.json"
#: The per-step values the plots draw (also written to runs/<name>/plots.jsonl for Resume).
PLOT_FILE = "plots.jsonl"
#: Which series each live plot draws, each with a fixed colour (the same in every run, and the
#: legend lists them all from the first step).
PLOT_SERIES: dict[str, dict[str, str]] = {
    "reward": {"reward": "#4f46e5", "format": "#0891b2", "length": "#d97706", "accuracy": "#16a34a"},
    "quality": {"accuracy": "#16a34a", "format rate": "#0891b2"},
    "think": {"think chars": "#d97706"},
    "kl": {"kl": "#dc2626"},
}
DATA_SOURCES = {"world": "Synthetic world (train split)", "upload": "Upload a JSONL with its videos"}
#: The most an uploaded zip may expand to (the server's upload limit bounds the zip, not what it
#: expands to: a zip bomb stops here).
MAX_UNZIPPED_BYTES = 2 << 30
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
#: Held-out share of an uploaded dataset (a seeded random pick, at most the eval size, never
#: trained on); fewer rows than this minimum train on everything and skip evaluation.
HELDOUT_SHARE, HELDOUT_MIN_ROWS = 0.2, 10
TINY_PRESET_NOTE = (
    "**paper**: the official recipe (G 8, temperature 1.0, 512 new tokens, lr 1e-6 with cosine decay, "
    "β 0.01, one update per rollout). **tiny**: lr 7e-5 with cosine decay, β 0, 96 new tokens — the paper's lr 1e-6 "
    "moves a policy of a few million parameters by nothing visible in minutes; the tiny preset is what the "
    "embedded policy learns with on a CPU."
)
GROUP_COLUMNS = ["#", "completion", "answer", "right?", "format", "think", "reward", "advantage"]
GROUP_WIDTHS = ["4%", "36%", "10%", "8%", "12%", "8%", "10%", "12%"]


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


# -- runs on disk


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
    """Runs this app started (``runs/<name>`` with an app.json), newest first."""
    base = Path(root) / RUNS_DIR
    if not base.is_dir():
        return []
    return [run_label(p) for p in sorted(base.iterdir(), key=lambda p: p.name, reverse=True) if (p / RUN_FILE).is_file()]


def run_choices(root: str | Path) -> list[tuple[str, str]]:
    """(what the run dropdown shows, the run label): where each run stands."""
    out = []
    for label in list_runs(root):
        path = Path(root) / label
        try:
            info = json.loads((path / RUN_FILE).read_text())
            steps = int(info["config"]["steps"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        done = (path / "final" / "config.json").is_file()
        step = _newest_step(path)
        state = "finished" if done else f"step {step}/{steps}"
        out.append((f"{label} · {state}", label))
    return out


def _newest_step(run_dir: Path) -> int:
    """The step of the newest complete checkpoint of a run (0 when none). Read from the folder
    names (checkpoints/step-NNNNNN with its trainer_state.pt), without importing torch."""
    steps = [int(p.name[5:]) for p in (Path(run_dir) / "checkpoints").glob("step-*")
             if p.name[5:].isdigit() and (p / "trainer_state.pt").is_file()]
    return max(steps, default=0)


# -- data


def prepare_upload(jsonl: str | Path | None, videos: Sequence[str | Path] | None, folder: Path) -> list[Any]:
    """The uploaded dataset, checked and copied into ``folder``: a JSONL (tinyr1.data format) and
    its video files, or one .zip holding both. A row's video is looked up among the uploaded files
    only, by file name (``clips/0001.mp4`` and ``/data/0001.mp4`` both find an upload named
    ``0001.mp4``): no path on the server beyond the uploads is ever read.
    Raises ``DatasetError`` with what to fix."""
    from tinyr1.data import DatasetError, load_dataset

    if not jsonl:
        raise DatasetError("No dataset uploaded: choose a .jsonl file (and its videos), or a .zip holding both.")
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(jsonl)
    pool = folder / "videos"
    pool.mkdir(exist_ok=True)
    if source.suffix.lower() == ".zip":
        unpacked = folder / "zip"
        _unzip(source, unpacked)
        found = sorted(p for p in unpacked.rglob("*.jsonl") if not p.name.startswith("."))
        if len(found) != 1:
            raise DatasetError(f"{source.name}: the zip must hold exactly one .jsonl file, found {len(found)}"
                               + (f" ({', '.join(p.name for p in found)})" if found else ""))
        table = found[0]
        uploaded = [p for p in unpacked.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    else:
        if source.suffix.lower() not in (".jsonl", ".json"):
            raise DatasetError(f"{source.name}: expected a .jsonl file (one JSON object per line) or a .zip")
        table = folder / source.name
        shutil.copyfile(source, table)
        uploaded = [Path(v) for v in (videos or [])]
    by_name: dict[str, Path] = {}
    for video in uploaded:
        target = pool / video.name
        if video.name in by_name:
            raise DatasetError(f"two uploaded videos are named {video.name}: names must be unique (rows find videos by name)")
        shutil.copyfile(video, target)
        by_name[video.name] = target
    try:
        rows = load_dataset(table, check_files=False)
    except DatasetError as exc:
        # The message names the server's copy: name the file the person uploaded instead.
        raise DatasetError(str(exc).replace(str(table), source.name if source.suffix.lower() != ".zip" else table.name),
                           path=source.name, line=exc.line, field=exc.field) from None
    resolved, missing = [], []
    for i, row in enumerate(rows):
        name = Path(row.video).name
        if name in by_name:
            resolved.append(dataclasses.replace(row, video=str(by_name[name])))
        else:
            missing.append(f"row {i + 1} ({row.id or row.question[:40]!r}): video {name!r} was not uploaded")
    if missing:
        have = ", ".join(sorted(by_name)[:8]) or "no videos"
        shown = missing[:8] + ([f"... and {len(missing) - 8} more"] if len(missing) > 8 else [])
        raise DatasetError("\n".join(shown) + f"\nUploaded: {have}. Upload every video the JSONL names (same file name).",
                           path=source.name)
    unanswered = [f"row {i + 1} ({r.id or r.question[:40]!r})" for i, r in enumerate(resolved) if not (r.answer or "").strip()]
    if unanswered:
        raise DatasetError(f"GRPO needs the right answer of every question; {len(unanswered)} rows have none: "
                           + ", ".join(unanswered[:5]) + ("..." if len(unanswered) > 5 else ""), path=source.name)
    return resolved


def _unzip(archive: Path, out: Path) -> None:
    import zipfile

    from tinyr1.data import DatasetError

    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                raise DatasetError(f"{archive.name}: expands to more than {MAX_UNZIPPED_BYTES >> 30} GB")
            root = out.resolve()
            for m in members:
                target = (root / m.filename).resolve()
                if not target.is_relative_to(root) or m.filename.startswith("__MACOSX/"):
                    continue  # an absolute or ../ name (zip slip), or macOS metadata: skipped
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive.name}: not a readable zip file ({exc})") from None


def split_heldout(rows: Sequence[Any], n: int, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(training rows, held-out rows): a seeded random ``HELDOUT_SHARE`` of the rows, at most
    ``n``, is held out for evaluation and never trained on. Fewer than HELDOUT_MIN_ROWS rows: none."""
    rows = list(rows)
    if n < 1 or len(rows) < HELDOUT_MIN_ROWS:
        return rows, []
    k = max(1, min(int(n), int(len(rows) * HELDOUT_SHARE)))
    held = set(np.random.default_rng(seed).permutation(len(rows))[:k].tolist())
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


# -- what the tab draws


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


@dataclass
class TrainUpdate:
    """One streamed state of a GRPO run (what the tab shows at that moment). ``None`` fields
    are unchanged since the last update."""

    status: str
    phase: str  # prepare | eval | step | done | error
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


class GRPORunner:
    """The GRPO tab's work, gradio-free: prepare the data, load a fresh starting policy, run
    ``tinyr1.grpo.train`` and turn its records into ``TrainUpdate``s; Resume; hand the tuned
    policy to the Reason tab. Runs live in ``<root>/runs/<YYYYmmdd-HHMMSS>/``."""

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

    def _load(self, path: str) -> Any:
        # Always a fresh copy: the loop trains it in place, it is the KL reference's source, and
        # Resume checks it is the run's starting policy. Never the Reason tab's cached one.
        loader = self.bench._policy_loader
        if loader is None:
            from tinyr1.policy import load_policy as loader
        return loader(path, quantization=None)

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
        **fields: Any,
    ) -> Iterator[TrainUpdate]:
        """A new run: data, evaluation before (optional), one update per step, evaluation after."""
        def fail(message: str, run: str | None = None) -> TrainUpdate:
            return TrainUpdate(status=f"⚠️ {message}", phase="error", run=run, error=message,
                               result={"phase": "error", "error": message, "run": run, "done": True})

        from tinyr1.data import DatasetError, load_dataset, write_dataset
        from tinyr1.grpo.config import GRPOConfigError

        try:
            config = grpo_config(preset_name, **fields)
        except (GRPOConfigError, ValueError, TypeError) as exc:
            yield fail(f"Bad GRPO settings: {exc}")
            return
        option = self.bench.option(policy or self.default_start_policy())
        if option is None:
            yield fail(self.bench.why_unavailable(policy or self.default_start_policy()))
            return
        policy = option.key
        if data_source not in DATA_SOURCES:
            yield fail(f"unknown data source {data_source!r}; choose one of {', '.join(DATA_SOURCES)}")
            return
        eval_n = max(0, int(eval_n or 0))
        run_dir = new_run_dir(self.root)
        label = run_label(run_dir)
        data = run_dir / "data"
        try:
            if data_source == "world":
                from tinyr1.world import write_split

                n = int(world_n or 0)
                if n < 1:
                    raise DatasetError(f"the world split needs at least 1 question, got {n}")
                yield TrainUpdate(status=f"Writing {n} synthetic-world clips (train split) under `{label}/data/`…",
                                  phase="prepare", run=label, steps=config.steps, new_run=True,
                                  plots=plot_frames([]), group=empty_group(), group_title="", evals=eval_table(None, None),
                                  result={"phase": "prepare", "run": label, "done": False})
                train_file = write_split("train", n, data / "train", progress=False)
                eval_file = write_split("validation", eval_n, data / "validation", progress=False) if eval_n else None
                rows, eval_rows = load_dataset(train_file), load_dataset(eval_file) if eval_file else []
                eval_source = f"{len(eval_rows)} questions of the world's validation split"
            else:
                yield TrainUpdate(status="Checking the uploaded dataset…", phase="prepare", run=label, steps=config.steps,
                                  new_run=True, plots=plot_frames([]), group=empty_group(), group_title="",
                                  evals=eval_table(None, None), result={"phase": "prepare", "run": label, "done": False})
                rows, eval_rows = split_heldout(prepare_upload(jsonl, videos, data / "upload"), eval_n, seed=0)
                eval_source = (f"{len(eval_rows)} held-out rows of your upload (a seeded random {HELDOUT_SHARE:.0%}, not trained on)"
                               if eval_rows else f"none: fewer than {HELDOUT_MIN_ROWS} rows to hold any out")
                train_file = write_dataset(rows, data / "train.jsonl")
                eval_file = write_dataset(eval_rows, data / "heldout.jsonl") if eval_rows else None
        except (DatasetError, ValueError) as exc:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing trained: leave no half run behind
            kind = "dataset" if isinstance(exc, DatasetError) else "data"
            yield fail(f"The {kind} cannot be used:\n```\n{exc}\n```")
            return
        info = {
            "policy": {"label": policy, "path": option.target},
            "data": {"source": data_source, "train": str(train_file.relative_to(run_dir)), "rows": len(rows),
                     "eval": str(eval_file.relative_to(run_dir)) if eval_file else None, "eval_source": eval_source},
            "eval": {"temperature": 0.0, "max_new_tokens": config.max_new_tokens, "seed": 0, "num_frames": config.num_frames},
            "preset": preset_name,
            "config": config.to_dict(),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        (run_dir / RUN_FILE).write_text(json.dumps(info, indent=2) + "\n")
        yield from self._run(run_dir, info, config, rows, eval_rows, eval_before=bool(eval_before), resume=False)

    # -- Resume
    def resume(self, run: str | None = None, steps: int | None = None) -> Iterator[TrainUpdate]:
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
            rows = load_dataset(run_dir / info["data"]["train"])
            eval_rows = load_dataset(run_dir / info["data"]["eval"]) if info["data"].get("eval") else []
        except (ValueError, KeyError, OSError) as exc:
            message = f"Cannot resume: {exc}"
            yield TrainUpdate(status=f"⚠️ {message}", phase="error", error=message, run=run,
                              result={"phase": "error", "error": message, "run": run, "done": True})
            return
        done_at = _newest_step(run_dir)
        if done_at >= config.steps:
            label = run_label(run_dir)
            finished = (run_dir / "final" / "config.json").is_file()
            where = f"has finished its {done_at} steps; its tuned policy is `{label}/final`" if finished else f"is at step {done_at}"
            yield TrainUpdate(
                status=f"`{label}` {where}. To train it further, set **Steps** above {done_at} and press **Resume**.",
                phase="done", run=label, step=done_at, steps=config.steps,
                result={"phase": "done", "run": label, "step": done_at, "steps": config.steps, "done": True,
                        "error": None, "final": str(run_dir / "final")})
            return
        yield from self._run(run_dir, info, config, rows, eval_rows, eval_before=False, resume=True)

    # -- the run itself
    def _run(self, run_dir: Path, info: dict[str, Any], config: Any, rows: list[Any], eval_rows: list[Any],
             *, eval_before: bool, resume: bool) -> Iterator[TrainUpdate]:
        from tinyr1.grpo import train
        from tinyr1.grpo.config import GRPOConfigError

        label = run_label(run_dir)
        steps = config.steps
        result: dict[str, Any] = {"phase": "prepare", "run": label, "step": 0, "steps": steps, "done": False,
                                  "error": None, "final": None}
        evals_path = run_dir / "eval.json"
        evals: dict[str, Any] = json.loads(evals_path.read_text()) if evals_path.is_file() else {}
        start_step = _newest_step(run_dir) if resume else 0
        history = _read_history(run_dir / PLOT_FILE, start_step)

        def update(status: str, phase: str, **kw: Any) -> TrainUpdate:
            result.update(phase=phase, **{k: v for k, v in kw.items() if k in ("step", "metrics", "error", "final", "done")})
            result.update(eval_before=evals.get("eval_before"), eval_after=evals.get("eval_after"))
            return TrainUpdate(status=status, phase=phase, run=label, step=result["step"], steps=steps, result=dict(result),
                               error=result.get("error"), new_run=kw.get("new_run", False), plots=kw.get("plots"),
                               group=kw.get("group"), group_title=kw.get("group_title"), evals=kw.get("evals"))

        def fail(message: str) -> TrainUpdate:
            return update(f"⚠️ {message}", "error", error=message, done=True)

        policy_info = info["policy"]
        what = "Resuming" if resume else "Loading"
        held_out = info["data"].get("eval_source") or "none"
        yield update(f"{what} **{policy_info['label']}** for `{label}` ({len(rows)} training questions; held out for "
                     f"evaluation: {held_out})…", "prepare", new_run=resume,
                     plots=plot_frames(history), group=empty_group(), group_title="",
                     evals=eval_table(evals.get("eval_before"), evals.get("eval_after")))
        try:
            policy = self._load(policy_info["path"])
        except Exception as exc:
            yield fail(f"Could not load policy {policy_info['label']!r}: {exc}")
            return
        eval_settings = self._eval_settings(info)

        if eval_before and eval_rows:
            yield update(f"Evaluating the starting policy on {len(eval_rows)} held-out questions (greedy)…", "eval")
            try:
                evals["eval_before"] = self._evaluate(policy, eval_rows, eval_settings)
            except Exception as exc:
                traceback.print_exc()
                yield fail(f"Evaluation failed: {type(exc).__name__}: {exc}")
                return
            evals_path.write_text(json.dumps(evals, indent=2) + "\n")
            yield update(f"Before training: accuracy {evals['eval_before']['accuracy']:.1%} on {len(eval_rows)} held-out questions. "
                         "Starting GRPO…", "eval", evals=eval_table(evals.get("eval_before"), None))

        closing = threading.Event()
        self._closing[label] = closing
        started = time.perf_counter()
        gen = None
        stopped = True
        try:
            try:
                gen = train(config, policy, rows, run_dir, resume=resume)
            except (GRPOConfigError, ValueError) as exc:
                yield fail(str(exc))
                stopped = False
                return
            first = True
            plot_file = run_dir / PLOT_FILE
            _truncate_history(plot_file, start_step)
            try:
                for record in gen:
                    values = {"step": record.step, **step_values(record.metrics, record.groups)}
                    history.append(values)
                    with open(plot_file, "a") as f:
                        f.write(json.dumps(values) + "\n")
                    m = record.metrics
                    pace = (time.perf_counter() - started) / max(1, record.step - start_step)
                    if first and resume and start_step:
                        note = f" (resumed from the checkpoint of step {start_step})"
                    else:
                        note = ""
                    first = False
                    kl = f" · KL {m['kl']:.4f}" if "kl" in m else " · no KL (β = 0)"
                    group = record.groups[-1] if record.groups else None
                    yield update(
                        f"**Step {record.step}/{steps}**{note} · reward {m['reward']:+.3f} · accuracy {m['accuracy']:.0%} · "
                        f"format {m['format_rate']:.0%} · think {m['think_chars']:.0f} chars{kl} · {pace:.2f} s/step. "
                        "Stop keeps a checkpoint of the last step; Resume continues it.",
                        "step", step=record.step, metrics={k: round(float(v), 6) for k, v in m.items()},
                        plots=plot_frames(history),
                        group=group_table(group) if group else None,
                        group_title=group_title(record.step, group) if group else None,
                    )
            except (GRPOConfigError, ValueError) as exc:  # resume refused (other settings, data or policy)
                yield fail(str(exc))
                stopped = False
                return
            stopped = False
        except GeneratorExit:
            raise
        except Exception as exc:
            traceback.print_exc()
            stopped = False
            yield fail(f"Training failed: {type(exc).__name__}: {exc}")
            return
        finally:
            if stopped and gen is not None:
                # Stop (gradio closes this generator): closing the loop writes a checkpoint of the
                # last completed step. In a thread: gradio closes generators on its event loop, and
                # saving a large policy there would freeze every other request meanwhile.
                threading.Thread(target=_close_and_signal, args=(gen, closing), name=f"close-{label}").start()
            else:
                if gen is not None:
                    gen.close()
                closing.set()

        seconds = time.perf_counter() - started
        final = run_dir / "final"
        if eval_rows:
            yield update(f"Trained {steps} steps in {seconds:.0f} s. Evaluating the tuned policy on {len(eval_rows)} held-out questions…",
                         "eval", final=str(final))
            try:
                evals["eval_after"] = self._evaluate(policy, eval_rows, eval_settings)
                evals_path.write_text(json.dumps(evals, indent=2) + "\n")
            except Exception as exc:
                traceback.print_exc()
                yield fail(f"Evaluation after training failed: {type(exc).__name__}: {exc}")
                return
        before, after = evals.get("eval_before"), evals.get("eval_after")
        verdict = ""
        if after:
            verdict = f" Held-out accuracy {after['accuracy']:.1%}" + (f" (was {before['accuracy']:.1%})." if before else ".")
        yield update(f"**Done**: {steps} steps in {seconds:.0f} s.{verdict} The tuned policy is `{label}/final`: "
                     "press **Use in Reason** to try it.", "done", final=str(final), done=True,
                     evals=eval_table(before, after))

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
        step = _newest_step(run_dir)
        if (run_dir / "final" / "config.json").is_file():
            return f"`{run}` had finished: its tuned policy is `{run}/final`."
        return (f"**Stopped** `{run}` after step {step}: checkpoint `{run}/checkpoints/step-{step:06d}` written. "
                "**Resume** continues from it.")

    def use_in_reason(self, run: str | None) -> tuple[str | None, str]:
        """(the Reason tab's policy label of ``run``'s tuned policy, a message)."""
        try:
            run_dir = run_dir_of(self.root, run or next(iter(list_runs(self.root)), None))
        except ValueError as exc:
            return None, f"⚠️ {exc}"
        label = run_label(run_dir)
        if label not in self.bench.policies():
            step = _newest_step(run_dir)
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


def _read_history(path: Path, upto: int) -> list[dict[str, Any]]:
    """The plotted values of steps 1..upto written by an earlier part of the run."""
    if upto < 1 or not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            values = json.loads(line)
        except ValueError:
            continue
        if 1 <= int(values.get("step", 0)) <= upto:
            out.append(values)
    return out


def _truncate_history(path: Path, upto: int) -> None:
    """Keep only steps up to the checkpoint resumed from (later ones are redone), as the loop
    does with its own logs."""
    kept = _read_history(path, upto)
    path.write_text("".join(json.dumps(v) + "\n" for v in kept))


# ------------------------------------------------------------------------------------ the Blocks


def build_demo(root: str | Path, *, workbench: Workbench | None = None) -> gr.Blocks:
    """The app's Blocks (queue set up). ``workbench`` lets tests give their own loaders."""
    bench = workbench or Workbench(root)
    choices = bench.policy_choices()  # the first use lists the registry (see Workbench.registry_entries)
    default_policy = next((key for _, key in choices), None)
    examples = find_examples(bench.root)

    def reason_handler(
        video: str | None,
        question: str,
        option_a: str = "",
        option_b: str = "",
        option_c: str = "",
        option_d: str = "",
        answer: str = "",
        policy: str | None = default_policy,
        frames: float = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: float = 256,
        seed: float = 0,
        quantization: str = "none",
    ) -> Iterator[tuple]:
        """Stream the policy's think text and answer on a video, with the frames it saw and the
        live reward. Outputs: status, frames, think, answer, reward chart, reward table, result
        JSON (its `reward` holds the breakdown; `done` is true on the last update)."""
        try:
            options = collect_options(option_a, option_b, option_c, option_d)
        except ValueError as exc:
            gr.Warning(str(exc))
            yield (f"⚠️ {exc}", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), {"error": str(exc), "done": True}, gr.skip())
            return
        first = True
        thumbs = Path(tempfile.mkdtemp(prefix="tinyr1-frames-"))
        try:
            for step in bench.reason(
                video, question, options, answer, policy,
                num_frames=int(frames), temperature=temperature, top_p=top_p,
                max_new_tokens=int(max_new_tokens), seed=int(seed), quantization=quantization,
            ):
                if step.error:
                    gr.Warning(step.error)
                table = step.table
                if table is None and first:  # a new run: clear the last run's text and reward
                    table = empty_table()
                keep = gr.skip()  # unchanged panels are not sent again (the frames, above all)
                yield (
                    step.status,
                    save_frames(step.frames, thumbs) if step.frames is not None else ([] if first else keep),
                    step.think if table is not None else keep,
                    step.answer if table is not None else keep,
                    reward_chart(table) if table is not None else keep,
                    table if table is not None else keep,
                    step.result,
                    step.banner if step.banner else keep,
                )
                first = False
        finally:
            # Gradio has copied each yielded file into its cache by the time the generator resumes.
            shutil.rmtree(thumbs, ignore_errors=True)

    reason_fn = zero_gpu(reason_handler)

    def landscape_plot(*params: Any):
        df = reward_landscape(*params)
        return gr.update(value=df, y_lim=landscape_y_lim(df))

    lab_defaults = dict(completion=LAB_EXAMPLE, answer="B", options="left\nright\nup\ndown", r0=0.5, r1=0.5, max_len=1200, tie_r2=True, r2=1.0, official=False)
    lab_json, lab_chart, lab_table, lab_summary = reward_lab(**lab_defaults)
    landscape = reward_landscape()

    with gr.Blocks(title="tinyr1 — small video reasoning models") as demo:
        gr.Markdown(
            "# tinyr1 · small video reasoning models\n"
            "A video LMM trained with GRPO (the TinyLLaVA-Video-R1 recipe) answers questions about a video by "
            "writing `<think>…</think><answer>…</answer>`. **Reason**: run a policy on a clip and watch its "
            "reward. **Reward lab**: see how the paper scores any completion. **GRPO**: fine-tune."
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Reason", id="reason"):
                banner = gr.Markdown(bench.banner(default_policy), elem_id="tinyr1-banner")
                with gr.Row():
                    with gr.Column(scale=5):
                        video = gr.Video(label="Video", sources=["upload"], elem_id="reason-video", height=260)
                        question = gr.Textbox(label="Question", value=DEFAULT_QUESTION, lines=2, elem_id="reason-question")
                        with gr.Accordion("Options (optional, multiple choice A–D)", open=True):
                            with gr.Row():
                                opt_boxes = [
                                    gr.Textbox(value="", label=f"{letter}", placeholder=f"option {letter}", elem_id=f"reason-option-{letter.lower()}", min_width=80)
                                    for letter in OPTION_LETTERS
                                ]
                        answer_truth = gr.Textbox(
                            value="", label="Correct answer (optional)", info="a letter or the option's text; enables the accuracy reward",
                            elem_id="reason-truth",
                        )
                        with gr.Row():
                            policy_dd = gr.Dropdown(
                                choices=choices, value=default_policy, label="Policy", elem_id="reason-policy", scale=4,
                                info="the registry's policies that are here or downloadable, then runs/NAME/final",
                            )
                            refresh = gr.Button("↻ Rescan", scale=1, size="sm")
                        with gr.Accordion("Policies: size, memory, how to get the missing ones", open=False):
                            policy_md = gr.Markdown(bench.policy_info(), elem_id="reason-policy-info")
                        with gr.Accordion("Generation settings", open=False):
                            frames = gr.Slider(0, 32, value=0, step=1, label="Frames sampled (0 = the policy's own)")
                            temperature = gr.Slider(0, 2, value=0.0, step=0.05, label="Temperature (0 = greedy)")
                            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p")
                            max_new = gr.Slider(16, 1024, value=256, step=16, label="Max new tokens")
                            seed = gr.Number(value=0, precision=0, label="Seed")
                            quant = gr.Radio(list(QUANTIZATIONS), value="none", label="Quantization (nf4/int8 need bitsandbytes)")
                        with gr.Row():
                            run = gr.Button("Reason", variant="primary", elem_id="reason-run")
                            stop = gr.Button("Stop", variant="stop", elem_id="reason-stop")
                    with gr.Column(scale=7):
                        status = gr.Markdown("Upload a clip (or pick an example), then press **Reason**.", elem_id="reason-status")
                        gallery = gr.Gallery(
                            label="Frames the policy sees (number · time in the video)", columns=8, height=180,
                            object_fit="contain", elem_id="reason-frames", preview=False,
                        )
                        think = gr.Textbox(label="Think", lines=6, max_lines=14, autoscroll=True, elem_id="reason-think")
                        answer_out = gr.Textbox(label="Answer", lines=1, elem_id="reason-answer")
                        with gr.Row(equal_height=False):
                            chart = gr.BarPlot(
                                value=reward_chart(empty_table()), x="part", y="value", y_lim=[-2.2, 2.2],  # ±(r0 + r1 + r2)
                                sort=PART_ORDER, height=260, scale=2, min_width=260,
                                title="Reward of the text so far", label="Reward chart", elem_id="reason-chart", x_title=" ",
                            )
                            table = gr.Dataframe(
                                value=empty_table(), label="Reward breakdown", elem_id="reason-table",
                                interactive=False, wrap=True, scale=3, column_widths=TABLE_WIDTHS,
                            )
                        with gr.Accordion("Result as JSON (what /reason returns last)", open=False):
                            result = gr.JSON(label="Result", elem_id="reason-json")
                if examples:
                    gr.Examples(
                        examples=examples, inputs=[video, question, *opt_boxes, answer_truth],
                        label="Examples (synthetic-world clips and real clips)", examples_per_page=6,
                    )

                reason_inputs = [video, question, *opt_boxes, answer_truth, policy_dd, frames, temperature, top_p, max_new, seed, quant]
                reason_event = run.click(
                    reason_fn, inputs=reason_inputs,
                    outputs=[status, gallery, think, answer_out, chart, table, result, banner],
                    api_name="reason", concurrency_id="model", concurrency_limit=1,
                )
                stop.click(None, cancels=[reason_event])
                def select_policy(key: str | None):
                    # A registry policy brings its recommended settings; a folder keeps yours.
                    recommended = bench.recommended_settings(key)
                    if recommended is None:
                        return (bench.banner(key), *[gr.skip()] * 5)
                    r = recommended
                    return bench.banner(key), r["frames"], r["temperature"], r["top_p"], r["max_new_tokens"], r["seed"]

                policy_dd.change(
                    select_policy, inputs=policy_dd, outputs=[banner, frames, temperature, top_p, max_new, seed],
                    api_visibility="private", queue=False,
                )

                def rescan(current: str | None):
                    bench.refresh_policies()
                    found = bench.policy_choices()
                    keys = [key for _, key in found]
                    return (gr.update(choices=found, value=current if current in keys else next(iter(keys), None)),
                            bench.policy_info())

                refresh.click(rescan, inputs=policy_dd, outputs=[policy_dd, policy_md], api_visibility="private", queue=False)

            with gr.Tab("Reward lab", id="reward"):
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
                            lab_answer = gr.Textbox(value="B", label="Correct answer (empty = none given)", elem_id="lab-answer")
                            lab_options = gr.Textbox(value=lab_defaults["options"], label="Options, one per line (optional)", lines=4)
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
                        lab_status = gr.Markdown(lab_summary, elem_id="lab-status")
                        with gr.Row():
                            lab_bar = gr.BarPlot(
                                value=lab_chart, x="part", y="value", sort=PART_ORDER, height=280, title="This completion",
                                elem_id="lab-chart", x_title=" ", scale=1, min_width=260,
                            )
                            lab_plot = gr.LinePlot(
                                value=landscape, y_lim=landscape_y_lim(landscape), x="think_chars", y="total", color="case",
                                color_map={"right answer": "#16a34a", "wrong answer": "#dc2626", "broken format": "#64748b"},
                                title="Total reward vs think length", x_title="think characters", y_title="total reward",
                                height=280, elem_id="lab-landscape", scale=1, min_width=300,
                            )
                        lab_tab = gr.Dataframe(
                            value=lab_table, label="Breakdown", interactive=False, wrap=True, elem_id="lab-table",
                            column_widths=TABLE_WIDTHS,
                        )
                        with gr.Accordion("Breakdown as JSON (what /reward returns first)", open=False):
                            lab_result = gr.JSON(value=lab_json, label="Breakdown")
                def show_r2(r0_value: float, r1_value: float, tied: bool, r2_value: float):
                    # While tied, the slider shows r0 + r1 and cannot be moved; untied, it is yours.
                    return gr.update(value=r0_value + r1_value if tied else r2_value, interactive=not tied)

                gr.on(
                    [r0.change, r1.change, tie_r2.change], show_r2, inputs=[r0, r1, tie_r2, r2], outputs=r2,
                    api_visibility="private", queue=False, show_progress="hidden",
                )
                lab_inputs = [completion, lab_answer, lab_options, r0, r1, max_len, tie_r2, r2, official]
                gr.on(
                    [c.change for c in lab_inputs], reward_lab, inputs=lab_inputs,
                    outputs=[lab_result, lab_bar, lab_tab, lab_status],
                    api_name="reward", concurrency_id="reward", concurrency_limit=4, trigger_mode="always_last",
                    show_progress="hidden",
                )
                gr.on(
                    [c.change for c in (r0, r1, max_len, tie_r2, r2, official)], landscape_plot,
                    inputs=[r0, r1, max_len, tie_r2, r2, official], outputs=lab_plot,
                    api_visibility="private", concurrency_id="reward", trigger_mode="always_last", show_progress="hidden",
                )

            with gr.Tab("GRPO", id="grpo"):
                _grpo_tab(bench, policy_dd, tabs)

    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


def _grpo_tab(bench: Workbench, policy_dd: gr.Dropdown, tabs: gr.Tabs) -> None:
    """The GRPO tab: data, policy and recipe, evaluation; Start / Stop / Resume; live plots, the
    latest group's completions, evaluation before and after; the tuned policy into Reason."""
    runner = GRPORunner(bench)
    d = grpo_defaults("paper")
    runs = run_choices(bench.root)
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
                source = gr.Radio(
                    choices=[(text, key) for key, text in DATA_SOURCES.items()], value="world", label="Training questions",
                    elem_id="grpo-source",
                )
                world_n = gr.Slider(
                    1, 2000, value=64, step=1, label="Questions from the world's train split",
                    info="clips of coloured shapes, written under the run folder", elem_id="grpo-world-n",
                )
                with gr.Column(visible=False) as upload_box:
                    jsonl = gr.File(
                        label="Dataset: a .jsonl (video, question, options, answer per line) or a .zip with it and its videos",
                        file_types=[".jsonl", ".zip"], elem_id="grpo-jsonl", height=110,
                    )
                    videos = gr.File(
                        label="Its videos (rows find them by file name)", file_count="multiple", file_types=["video"],
                        elem_id="grpo-videos", height=110,
                    )
            with gr.Accordion("2 · Policy and recipe", open=True):
                with gr.Row():
                    start_policy = gr.Dropdown(
                        choices=bench.policy_choices(), value=runner.default_start_policy(), label="Starting policy",
                        elem_id="grpo-policy", scale=4, info="the same list as Reason's (the registry, then runs)",
                    )
                    rescan = gr.Button("↻", scale=0, size="sm", min_width=40)
                preset_radio = gr.Radio(["paper", "tiny"], value="paper", label="Preset", elem_id="grpo-preset")
                gr.Markdown(TINY_PRESET_NOTE, elem_id="grpo-preset-note")
                with gr.Row():
                    steps = gr.Number(value=d["steps"], precision=0, minimum=1, label="Steps", elem_id="grpo-steps", min_width=100)
                    prompts = gr.Number(value=d["prompts_per_step"], precision=0, minimum=1, label="Questions per step", elem_id="grpo-prompts", min_width=100)
                    group_size = gr.Number(value=d["num_generations"], precision=0, minimum=2, label="G (answers per question)", elem_id="grpo-g", min_width=100)
                with gr.Row():
                    temperature = gr.Number(value=d["temperature"], minimum=0.01, step=0.1, label="Temperature", elem_id="grpo-temperature", min_width=100)
                    max_new = gr.Number(value=d["max_new_tokens"], precision=0, minimum=1, label="Max new tokens", elem_id="grpo-max-new", min_width=100)
                    lr = gr.Number(value=d["learning_rate"], minimum=0, step=1e-6, label="Learning rate", elem_id="grpo-lr", min_width=100)
                with gr.Row():
                    beta = gr.Number(value=d["beta"], minimum=0, step=0.01, label="β (KL weight)", elem_id="grpo-beta", min_width=100)
                    iterations = gr.Number(value=d["num_iterations"], precision=0, minimum=1, label="Updates per rollout", elem_id="grpo-iterations", min_width=100)
                    epsilon = gr.Number(value=d["epsilon"], minimum=0.01, step=0.05, label="Clip ε (if updates > 1)", elem_id="grpo-epsilon", min_width=100)
                with gr.Row():
                    loss_type = gr.Dropdown(["grpo", "dr_grpo", "dapo"], value=d["loss_type"], label="Loss", elem_id="grpo-loss", min_width=100)
                    reward = gr.Dropdown(reward_names(), value=d["reward"], label="Reward", elem_id="grpo-reward", min_width=100)
                    seed = gr.Number(value=d["seed"], precision=0, label="Seed", elem_id="grpo-seed", min_width=100)
            with gr.Accordion("3 · Evaluation", open=True):
                with gr.Row():
                    eval_before = gr.Checkbox(value=True, label="Evaluate the starting policy first", elem_id="grpo-eval-before")
                    eval_n = gr.Number(value=32, precision=0, minimum=0, label="Held-out questions (0 = none)", elem_id="grpo-eval-n", min_width=100)
                gr.Markdown(
                    "Greedy answers (temperature 0, the run's max new tokens, seed 0) to questions never trained on: "
                    f"the world's validation split, or a seeded random {HELDOUT_SHARE:.0%} of an upload. "
                    "After training runs when the run completes.",
                    elem_id="grpo-eval-note",
                )
        with gr.Column(scale=7):
            with gr.Row(equal_height=False):
                start = gr.Button("Start", variant="primary", elem_id="grpo-start", scale=1, min_width=90)
                stop = gr.Button("Stop", variant="stop", elem_id="grpo-stop", scale=1, min_width=90)
                resume = gr.Button("Resume", elem_id="grpo-resume", scale=1, min_width=90)
                run_dd = gr.Dropdown(
                    choices=runs, value=runs[0][1] if runs else None, label="Run", elem_id="grpo-run", scale=3,
                    allow_custom_value=True,  # runs appear while the app serves; run_dir_of checks the label
                    info="Resume continues it up to Steps; Use in Reason selects its tuned policy there",
                )
            status = gr.Markdown("Choose the data and the recipe on the left, then press **Start**.", elem_id="grpo-status")
            # value=None at first, not an empty DataFrame: gradio 6.31 never draws a line in a
            # LinePlot with a colour column whose first data was empty (an empty update later is fine).
            plot_args = dict(x="step", y="value", color="name", color_title=" ", height=230, x_title="step", min_width=280)
            with gr.Row():
                reward_plot = gr.LinePlot(
                    value=None, title="Reward and the parts it earned (mean)", y_title="reward",
                    color_map=PLOT_SERIES["reward"], y_lim=[-2.2, 2.2], elem_id="grpo-reward-plot", **plot_args,
                )
                quality_plot = gr.LinePlot(
                    value=None, title="Accuracy and format rate", y_title="share", y_lim=[-0.05, 1.05],
                    color_map=PLOT_SERIES["quality"], elem_id="grpo-quality-plot", **plot_args,
                )
            with gr.Row():
                think_plot = gr.LinePlot(
                    value=None, title="Think length (characters, mean)", y_title="characters",
                    color_map=PLOT_SERIES["think"], elem_id="grpo-think-plot", **plot_args,
                )
                kl_plot = gr.LinePlot(
                    value=None, title="KL to the starting policy (only when β > 0)", y_title="KL per token",
                    color_map=PLOT_SERIES["kl"], elem_id="grpo-kl-plot", **plot_args,
                )
            group_md = gr.Markdown("", elem_id="grpo-group-title")
            group_df = gr.Dataframe(
                value=empty_group(), label="The latest group's completions: what each earned and its advantage",
                interactive=False, wrap=True, column_widths=GROUP_WIDTHS, max_height=420, elem_id="grpo-group",
            )
            evals_df = gr.Dataframe(
                value=eval_table(None, None), label="Held-out evaluation: before and after training", interactive=False,
                elem_id="grpo-eval",
            )
            with gr.Row(equal_height=True):
                use = gr.Button("Use in Reason →", variant="secondary", elem_id="grpo-use", scale=1)
                use_msg = gr.Markdown("", elem_id="grpo-use-status")
            with gr.Accordion("Last update as JSON (what /train streams)", open=False):
                result = gr.JSON(label="Update", elem_id="grpo-json")

    outputs = [status, reward_plot, quality_plot, think_plot, kl_plot, group_md, group_df, evals_df, result, run_dd]

    def show(update: TrainUpdate) -> tuple:
        if update.error:
            gr.Warning(update.error.split("\n")[0].strip(":"))
        plots = update.plots
        keep = gr.skip()
        refresh = update.new_run or update.phase in ("done", "error") and update.run
        return (
            update.status,
            # An empty plot is sent as None: a LinePlot whose first data is empty never draws a line.
            *((None if plots[k].empty else plots[k]) if plots else keep for k in ("reward", "quality", "think")),
            # The KL plot shows only when there is a KL (β > 0: the paper preset; the tiny one has none).
            (gr.update(value=None if plots["kl"].empty else plots["kl"], visible=not plots["kl"].empty or update.phase == "prepare")
             if plots else keep),
            update.group_title if update.group_title is not None else keep,
            update.group if update.group is not None else keep,
            update.evals if update.evals is not None else keep,
            update.result,
            gr.update(choices=run_choices(bench.root), value=update.run) if refresh else keep,
        )

    def train_handler(
        data_source: str = "world",
        world_n: float = 64,
        dataset: str | None = None,
        videos: list[str] | None = None,
        policy: str | None = None,
        preset: str = "paper",
        steps: float = d["steps"],
        prompts_per_step: float = d["prompts_per_step"],
        num_generations: float = d["num_generations"],
        temperature: float = d["temperature"],
        max_new_tokens: float = d["max_new_tokens"],
        learning_rate: float = d["learning_rate"],
        beta: float = d["beta"],
        num_iterations: float = d["num_iterations"],
        epsilon: float = d["epsilon"],
        loss_type: str = d["loss_type"],
        reward: str = d["reward"],
        seed: float = d["seed"],
        eval_before: bool = True,
        eval_n: float = 32,
    ) -> Iterator[tuple]:
        """Start a GRPO run and stream one update per step. data_source "world" (world_n questions
        of the synthetic world's train split) or "upload" (dataset: a .jsonl or .zip; videos: its
        video files). Outputs: status, four plots (long format: step, name, value), the latest
        group's title and completions, the evaluation table, the update as JSON (phase
        prepare/eval/step/done/error, run, step, steps, metrics, done, error, final,
        eval_before, eval_after) and the run dropdown."""
        fields = dict(steps=steps, prompts_per_step=prompts_per_step, num_generations=num_generations,
                      temperature=temperature, max_new_tokens=max_new_tokens, learning_rate=learning_rate, beta=beta,
                      num_iterations=num_iterations, epsilon=epsilon, loss_type=loss_type, reward=reward, seed=seed)
        for update in runner.start(data_source=data_source, world_n=int(world_n or 0), jsonl=dataset, videos=videos,
                                   policy=policy, preset_name=preset, eval_before=eval_before, eval_n=int(eval_n or 0), **fields):
            yield show(update)

    def resume_handler(run: str | None = None, steps: float | None = None) -> Iterator[tuple]:
        """Continue a run (default: the newest) from its last checkpoint with a freshly loaded
        starting policy, up to steps (empty: the run's own). Same outputs as /train."""
        for update in runner.resume(run, int(steps) if steps else None):
            yield show(update)

    recipe = [steps, prompts, group_size, temperature, max_new, lr, beta, iterations, epsilon, loss_type, reward, seed]
    train_event = start.click(
        train_handler,
        inputs=[source, world_n, jsonl, videos, start_policy, preset_radio, *recipe, eval_before, eval_n],
        outputs=outputs, api_name="train", concurrency_id="model", concurrency_limit=1,
    )
    resume_event = resume.click(
        resume_handler, inputs=[run_dd, steps], outputs=outputs, api_name="resume",
        concurrency_id="model", concurrency_limit=1,
    )

    def stopped(run: str | None) -> str:
        return runner.wait_closed(run)

    # Cancel first, then wait for the checkpoint in a follow-up: a Stop function that waited
    # itself would hold back the browser's cancel request, which is sent after it returns.
    stop.click(None, cancels=[train_event, resume_event]).then(
        stopped, inputs=run_dd, outputs=status, queue=False, api_visibility="private")

    def use_in_reason(run: str | None):
        label, message = runner.use_in_reason(run)
        if label is None:
            return gr.skip(), message, gr.skip()
        return gr.update(choices=bench.policy_choices(), value=label), message, gr.Tabs(selected="reason")

    use.click(use_in_reason, inputs=run_dd, outputs=[policy_dd, use_msg, tabs], api_name="use_in_reason", queue=False)

    def choose_source(kind: str):
        return gr.update(visible=kind == "world"), gr.update(visible=kind == "upload")

    source.change(choose_source, inputs=source, outputs=[world_n, upload_box], api_visibility="private", queue=False)

    preset_fields = [group_size, temperature, max_new, lr, beta, iterations, epsilon, loss_type, reward]
    preset_keys = ["num_generations", "temperature", "max_new_tokens", "learning_rate", "beta", "num_iterations", "epsilon", "loss_type", "reward"]

    def apply_preset(name: str):
        values = grpo_defaults(name)
        return [gr.update(value=values[k]) for k in preset_keys]

    preset_radio.change(apply_preset, inputs=preset_radio, outputs=preset_fields, api_visibility="private", queue=False)

    def rescan_policies(current: str | None):
        bench.refresh_policies()
        found = bench.policy_choices()
        keys = [key for _, key in found]
        return gr.update(choices=found, value=current if current in keys else runner.default_start_policy())

    rescan.click(rescan_policies, inputs=start_policy, outputs=start_policy, api_visibility="private", queue=False)


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
