"""The TinyLLaVA-Video model on plain transformers: SigLIP -> group resampler -> Qwen2.

    from tinyr1.models import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration
    model = TinyLlavaVideoForConditionalGeneration(TinyLlavaVideoConfig(...))   # random weights
    model.save_pretrained(d); TinyLlavaVideoForConditionalGeneration.from_pretrained(d)

Inputs: ``input_ids`` [B, L] in which each row holds exactly ``config.num_visual_tokens``
placeholders (``config.image_token_index`` = -200) where the video goes (see
``processing.prompt_ids``: the prompt is tokenized in chunks around "<image>" and the single
placeholder is expanded to one per visual token, so a batch can be left-padded before anything
runs), and ``pixel_values`` [B, N, 3, H, W] (N frames per video, normalised by ``processing``).
The placeholders' embeddings are replaced by the connector's output; everything else is Qwen2.

Submodules and weight names (the official checkpoint's keys map by prefix):

=====================================  ============================================================
ours                                   official ``model.safetensors``
=====================================  ============================================================
``language_model.model.*``             ``language_model.model.*`` (identical)
``language_model.lm_head.weight``      tied to ``language_model.model.embed_tokens.weight``
``vision_tower.{embeddings,encoder,    ``vision_tower._vision_tower.vision_model.*`` (transformers 5
post_layernorm,head}.*``               dropped the ``vision_model.`` level; head/post_layernorm unused)
``connector.*``                        ``connector._connector.*`` (see connector.py for the list)
=====================================  ============================================================

Vision features: the hidden state ``vision_feature_layer`` of the SigLIP encoder (-2: the output of
the second-to-last layer, before ``post_layernorm``); only the layers needed for it run. With
``drop_first_token`` token 0 of every frame is dropped (the official quirk). The frames of one
video are concatenated in time order before the connector.

``generate`` builds the prompt embeddings and delegates to the language model's ``generate`` with
``inputs_embeds`` (so the returned ids are the new tokens only). Nothing here assumes a device or
dtype: visual features are cast to the embeddings' dtype before the splice.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, Qwen2ForCausalLM, SiglipVisionModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast

from tinyr1.models.tinyllava.configuration import TinyLlavaVideoConfig
from tinyr1.models.tinyllava.connector import GroupResampler

IGNORE_INDEX = -100

# Parameter-name prefixes of the three parts (for optimiser groups, freezing, quantization skips).
PART_PREFIXES = {"vision_tower": "vision_tower.", "connector": "connector.", "language_model": "language_model."}


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids for a left-padded batch: 0, 1, ... from each row's first real token (padding 0),
    the formula transformers' ``generate`` uses, so recomputed log-probs see the same positions."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 0)


class TinyLlavaVideoPreTrainedModel(PreTrainedModel):
    config_class = TinyLlavaVideoConfig
    config: TinyLlavaVideoConfig
    base_model_prefix = "tinyllava_video"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["SiglipEncoderLayer", "Qwen2DecoderLayer", "PerceiverAttention"]
    _skip_keys_device_placement = "past_key_values"
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config.text_config, "initializer_range", 0.02)
        if isinstance(module, GroupResampler):
            # Unit-variance latents like the official init; they are LayerNormed before use anyway.
            init.normal_(module.latents, mean=0.0, std=1.0)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        else:
            super()._init_weights(module)


class TinyLlavaVideoForConditionalGeneration(TinyLlavaVideoPreTrainedModel):
    """SigLIP vision tower + group resampler + Qwen2 causal LM (see the module docstring)."""

    _tied_weights_keys: dict[str, str] = {}  # the LM registers its own (lm_head <- embed_tokens)

    def __init__(self, config: TinyLlavaVideoConfig) -> None:
        super().__init__(config)
        self.vision_tower = SiglipVisionModel(config.vision_config)
        self.connector = GroupResampler(
            config.vision_config.hidden_size,
            config.text_config.hidden_size,
            num_queries=config.num_queries,
            group=config.group,
            layers=config.resampler_layers,
            heads=config.resampler_heads,
            dim_head=config.resampler_dim_head,
            ff_mult=config.resampler_ff_mult,
            position_encoding_fp16=config.position_encoding_fp16,
        )
        self.language_model = Qwen2ForCausalLM(config.text_config)
        self.post_init()

    # transformers plumbing -------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    @property
    def num_visual_tokens(self) -> int:
        return self.config.num_visual_tokens

    # vision -----------------------------------------------------------------------------------
    def vision_features(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [F, 3, H, W] (normalised) -> [F, tokens_per_frame, vision_dim]: the hidden state
        ``vision_feature_layer`` of the encoder (no post-layernorm), first token dropped if set."""
        tower = self.vision_tower
        hidden = tower.embeddings(frames.to(dtype=tower.embeddings.patch_embedding.weight.dtype))
        for layer in tower.encoder.layers[: self.config.feature_layer_index]:
            hidden = layer(hidden, None)
            if isinstance(hidden, tuple):  # older layer signatures return (hidden, attn)
                hidden = hidden[0]
        if self.config.drop_first_token:
            hidden = hidden[:, 1:]
        return hidden

    def encode_video(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [B, N, 3, H, W] -> visual tokens [B, num_visual_tokens, text_dim]."""
        if pixel_values.dim() == 4:  # one video without the batch dimension
            pixel_values = pixel_values.unsqueeze(0)
        if pixel_values.dim() != 5:
            raise ValueError(f"pixel_values must be [batch, frames, 3, H, W], got shape {tuple(pixel_values.shape)}")
        b, n = pixel_values.shape[:2]
        feats = self.vision_features(pixel_values.flatten(0, 1))  # [B*N, T, Dv]
        feats = feats.reshape(b, n * feats.shape[1], feats.shape[2])  # frames concatenated in time order
        linear = self.connector.linear
        target = linear.weight.dtype if linear.weight.is_floating_point() else feats.dtype
        return self.connector(feats.to(target))

    def embed_prompt(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with the placeholders replaced by the video's visual tokens."""
        embed = self.get_input_embeddings()
        mask = input_ids == self.config.image_token_index
        if pixel_values is None:
            if mask.any():
                raise ValueError("input_ids hold image placeholders but no pixel_values were given")
            return embed(input_ids)
        counts = mask.sum(dim=1)
        v = self.config.num_visual_tokens
        if not bool((counts == v).all()):
            raise ValueError(
                f"each row of input_ids must hold exactly {v} image placeholders ({self.config.image_token_index}), "
                f"got {counts.tolist()}; build prompts with tinyr1.models.tinyllava.processing.prompt_ids"
            )
        embeds = embed(input_ids.masked_fill(mask, 0))
        visual = self.encode_video(pixel_values).to(embeds.dtype)
        if visual.shape[0] != input_ids.shape[0]:
            raise ValueError(f"{input_ids.shape[0]} prompts but {visual.shape[0]} videos")
        return embeds.masked_scatter(mask.unsqueeze(-1).expand_as(embeds), visual)

    # language model ---------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Like ``Qwen2ForCausalLM.forward``; ``labels`` at placeholder positions are ignored.
        Position ids default to the left-padding-aware ones when a mask is given."""
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("give input_ids (with pixel_values) or inputs_embeds")
            inputs_embeds = self.embed_prompt(input_ids, pixel_values)
            if labels is not None:
                labels = labels.masked_fill(input_ids == self.config.image_token_index, IGNORE_INDEX)
        if cache is None:  # the pre-5.2x name of the KV cache argument
            cache = kwargs.pop("past_key_values", None)
        if position_ids is None and attention_mask is not None and cache is None:
            position_ids = positions_from_mask(attention_mask)
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """Splice the video, then ``language_model.generate(inputs_embeds=...)``; returns new tokens only."""
        if inputs_embeds is None:
            inputs_embeds = self.embed_prompt(input_ids, pixel_values)
        if attention_mask is None:
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        return self.language_model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)

    # introspection ----------------------------------------------------------------------------
    def part_of(self, param_name: str) -> str:
        """'vision_tower', 'connector' or 'language_model' for a parameter name of this model
        (also accepts names with peft's ``base_model.model.`` prefix)."""
        name = param_name.split("base_model.model.", 1)[-1]
        for part, prefix in PART_PREFIXES.items():
            if name.startswith(prefix):
                return part
        raise KeyError(f"{param_name!r} belongs to no known part")

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Named parameters by part: {'vision_tower': [...], 'connector': [...], 'language_model': [...]}."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {part: [] for part in PART_PREFIXES}
        for name, p in self.named_parameters():
            groups[self.part_of(name)].append((name, p))
        return groups
