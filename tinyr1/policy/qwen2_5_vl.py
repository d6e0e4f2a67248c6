"""The Qwen2.5-VL backend (Qwen2.5-VL-3B/7B-Instruct, Video-R1-7B) behind tinyr1's policy interface.

    from tinyr1.policy import load_policy                   # dispatches here for model_type "qwen2_5_vl"
    policy = load_policy("path/to/Qwen2.5-VL-3B-Instruct", quantization="nf4")
    for text in policy.stream(frames, "Which way does it move?", ["left", "right"]):
        print(text)
    batch = policy.sample(items, G=8)                       # one batched generate call
    lp = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)   # with gradients
    tiny = tiny_qwen_vl_policy(seed=0)                      # a random toy-size one (tests, benchmarks)

``QwenVLPolicy`` is a ``tinyr1.policy.Policy`` with a ``QwenVLBackend``: stream / generate /
sample / logprobs / save and the SampleBatch / log-prob definitions are the runtime's (see
tinyr1/policy/runtime.py), so the GRPO loop and the app drive it unchanged. What the backend
does differently (docs/DESIGN.md, "The Qwen2.5-VL family"):

- Video input goes through tinyr1's torchvision-free patchifier (tinyr1/models/qwen2_5_vl.py,
  checked against the official processor's output). A batch's videos share one size: the
  ``smart_resize`` of the first video's frames (the official processor's exact input for a single
  video; GRPO batches of one dataset normally share a size anyway). ``PromptBatch.pixel_values``
  holds the normalised frames [B, N, 3, h, w]; they are patchified when the model needs them, so
  a PromptBatch slices by prompt like the TinyLLaVA one.
- The prompt is Qwen2.5-VL's chat template with the video first, the question with its options
  and the R1 suffix (template "r1") or Video-R1's instruction ("video_r1"); see
  ``tinyr1.models.qwen2_5_vl.build_chat_prompt``. ``<|video_pad|>`` is expanded to the video's
  token count in the ids, as the official processor does.
- Positions are Qwen2.5-VL's 3-D rotary positions (``get_rope_index``: time, height, width for the
  video tokens), with ``second_per_grid_ts = temporal_patch_size / sample_fps``; ``sample_fps``
  (default 2.0 frames/s, qwen-vl-utils' default) is the rate the frames were sampled at, which
  the runtime cannot know from the frames alone. They are computed once per prompt and handed to
  ``generate`` (4 rows: text positions, then time/height/width), and rebuilt the same way for
  ``logprobs``, so the sampler's and the recomputed log-probs agree.
- Each video is encoded once per prompt; its features are spliced into the prompt embeddings,
  which are repeated G times for ``sample``; the loss forward runs each prompt once with its G
  completions packed after it (tinyr1.policy.backend.packed_inputs).
- A completion ends at ``<|im_end|>`` (the chat turn's end) or ``<|endoftext|>``.
- Quantization keeps the vision tower with its patch merger (``visual``) and the LM head in full
  precision (``QWEN_QUANT_SKIP_MODULES``). Parts for ``parameter_groups``: "vision_tower" (the
  ViT), "connector" (the patch merger: it maps vision features into the LM), "language_model".
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from tinyr1.models.qwen2_5_vl import (
    DEFAULT_SYSTEM,
    END_TOKENS,
    TEMPLATES,
    VIDEO_PAD,
    VISION_TOKENS,
    VideoProcessing,
    build_chat_prompt,
    model_class,
    part_of,
    patchify,
    target_size,
    tiny_qwen_vl_model,
    tiny_qwen_vl_tokenizer,
    video_tensor,
)
from tinyr1.policy.backend import Backend, Item, PromptBatch
from tinyr1.policy.runtime import Policy
from tinyr1.policy.spec import QWEN2_5_VL, QWEN_QUANT_SKIP_MODULES, PolicyError, cpu_threads_for

QWEN_MODEL_TYPES = (QWEN2_5_VL,)
DEFAULT_SAMPLE_FPS = 2.0
DEFAULT_NUM_FRAMES = 16
VIDEO_CONFIG_FILE = "video_preprocessor_config.json"


def unwrap_qwen(model: nn.Module) -> nn.Module:
    """The Qwen2_5_VLForConditionalGeneration inside a possible peft wrapper."""
    cls = model_class()
    inner = model
    if not isinstance(inner, cls) and hasattr(inner, "get_base_model"):  # peft: PeftModel -> LoraModel -> model
        inner = inner.get_base_model()
    if isinstance(inner, cls):
        return inner
    raise PolicyError(f"not a Qwen2.5-VL model: {type(model).__name__}")


def _token_id(tokenizer, token: str) -> int | None:
    """The id of ``token`` if the tokenizer really has it (not unk, not a lookalike)."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or tid < 0 or tokenizer.convert_ids_to_tokens(tid) != token:
        return None
    return tid


