"""The backend interface: what differs between model families under one ``tinyr1.policy.Policy``.

    class MyBackend(Backend):                       # one per family: tinyllava.py, qwen2_5_vl.py
        kind = "my_family"
        def unwrap(self, model): ...                # and the other methods below
    policy = Policy(model, tokenizer, backend=MyBackend())

``tinyr1.policy.runtime.Policy`` owns everything generic (decoding, sampling, log-probs, thread
rule, timings, saving); a backend answers the family-specific questions: how to find the model
inside a peft wrapper, which tokens end or must never appear, how frames and a question become a
prompt (``encode_items``), what ``generate`` is called on (``generation_inputs``) and how the
completion logits are recomputed with gradients (``completion_logits``). Methods take the
unwrapped model (``core``) and the tokenizer explicitly, because a policy's model can be replaced
after loading (e.g. wrapped by peft for LoRA).

``PromptBatch`` lives here because a backend builds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

Item = tuple  # (frames [N, H, W, 3] uint8, question: str, options: list[str] | None)


@dataclass
class PromptBatch:
    """Model inputs for B prompts: ``input_ids`` [B, L] left-padded (pad id, mask 0) with the
    family's visual placeholders; ``pixel_values`` [B, N, 3, h, w] (normalised frames)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "PromptBatch":
        pv = self.pixel_values.to(device=device, dtype=dtype) if dtype is not None else self.pixel_values.to(device)
        return PromptBatch(self.input_ids.to(device), self.attention_mask.to(device), pv)


class Backend:
    """One model family's answers to the runtime's questions (see the module docstring).

    Every method raises NotImplementedError here: a backend must give them all."""

    #: A short name of the family ("tinyllava_video", "qwen2_5_vl").
    kind: str = ""
    #: Modules bitsandbytes quantization leaves in full precision.
    skip_modules: Sequence[str] = ()

    # -- the model ----------------------------------------------------------------------------
    def model_class(self) -> type:
        """The family's model class (a peft-wrapped model is not an instance of it)."""
        raise NotImplementedError

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The family's model inside a possible peft wrapper; PolicyError when it is not one."""
        raise NotImplementedError

    def language_model(self, core: nn.Module) -> nn.Module:
        """The language model (its parameters decide the device and the CPU thread rule)."""
        raise NotImplementedError

    def num_frames(self, core: nn.Module) -> int:
        raise NotImplementedError

    def image_size(self, core: nn.Module) -> int:
        raise NotImplementedError

    def part_of(self, core: nn.Module, param_name: str) -> str:
        """'vision_tower', 'connector' or 'language_model' for a name of ``model.named_parameters()``."""
        raise NotImplementedError

    def describe(self, core: nn.Module) -> dict[str, Any]:
        """Family-specific fields of ``Policy.describe`` (shown after ``image_size``)."""
        raise NotImplementedError

    def sizes(self, core: nn.Module) -> tuple[int, int, int, int]:
        """(text hidden size, text layers, vision hidden size, vision layers)."""
        raise NotImplementedError

    def attach(self, core: nn.Module) -> None:
        """Called when a policy wraps ``core``: a backend may leave settings on the model."""

    # -- tokens -------------------------------------------------------------------------------
    def end_token_ids(self, tokenizer) -> list[int]:
        """Every id that ends a completion (the first is the policy's ``eos_token_id``)."""
        raise NotImplementedError

    def never_emit(self, tokenizer) -> set[int]:
        """Family tokens sampling must never emit (visual markers and placeholders)."""
        raise NotImplementedError

    def check_tokenizer(self, core: nn.Module, tokenizer) -> None:
        """PolicyError when ``tokenizer`` cannot drive ``core`` (beyond the vocabulary size)."""
        raise NotImplementedError

    # -- inputs -------------------------------------------------------------------------------
    def pixel_values(self, core: nn.Module, frames: np.ndarray, *args: Any) -> torch.Tensor:
        """uint8 frames [N, H, W, 3] -> normalised float32 [N, 3, h, w] (CPU)."""
        raise NotImplementedError

    def prompt_ids(self, core: nn.Module, tokenizer, question: str, options: Sequence[str] | None,
                   *args: Any) -> list[int]:
        """One prompt's ids with the family's visual placeholders."""
        raise NotImplementedError

    def encode_items(self, core: nn.Module, tokenizer, items: Sequence[Item]) -> tuple[list[list[int]], list[torch.Tensor]]:
        """(prompt ids per item, pixel values [N, 3, h, w] per item) for (frames, question, options) items."""
        raise NotImplementedError

    # -- the model's view of a prompt batch ---------------------------------------------------
    def generation_inputs(self, core: nn.Module, batch: PromptBatch, group_size: int) -> tuple[Any, dict[str, Any]]:
        """(the module whose ``generate`` decodes, its keyword inputs) for ``batch`` with every
        prompt repeated ``group_size`` times (each video encoded once)."""
        raise NotImplementedError

    def completion_logits(self, core: nn.Module, prompts: PromptBatch, group_size: int,
                          completion_ids: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Raw logits [B*G, T, V] predicting each completion token, with gradients, positions as
        ``generate`` gives them."""
        raise NotImplementedError

    # -- saving -------------------------------------------------------------------------------
    def policy_metadata(self) -> dict[str, Any]:
        """What ``policy.json`` records for this family beyond the caller's metadata."""
        return {}

    def extra_files(self) -> dict[str, str]:
        """Files (name -> text) a saved policy directory needs beside weights and tokenizer."""
        return {}


__all__ = ["Backend", "Item", "PromptBatch"]
