"""Train the embedded tiny policy from scratch on the synthetic world (CPU, minutes).

    from tinyr1.tiny import train, PRESETS
    policy_dir = train(PRESETS["coldstart"], "runs/tiny")          # -> runs/tiny/policy
    tinyr1 train-tiny --out runs/tiny [--seed 0] [--resume]          # the same from the shell

What happens, in order (everything under OUT):

1. ``data/train`` and ``data/validation``: world splits written as mp4 clips + JSONL, decoded back
   through ``tinyr1.video.load_frames`` (the policy's frame count) and cached (tinyr1.tiny.data);
2. ``tokenizer/``: a byte-level BPE trained on the prompts, traces, captions and drill rows, with
   the fused option tokens added (tinyr1.tiny.texts);
3. the stages of the config (tinyr1.tiny.config): vision (read-out of the visual tokens,
   tinyr1.tiny.probe), drill (option lookups), align (captions), coldstart (traces); each batch a
   pure function of (seed, stage, step), so the run is reproducible and a resumed run takes the
   very batches the interrupted one would have taken;
4. ``checkpoints/step-N/`` (N counts steps over all stages) every ``checkpoint_every`` steps and
   at each stage's end: model and probe weights, optimizer, position, in tinyr1's one checkpoint
   format (tinyr1.checkpoints: atomic, checksummed, plain data only; the newest two kept, and a
   resume falls back to the older when the newer is damaged); ``log.jsonl`` (losses, evaluations);
5. ``policy/``: the final policy directory (weights, tokenizer, ``policy.json`` with the recipe
   and the validation results), ready for ``tinyr1 eval --policy OUT/policy``.

A recipe with ``init`` (e.g. the ``curriculum`` preset) skips 2 and the fresh weights: it starts
from that tiny policy's tokenizer and weights and runs its own stages on its own world.

Reproducibility: ``torch.manual_seed(seed)`` before the weights are made, no dropout, a fixed
number of torch threads (``threads``; results differ between thread counts, not between runs).
The clips are the one outside source of variation: the H.264 encoder does not write every clip
bit-identically run to run, so two fresh runs can differ slightly; a resume reuses OUT/data.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from tinyr1 import checkpoints
from tinyr1.files import append_jsonl, atomic_dir, remove_stale_temporaries, repair_jsonl
from tinyr1.tiny import probe, texts
from tinyr1.tiny.config import Stage, TinyConfig
from tinyr1.tiny.data import (
    Clips,
    Example,
    build_clips,
    caption_example,
    collate,
    drill_example,
    order_drill_pool,
    trace_example,
)

CHECKPOINT = "checkpoints"
KEEP_CHECKPOINTS = 2
POLICY = "policy"
TOKENIZER = "tokenizer"
LOG = "log.jsonl"


class TrainError(RuntimeError):
    """The run cannot go on as asked (e.g. --resume with a different recipe)."""


# ------------------------------------------------------------------------------ building blocks


def world_config(cfg: TinyConfig):
    from tinyr1.world import WorldConfig

    return WorldConfig(**cfg.world)


def build_tokenizer(cfg: TinyConfig, clips: Clips):
    from tinyr1.tokenizer import train_tokenizer

    rng = np.random.default_rng([cfg.seed, 7])
    # The BPE of the shipped recipes was trained on the world's own traces; other moving traces
    # add sentences the world never writes, so their corpus holds the traces as taught.
    def think(r) -> str:
        if cfg.moving_trace == "stills":
            return r.think or ""
        return texts.think_for(r.think or "", r.extra.get("facts"), r.family, cfg.moving_trace)

    samples = [_Sample(r.question, r.options, think(r), r.answer or "", r.answer_text() or "", c)
               for r, c in zip(clips.rows, clips.captions)]
    corpus = texts.tokenizer_corpus(samples, rng)
    return train_tokenizer(corpus, cfg.vocab_size, added_tokens=texts.option_tokens())


@dataclasses.dataclass
class _Sample:
    question: str
    options: list[str]
    think: str
    answer: str
    answer_text: str
    caption: str


def build_model(cfg: TinyConfig, tokenizer):
    from tinyr1.models import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration

    mconf = TinyLlavaVideoConfig(
        vision_config=dict(
            hidden_size=cfg.vision_width, intermediate_size=4 * cfg.vision_width,
            num_hidden_layers=cfg.vision_layers, num_attention_heads=cfg.vision_heads,
            image_size=cfg.image_size, patch_size=cfg.patch_size, vision_use_head=False,
            attention_dropout=0.0,
        ),
        text_config=dict(
            hidden_size=cfg.text_width, intermediate_size=cfg.text_ffn, num_hidden_layers=cfg.text_layers,
            num_attention_heads=cfg.text_heads, num_key_value_heads=cfg.text_kv_heads,
            vocab_size=len(tokenizer), tie_word_embeddings=True, max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, attention_dropout=0.0,
        ),
        num_frames=cfg.num_frames,
        # chunks never straddle frames (checked by TinyConfig): with 9 chunks of a 3 x 3 patch grid,
        # each visual token summarises one cell of one frame, so where a shape is stays explicit
        group=cfg.num_frames * cfg.chunks_per_frame,
        num_queries=cfg.num_frames * cfg.chunks_per_frame * cfg.latents_per_chunk,
        drop_first_token=cfg.drop_first_token,
        resampler_layers=cfg.resampler_layers,
        resampler_heads=cfg.resampler_heads,
        resampler_dim_head=cfg.resampler_dim_head,
        vision_feature_layer=-1,  # every layer of the small tower feeds the connector
    )
    torch.manual_seed(cfg.seed)
    model = TinyLlavaVideoForConditionalGeneration(mconf)
    if cfg.connector_init:
        init_connector(model)
    if cfg.fused_init:
        init_fused_embeddings(model, tokenizer)
    return model


def init_policy_dir(name: str) -> Path:
    """The folder of ``TinyConfig.init``: a path, or a registry id of an embedded tiny policy."""
    from tinyr1.registry import PolicyError, resolve_policy

    try:
        return resolve_policy(name, download_missing=False).path
    except PolicyError as exc:
        raise TrainError(f"cannot start from {name!r}: {exc}") from None


@torch.no_grad()
def load_init_weights(model, folder: Path) -> None:
    """Copy a saved tiny policy's weights into ``model`` (built by ``build_model`` for the same
    sizes); TrainError names the first mismatch when the recipe's sizes are not the policy's."""
    from tinyr1.models import TinyLlavaVideoForConditionalGeneration

    try:
        saved = TinyLlavaVideoForConditionalGeneration.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - a missing or foreign folder fails in many ways; say which
        raise TrainError(f"cannot start from {folder}: it is not a tiny TinyLLaVA-Video policy ({exc})") from None
    mine, theirs = model.state_dict(), saved.state_dict()
    for key in sorted(set(mine) | set(theirs)):
        if key not in mine or key not in theirs or mine[key].shape != theirs[key].shape:
            raise TrainError(
                f"cannot start from {folder}: its weights do not fit this recipe's model ({key}: "
                f"{tuple(theirs[key].shape) if key in theirs else 'absent'} there, "
                f"{tuple(mine[key].shape) if key in mine else 'absent'} here); use the sizes it was trained with")
    model.load_state_dict(theirs)


@torch.no_grad()
def init_connector(model) -> None:
    """Re-draw the resampler's weights so the video reaches the language model from step one.

    With the shared 0.02-std init, each attention/feed-forward update is ~0.04 against unit-scale
    latents, and the final LayerNorm hands the language model the learned latents, nearly the same
    for every clip (measured: output std across clips 0.013 vs magnitude 1.0; the language model
    then learned to ignore the video). Here the linear maps get std 1/sqrt(fan_in) and the latents
    0.02, so the resampled tokens are mostly what the latents read from the frame."""
    conn = model.connector
    for module in conn.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=module.in_features ** -0.5)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    torch.nn.init.normal_(conn.latents, std=0.02)


@torch.no_grad()
def init_fused_embeddings(model, tokenizer) -> int:
    """Start each fused option token ("B. down") at the sum of the embeddings of the letter and
    the word as the traces write them (" B" + " down"): the lookup "which option holds the word
    just said, and what is its letter" then has a path from the first step. Returns how many."""
    emb = model.get_input_embeddings().weight
    n = 0
    for token in texts.option_tokens():
        letter, word = token.split(". ", 1)
        fused = tokenizer.convert_tokens_to_ids(token)
        parts = [tokenizer(f" {x}", add_special_tokens=False)["input_ids"] for x in (letter, word)]
        emb[fused] = sum(emb[p].mean(0) for p in parts)
        n += 1
    return n


