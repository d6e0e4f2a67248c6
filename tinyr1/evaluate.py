"""Evaluate a policy on video questions: accuracy, format, think length and the paper's reward.

    from tinyr1.evaluate import evaluate, world_rows
    from tinyr1.policy import load_policy, GenerationSettings
    policy = load_policy()                                          # the shipped tiny policy
    rows = world_rows("test", 500)                                  # mp4 clips in a cache folder
    report = evaluate(policy, rows, GenerationSettings(temperature=0), batch_size=64, progress=True)
    report["accuracy"], report["per_family"]["count"]["accuracy"]

    tinyr1 eval --split test --n 500 [--temperature 1.0] [--json]    # the same from the shell

Every question's frames are decoded from its video file with ``tinyr1.video.load_frames`` (the
policy's number of frames, at the file's own size: the policy resizes). Questions are answered in
batches through ``Policy.sample`` (G = 1): greedy when the temperature is 0, else sampled with the
seed ``settings.seed + batch index``, so a run is reproducible. Each completion is scored by
``tinyr1.rewards.score`` (the paper's reward with its default weights).

The report (a JSON-ready dict):
  accuracy, format_rate, mean_think_chars, mean_reward, n   over all questions
  per_family: {family: the same five}                       questions without a family: "-"
  settings, seconds, questions_per_second, policy
  records (only with ``keep_records=True``): one dict per question (id, family, answer,
    completion, correct, format_ok, think_chars, reward).
Accuracy is the reward's ``is_correct`` on the first ``<answer>`` block, whatever the format
(the format has its own rate).
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from tinyr1.data import VideoQA
from tinyr1.rewards import RewardConfig, score

METRICS = ("accuracy", "format_rate", "mean_think_chars", "mean_reward", "n")
NO_FAMILY = "-"

FrameLoader = Callable[[VideoQA, int], np.ndarray]


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, float | int]:
    """The five metrics of a list of records (each with correct, format_ok, think_chars, reward)."""
    n = len(records)
    if n == 0:
        return {"accuracy": 0.0, "format_rate": 0.0, "mean_think_chars": 0.0, "mean_reward": 0.0, "n": 0}
    return {
        "accuracy": sum(bool(r["correct"]) for r in records) / n,
        "format_rate": sum(bool(r["format_ok"]) for r in records) / n,
        "mean_think_chars": sum(r["think_chars"] for r in records) / n,
        "mean_reward": sum(r["reward"] for r in records) / n,
        "n": n,
    }


def load_video_frames(row: VideoQA, num_frames: int) -> np.ndarray:
    """The frames of a row's video file (uniform sampling, the file's own size)."""
    from tinyr1.video import load_frames

    return load_frames(row.video, num_frames).frames


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
) -> dict[str, Any]:
    """Answer every row with ``policy`` and score it (see the module docstring for the report).

    ``settings``: a ``GenerationSettings`` (None: greedy, 256 new tokens, seed 0).
    ``frames``: how to get a row's frames, ``(row, num_frames) -> uint8 [N, H, W, 3]``
    (default: decode the video file; pass a cached loader to decode each file once)."""
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
    loader = frames or load_video_frames
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
    head = f"{'family':<14}{'n':>6}{'accuracy':>10}{'format':>9}{'think':>8}{'reward':>9}"
    lines = [head, "-" * len(head)]

    def line(name: str, m: dict[str, Any]) -> str:
        return (f"{name:<14}{m['n']:>6}{100 * m['accuracy']:>9.1f}%{100 * m['format_rate']:>8.1f}%"
                f"{m['mean_think_chars']:>8.0f}{m['mean_reward']:>9.3f}")

    for fam, m in report["per_family"].items():
        lines.append(line(fam, m))
    lines.append("-" * len(head))
    lines.append(line("all", report))
    return "\n".join(lines)
