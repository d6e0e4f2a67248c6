"""The tinyr1 Gradio app: Reason, Reward lab and GRPO tabs. The only module that imports gradio.

    python app.py                              # http://127.0.0.1:7860 on the embedded tiny policy
    TINYR1_QUEUE_SIZE=32 python app.py         # let more requests wait for the model

Layout of this file:
- plain functions (no gradio): policies and examples found on disk, option and answer input,
  reward tables and charts, the reward landscape, the reward lab. They take paths, strings and
  numbers and return plain values / DataFrames, so tests call them directly.
- ``Workbench``: the state one app holds (where to look, which policy is loaded) and the Reason
  generator, also gradio-free: it yields ``ReasonStep``s.
- ``build_demo``: the Blocks. Its listeners are thin adapters over the two above.
- ``launch_kwargs``: what ``demo.launch`` needs (theme and css go there in Gradio 6, the upload
  limit, no extra readable path).

Serving rules (DESIGN sections 8 and 9): every listener that runs the model shares one
``concurrency_id`` (``"model"``) with concurrency 1, so one generation runs at a time and the
rest wait in a bounded queue (``TINYR1_QUEUE_SIZE``, default 16) that turns people away when full
instead of letting waits grow. Reason is a generator, so Stop (``cancels=``) interrupts it between
two streamed updates. The API names are stable: ``/reason`` (streams), ``/reward``.
"""
from __future__ import annotations

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


def policy_banner(label: str | None, path: str | None, loaded: dict[str, Any] | None = None) -> str:
    """The honest banner of what the selected policy is (Markdown), from its ``policy.json`` and,
    once loaded, from ``Policy.describe()`` (parameters, device, quantization)."""
    if not label or not path:
        return (
            "**No policy found.** Put a policy directory under `assets/policies/` (the embedded tiny "
            "policies are built by `tinyr1 train-tiny`) or train one in the GRPO tab."
        )
    meta = (loaded or {}).get("metadata") or policy_metadata(path)
    name = Path(path).name
    if meta.get("kind") == "random":
        what = "random weights, for testing the app: the text it writes is noise."
    elif name in EMBEDDED or meta.get("kind") in ("embedded", "tiny"):
        what = (
            "the embedded tiny policy, trained by this repository on a synthetic world of coloured "
            "shapes. It only knows coloured shapes: on real videos it still writes "
            "`<think>…</think><answer>…</answer>`, but its answers are guesses."
        )
    elif label.startswith("runs/"):
        what = f"a policy you fine-tuned with GRPO (`{label}/final`)."
    else:
        what = f"`{path}`."
    facts = []
    described = meta.get("description") or meta.get("note")
    if described and meta.get("kind") != "random":
        facts.append(str(described).rstrip(".") + ".")
    for key, title in (("accuracy", "accuracy"), ("data", "data"), ("seed", "seed")):
        if key in meta and not isinstance(meta[key], (dict, list)):
            facts.append(f"{title}: {meta[key]}")
    if isinstance(meta.get("accuracy"), dict):
        acc = ", ".join(f"{k} {v}" for k, v in meta["accuracy"].items() if not isinstance(v, (dict, list)))
        if acc:
            facts.append(f"accuracy: {acc}")
    if loaded:
        params = (loaded.get("parameters") or {}).get("total")
        bits = [f"{params / 1e6:.1f}M parameters" if params else None, loaded.get("device"),
                loaded.get("quantization") or None, f"{loaded.get('num_frames')} frames" if loaded.get("num_frames") else None]
        facts.append(" · ".join(b for b in bits if b))
    tail = (" " + " ".join(f for f in facts if f)) if facts else ""
    return f"**Policy: {label}** — {what}{tail}"


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

    # -- discovery
    def policies(self) -> dict[str, str]:
        return find_policies(self.root)

    def default_policy(self) -> str | None:
        return next(iter(self.policies()), None)

    def banner(self, label: str | None) -> str:
        path = self.policies().get(label or "")
        loaded = None
        if self._loaded and path and self._loaded[0][0] == path:
            loaded = _describe(self._loaded[1])
        return policy_banner(label, path, loaded)

    # -- loading
    def load_policy(self, label: str, quantization: str | None) -> Any:
        """The policy behind ``label`` (cached: a Reason run after the first starts at once)."""
        policies = self.policies()
        if label not in policies:
            known = ", ".join(policies) or "none"
            raise ValueError(f"unknown policy {label!r}; found on disk: {known}")
        key = (policies[label], None if quantization in (None, "", "none") else quantization)
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
            yield fail("No policy found on disk (assets/policies/ or runs/*/final).")
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


# ------------------------------------------------------------------------------------ the Blocks


def build_demo(root: str | Path, *, workbench: Workbench | None = None) -> gr.Blocks:
    """The app's Blocks (queue set up). ``workbench`` lets tests give their own loaders."""
    bench = workbench or Workbench(root)
    policies = bench.policies()
    default_policy = bench.default_policy()
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
        with gr.Tabs():
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
                                choices=list(policies), value=default_policy, label="Policy", elem_id="reason-policy", scale=4,
                                info="found on disk: assets/policies and runs/NAME/final",
                            )
                            refresh = gr.Button("↻ Rescan", scale=1, size="sm")
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
                policy_dd.change(bench.banner, inputs=policy_dd, outputs=banner, api_visibility="private", queue=False)

                def rescan(current: str | None):
                    found = bench.policies()
                    return gr.update(choices=list(found), value=current if current in found else next(iter(found), None))

                refresh.click(rescan, inputs=policy_dd, outputs=policy_dd, api_visibility="private", queue=False)

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
                _grpo_tab(bench, policy_dd)

    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


def _grpo_tab(bench: Workbench, policy_dd: gr.Dropdown) -> None:
    """The GRPO tab. Filled when ``tinyr1.grpo`` exposes its training generator; until then it
    says so rather than offering a trainer that does not exist."""
    gr.Markdown(
        "### GRPO fine-tuning\n"
        "Training arrives with the GRPO module (`tinyr1.grpo`): a synthetic-world split or your own "
        "JSONL, the paper's recipe, live reward curves and rollouts, Start / Stop / Resume, and the "
        "tuned policy selectable in the Reason tab. Until then, `tinyr1 train --help` on the command line.",
        elem_id="grpo-note",
    )


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
