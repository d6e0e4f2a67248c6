"""Evaluate a policy on video questions: accuracy, format, think length, the paper's reward,
whether answers follow their traces (consistency), and ablations of the frames the policy sees.

    from tinyr1.evaluate import evaluate, world_rows
    from tinyr1.policy import load_policy, GenerationSettings
    policy = load_policy()                                          # the shipped tiny policy
    rows = world_rows("test", 500)                                  # mp4 clips in a cache folder
    report = evaluate(policy, rows, GenerationSettings(temperature=0), batch_size=64, progress=True)
    report["accuracy"], report["per_family"]["count"]["accuracy"]

    report = evaluate(policy, rows, ablation="reversed")           # the frames in reverse order

    tinyr1 eval --split test --n 500 [--temperature 1.0] [--json]    # the same from the shell
    tinyr1 eval --ablation first-frame                               # one ablation per run

Every question's frames are decoded from its video file with ``tinyr1.video.load_frames`` (the
policy's number of frames, at the file's own size: the policy resizes). Questions are answered in
batches through ``Policy.sample`` (G = 1): greedy when the temperature is 0, else sampled with the
seed ``settings.seed + batch index``, so a run is reproducible. Each completion is scored by
``tinyr1.rewards.score`` (the paper's reward with its default weights).

The report (a JSON-ready dict):
  accuracy, format_rate, mean_think_chars, mean_reward,
  consistency, concluded, n                                 over all questions
  per_family: {family: the same seven}                      questions without a family: "-"
  settings, ablation, seconds, questions_per_second, policy
  records (only with ``keep_records=True``): one dict per question (id, family, answer,
    completion, correct, format_ok, think_chars, reward, predicted, concluded, consistent).
Accuracy is the reward's ``is_correct`` on the first ``<answer>`` block, whatever the format
(the format has its own rate). ``consistency`` is the share of answers that choose the option
their own trace concludes (``tinyr1.conclusion``); an answer whose trace concludes nothing
(cut off, or its concluding sentences name different options) counts as NOT consistent, and
``concluded`` is the share of traces that do conclude one option, so the two read together.

Ablations (``ablation=``, one per call; ``ABLATIONS``) change only the frames the policy gets,
never the question or the truth: ``empty`` (the clip's background colour alone), ``mismatched``
(the frames of the next question of the same family), ``reversed``, ``first-frame`` (frame 0
repeated). A policy that reads the video drops to chance on the first two; one that reads the
sequence flips direction and order under ``reversed`` and loses them under ``first-frame``.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from tinyr1.conclusion import conclusion, is_consistent
from tinyr1.data import VideoQA
from tinyr1.rewards import RewardConfig, score

METRICS = ("accuracy", "format_rate", "mean_think_chars", "mean_reward", "consistency", "concluded", "n")
#: The ablations ``evaluate`` can apply to the frames the policy gets (see ``ablate``).
ABLATIONS = ("empty", "mismatched", "reversed", "first-frame")
NO_FAMILY = "-"

FrameLoader = Callable[[VideoQA, int], np.ndarray]


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, float | int]:
    """The metrics of a list of records (each with correct, format_ok, think_chars, reward,
    consistent, concluded)."""
    n = len(records)
    if n == 0:
        return {m: 0 if m == "n" else 0.0 for m in METRICS}
    return {
        "accuracy": sum(bool(r["correct"]) for r in records) / n,
        "format_rate": sum(bool(r["format_ok"]) for r in records) / n,
        "mean_think_chars": sum(r["think_chars"] for r in records) / n,
        "mean_reward": sum(r["reward"] for r in records) / n,
        "consistency": sum(bool(r["consistent"]) for r in records) / n,
        "concluded": sum(bool(r["concluded"]) for r in records) / n,
        "n": n,
    }


def load_video_frames(row: VideoQA, num_frames: int, target_size: int | None = None) -> np.ndarray:
    """The frames of a row's video file (uniform sampling). ``target_size``: the policy's input
    side; much larger frames are shrunk while decoding (tinyr1.video's pixel budget), smaller
    ones keep the file's own size."""
    from tinyr1.video import load_frames

    return load_frames(row.video, num_frames, target_size=target_size).frames


def background_value(row: VideoQA, frames: np.ndarray) -> np.ndarray:
    """The colour of a clip's background: the world's own value (grey) for world clips, else the
    per-channel median of all pixels (the background covers most of a frame)."""
    facts = (row.extra or {}).get("facts") if isinstance(row.extra, dict) else None
    if isinstance(facts, dict) and isinstance(facts.get("background"), (int, float)):
        return np.full(3, int(facts["background"]), np.uint8)
    return np.median(frames.reshape(-1, frames.shape[-1]), axis=0).round().astype(np.uint8)


def mismatch_pairs(rows: Sequence[VideoQA]) -> list[int]:
    """For each row, the index of the row whose frames it gets under the ``mismatched`` ablation:
    the next row of the same family (cyclically), so the question stays plausible for the clip;
    the next row at all when its family has no other row. Deterministic in the rows' order."""
    if len(rows) < 2:
        from tinyr1.policy import PolicyError

        raise PolicyError("the mismatched ablation needs at least 2 questions (another clip to show)")
    by_family: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_family.setdefault(r.family or NO_FAMILY, []).append(i)
    pairs = []
    for i, r in enumerate(rows):
        same = by_family[r.family or NO_FAMILY]
        pairs.append(same[(same.index(i) + 1) % len(same)] if len(same) > 1 else (i + 1) % len(rows))
    return pairs


def ablate(kind: str, rows: Sequence[VideoQA], loader: FrameLoader) -> FrameLoader:
    """A frame loader that changes what the policy sees, to check what its answers rest on:

    - ``empty``: every frame a uniform image of the clip's background colour (nothing to see);
    - ``mismatched``: another clip's frames (``mismatch_pairs``), the question unchanged;
    - ``reversed``: the frames in reverse order (direction and order questions flip);
    - ``first-frame``: the first frame repeated (no motion, no sequence).

    Accuracy is still judged against the original clip's truth."""
    if kind not in ABLATIONS:
        from tinyr1.policy import PolicyError

        raise PolicyError(f"unknown ablation {kind!r}; known: {', '.join(ABLATIONS)}")
    if kind == "mismatched":
        rows = list(rows)
        index = {id(r): i for i, r in enumerate(rows)}
        pairs = mismatch_pairs(rows)
        return lambda row, n: loader(rows[pairs[index[id(row)]]], n)

    def load(row: VideoQA, n: int) -> np.ndarray:
        frames = np.asarray(loader(row, n))
        if kind == "reversed":
            return np.ascontiguousarray(frames[::-1])
        if kind == "first-frame":
            return np.repeat(frames[:1], len(frames), axis=0)
        return np.broadcast_to(background_value(row, frames), frames.shape).copy()  # empty

    return load


def evaluate(
    policy,
    rows: Sequence[VideoQA],
    settings=None,
    *,
    batch_size: int = 64,
    progress: bool = False,
    reward_config: RewardConfig | None = None,
    keep_records: bool = False,
    frames: FrameLoader | None = None,
    ablation: str | None = None,
) -> dict[str, Any]:
    """Answer every row with ``policy`` and score it (see the module docstring for the report).

    ``settings``: a ``GenerationSettings`` (None: greedy, 256 new tokens, seed 0).
    ``frames``: how to get a row's frames, ``(row, num_frames) -> uint8 [N, H, W, 3]``
    (default: decode the video file; pass a cached loader to decode each file once).
    ``ablation``: one of ABLATIONS applied to those frames (``ablate``), or None."""
    from tqdm.auto import tqdm

    from tinyr1.policy import GenerationSettings, PolicyError

    settings = settings or GenerationSettings(temperature=0.0)
    if batch_size < 1:
        raise PolicyError(f"batch_size must be >= 1, got {batch_size}")
    rows = list(rows)
    if not rows:
        raise PolicyError("no questions to evaluate")
    missing = [r.id or r.video for r in rows if r.answer is None]
    if missing:
        raise PolicyError(f"{len(missing)} questions have no answer to check (first: {missing[0]})")
    config = reward_config or RewardConfig()
    num_frames = int(settings.num_frames or policy.num_frames)
    loader = frames or functools.partial(load_video_frames, target_size=policy.image_size)
    if ablation is not None:
        loader = ablate(ablation, rows, loader)
    base_seed = settings.seed

    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(rows), desc=f"eval {policy.name}", unit="q", disable=not progress)
    try:
        for b, lo in enumerate(range(0, len(rows), batch_size)):
            chunk = rows[lo : lo + batch_size]
            items = [(loader(r, num_frames), r.question, r.options or None) for r in chunk]
            batch_settings = settings
            if not settings.greedy and base_seed is not None:
                batch_settings = dataclasses.replace(settings, seed=int(base_seed) + b)
            texts = policy.sample(items, G=1, settings=batch_settings).texts
            records.extend(_record(row, text, config) for row, text in zip(chunk, texts))
            bar.update(len(chunk))
    finally:
        bar.close()
    seconds = time.perf_counter() - start

    families: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        families.setdefault(r["family"], []).append(r)
    report: dict[str, Any] = summarize(records)
    report["per_family"] = {f: summarize(rs) for f, rs in sorted(families.items())}
    report["settings"] = {
        "temperature": float(settings.temperature),
        "top_p": float(settings.top_p),
        "max_new_tokens": int(settings.max_new_tokens),
        "seed": settings.seed,
        "num_frames": num_frames,
    }
    report["ablation"] = ablation
    report["policy"] = policy.name
    report["quantization"] = getattr(policy, "quantization", None)
    report["seconds"] = round(seconds, 3)
    report["questions_per_second"] = round(len(records) / seconds, 2) if seconds > 0 else None
    if keep_records:
        report["records"] = records
    return report


