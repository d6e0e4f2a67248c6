"""Qwen2.5-VL policies (Qwen2.5-VL-3B/7B-Instruct, Video-R1-7B) behind tinyr1's policy interface.

    from tinyr1.policy import load_policy                   # dispatches here for model_type "qwen2_5_vl"
    policy = load_policy("path/to/Qwen2.5-VL-3B-Instruct", quantization="nf4")
    for text in policy.stream(frames, "Which way does it move?", ["left", "right"]):
        print(text)
    batch = policy.sample(items, G=8)                       # one batched generate call
    lp = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)   # with gradients

``QwenVLPolicy`` is a ``tinyr1.policy.Policy``: stream / generate / sample / logprobs / save and
the SampleBatch / log-prob definitions are the same (see tinyr1/policy.py), so the GRPO loop and
the app drive it unchanged. What differs:

- Video input goes through tinyr1's torchvision-free patchifier (tinyr1/models/qwen_vl.py, checked
  against the official processor's output). A batch's videos share one size: the ``smart_resize``
  of the first video's frames (the official processor's exact input for a single video; GRPO
  batches of one dataset normally share a size anyway). ``PromptBatch.pixel_values`` holds the
  normalised frames [B, N, 3, h, w]; they are patchified when the model needs them, so a
  PromptBatch slices by prompt like the TinyLLaVA one.
- The prompt is Qwen2.5-VL's chat template with the video first, the question with its options
  and the R1 suffix (template "r1") or Video-R1's instruction ("video_r1"); see
  ``tinyr1.models.qwen_vl.build_chat_prompt``. ``<|video_pad|>`` is expanded to the video's token
  count in the ids, as the official processor does.
- Positions are Qwen2.5-VL's 3-D rotary positions (``get_rope_index``: time, height, width for the
  video tokens), with ``second_per_grid_ts = temporal_patch_size / sample_fps``; ``sample_fps``
  (default 2.0 frames/s, qwen-vl-utils' default) is the rate the frames were sampled at, which
  the runtime cannot know from the frames alone. They are computed once per prompt and handed to
  ``generate`` (4 rows: text positions, then time/height/width), and rebuilt the same way for
  ``logprobs``, so the sampler's and the recomputed log-probs agree.
- Each video is encoded once per prompt; its features are spliced into the prompt embeddings,
  which are repeated G times for ``sample``.
- A completion ends at ``<|im_end|>`` (the chat turn's end) or ``<|endoftext|>``.
- Quantization keeps the vision tower with its patch merger (``visual``) and the LM head in full
  precision (``QWEN_QUANT_SKIP_MODULES``). Parts for ``parameter_groups``: "vision_tower" (the
  ViT), "connector" (the patch merger: it maps vision features into the LM), "language_model".
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from tinyr1.models import left_pad
from tinyr1.models.qwen_vl import (
    DEFAULT_SYSTEM,
    IMAGE_PAD,
    IM_END,
    TEMPLATES,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    VideoProcessing,
    build_chat_prompt,
    patchify,
    target_size,
    video_tensor,
)
from tinyr1.policy import (
    POLICY_META,
    SINGLE_THREAD_BELOW,
    Policy,
    PolicyError,
    PromptBatch,
    _QuietInt8Cast,
    _quiet_loading,
    _resolve_device,
    _resolve_dtype,
    disable_cpu_weight_repacking,
)

QWEN_MODEL_TYPES = ("qwen2_5_vl",)
#: Kept in full precision under bitsandbytes quantization: the vision tower and its patch merger, the LM head.
QWEN_QUANT_SKIP_MODULES = ["model.visual", "lm_head"]  # matched from the start of a module name (transformers rule)
END_TOKENS = (IM_END, "<|endoftext|>")
#: Tokens sampling must never emit (vision markers and placeholders).
VISION_TOKENS = (VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD, "<|vision_pad|>")
DEFAULT_SAMPLE_FPS = 2.0
DEFAULT_NUM_FRAMES = 16
VIDEO_CONFIG_FILE = "video_preprocessor_config.json"


def _qwen_class():
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration


def unwrap_qwen(model: nn.Module) -> nn.Module:
    """The Qwen2_5_VLForConditionalGeneration inside a possible peft wrapper."""
    cls = _qwen_class()
    inner = model
    if not isinstance(inner, cls) and hasattr(inner, "get_base_model"):  # peft: PeftModel -> LoraModel -> model
        inner = inner.get_base_model()
    if isinstance(inner, cls):
        return inner
    raise PolicyError(f"not a Qwen2.5-VL model: {type(model).__name__}")


def part_of(param_name: str) -> str:
    """'vision_tower', 'connector' (the patch merger) or 'language_model' for a parameter name of
    Qwen2_5_VLForConditionalGeneration (peft's prefixes allowed)."""
    if ".visual.merger." in f".{param_name}" or param_name.startswith("visual.merger."):
        return "connector"
    if ".visual." in f".{param_name}":
        return "vision_tower"
    return "language_model"


class QwenVLPolicy(Policy):
    """A Qwen2.5-VL model and its tokenizer as a tinyr1 policy (see the module docstring)."""

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
        if template not in TEMPLATES:
            raise PolicyError(f"unknown Qwen2.5-VL template {template!r}; known: {', '.join(TEMPLATES)}")
        self.processing = processing or VideoProcessing()
        self.template = template
        self.system = system
        self._num_frames = int(num_frames)
        self.sample_fps = float(sample_fps)
        super().__init__(model, tokenizer, name=name, path=path, quantization=quantization, metadata=metadata)
        # Travels with the model (deepcopy included), so policy_from_model(copy_of_core) rebuilds
        # a policy that reads videos and prompts the same way (the GRPO reference).
        self.core._tinyr1_policy_settings = {"processing": self.processing, "template": template, "system": system,
                                             "num_frames": self._num_frames, "sample_fps": self.sample_fps}
        # The GRPO loop reads cpu_threads before touching the model's parts: decide it here.
        if self.device.type == "cpu":
            n = sum(p.numel() for p in self._language_model_parameters())
            self.cpu_threads = 1 if n < SINGLE_THREAD_BELOW else torch.get_num_threads()

    # -- properties ---------------------------------------------------------------------------
    @property
    def core(self) -> nn.Module:
        """The Qwen2_5_VLForConditionalGeneration itself (inside any peft wrapper)."""
        cached = self.__dict__.get("_core")
        if cached is not None and cached[0] is self.model:
            return cached[1]
        core = unwrap_qwen(self.model)
        self.__dict__["_core"] = (self.model, core)
        return core

    @property
    def config(self):
        return self.core.config

    @property
    def num_frames(self) -> int:
        return self._num_frames

    @property
    def image_size(self) -> int:
        """The longest side a frame may have after resizing (square frames at max_pixels)."""
        p = self.processing
        return int((p.max_pixels ** 0.5) // p.factor * p.factor)

    @property
    def device(self) -> torch.device:
        return next(self._language_model_parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.core.get_input_embeddings().weight.dtype

    def _token_id(self, token: str) -> int | None:
        tid = self.tokenizer.convert_tokens_to_ids(token)
        if not isinstance(tid, int) or tid < 0 or self.tokenizer.convert_ids_to_tokens(tid) != token:
            return None
        return tid

    @property
    def end_token_ids(self) -> list[int]:
        ids = [self._token_id(t) for t in END_TOKENS]
        return [i for i in ids if i is not None]

    @property
    def eos_token_id(self) -> int:
        return self.end_token_ids[0]

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.end_token_ids[-1]

    @property
    def video_token_id(self) -> int:
        return int(self.config.video_token_id)

    @property
    def suppressed_token_ids(self) -> list[int]:
        """Never sampled: the pad token unless it ends a completion, the vision markers and
        placeholders, and embedding rows beyond the tokenizer's vocabulary."""
        ids: set[int] = set()
        if self.pad_token_id not in self.end_token_ids:
            ids.add(self.pad_token_id)
        for token in VISION_TOKENS:
            tid = self._token_id(token)
            if tid is not None:
                ids.add(tid)
        rows = self.core.get_input_embeddings().weight.shape[0]
        ids.update(range(len(self.tokenizer), rows))
        return sorted(ids)

    def _check_tokenizer(self) -> None:
        rows = self.core.get_input_embeddings().weight.shape[0]
        if len(self.tokenizer) > rows:
            raise PolicyError(f"the tokenizer has {len(self.tokenizer)} tokens but the model only {rows} embeddings")
        if not self.end_token_ids:
            raise PolicyError(f"the tokenizer has none of the end tokens {', '.join(END_TOKENS)}")
        video = self._token_id(VIDEO_PAD)
        if video is None or video != int(self.config.video_token_id):
            raise PolicyError(
                f"the tokenizer's {VIDEO_PAD} is id {video}, but the model's config says video_token_id "
                f"{self.config.video_token_id}: tokenizer and weights do not belong together")

    def _language_model_parameters(self) -> Iterator[nn.Parameter]:
        return self.core.model.language_model.parameters()

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {"vision_tower": [], "connector": [], "language_model": []}
        for name, p in self.model.named_parameters():
            groups[part_of(name)].append((name, p))
        return groups

    def describe(self) -> dict[str, Any]:
        text, vision = self.config.text_config, self.config.vision_config
        counts = {part: sum(p.numel() for _, p in params) for part, params in self.parameter_groups().items()}
        return {
            "name": self.name,
            "kind": "qwen2_5_vl",
            "path": str(self.path) if self.path else None,
            "quantization": self.quantization,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "parameters": {**counts, "total": sum(counts.values())},
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            "template": self.template,
            "video_processing": self.processing.to_dict(),
            "sample_fps": self.sample_fps,
            "vocab_size": len(self.tokenizer),
            "text_hidden_size": text.hidden_size,
            "text_layers": text.num_hidden_layers,
            "vision_hidden_size": vision.hidden_size,
            "vision_layers": vision.depth,
            "metadata": self.metadata,
        }

    # -- inputs -------------------------------------------------------------------------------
    def pixel_values(self, frames: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        """uint8 frames [N, H, W, 3] -> normalised float32 [N, 3, h, w] at ``size`` (default: the
        frames' smart_resize)."""
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

    def prompt_ids(self, question: str, options: Sequence[str] | None = None, num_video_tokens: int = 1) -> list[int]:
        """The chat prompt's ids with ``num_video_tokens`` video placeholders."""
        text = self.prompt_text(question, options, num_video_tokens)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        found = sum(1 for i in ids if i == self.video_token_id)
        if found != num_video_tokens:  # e.g. a question that itself contains <|video_pad|>
            raise PolicyError(f"the prompt holds {found} video placeholders, expected {num_video_tokens} "
                              f"(is {VIDEO_PAD} written in the question?)")
        return ids

    def build_inputs(self, items: Sequence[tuple]) -> PromptBatch:
        """A left-padded PromptBatch; ``pixel_values`` [B, N, 3, h, w] at the first video's smart_resize."""
        if not items:
            raise PolicyError("no prompts given")
        size = None
        rows, pixels = [], []
        for item in items:
            frames, question, options = (tuple(item) + (None,))[:3]
            if size is None:
                try:
                    size = target_size(frames, self.processing)
                except ValueError as exc:
                    raise PolicyError(str(exc)) from None
            video = self.pixel_values(frames, size)
            pixels.append(video)
            rows.append(self.prompt_ids(question, options, self.video_tokens(video.shape[0], *size)))
        counts = {p.shape[0] for p in pixels}
        if len(counts) > 1:
            raise PolicyError(f"all videos of a batch need the same number of frames, got {sorted(counts)}")
        ids, mask = left_pad(rows, self.pad_token_id)
        return PromptBatch(ids, mask, torch.stack(pixels)).to(self.device)

    # -- the model's view of a prompt batch ---------------------------------------------------
    def _prompt_embeds(self, prompts: PromptBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs_embeds [B, L, D] with the video features spliced in, attention_mask [B, L],
        position_ids [4, B, L]: text positions, then Qwen2.5-VL's time/height/width positions)."""
        core, device = self.core, self.device
        ids = prompts.input_ids.to(device)
        mask = prompts.attention_mask.to(device)
        flat, grid = patchify(prompts.pixel_values, self.processing)
        grid = grid.to(device)
        visual_dtype = core.model.visual.dtype
        features = core.model.get_video_features(flat.to(device=device, dtype=visual_dtype), grid).pooler_output
        features = torch.cat(list(features), dim=0)
        embeds = core.get_input_embeddings()(ids)
        video_mask = (ids == self.video_token_id).unsqueeze(-1)
        if int(video_mask.sum()) != features.shape[0]:
            raise PolicyError(f"{int(video_mask.sum())} video placeholders for {features.shape[0]} video features")
        embeds = embeds.masked_scatter(video_mask.to(embeds.device), features.to(embeds.dtype))
        kinds = (ids == self.video_token_id).int() * 2  # 0 text, 2 video (transformers' mm_token_type_ids)
        seconds = torch.full((len(prompts),), self.processing.temporal_patch_size / self.sample_fps, device=device)
        rope, _ = core.model.get_rope_index(ids, kinds, video_grid_thw=grid, second_per_grid_ts=seconds,
                                            attention_mask=mask)
        text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        return embeds, mask, torch.cat([text[None], rope.to(text.dtype)], dim=0)

    def _generation_inputs(self, batch: PromptBatch, group_size: int) -> tuple[Any, dict[str, Any]]:
        embeds, mask, positions = self._prompt_embeds(batch)
        if group_size > 1:
            embeds = embeds.repeat_interleave(group_size, dim=0)
            mask = mask.repeat_interleave(group_size, dim=0)
            positions = positions.repeat_interleave(group_size, dim=1)
        return self.core, {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions}

    def _completion_logits(self, prompts: PromptBatch, group_size: int, completion_ids: torch.Tensor) -> torch.Tensor:
        """One forward with gradients over [prompt; completion]; completion positions continue
        from the prompt's last one by 1 per token on every row, as ``generate`` advances them."""
        core = self.core
        embeds, mask, positions = self._prompt_embeds(prompts)
        if group_size > 1:
            embeds = embeds.repeat_interleave(group_size, dim=0)
            mask = mask.repeat_interleave(group_size, dim=0)
            positions = positions.repeat_interleave(group_size, dim=1)
        t = completion_ids.shape[1]
        tokens = core.get_input_embeddings()(completion_ids).to(embeds.dtype)
        steps = torch.arange(1, t + 1, device=positions.device, dtype=positions.dtype)
        full_positions = torch.cat([positions, positions[..., -1:] + steps], dim=-1)
        full_mask = torch.cat([mask, torch.ones_like(completion_ids, dtype=mask.dtype)], dim=1)
        out = core(
            inputs_embeds=torch.cat([embeds, tokens], dim=1),
            attention_mask=full_mask,
            position_ids=full_positions,
            use_cache=False,
            logits_to_keep=t + 1,
        )
        return out.logits[:, :-1]

    # -- saving -------------------------------------------------------------------------------
    def policy_metadata(self) -> dict[str, Any]:
        """What ``policy.json`` records for this policy beyond the caller's metadata."""
        return {"kind": "qwen2_5_vl", "template": self.template, "num_frames": self.num_frames,
                "sample_fps": self.sample_fps, "system": self.system, "video_processing": self.processing.to_dict()}

    def save(self, path: str | Path, *, metadata: dict | None = None) -> Path:
        """Write a policy directory atomically (a peft wrapper merged into a copy; not when quantized):
        the Qwen2.5-VL weights and config, the tokenizer, the video settings and policy.json."""
        if self.quantization:
            raise PolicyError(f"cannot save a {self.quantization}-quantized policy: load it unquantized to save")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model = self.model
        if not isinstance(model, _qwen_class()):
            merge = getattr(model, "merge_and_unload", None)
            if merge is None:
                raise PolicyError(f"cannot save a {type(model).__name__}")
            model = copy.deepcopy(model).merge_and_unload()
        meta = {**self.metadata, **self.policy_metadata(), **(metadata or {})}
        meta.setdefault("name", path.name)
        p = self.processing
        video_cfg = {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": p.patch_size,
                     "temporal_patch_size": p.temporal_patch_size, "merge_size": p.merge_size,
                     "size": {"shortest_edge": p.min_pixels, "longest_edge": p.max_pixels},
                     "image_mean": list(p.image_mean), "image_std": list(p.image_std)}
        try:
            with _quiet_loading():
                model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / VIDEO_CONFIG_FILE).write_text(json.dumps(video_cfg, indent=2) + "\n")
            (tmp / POLICY_META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
            for f in tmp.iterdir():
                f.chmod(0o644)
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            if path.exists():
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def is_qwen_vl_checkpoint(path: str | Path) -> bool:
    """True when ``path/config.json`` is a Qwen2.5-VL one."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type") in QWEN_MODEL_TYPES
    except (OSError, ValueError, AttributeError):
        return False


def quantization_config(quantization: str | None, compute_dtype: torch.dtype):
    """BitsAndBytesConfig for a Qwen2.5-VL model (vision tower, merger and LM head kept in full precision)."""
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype,
                                  llm_int8_skip_modules=list(QWEN_QUANT_SKIP_MODULES))
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(QWEN_QUANT_SKIP_MODULES))
    raise PolicyError(f"unknown quantization {quantization!r}; use one of none, nf4, int8")


def load_qwen_vl_policy(
    path: str | Path,
    quantization: str | None = None,
    device: str | torch.device | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> QwenVLPolicy:
    """Load a Qwen2.5-VL checkpoint directory (the hub layout, or one ``QwenVLPolicy.save`` wrote).

    Settings come from ``policy.json`` when present, else from ``defaults`` (the registry's
    recommended ones: template, num_frames, sample_fps, min_pixels / max_pixels), else the module
    defaults; the video processor's from the directory's preprocessor configs."""
    path = Path(path)
    if not is_qwen_vl_checkpoint(path):
        raise PolicyError(f"{path} is not a Qwen2.5-VL checkpoint (config.json model_type must be one of {QWEN_MODEL_TYPES})")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise PolicyError(f"{path} has a config but no weights (*.safetensors)")
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype, dev)
    kwargs: dict[str, Any] = {"dtype": dt, "device_map": {"": str(dev)}}
    qconfig = quantization_config(quantization, dt)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        if quantization == "int8":
            logging.getLogger("bitsandbytes.autograd._functions").addFilter(_QuietInt8Cast())
    from transformers import AutoTokenizer

    try:
        with _quiet_loading():
            model = _qwen_class().from_pretrained(path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyError(f"could not load the Qwen2.5-VL checkpoint in {path}: {exc}") from exc
    if qconfig is not None:
        disable_cpu_weight_repacking(model)
    model.eval()
    meta_file = path / POLICY_META
    metadata = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    settings = {**(defaults or {}), **metadata}
    processing = VideoProcessing.from_dir(path)
    if settings.get("min_pixels") or settings.get("max_pixels"):
        processing = processing.with_pixels(settings.get("min_pixels"), settings.get("max_pixels"))
    return QwenVLPolicy(
        model, tokenizer, processing=processing,
        template=settings.get("template", "r1"),
        num_frames=int(settings.get("num_frames", DEFAULT_NUM_FRAMES)),
        sample_fps=float(settings.get("sample_fps", DEFAULT_SAMPLE_FPS)),
        system=settings.get("system", DEFAULT_SYSTEM),
        name=name or metadata.get("name") or path.name, path=path, quantization=quantization, metadata=metadata,
    )


def qwen_policy_from_model(model: nn.Module, tokenizer, *, name: str = "policy", metadata: dict | None = None,
                           **settings: Any) -> QwenVLPolicy:
    """Wrap an in-memory Qwen2.5-VL model (e.g. a GRPO reference copy) as a policy; settings not
    given come from the policy the model was last wrapped in, if any."""
    inherited = dict(getattr(unwrap_qwen(model), "_tinyr1_policy_settings", None) or {})
    return QwenVLPolicy(model, tokenizer, name=name, metadata=metadata, **{**inherited, **settings})


# --------------------------------------------------------------------------------------------
# A tiny random Qwen2.5-VL (tests, benchmarks): the real architecture at toy sizes
# --------------------------------------------------------------------------------------------
def tiny_qwen_vl_tokenizer(vocab_size: int = 400):
    """tinyr1's byte-level BPE (trained on the format lines) plus Qwen2.5-VL's chat and vision
    tokens as special tokens; pad "<|pad|>", ends "<|im_end|>" and "<|endoftext|>"."""
    from tinyr1.models.qwen_vl import IM_START
    from tinyr1.tokenizer import default_corpus, train_tokenizer

    tok = train_tokenizer(default_corpus(), vocab_size)
    tok.add_special_tokens({"additional_special_tokens": [IM_START, IM_END, *VISION_TOKENS[:4]]})
    return tok


def tiny_qwen_vl_model(tokenizer, *, seed: int = 0, init_std: float = 0.3, hidden: int = 32, layers: int = 2,
                       vision_depth: int = 1, extra_rows: int = 4) -> nn.Module:
    """A random Qwen2_5_VLForConditionalGeneration for ``tokenizer``: text ``hidden`` wide x ``layers``
    (2 heads / 1 KV head, M-RoPE sections scaled to the head size), vision ``vision_depth`` blocks of
    32 (patch 14, temporal patch 2, merge 2), tied embeddings with ``extra_rows`` rows beyond the
    tokenizer. ``init_std`` spreads the text weights so that outputs depend on the input."""
    from transformers import Qwen2_5_VLConfig

    half = hidden // 2 // 2  # rotary pairs per head (2 heads)
    side = (half - half // 4) // 2  # the real model's 16/24/24 split of 64 pairs, scaled
    sections = [half - 2 * side, side, side]
    ids = {key: tokenizer.convert_tokens_to_ids(tok) for key, tok in (
        ("video_token_id", VIDEO_PAD), ("image_token_id", IMAGE_PAD), ("vision_start_token_id", VISION_START),
        ("vision_end_token_id", VISION_END))}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer) + extra_rows, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096, rope_scaling={"type": "mrope", "mrope_section": sections},
                         initializer_range=init_std, bos_token_id=None,
                         eos_token_id=tokenizer.convert_tokens_to_ids(IM_END), pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(depth=vision_depth, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[0], tokens_per_second=2),
        tie_word_embeddings=True, **ids)
    torch.manual_seed(seed)
    return _qwen_class()(config).eval()


def tiny_qwen_vl_policy(seed: int = 0, *, processing: VideoProcessing | None = None, num_frames: int = 4,
                        **model_kwargs: Any) -> QwenVLPolicy:
    """A random tiny Qwen2.5-VL policy (frames resized within 28*28 .. 56*56 pixels by default, so
    a video costs a handful of tokens)."""
    tok = tiny_qwen_vl_tokenizer()
    model = tiny_qwen_vl_model(tok, seed=seed, **model_kwargs)
    processing = processing or VideoProcessing(min_pixels=28 * 28, max_pixels=56 * 56)
    return QwenVLPolicy(model, tok, processing=processing, num_frames=num_frames, name=f"tiny-qwen-vl-{seed}")


__all__ = [
    "QWEN_MODEL_TYPES",
    "QWEN_QUANT_SKIP_MODULES",
    "QwenVLPolicy",
    "is_qwen_vl_checkpoint",
    "load_qwen_vl_policy",
    "part_of",
    "qwen_policy_from_model",
    "quantization_config",
    "tiny_qwen_vl_model",
    "tiny_qwen_vl_policy",
    "tiny_qwen_vl_tokenizer",
    "unwrap_qwen",
]