def lr_at(stage: Stage, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine down to ``lr * min_lr_ratio`` at the stage's end.

    Not transformers' ``cosine_with_min_lr``: its warm-up gives step s the factor s / warmup
    (0 at the first step), this one (s + 1) / warmup, so the first update already moves and the
    warm-up ends one step earlier; the shipped tiny policies were trained (and are reproduced by
    bench/reproduce.py) with this schedule, and no shift of the step index makes the two agree
    on both the warm-up and the cosine."""
    if stage.warmup and step < stage.warmup:
        return stage.lr * (step + 1) / stage.warmup
    span = max(1, stage.steps - stage.warmup)
    t = min(1.0, (step - stage.warmup) / span)
    low = stage.lr * stage.min_lr_ratio
    return low + (stage.lr - low) * 0.5 * (1 + math.cos(math.pi * t))


class Batches:
    """The batches of a run: ``get(stage_index, step)`` is a pure function of the seed."""

    def __init__(self, cfg: TinyConfig, clips: Clips, tokenizer, num_visual: int) -> None:
        self.cfg, self.clips, self.tokenizer = cfg, clips, tokenizer
        self.traces = [trace_example(tokenizer, r, num_visual, i, cfg.moving_trace) for i, r in enumerate(clips.rows)]
        self.captions = [caption_example(tokenizer, c, num_visual, i) for i, c in enumerate(clips.captions)]
        self.targets: np.ndarray | None = None
        if any(s.probe_weight > 0 for s in cfg.stages):
            self.targets = np.stack([
                probe.token_targets(r.extra["facts"], idx, cfg.image_size // cfg.patch_size, cfg.chunks_per_frame)
                for r, idx in zip(clips.rows, clips.indices)
            ])
        self.order_drills = (order_drill_pool(tokenizer, cfg.order_drill_pool, world_config(cfg), cfg.seed)
                             if cfg.order_drill else [])

    def get(self, stage_index: int, step: int) -> dict[str, Any]:
        stage = self.cfg.stages[stage_index]
        rng = np.random.default_rng([self.cfg.seed, 1000 + stage_index, step])
        out: dict[str, Any] = {}
        if stage.video_batch:
            picks = rng.integers(len(self.clips), size=stage.video_batch)
            is_caption = rng.random(stage.video_batch) < stage.caption_share
            rows: list[Example] = [
                (self.captions if cap else self.traces)[int(i)] for i, cap in zip(picks, is_caption)
            ]
            out["video"] = collate(rows, self.tokenizer.pad_token_id)
            out["video"]["pixel_values"] = self.pixels(picks)
            if stage.probe_weight > 0:
                out["targets"] = torch.from_numpy(self.targets[picks])
        if stage.drill_batch:
            # Video stages drill in context (a real prompt and trace before the lookups); the
            # drill stage alone uses the bare, short rows that get past the plateau fastest.
            if stage.video_batch and self.cfg.context_drill:
                picks = rng.integers(len(self.clips), size=stage.drill_batch)
                rows = [drill_example(self.tokenizer, rng, self.clips.rows[int(i)], self.cfg.moving_trace) for i in picks]
            else:
                rows = [drill_example(self.tokenizer, rng) for _ in range(stage.drill_batch)]
            if stage.video_batch and self.order_drills:
                picks = rng.integers(len(self.order_drills), size=self.cfg.order_drill)
                rows += [self.order_drills[int(i)] for i in picks]
            out["drill"] = collate(rows, self.tokenizer.pad_token_id)
        return out

    def pixels(self, picks: np.ndarray) -> torch.Tensor:
        from tinyr1.models import preprocess_frames

        frames = self.clips.frames[picks]  # [B, F, H, W, 3]
        b, f = frames.shape[:2]
        pv = preprocess_frames(frames.reshape(b * f, *frames.shape[2:]), self.cfg.image_size)
        return pv.reshape(b, f, *pv.shape[1:])


def training_loss(model, head, stage: Stage, cfg: TinyConfig, batch: dict[str, Any],
                  record: dict[str, Any]) -> torch.Tensor:
    """The step's loss: language-model loss on the video rows (captions, traces), the probe's
    read-out loss on their visual tokens, and the drill's loss on its letters. ``record`` gets the
    parts, for the log."""
    loss = torch.zeros(())
    if "video" in batch:
        video = batch["video"]
        visual = model.encode_video(video["pixel_values"])  # once, for both losses
        if stage.lm:
            ids = video["input_ids"]
            slots = ids == model.config.image_token_index
            embeds = model.get_input_embeddings()(ids.masked_fill(slots, 0))
            embeds = embeds.masked_scatter(slots.unsqueeze(-1).expand_as(embeds), visual.to(embeds.dtype))
            out_v = model(inputs_embeds=embeds, attention_mask=video["attention_mask"], labels=video["labels"])
            loss = loss + out_v.loss
            record["video_loss"] = round(float(out_v.loss.detach()), 4)
        if stage.probe_weight > 0:
            probe_loss, probe_acc = head.loss(visual, batch["targets"])
            loss = loss + stage.probe_weight * probe_loss
            record["probe_loss"] = round(float(probe_loss.detach()), 4)
            record["probe_f1"] = round(probe_acc, 3)
    if "drill" in batch:
        out_d = model(**batch["drill"])
        loss = loss + cfg.drill_weight * out_d.loss
        record["drill_loss"] = round(float(out_d.loss.detach()), 4)
        record["drill_acc"] = round(letter_accuracy(out_d.logits.detach(), batch["drill"]["labels"]), 3)
    return loss


def letter_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of labelled next tokens predicted right (the drill's letters)."""
    pred = logits[:, :-1].argmax(-1)
    gold = labels[:, 1:]
    keep = gold != -100
    return float((pred[keep] == gold[keep]).float().mean()) if keep.any() else float("nan")


# ------------------------------------------------------------------------------ checkpoints


def save_checkpoint(out: Path, cfg: TinyConfig, model, head, optimizer, stage_index: int, step: int,
                    elapsed: float) -> Path:
    """Write OUT/checkpoints/step-N (N: steps done over all stages) atomically; keep the newest two."""
    done = sum(s.steps for s in cfg.stages[:stage_index]) + step
    tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()},
               **{f"probe.{k}": v for k, v in head.state_dict().items()}}
    state = {"stage": stage_index, "step": step, "elapsed": elapsed,
             "optimizer": optimizer.state_dict() if optimizer is not None else None}
    return checkpoints.save(out / CHECKPOINT, done, tensors=tensors, pickles={"state.pt": state},
                            jsons={"config.json": cfg.to_dict()}, keep=KEEP_CHECKPOINTS)


