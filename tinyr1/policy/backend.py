"""The backend interface: what differs between model families under one ``tinyr1.policy.Policy``.

    class MyBackend(Backend):                       # one per family: tinyllava.py, qwen2_5_vl.py
        kind = "my_family"
        def unwrap(self, model): ...                # and the other methods below
    policy = Policy(model, tokenizer, backend=MyBackend())

``tinyr1.policy.runtime.Policy`` owns everything generic (decoding, sampling, log-probs, thread
rule, timings, saving); a backend answers the family-specific questions: how to find the model
inside a peft wrapper, which tokens end or must never appear, how frames and a question become a
prompt (``encode_items``), what ``generate`` is called on (``generation_inputs``), and the pieces
the loss forward is built from (``prompt_inputs``, ``decoder``, ``lm_head``: ``completion_hidden``
is generic). Methods take the
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


def packed_inputs(embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, tokens: torch.Tensor,
                  group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One row per prompt holding the prompt once and its G completions after it:
    [prompt; completion 1; ...; completion G] (length L + G*T), with a 4-D additive attention mask
    in which completion g sees the prompt's real tokens and its own earlier tokens only, and
    positions that continue from the prompt's last one by 1 per token in every completion (as
    ``generate`` advances them). Attention inside each completion is therefore the one of
    [prompt; completion g], while the prompt's activations (and its share of the backward) exist
    once instead of G times; no key/value cache is involved, so gradient checkpointing of the
    decoder layers, which drops caches, applies unchanged.

    ``embeds`` [B, L, D], ``mask`` [B, L], ``positions`` [B, L] or [k, B, L], ``tokens``
    [B*G, T, D] (prompt-major) -> (inputs [B, S, D], mask [B, 1, S, S], positions [.., B, S])."""
    b, length = mask.shape
    t = tokens.shape[1]
    inputs = torch.cat([embeds, tokens.reshape(b, group_size * t, -1)], dim=1)
    steps = torch.arange(1, t + 1, device=positions.device, dtype=positions.dtype).repeat(group_size)
    packed_positions = torch.cat([positions, positions[..., -1:] + steps], dim=-1)
    s = length + group_size * t
    device = mask.device
    group = torch.cat([torch.full((length,), -1, device=device),
                       torch.arange(group_size, device=device).repeat_interleave(t)])
    index = torch.arange(s, device=device)
    causal = index[None, :] <= index[:, None]
    same_group = group[:, None] == group[None, :]
    to_prompt = (group[None, :] == -1).expand(s, s)
    allowed = causal & (same_group | to_prompt)  # [S, S]: query (row) may see key (column)
    real_key = torch.cat([mask.bool(), torch.ones(b, group_size * t, dtype=torch.bool, device=device)], dim=1)
    allowed = allowed[None] & real_key[:, None, :]
    additive = torch.zeros(allowed.shape, dtype=embeds.dtype, device=device)
    additive = additive.masked_fill(~allowed, torch.finfo(embeds.dtype).min)
    return inputs, additive[:, None], packed_positions


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

    def prompt_inputs(self, core: nn.Module, prompts: PromptBatch,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs_embeds [B, L, D] with the video spliced in, attention_mask [B, L], position_ids
        [B, L] or [k, B, L] for multi-axis rotary positions), each video encoded once."""
        raise NotImplementedError

    def decoder(self, core: nn.Module) -> nn.Module:
        """The language model's decoder stack: takes inputs_embeds, returns last_hidden_state
        after the final norm (the input of the LM head)."""
        raise NotImplementedError

    def lm_head(self, core: nn.Module) -> nn.Module:
        """The LM head (hidden states -> vocabulary logits)."""
        raise NotImplementedError

    def set_checkpointing(self, core: nn.Module, enabled: bool) -> None:
        """Activation (gradient) checkpointing of the decoder layers on or off: with it, a training
        forward keeps each layer's input only and the backward recomputes the layer, trading about
        one more forward for the activations of every layer but one. Non-reentrant, so it also
        works when no input of a layer requires a gradient (LoRA on frozen embeddings). The vision
        tower and the connector run once per prompt (not per completion), so they stay as they are."""
        decoder = self.decoder(core)
        if enabled:
            decoder.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif decoder.is_activation_checkpointing:
            decoder.activation_checkpointing_disable()

    def completion_hidden(self, core: nn.Module, prompts: PromptBatch, group_size: int,
                          completion_ids: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Final hidden states [B*G, T, D] predicting each completion token (row i*G+g answers
        prompt i), with gradients. Each prompt is run once, not G times: see ``packed_inputs``."""
        embeds, mask, positions = self.prompt_inputs(core, prompts, device)
        tokens = core.get_input_embeddings()(completion_ids.to(device)).to(embeds.dtype)
        b, length = mask.shape
        t = completion_ids.shape[1]
        if group_size == 1:  # [prompt; completion] with the library's own causal mask
            steps = torch.arange(1, t + 1, device=positions.device, dtype=positions.dtype)
            out = self.decoder(core)(
                inputs_embeds=torch.cat([embeds, tokens], dim=1),
                attention_mask=torch.cat([mask, torch.ones_like(completion_ids, dtype=mask.dtype)], dim=1),
                position_ids=torch.cat([positions, positions[..., -1:] + steps], dim=-1), use_cache=False,
            )
            return out.last_hidden_state[:, length - 1 : -1]
        inputs, mask4, packed_positions = packed_inputs(embeds, mask, positions, tokens, group_size)
        hidden = self.decoder(core)(inputs_embeds=inputs, attention_mask=mask4, position_ids=packed_positions,
                                    use_cache=False).last_hidden_state
        d = hidden.shape[-1]
        completions = hidden[:, length:].reshape(b, group_size, t, d)
        first = hidden[:, length - 1 : length, None].expand(b, group_size, 1, d)  # predicts token 0
        return torch.cat([first, completions[:, :, :-1]], dim=2).reshape(b * group_size, t, d)

    def completion_logits(self, core: nn.Module, prompts: PromptBatch, group_size: int,
                          completion_ids: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Raw logits [B*G, T, V] predicting each completion token, with gradients: the whole
        vocabulary wall at once, for tests and small models (``Policy.logprobs`` goes through
        the LM head in chunks instead)."""
        return self.lm_head(core)(self.completion_hidden(core, prompts, group_size, completion_ids, device))

    # -- saving -------------------------------------------------------------------------------
    def policy_metadata(self) -> dict[str, Any]:
        """What ``policy.json`` records for this family beyond the caller's metadata."""
        return {}

    def extra_files(self) -> dict[str, str]:
        """Files (name -> text) a saved policy directory needs beside weights and tokenizer."""
        return {}


__all__ = ["Backend", "Item", "PromptBatch", "packed_inputs"]
