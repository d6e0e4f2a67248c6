"""Training data of the tiny policy: world clips decoded from real mp4 files, tokenized examples.

    clips = build_clips("train", 4000, "runs/tiny/data", WorldConfig(), seed=0, num_frames=8)
    clips.frames            # uint8 [n, 8, 64, 64, 3], decoded by tinyr1.video.load_frames
    clips.rows[i]           # the VideoQA (question, options, answer, family, think, facts)
    clips.captions[i]       # what is where in each of the 8 frames (tinyr1.tiny.texts.caption)

A split is written once with ``tinyr1.world.write_split`` (mp4 + JSONL), then its frames are
decoded exactly as evaluation decodes them and cached in ``frames.npy`` with the decoded frame
indices in ``clips.json`` (both written atomically), so training sees the codec's artefacts that
evaluation sees.

``Example`` is one tokenized training row: ``ids`` and ``labels`` (-100 where no loss), and the
clip it shows (None for a text-only drill row). ``collate`` right-pads a list of them.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from tinyr1.data import VideoQA, load_dataset
from tinyr1.files import atomic_file
from tinyr1.models import prompt_ids
from tinyr1.tiny import texts

IGNORE = -100


@dataclass
class Clips:
    """Decoded clips of one world split with their questions and captions."""

    frames: np.ndarray  # uint8 [n, F, H, W, 3]
    rows: list[VideoQA]
    captions: list[str]
    indices: list[list[int]]  # the video frames decoded for each clip

    def __len__(self) -> int:
        return len(self.rows)


def build_clips(split: str, n: int, folder: str | os.PathLike, config, *, seed: int = 0,
                num_frames: int = 8, progress: bool = True) -> Clips:
    """Write (once) and decode (once) ``n`` samples of a world split into ``folder``."""
    from tqdm.auto import tqdm

    from tinyr1.video import load_frames
    from tinyr1.world import WORLD_VERSION, write_split

    folder = Path(folder)
    meta = {"split": split, "n": n, "seed": seed, "num_frames": num_frames, "config": config.to_dict(),
            "world_version": WORLD_VERSION}
    meta_file, frames_file, jsonl = folder / "clips.json", folder / "frames.npy", folder / "data.jsonl"
    if meta_file.exists() and frames_file.exists() and jsonl.exists():
        saved = json.loads(meta_file.read_text())
        if saved.get("meta") == meta:
            return _clips(np.load(frames_file), load_dataset(jsonl), saved["indices"])
    write_split(split, n, folder, config, seed=seed, progress=progress)
    rows = load_dataset(jsonl)
    frames, indices = [], []
    for row in tqdm(rows, desc=f"decode {split}", unit="clip", disable=not progress):
        clip = load_frames(row.video, num_frames)
        frames.append(clip.frames)
        indices.append([int(i) for i in clip.indices])
    array = np.stack(frames)
    with atomic_file(frames_file, "wb") as fh:
        np.save(fh, array)
    with atomic_file(meta_file, "w") as fh:
        fh.write(json.dumps({"meta": meta, "indices": indices}))
    return _clips(array, rows, indices)


def _clips(frames: np.ndarray, rows: list[VideoQA], indices: list[list[int]]) -> Clips:
    """Captions are made here (not cached) from the ground truth and the decoded frame indices."""
    return Clips(frames, rows, [texts.caption(r.extra["facts"], idx) for r, idx in zip(rows, indices)], indices)


@dataclass
class Example:
    ids: list[int]
    labels: list[int]
    clip: int | None = None


def video_example(tokenizer, prompt: str, target: str, num_visual: int, clip: int) -> Example:
    """Prompt (with the video placeholders) + target + end token; loss on target and end token."""
    head = prompt_ids(tokenizer, prompt, num_visual)
    tail = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return Example(head + tail, [IGNORE] * len(head) + tail, clip)


def trace_example(tokenizer, row: VideoQA, num_visual: int, clip: int, moving: str = "stills") -> Example:
    from tinyr1.format import build_prompt

    think = texts.think_for(row.think or "", row.extra.get("facts"), row.family, moving)
    target = texts.completion(think, row.answer_text() or "", row.answer or "")
    return video_example(tokenizer, build_prompt(row.question, row.options), target, num_visual, clip)


def caption_example(tokenizer, caption: str, num_visual: int, clip: int) -> Example:
    return video_example(tokenizer, texts.caption_prompt(), caption, num_visual, clip)


def drill_example(tokenizer, rng: np.random.Generator, row: VideoQA | None = None, moving: str = "stills") -> Example:
    """A text-only lookup drill row; loss on the letter tokens only. With ``row``: the lookups
    follow that question's prompt and trace (``texts.context_drill``)."""
    if row is None:
        text, spans = texts.drill(rng)
    else:
        think = texts.think_for(row.think or "", row.extra.get("facts"), row.family, moving)
        text, spans = texts.context_drill(row.question, row.options, think, rng)
    example = span_example(tokenizer, text, spans)
    if sum(l != IGNORE for l in example.labels) != len(spans):
        raise RuntimeError(f"the drill's letters are not single tokens in this tokenizer: {text!r}")
    return example


def order_drill_example(tokenizer, sample) -> Example:
    """A text-only first/last drill row made from a world order sample (``texts.order_drill``):
    loss on every token of the trace's conclusion."""
    text, spans = texts.order_drill(sample.question, sample.options, sample.think, sample.answer_text, sample.answer)
    return span_example(tokenizer, text, spans)


def order_drill_pool(tokenizer, n: int, config, seed: int) -> list[Example]:
    """``n`` first/last drill rows from order questions of the world's train split, drawn from
    seeds after any clip a run writes (indices from 10**6), so no drill text is a clip's question."""
    from tinyr1.world import make_sample, sample_seed

    return [order_drill_example(tokenizer, make_sample(sample_seed("train", 10**6 + i, seed), "order", config,
                                                        split="train"))
            for i in range(n)]


def span_example(tokenizer, text: str, spans: Sequence[tuple[int, int]]) -> Example:
    """``text`` tokenized, with the loss on the tokens that overlap any character span."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    labels = [ids[i] if any(a < e and s < b for s, e in spans) else IGNORE
              for i, (a, b) in enumerate(enc["offset_mapping"])]
    return Example(ids, labels, None)


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding)."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        labels[i, : len(e.labels)] = torch.tensor(e.labels)
        mask[i, : len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
