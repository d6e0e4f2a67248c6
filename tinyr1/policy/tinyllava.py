"""The TinyLLaVA-Video backend: tinyr1's own architecture (tinyr1.models.tinyllava) as a policy.

    from tinyr1.policy import Policy
    policy = Policy(model, tokenizer)          # TinyLlavaBackend is the default backend

The prompt is ``tinyr1.format.build_prompt`` (the qwen2_base template with the GRPO suffix) with
``num_visual_tokens`` placeholders (-200) where the video goes; frames are resized to the vision
tower's square input and normalised (SigLIP). The model splices the connector's output into the
prompt embeddings once per prompt; ``generate`` runs on the Qwen2 language model over those
embeddings. See docs/DESIGN.md, "The TinyLLaVA-Video architecture".
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from tinyr1.format import END_TOKEN, IMAGE_TOKEN, build_prompt
from tinyr1.models.tinyllava import (
    TinyLlavaVideoForConditionalGeneration,
    positions_from_mask,
    preprocess_frames,
    prompt_ids,
)
from tinyr1.policy.backend import Backend, Item, PromptBatch
from tinyr1.policy.spec import QUANT_SKIP_MODULES, TINYLLAVA_VIDEO, PolicyError


class TinyLlavaBackend(Backend):
    """TinyLLaVA-Video (SigLIP -> group resampler -> Qwen2); completions end at ``END_TOKEN``."""

    kind = TINYLLAVA_VIDEO
    skip_modules = tuple(QUANT_SKIP_MODULES)

    # -- the model ----------------------------------------------------------------------------
    def model_class(self) -> type:
        return TinyLlavaVideoForConditionalGeneration

    def unwrap(self, model: nn.Module) -> TinyLlavaVideoForConditionalGeneration:
        inner = model
        for _ in range(4):  # peft: PeftModel -> LoraModel -> model
            if isinstance(inner, TinyLlavaVideoForConditionalGeneration):
                return inner
            inner = getattr(inner, "base_model", None) or getattr(inner, "model", None)
            if inner is None:
                break
        raise PolicyError(f"not a TinyLLaVA-Video model: {type(model).__name__}")

    def language_model(self, core: nn.Module) -> nn.Module:
        return core.language_model

    def num_frames(self, core: nn.Module) -> int:
        return int(core.config.num_frames)

    def image_size(self, core: nn.Module) -> int:
        return core.config.image_size

    def part_of(self, core: nn.Module, param_name: str) -> str:
        return core.part_of(param_name)

    def describe(self, core: nn.Module) -> dict[str, Any]:
        return {"visual_tokens": core.config.num_visual_tokens, "group": core.config.group}

    def sizes(self, core: nn.Module) -> tuple[int, int, int, int]:
        cfg = core.config
        return (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers,
                cfg.vision_config.hidden_size, cfg.vision_config.num_hidden_layers)

    # -- tokens -------------------------------------------------------------------------------
    def end_token_ids(self, tokenizer) -> list[int]:
        return [int(tokenizer.convert_tokens_to_ids(END_TOKEN))]

    def never_emit(self, tokenizer) -> set[int]:
        """"<image>" if some tokenizer has it (the placeholder is an id, -200, not a token)."""
        image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        unk = tokenizer.unk_token_id
        return {image_id} if isinstance(image_id, int) and image_id >= 0 and image_id != unk else set()

    def check_tokenizer(self, core: nn.Module, tokenizer) -> None:
        eos = tokenizer.convert_tokens_to_ids(END_TOKEN)
        # Compare the token back, not with unk: transformers 5's Qwen2Tokenizer sets unk = eos = END_TOKEN.
        if not isinstance(eos, int) or eos < 0 or tokenizer.convert_ids_to_tokens(eos) != END_TOKEN:
            raise PolicyError(f"the tokenizer has no {END_TOKEN!r} token (the end of every completion)")

    # -- inputs -------------------------------------------------------------------------------
    def pixel_values(self, core: nn.Module, frames: np.ndarray, *args: Any) -> torch.Tensor:
        cfg = core.config
        try:
            return preprocess_frames(frames, cfg.image_size, cfg.image_mean, cfg.image_std)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None

    def prompt_ids(self, core: nn.Module, tokenizer, question: str, options: Sequence[str] | None,
                   *args: Any) -> list[int]:
        """The prompt's ids (format.build_prompt, with the GRPO suffix) with the placeholders."""
        try:
            prompt = build_prompt(question, options)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        cfg = core.config
        return prompt_ids(tokenizer, prompt, cfg.num_visual_tokens, image_token_index=cfg.image_token_index)

    def encode_items(self, core: nn.Module, tokenizer, items: Sequence[Item]) -> tuple[list[list[int]], list[torch.Tensor]]:
        rows, pixels = [], []
        for item in items:
            frames, question, options = (tuple(item) + (None,))[:3]
            rows.append(self.prompt_ids(core, tokenizer, question, options))
            pixels.append(self.pixel_values(core, frames))
        return rows, pixels

    # -- the model's view of a prompt batch ---------------------------------------------------
    def generation_inputs(self, core: nn.Module, batch: PromptBatch, group_size: int) -> tuple[Any, dict[str, Any]]:
        """The spliced prompt embeddings (each video encoded once) for the Qwen2 language model."""
        embeds = core.embed_prompt(batch.input_ids, batch.pixel_values)
        mask = batch.attention_mask
        if group_size > 1:
            embeds = embeds.repeat_interleave(group_size, dim=0)
            mask = mask.repeat_interleave(group_size, dim=0)
        return core.language_model, {"inputs_embeds": embeds, "attention_mask": mask}

    def prompt_inputs(self, core: nn.Module, prompts: PromptBatch,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embeds = core.embed_prompt(prompts.input_ids.to(device), prompts.pixel_values.to(device))
        mask = prompts.attention_mask.to(device)
        return embeds, mask, positions_from_mask(mask)

    def decoder(self, core: nn.Module) -> nn.Module:
        return core.language_model.model

    def lm_head(self, core: nn.Module) -> nn.Module:
        return core.language_model.lm_head


__all__ = ["TinyLlavaBackend"]