def _record(row: VideoQA, text: str, config: RewardConfig) -> dict[str, Any]:
    """One answered question as the report keeps it (the reward's breakdown, flattened)."""
    s = score(text, row.answer, row.options or None, config)
    c = conclusion(text, row.options or None)
    return {
        "id": row.id,
        "family": row.family or NO_FAMILY,
        "answer": row.answer,
        "completion": text,
        "correct": bool(s.correct),
        "format_ok": s.format_ok,
        "think_chars": s.think_chars,
        "reward": float(s.total),
        "predicted": s.answer_text,
        "concluded": c.letter is not None,
        "consistent": is_consistent(text, row.options or None),
    }


# ------------------------------------------------------------------------------ world splits


def default_cache_dir() -> Path:
    """Where world splits are written for evaluation: $TINYR1_CACHE, else ~/.cache/tinyr1."""
    env = os.environ.get("TINYR1_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tinyr1"


def world_rows(
    split: str = "test",
    n: int = 500,
    *,
    seed: int = 0,
    config=None,
    families: Iterable[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> list[VideoQA]:
    """The first ``n`` questions of a world split, as mp4 clips + JSONL in a cache folder
    (written once: a folder named by the split, n, seed and config is reused when complete)."""
    import hashlib
    import json

    from tinyr1.data import load_dataset
    from tinyr1.world import DEFAULT_FAMILIES, WORLD_VERSION, WorldConfig, write_split

    config = config or WorldConfig()
    fams = tuple(families) if families else DEFAULT_FAMILIES
    key = json.dumps({"config": config.to_dict(), "families": list(fams), "world_version": WORLD_VERSION},
                     sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    folder = Path(cache_dir or default_cache_dir()) / "world" / f"{split}-n{n}-seed{seed}-{digest}"
    jsonl = folder / "data.jsonl"
    if jsonl.exists():
        try:
            rows = load_dataset(jsonl)
            if len(rows) == n:
                return rows
        except ValueError:
            pass  # a damaged cache: write it again
    write_split(split, n, folder, config, seed=seed, families=fams, progress=progress)
    return load_dataset(jsonl)


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width text table: one line per family, then all."""
    head = f"{'family':<14}{'n':>6}{'accuracy':>10}{'format':>9}{'think':>8}{'reward':>9}{'consistent':>12}"
    lines = [head, "-" * len(head)]

    def line(name: str, m: dict[str, Any]) -> str:
        return (f"{name:<14}{m['n']:>6}{100 * m['accuracy']:>9.1f}%{100 * m['format_rate']:>8.1f}%"
                f"{m['mean_think_chars']:>8.0f}{m['mean_reward']:>9.3f}{100 * m['consistency']:>11.1f}%")

    for fam, m in report["per_family"].items():
        lines.append(line(fam, m))
    lines.append("-" * len(head))
    lines.append(line("all", report))
    return "\n".join(lines)