class QwenVLBackend(Backend):
    """Qwen2.5-VL with its video settings: ``processing`` (the video processor's), the prompt
    ``template`` ("r1" / "video_r1"), the ``system`` turn, ``num_frames`` to sample and the
    ``sample_fps`` they were sampled at."""

    kind = QWEN2_5_VL
    skip_modules = tuple(QWEN_QUANT_SKIP_MODULES)

    def __init__(self, processing: VideoProcessing | None = None, *, template: str = "r1",
                 num_frames: int = DEFAULT_NUM_FRAMES, sample_fps: float = DEFAULT_SAMPLE_FPS,
                 system: str | None = DEFAULT_SYSTEM) -> None:
        if template not in TEMPLATES:
            raise PolicyError(f"unknown Qwen2.5-VL template {template!r}; known: {', '.join(TEMPLATES)}")
        self.processing = processing or VideoProcessing()
        self.template = template
        self.system = system
        self.num_frames_setting = int(num_frames)
        self.sample_fps = float(sample_fps)
        self._core: tuple[nn.Module, nn.Module] | None = None  # (model, its unwrapped core)

    def settings(self) -> dict[str, Any]:
        return {"processing": self.processing, "template": self.template, "system": self.system,
                "num_frames": self.num_frames_setting, "sample_fps": self.sample_fps}

    # -- the model ----------------------------------------------------------------------------
    def model_class(self) -> type:
        return model_class()

    def unwrap(self, model: nn.Module) -> nn.Module:
        # Cached: the isinstance checks run on every property access of a hot loop.
        if self._core is not None and self._core[0] is model:
            return self._core[1]
        core = unwrap_qwen(model)
        self._core = (model, core)
        return core

    def language_model(self, core: nn.Module) -> nn.Module:
        return core.model.language_model

    def num_frames(self, core: nn.Module) -> int:
        return self.num_frames_setting

    def image_size(self, core: nn.Module) -> int:
        """The longest side a frame may have after resizing (square frames at max_pixels)."""
        p = self.processing
        return int((p.max_pixels ** 0.5) // p.factor * p.factor)

    def part_of(self, core: nn.Module, param_name: str) -> str:
        return part_of(param_name)

    def describe(self, core: nn.Module) -> dict[str, Any]:
        return {"kind": QWEN2_5_VL, "template": self.template, "video_processing": self.processing.to_dict(),
                "sample_fps": self.sample_fps}

    def sizes(self, core: nn.Module) -> tuple[int, int, int, int]:
        text, vision = core.config.text_config, core.config.vision_config
        return text.hidden_size, text.num_hidden_layers, vision.hidden_size, vision.depth

    def attach(self, core: nn.Module) -> None:
        # Travels with the model (deepcopy included), so policy_from_model(copy_of_core) rebuilds
        # a policy that reads videos and prompts the same way (the GRPO reference).
        core._tinyr1_policy_settings = self.settings()

    # -- tokens -------------------------------------------------------------------------------
    def end_token_ids(self, tokenizer) -> list[int]:
        ids = [_token_id(tokenizer, t) for t in END_TOKENS]
        return [i for i in ids if i is not None]

    def never_emit(self, tokenizer) -> set[int]:
        ids = (_token_id(tokenizer, token) for token in VISION_TOKENS)
        return {i for i in ids if i is not None}

    def check_tokenizer(self, core: nn.Module, tokenizer) -> None:
        if not self.end_token_ids(tokenizer):
            raise PolicyError(f"the tokenizer has none of the end tokens {', '.join(END_TOKENS)}")
        video = _token_id(tokenizer, VIDEO_PAD)
        if video is None or video != int(core.config.video_token_id):
            raise PolicyError(
                f"the tokenizer's {VIDEO_PAD} is id {video}, but the model's config says video_token_id "
                f"{core.config.video_token_id}: tokenizer and weights do not belong together")

    # -- inputs -------------------------------------------------------------------------------
    def pixel_values(self, core: nn.Module, frames: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Normalised float32 [N, 3, h, w] at ``size`` (default: the frames' smart_resize)."""
        try:
            return video_tensor(frames, self.processing, size)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None

    def video_tokens(self, num_frames: int, height: int, width: int) -> int:
        """Video tokens for ``num_frames`` frames already resized to height x width."""
        p = self.processing
        t = -(-num_frames // p.temporal_patch_size)
        return t * (height // p.patch_size) * (width // p.patch_size) // p.merge_size**2

    def prompt_text(self, question: str, options: Sequence[str] | None = None, num_video_tokens: int = 1) -> str:
        try:
            return build_chat_prompt(question, options, num_video_tokens=num_video_tokens, template=self.template,
                                     system=self.system)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None

    def prompt_ids(self, core: nn.Module, tokenizer, question: str, options: Sequence[str] | None,
                   num_video_tokens: int = 1) -> list[int]:
        """The chat prompt's ids with ``num_video_tokens`` video placeholders."""
        text = self.prompt_text(question, options, num_video_tokens)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        found = sum(1 for i in ids if i == int(core.config.video_token_id))
        if found != num_video_tokens:  # e.g. a question that itself contains <|video_pad|>
            raise PolicyError(f"the prompt holds {found} video placeholders, expected {num_video_tokens} "
                              f"(is {VIDEO_PAD} written in the question?)")
        return ids

    def encode_items(self, core: nn.Module, tokenizer, items: Sequence[Item]) -> tuple[list[list[int]], list[torch.Tensor]]:
        """Every video at the first video's smart_resize."""
        size = None
        rows, pixels = [], []
        for item in items:
            frames, question, options = (tuple(item) + (None,))[:3]
            if size is None:
                try:
                    size = target_size(frames, self.processing)
                except ValueError as exc:
                    raise PolicyError(str(exc)) from None
            video = self.pixel_values(core, frames, size)
            pixels.append(video)
            rows.append(self.prompt_ids(core, tokenizer, question, options, self.video_tokens(video.shape[0], *size)))
        return rows, pixels

    # -- the model's view of a prompt batch ---------------------------------------------------
    def _prompt_embeds(self, core: nn.Module, prompts: PromptBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs_embeds [B, L, D] with the video features spliced in, attention_mask [B, L],
        position_ids [4, B, L]: text positions, then Qwen2.5-VL's time/height/width positions)."""
        device = next(self.language_model(core).parameters()).device
        video_token_id = int(core.config.video_token_id)
        ids = prompts.input_ids.to(device)
        mask = prompts.attention_mask.to(device)
        flat, grid = patchify(prompts.pixel_values, self.processing)
        grid = grid.to(device)
        visual_dtype = core.model.visual.dtype
        features = core.model.get_video_features(flat.to(device=device, dtype=visual_dtype), grid).pooler_output
        features = torch.cat(list(features), dim=0)
        embeds = core.get_input_embeddings()(ids)
        video_mask = (ids == video_token_id).unsqueeze(-1)
        if int(video_mask.sum()) != features.shape[0]:
            raise PolicyError(f"{int(video_mask.sum())} video placeholders for {features.shape[0]} video features")
        embeds = embeds.masked_scatter(video_mask.to(embeds.device), features.to(embeds.dtype))
        kinds = (ids == video_token_id).int() * 2  # 0 text, 2 video (transformers' mm_token_type_ids)
        seconds = torch.full((len(prompts),), self.processing.temporal_patch_size / self.sample_fps, device=device)
        rope, _ = core.model.get_rope_index(ids, kinds, video_grid_thw=grid, second_per_grid_ts=seconds,
                                            attention_mask=mask)
        text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        return embeds, mask, torch.cat([text[None], rope.to(text.dtype)], dim=0)

    def _repeated_prompt(self, core: nn.Module, prompts: PromptBatch, group_size: int):
        embeds, mask, positions = self._prompt_embeds(core, prompts)
        if group_size > 1:
            embeds = embeds.repeat_interleave(group_size, dim=0)
            mask = mask.repeat_interleave(group_size, dim=0)
            positions = positions.repeat_interleave(group_size, dim=1)
        return embeds, mask, positions

    def generation_inputs(self, core: nn.Module, batch: PromptBatch, group_size: int) -> tuple[Any, dict[str, Any]]:
        embeds, mask, positions = self._repeated_prompt(core, batch, group_size)
        return core, {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions}

    def prompt_inputs(self, core: nn.Module, prompts: PromptBatch,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._prompt_embeds(core, prompts)

    def decoder(self, core: nn.Module) -> nn.Module:
        return core.model.language_model

    def lm_head(self, core: nn.Module) -> nn.Module:
        return core.lm_head

    # -- saving -------------------------------------------------------------------------------
    def policy_metadata(self) -> dict[str, Any]:
        return {"kind": QWEN2_5_VL, "template": self.template, "num_frames": self.num_frames_setting,
                "sample_fps": self.sample_fps, "system": self.system, "video_processing": self.processing.to_dict()}

    def extra_files(self) -> dict[str, str]:
        """The video processor's settings, as transformers writes them."""
        import json

        p = self.processing
        video_cfg = {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": p.patch_size,
                     "temporal_patch_size": p.temporal_patch_size, "merge_size": p.merge_size,
                     "size": {"shortest_edge": p.min_pixels, "longest_edge": p.max_pixels},
                     "image_mean": list(p.image_mean), "image_std": list(p.image_std)}
        return {VIDEO_CONFIG_FILE: json.dumps(video_cfg, indent=2) + "\n"}


class QwenVLPolicy(Policy):
    """A Qwen2.5-VL model and its tokenizer as a tinyr1 policy (see the module docstring): a
    ``Policy`` with a ``QwenVLBackend`` built from the video settings given here."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        processing: VideoProcessing | None = None,
        template: str = "r1",
        num_frames: int = DEFAULT_NUM_FRAMES,
        sample_fps: float = DEFAULT_SAMPLE_FPS,
        system: str | None = DEFAULT_SYSTEM,
        name: str | None = None,
        path: str | Path | None = None,
        quantization: str | None = None,
        metadata: dict | None = None,
    ) -> None:
        backend = QwenVLBackend(processing, template=template, num_frames=num_frames, sample_fps=sample_fps,
                                system=system)
        super().__init__(model, tokenizer, backend=backend, name=name, path=path, quantization=quantization,
                         metadata=metadata)
        # The GRPO loop reads cpu_threads before touching the model's parts: decide it here.
        if self.device.type == "cpu":
            n = sum(p.numel() for p in self._language_model_parameters())
            self.cpu_threads = cpu_threads_for(n) or torch.get_num_threads()

    @property
    def processing(self) -> VideoProcessing:
        return self.backend.processing

    @property
    def template(self) -> str:
        return self.backend.template

    @property
    def system(self) -> str | None:
        return self.backend.system

    @property
    def sample_fps(self) -> float:
        return self.backend.sample_fps

    @property
    def video_token_id(self) -> int:
        return int(self.config.video_token_id)

    def video_tokens(self, num_frames: int, height: int, width: int) -> int:
        return self.backend.video_tokens(num_frames, height, width)

    def prompt_text(self, question: str, options: Sequence[str] | None = None, num_video_tokens: int = 1) -> str:
        return self.backend.prompt_text(question, options, num_video_tokens)

    def policy_metadata(self) -> dict[str, Any]:
        """What ``policy.json`` records for this policy beyond the caller's metadata."""
        return self.backend.policy_metadata()


def qwen_policy_from_model(model: nn.Module, tokenizer, *, name: str = "policy", metadata: dict | None = None,
                           **settings: Any) -> QwenVLPolicy:
    """Wrap an in-memory Qwen2.5-VL model (e.g. a GRPO reference copy) as a policy; settings not
    given come from the policy the model was last wrapped in, if any."""
    inherited = dict(getattr(unwrap_qwen(model), "_tinyr1_policy_settings", None) or {})
    return QwenVLPolicy(model, tokenizer, name=name, metadata=metadata, **{**inherited, **settings})


def tiny_qwen_vl_policy(seed: int = 0, *, processing: VideoProcessing | None = None, num_frames: int = 4,
                        **model_kwargs: Any) -> QwenVLPolicy:
    """A random tiny Qwen2.5-VL policy (frames resized within 28*28 .. 56*56 pixels by default, so
    a video costs a handful of tokens)."""
    tok = tiny_qwen_vl_tokenizer()
    model = tiny_qwen_vl_model(tok, seed=seed, **model_kwargs)
    processing = processing or VideoProcessing(min_pixels=28 * 28, max_pixels=56 * 56)
    return QwenVLPolicy(model, tok, processing=processing, num_frames=num_frames, name=f"tiny-qwen-vl-{seed}")


__all__ = [
    "DEFAULT_NUM_FRAMES",
    "DEFAULT_SAMPLE_FPS",
    "QWEN_MODEL_TYPES",
    "QWEN_QUANT_SKIP_MODULES",
    "QwenVLBackend",
    "QwenVLPolicy",
    "part_of",
    "qwen_policy_from_model",
    "tiny_qwen_vl_model",
    "tiny_qwen_vl_policy",
    "tiny_qwen_vl_tokenizer",
    "unwrap_qwen",
]
