"""What ``tinyr1 train-tiny`` trains: model sizes, data sizes and the stages, as one dataclass.

    from tinyr1.tiny.config import TinyConfig, PRESETS
    cfg = PRESETS["coldstart"]                    # the shipped policy's recipe
    cfg = TinyConfig.from_dict(cfg.to_dict())     # round-trips through JSON (kept in checkpoints)

Stages run in order; each has its own AdamW and its own warm-up + cosine schedule:

- ``vision``: the vision tower and the resampler alone, trained to make each visual token say
  what is in its band of the frame (tinyr1.tiny.probe: the tiny stand-in for a pretrained SigLIP);
- ``drill``: the text-only option-lookup drill alone (no video), so the lookup's long plateau
  (docs/DESIGN.md, "The embedded tiny policy") is behind us before the video tasks start;
- ``align``: captioning (what is where in each frame) with drill rows mixed in: the vision tower,
  connector and language model learn to see, the paper's alignment stage in miniature;
- ``coldstart``: reasoning traces (SFT, loss on the completion) with captions and drill rows mixed
  in, stopped early on purpose so that GRPO has room to improve the policy.

A config with ``init`` starts from a trained tiny policy instead of from scratch and runs only its
own stages (the ``curriculum`` preset: the shipped world-2 cold start, then traces on world 3).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


#: How a moving-family trace is taught (tinyr1.tiny.texts.think_for): the world's ("stills": which
#: shapes stay, which moves) or each shape's place at the start and at the end ("places").
MOVING_TRACES = ("stills", "places")


@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    lr: float
    video_batch: int = 32  #: rows with a video per step
    drill_batch: int = 16  #: text-only drill rows per step
    caption_share: float = 0.0  #: share of the video rows that are captions (the rest: traces)
    lm: bool = True  #: train the language model on the video rows (False: the vision side alone)
    probe_weight: float = 0.0  #: weight of the visual tokens' read-out loss (tinyr1.tiny.probe)
    warmup: int = 50
    min_lr_ratio: float = 0.1  #: the cosine ends at lr * this

    def __post_init__(self) -> None:
        if self.steps < 0 or self.lr <= 0 or self.video_batch < 0 or self.drill_batch < 0:
            raise ValueError(f"stage {self.name!r}: steps, video_batch, drill_batch must be >= 0 and lr > 0")
        if self.video_batch == 0 and self.drill_batch == 0:
            raise ValueError(f"stage {self.name!r} has nothing to train on (video_batch = drill_batch = 0)")
        if self.video_batch and not self.lm and self.probe_weight <= 0:
            raise ValueError(f"stage {self.name!r}: video rows without the language model need probe_weight > 0")
        if not 0.0 <= self.caption_share <= 1.0:
            raise ValueError(f"stage {self.name!r}: caption_share must be in [0, 1], got {self.caption_share}")


@dataclass(frozen=True)
class TinyConfig:
    seed: int = 0
    # data
    train_clips: int = 4000  #: world train split samples (each gives a trace and a caption)
    val_questions: int = 200  #: world validation questions evaluated after the video stages
    world: dict[str, Any] = field(default_factory=dict)  #: WorldConfig overrides (default: easy end)
    #: start from this tiny policy (a folder or a registry id such as "tiny-coldstart"): its weights
    #: and its tokenizer, instead of fresh ones; the model sizes below must be the ones it was made
    #: with. None: from scratch. A curriculum: what one world taught, continued on another.
    init: str | None = None
    # model
    num_frames: int = 4  #: [0, 5, 10, 15] of a 16-frame clip: start, end and two between
    image_size: int = 48  #: the world's 64 px frames, resized: 3 x 3 patches of 16 px = the thirds
    patch_size: int = 16
    vision_width: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    #: the connector splits each frame's patch tokens into this many contiguous chunks (9 = one per
    #: patch at 48 px / patch 16), each resampled to ``latents_per_chunk`` tokens
    chunks_per_frame: int = 9
    latents_per_chunk: int = 1
    drop_first_token: bool = False  #: the official quirk; off so that every patch keeps its token
    resampler_layers: int = 2
    resampler_heads: int = 2
    resampler_dim_head: int = 32
    text_width: int = 128
    text_layers: int = 4
    text_heads: int = 8  #: 4 heads (of 32) sat on the option-lookup plateau for 600+ steps; 8 (of 16) broke it in 250-350
    text_kv_heads: int = 2
    text_ffn: int = 256
    vocab_size: int = 768  #: BPE size before the tags and the fused option tokens
    fused_init: bool = True  #: fused option tokens start as letter + word embeddings
    connector_init: bool = True  #: resampler weights drawn so the video gets through (train.init_connector)
    # training
    drill_weight: float = 1.0
    context_drill: bool = True  #: in video stages, drill after a real prompt and trace (texts.context_drill)
    #: first/last drill rows (texts.order_drill, order questions as text, loss on the conclusion)
    #: added to each video stage's drill batch; 0 = none (the shipped cold start)
    order_drill: int = 0
    order_drill_pool: int = 2000  #: distinct order questions the first/last drill draws from
    moving_trace: str = "stills"  #: how moving-family traces are taught: one of MOVING_TRACES
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    threads: int = 2  #: torch threads: results are reproducible for a fixed count
    checkpoint_every: int = 100
    eval_every: int = 250  #: also evaluate every N steps of trace stages (0: only at their ends)
    stages: tuple[Stage, ...] = (
        Stage("vision", 300, 2e-3, video_batch=32, drill_batch=0, lm=False, probe_weight=1.0, warmup=20),
        Stage("drill", 1000, 2e-3, video_batch=0, drill_batch=32, warmup=30, min_lr_ratio=0.5),
        Stage("align", 800, 2e-3, video_batch=32, drill_batch=16, caption_share=1.0, probe_weight=0.5, warmup=30),
        # Stopped at 800 steps on purpose, so that GRPO has room (docs/RESULTS.md): 70% greedy,
        # 59% sampled, every family grounded but loosely sampled; GRPO then gives +10 to +14 points.
        # 1400 steps reach 83% greedy with the headroom nearly all in order's copy of the asked
        # end, which GRPO does not learn; 500 steps leave direction at chance (GRPO: at most +9.5).
        Stage("coldstart", 800, 1e-3, video_batch=32, drill_batch=16, caption_share=0.25, probe_weight=0.5, warmup=20),
    )

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        tokens = (self.image_size // self.patch_size) ** 2 - int(self.drop_first_token)
        if tokens % self.chunks_per_frame:
            raise ValueError(f"{tokens} patch tokens per frame do not split into {self.chunks_per_frame} chunks: "
                             "a chunk would straddle two frames")
        if self.drop_first_token and any(s.probe_weight > 0 for s in self.stages):
            raise ValueError("the probe's targets assume every patch keeps its token: drop_first_token must be False")
        if not self.stages:
            raise ValueError("no stages to train")
        if self.moving_trace not in MOVING_TRACES:
            raise ValueError(f"moving_trace must be one of {', '.join(MOVING_TRACES)}, got {self.moving_trace!r}")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be distinct, got {names}")

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TinyConfig":
        d = dict(d)
        d["stages"] = tuple(Stage(**s) for s in d.get("stages", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TinyConfig fields: {', '.join(unknown)}")
        return cls(**d)

    def with_steps(self, **steps: int) -> "TinyConfig":
        """A copy with some stages' step counts replaced (by stage name)."""
        unknown = set(steps) - {s.name for s in self.stages}
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; known: {[s.name for s in self.stages]}")
        stages = tuple(dataclasses.replace(s, steps=int(steps.get(s.name, s.steps))) for s in self.stages)
        return dataclasses.replace(self, stages=stages)


