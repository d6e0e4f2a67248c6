"""Datasets uploaded to the GRPO tab: checked and copied into the run folder, and the held-out
slice that evaluates the run. Gradio-free.

    rows = prepare_upload("train.jsonl", ["clips/0001.mp4", ...], run_dir / "data" / "upload")
    train_rows, held_out = split_heldout(rows, 32)
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
#: Held-out share of an uploaded dataset (a seeded random pick, at most the eval size, never
#: trained on); fewer rows than this minimum train on everything and skip evaluation.
HELDOUT_SHARE, HELDOUT_MIN_ROWS = 0.2, 10


def prepare_upload(jsonl: str | Path | None, videos: Sequence[str | Path] | None, folder: Path) -> list[Any]:
    """The uploaded dataset, checked and copied into ``folder``: a JSONL (tinyr1.data format) and
    its video files, or one .zip holding both. A row's video is looked up among the uploaded files
    only, by file name (``clips/0001.mp4`` and ``/data/0001.mp4`` both find an upload named
    ``0001.mp4``): no path on the server beyond the uploads is ever read, which is why the rows
    are parsed with ``allow_outside=True`` (a row written with absolute paths is fine here).
    The zip's entry count and expanded size are tinyr1.limits' ZIP_ENTRIES and ZIP_BYTES.
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
        uploaded = _videos_of(videos, folder)
    by_name: dict[str, Path] = {}
    for video in uploaded:
        target = pool / video.name
        if video.name in by_name:
            raise DatasetError(f"two uploaded videos are named {video.name}: names must be unique (rows find videos by name)")
        shutil.copyfile(video, target)
        by_name[video.name] = target
    try:
        rows = load_dataset(table, check_files=False, allow_outside=True)
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


def _videos_of(videos: Sequence[str | Path] | None, folder: Path) -> list[Path]:
    """The uploaded video files, a .zip among them unpacked (its videos, at any depth, count as
    uploaded); a zip that holds no video is an error that says so, never silently nothing."""
    from tinyr1.data import DatasetError

    out: list[Path] = []
    for i, video in enumerate(Path(v) for v in (videos or [])):
        if video.suffix.lower() != ".zip":
            out.append(video)
            continue
        unpacked = folder / f"videos-zip-{i}"
        _unzip(video, unpacked)
        found = sorted(p for p in unpacked.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            raise DatasetError(f"{video.name}: this zip holds no video file ({', '.join(VIDEO_SUFFIXES)})")
        out.extend(found)
    return out


def _unzip(archive: Path, out: Path) -> None:
    """Every entry checked before one is written (tinyr1.archive): an unsafe name, a link, too
    many entries or too many bytes is a DatasetError naming the entry."""
    from tinyr1.archive import extract_zip

    extract_zip(archive, out)


def split_heldout(rows: Sequence[Any], n: int, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(training rows, held-out rows): a seeded random ``HELDOUT_SHARE`` of the rows, at most
    ``n``, is held out for evaluation and never trained on. Fewer than HELDOUT_MIN_ROWS rows: none."""
    rows = list(rows)
    if n < 1 or len(rows) < HELDOUT_MIN_ROWS:
        return rows, []
    k = max(1, min(int(n), int(len(rows) * HELDOUT_SHARE)))
    held = set(np.random.default_rng(seed).permutation(len(rows))[:k].tolist())
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]