def load_checkpoint(out: Path, log: Callable[[str], None] = print) -> tuple[TinyConfig, dict[str, Any]] | None:
    """The recipe and state of the newest intact checkpoint (None when there is none); tensors
    come back as ``state["model"]`` and ``state["probe"]``."""
    try:
        found = checkpoints.newest_intact(out / CHECKPOINT, log)
    except checkpoints.CheckpointError as exc:
        raise TrainError(f"cannot resume from {out}: {exc}") from None
    if found is None:
        return None
    folder = found[1]
    try:
        cfg = TinyConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        state = checkpoints.load_plain(folder, "state.pt")
        tensors = checkpoints.load_tensors(folder)
    except checkpoints.CheckpointError as exc:
        raise TrainError(f"cannot resume: {exc}") from None
    for part in ("model", "probe"):
        state[part] = {k[len(part) + 1:]: v for k, v in tensors.items() if k.startswith(part + ".")}
    return cfg, state


def _make_optimizer(model, head, stage: Stage, cfg: TinyConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    named = [*model.named_parameters(), *(("probe." + n, p) for n, p in head.named_parameters())]
    for name, p in named:
        (no_decay if p.ndim < 2 or "norm" in name or "latents" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=stage.lr, betas=(0.9, 0.98), eps=1e-8)


# ------------------------------------------------------------------------------ the run


def train(
    cfg: TinyConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> Path | None:
    """Run every stage of ``cfg`` into ``out``; return the policy directory, or None when the run
    stopped early: after ``stop_after`` global steps WITHOUT a checkpoint (what a crash leaves:
    resume goes back to the last periodic checkpoint), or after ``max_seconds`` of training WITH
    one (a planned pause)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = _resume_state(cfg, out, resume, log)
    torch.set_num_threads(cfg.threads)
    run = _setup(cfg, out, state, progress, log)

    start_stage, start_step, elapsed = 0, 0, 0.0
    if state is not None:
        run.model.load_state_dict(state["model"])
        run.head.load_state_dict(state["probe"])
        start_stage, start_step, elapsed = state["stage"], state["step"], state["elapsed"]
        log(f"resuming at stage {cfg.stages[start_stage].name!r} step {start_step}")

    run.done_steps = sum(s.steps for s in cfg.stages[:start_stage]) + start_step
    evaluations: dict[str, Any] = {}
    for si in range(start_stage, len(cfg.stages)):
        stage = cfg.stages[si]
        optimizer = _make_optimizer(run.model, run.head, stage, cfg)
        first = start_step if si == start_stage else 0
        if state is not None and si == start_stage and state.get("optimizer") is not None and first > 0:
            optimizer.load_state_dict(state["optimizer"])
        stage_seconds = _run_stage(run, si, first, optimizer, elapsed, stop_after, max_seconds, progress, log)
        if stage_seconds is None:
            return None
        elapsed += stage_seconds
        log(f"stage {stage.name}: done ({elapsed / 60:.1f} min of training so far)")
        if _evaluates(stage) and run.val:
            evaluations[stage.name] = _evaluate(run.model, run.tokenizer, run.val, cfg, log, run.log_file, stage.name)
            run.model.train()
    return _write_policy(run, cfg, out, state is not None, elapsed, evaluations, command, log)


def _resume_state(cfg: TinyConfig, out: Path, resume: bool, log: Callable[[str], None]) -> dict[str, Any] | None:
    """The saved state to resume from (None: start fresh, after clearing an earlier run's checkpoints)."""
    if not resume:
        if (out / CHECKPOINT).exists():
            shutil.rmtree(out / CHECKPOINT)
        return None
    for p in [*remove_stale_temporaries(out), *remove_stale_temporaries(out / CHECKPOINT)]:
        log(f"removed {p.name}, a temporary left by an interrupted write")
    found = load_checkpoint(out, log)
    if found is None:
        log(f"no checkpoint in {out}: starting from scratch")
        return None
    saved_cfg, state = found
    if saved_cfg != cfg:
        raise TrainError(
            f"{out / CHECKPOINT} was made by a different recipe; resume with the same options "
            f"(seed {saved_cfg.seed}, stages {[(s.name, s.steps) for s in saved_cfg.stages]}) "
            "or use another --out"
        )
    return state


@dataclass
class _Run:
    """What every stage of one training run shares."""

    cfg: TinyConfig
    out: Path
    clips: Clips
    val: Clips | None
    tokenizer: Any
    model: Any
    head: Any
    params: list
    n_params: int
    batches: Any
    log_file: Path
    done_steps: int = 0


def _setup(cfg: TinyConfig, out: Path, state: dict[str, Any] | None, progress: bool,
           log: Callable[[str], None]) -> _Run:
    """Data, tokenizer, model and probe head, and the run log's first line. The order of these
    steps fixes the random stream, so a run is reproducible from its seed."""
    t0 = time.perf_counter()
    clips = build_clips("train", cfg.train_clips, out / "data" / "train", world_config(cfg), seed=cfg.seed,
                        num_frames=cfg.num_frames, progress=progress)
    val = build_clips("validation", cfg.val_questions, out / "data" / "validation", world_config(cfg),
                      seed=cfg.seed, num_frames=cfg.num_frames, progress=progress) if cfg.val_questions else None
    data_seconds = time.perf_counter() - t0

    from transformers import AutoTokenizer

    tok_dir = out / TOKENIZER
    init_dir = init_policy_dir(cfg.init) if cfg.init else None
    if state is not None and tok_dir.exists():
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tokenizer = AutoTokenizer.from_pretrained(init_dir) if init_dir else build_tokenizer(cfg, clips)
        with atomic_dir(tok_dir) as tmp:
            tokenizer.save_pretrained(tmp)
    model = build_model(cfg, tokenizer)
    if init_dir is not None and state is None:
        load_init_weights(model, init_dir)
        log(f"starting from the weights of {init_dir}")
    head = probe.ProbeHead(model.config.text_config.hidden_size)  # training only, never saved with the policy
    n_params = sum(p.numel() for p in model.parameters())
    batches = Batches(cfg, clips, tokenizer, model.config.num_visual_tokens)
    log_file = out / LOG
    if state is None:
        log_file.unlink(missing_ok=True)  # a fresh run never appends to an earlier run's log
    else:
        repair_jsonl(log_file, on_torn=log)
    _log_json(log_file, {"event": "start", "resume": state is not None, "parameters": n_params,
                         "vocab": len(tokenizer), "data_seconds": round(data_seconds, 1),
                         "threads": cfg.threads, "config": cfg.to_dict()})
    log(f"tiny policy: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, "
        f"{len(clips)} train clips, {cfg.total_steps} steps, {cfg.threads} threads")
    return _Run(cfg, out, clips, val, tokenizer, model, head, [*model.parameters(), *head.parameters()],
                n_params, batches, log_file)


def _evaluates(stage: Stage) -> bool:
    """Whether a stage writes answers worth evaluating (a language stage on video, not captions only)."""
    return bool(stage.lm and stage.video_batch and stage.caption_share < 1)


def _run_stage(run: _Run, si: int, first: int, optimizer, elapsed: float, stop_after: int | None,
               max_seconds: float | None, progress: bool, log: Callable[[str], None]) -> float | None:
    """Train stage ``si`` from step ``first``; return its seconds, or None when the run stopped early."""
    from tqdm.auto import tqdm

    cfg, stage, model = run.cfg, run.cfg.stages[si], run.model
    model.train()
    bar = tqdm(range(first, stage.steps), desc=f"{stage.name:>9}", unit="step", disable=not progress,
               initial=first, total=stage.steps)
    stage_t = time.perf_counter()
    for step in bar:
        if stop_after is not None and run.done_steps >= stop_after:
            bar.close()
            return None
        if max_seconds is not None and elapsed + time.perf_counter() - stage_t >= max_seconds:
            bar.close()
            save_checkpoint(run.out, cfg, model, run.head, optimizer, si, step, elapsed + time.perf_counter() - stage_t)
            log(f"paused at stage {stage.name!r} step {step} after {max_seconds / 60:.1f} min: resume with --resume")
            return None
        for group in optimizer.param_groups:
            group["lr"] = lr_at(stage, step)
        batch = run.batches.get(si, step)
        record: dict[str, Any] = {"stage": stage.name, "step": step + 1}
        loss = training_loss(model, run.head, stage, cfg, batch, record)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        optimizer.step()
        run.done_steps += 1
        bar.set_postfix({k: v for k, v in record.items() if k not in ("stage", "step")}, refresh=False)
        if (step + 1) % 10 == 0 or step + 1 == stage.steps:
            _log_json(run.log_file, {"event": "step", **record, "lr": lr_at(stage, step),
                                     "seconds": round(elapsed + time.perf_counter() - stage_t, 1)})
        if cfg.eval_every and _evaluates(stage) and (step + 1) % cfg.eval_every == 0 and step + 1 < stage.steps and run.val:
            _evaluate(model, run.tokenizer, run.val, cfg, log, run.log_file, f"{stage.name}@{step + 1}")
            model.train()
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == stage.steps:
            now = elapsed + time.perf_counter() - stage_t
            if step + 1 == stage.steps and si + 1 < len(cfg.stages):
                save_checkpoint(run.out, cfg, model, run.head, None, si + 1, 0, now)
            else:
                save_checkpoint(run.out, cfg, model, run.head, optimizer, si, step + 1, now)
    bar.close()
    return time.perf_counter() - stage_t


def _write_policy(run: _Run, cfg: TinyConfig, out: Path, resumed: bool, elapsed: float,
                  evaluations: dict[str, Any], command: str | None, log: Callable[[str], None]) -> Path:
    """Save the trained model as the cold-start policy with its metadata (recipe, machine, validation)."""
    from tinyr1.policy import policy_from_model
    from tinyr1.policy.spec import COLDSTART_POLICY

    meta = {
        "name": COLDSTART_POLICY,
        "kind": "trained",
        "recipe": cfg.to_dict(),
        "command": command,
        "resumed": resumed,
        "parameters": run.n_params,
        "train_clips": len(run.clips),
        "training_minutes": round(elapsed / 60, 2),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {cfg.threads} torch threads, "
                   f"python {sys.version.split()[0]}, torch {torch.__version__}",
        "validation": {k: _brief(v) for k, v in evaluations.items()},
    }
    run.model.eval()
    path = policy_from_model(run.model, run.tokenizer, name=COLDSTART_POLICY, metadata=meta).save(out / POLICY)
    _log_json(run.log_file, {"event": "done", "policy": str(path), "training_seconds": round(elapsed, 1)})
    log(f"policy written to {path} ({elapsed / 60:.1f} min of training)")
    return path


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("accuracy", "format_rate", "mean_think_chars", "mean_reward", "n")
    return {**{k: report[k] for k in keep},
            "per_family": {f: round(m["accuracy"], 3) for f, m in report["per_family"].items()}}


def _evaluate(model, tokenizer, val: Clips, cfg: TinyConfig, log, log_file: Path, tag: str) -> dict[str, Any]:
    from tinyr1.evaluate import evaluate
    from tinyr1.policy import GenerationSettings, policy_from_model

    index = {r.id: i for i, r in enumerate(val.rows)}
    policy = policy_from_model(model, tokenizer, name=f"tiny@{tag}")
    report = evaluate(policy, val.rows, GenerationSettings(temperature=0.0, max_new_tokens=160),
                      batch_size=100, frames=lambda row, n: val.frames[index[row.id]], keep_records=True)
    records = report.pop("records")
    content = content_accuracy(records, val.rows)
    fams = ", ".join(f"{f} {100 * m['accuracy']:.0f}" for f, m in report["per_family"].items())
    log(f"[{tag}] validation greedy: accuracy {100 * report['accuracy']:.1f}% ({fams}), "
        f"format {100 * report['format_rate']:.0f}%, think {report['mean_think_chars']:.0f} chars, "
        f"content right {100 * content['all']:.0f}%")
    _log_json(log_file, {"event": "eval", "tag": tag, **_brief(report), "content_accuracy": content})
    return report


def content_accuracy(records: list[dict[str, Any]], rows) -> dict[str, float]:
    """Share of completions whose closing "Answer: X" states the right option's text, whatever the
    letter: tells a wrong lookup (right content, wrong letter) from a wrong observation."""
    by_family: dict[str, list[bool]] = {}
    for rec, row in zip(records, rows):
        think = (rec["completion"].split("<think>", 1)[-1]).split("</think>", 1)[0]
        stated = think.rsplit("Answer:", 1)[1].strip().rsplit(" ", 1)[0] if "Answer:" in think else None
        by_family.setdefault(row.family or "-", []).append(stated == row.answer_text())
    out = {f: round(sum(v) / len(v), 3) for f, v in sorted(by_family.items())}
    out["all"] = round(sum(sum(v) for v in by_family.values()) / max(1, len(records)), 3)
    return out


def _log_json(path: Path, record: dict[str, Any]) -> None:
    append_jsonl(path, record)