PRESETS: dict[str, TinyConfig] = {
    "coldstart": TinyConfig(),
    # World version 3 (no single-frame shortcuts) and the first/last drill: 16 order questions as
    # text, loss on the conclusion, in every video step (docs/RESULTS.md, "World version 3: the temporal
    # cold start and rewards for faithful traces").
    "temporal": TinyConfig(world={"version": 3}, order_drill=16),
    # The temporal recipe with moving-family traces that state every shape's start and end place
    # before naming the mover (texts.moving_places).
    "temporal-places": TinyConfig(world={"version": 3}, order_drill=16, moving_trace="places"),
    # The shipped world-2 cold start, continued on world 3 with the first/last drill: world 2 taught
    # which shape moves (its movers cross the frame), which the world-3 cold start from scratch did
    # not learn in its 800 steps (docs/RESULTS.md, "World version 3"); no probe head here, since a
    # policy folder does not keep one and a fresh head would pull on the trained visual tokens.
    "curriculum": TinyConfig(
        init="tiny-coldstart", world={"version": 3}, order_drill=16,
        stages=(Stage("temporal", 600, 1e-3, video_batch=32, drill_batch=16, caption_share=0.25, warmup=20),),
    ),
    # A few seconds on a CPU: for tests and for trying the command.
    "smoke": TinyConfig(
        train_clips=24, val_questions=8, num_frames=4, image_size=32, patch_size=8, vision_width=32,
        vision_layers=1, chunks_per_frame=2, latents_per_chunk=1, resampler_layers=1, resampler_dim_head=16, text_width=32,
        text_layers=1, text_heads=2, text_kv_heads=1, text_ffn=64, vocab_size=300, threads=1,
        checkpoint_every=2,
        stages=(
            Stage("vision", 2, 1e-3, video_batch=4, drill_batch=0, lm=False, probe_weight=1.0, warmup=1),
            Stage("drill", 2, 1e-3, video_batch=0, drill_batch=4, warmup=1),
            Stage("align", 2, 1e-3, video_batch=4, drill_batch=2, caption_share=1.0, probe_weight=0.5, warmup=1),
            Stage("coldstart", 2, 1e-3, video_batch=4, drill_batch=2, caption_share=0.5, probe_weight=0.5, warmup=1),
        ),
    ),
}
