"""The configuration of the TinyLLaVA-Video architecture (``model_type = "tinyllava_video"``).

One ``TinyLlavaVideoConfig`` holds a SigLIP vision sub-config, a Qwen2 text sub-config and the
group-resampler connector's fields (docs/DESIGN.md, "The TinyLLaVA-Video architecture"). It saves to / loads from ``config.json``
like any transformers config:

    >>> from tinyr1.models import TinyLlavaVideoConfig
    >>> cfg = TinyLlavaVideoConfig(
    ...     vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    ...                        intermediate_size=64, image_size=32, patch_size=8),
    ...     text_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
    ...                      num_key_value_heads=2, intermediate_size=128, vocab_size=300),
    ...     num_queries=8, group=4, num_frames=4)
    >>> cfg.num_visual_tokens, cfg.tokens_per_frame
    (8, 15)

Defaults of the connector fields are the official checkpoint's (16 groups, 512 queries, 3
resampler layers, dim_head 64 x 8 heads, feed-forward x4); the sub-configs default to tiny sizes,
since the real 3.6B policy always arrives with its own ``config.json``.
"""
from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig, Qwen2Config, SiglipVisionConfig

from tinyr1.format import IMAGE_TOKEN_INDEX

MODEL_TYPE = "tinyllava_video"

# Tiny defaults, used when a sub-config is not given (tests, examples); real checkpoints override.
_VISION_DEFAULTS: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
    image_size=32, patch_size=8, vision_use_head=False,
)
_TEXT_DEFAULTS: dict[str, Any] = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True, max_position_embeddings=4096,
)


class TinyLlavaVideoConfig(PretrainedConfig):
    """SigLIP + group resampler + Qwen2. Fields beyond the sub-configs:

    - ``num_queries``: visual tokens per video (all groups together); must be divisible by ``group``.
    - ``group``: number of contiguous chunks the frames' tokens are split into (one shared latent set
      of ``num_queries // group`` latents resamples each chunk).
    - ``resampler_layers``, ``resampler_heads``, ``resampler_dim_head``, ``resampler_ff_mult``.
    - ``vision_feature_layer``: which hidden state of the vision encoder feeds the connector, indexed
      like ``output_hidden_states`` (0 = patch embeddings, -1 = last layer; default -2).
    - ``drop_first_token``: drop token 0 of every frame (the official quirk: 729 -> 728 tokens).
    - ``num_frames``: frames sampled per video by default.
    - ``image_token_index``: the placeholder id in ``input_ids`` (-200, never a vocabulary id).
    - ``image_mean`` / ``image_std``: pixel normalisation (SigLIP: 0.5 / 0.5).
    - ``position_encoding_fp16``: compute the connector's sinusoidal encoding in float16, then cast
      to the features' dtype, as the official code does (True), or directly in the features' dtype.
    """

    model_type = MODEL_TYPE
    sub_configs_defaults = {"vision_config": SiglipVisionConfig, "text_config": Qwen2Config}

    def __init__(
        self,
        vision_config: dict | SiglipVisionConfig | None = None,
        text_config: dict | Qwen2Config | None = None,
        num_queries: int = 512,
        group: int = 16,
        resampler_layers: int = 3,
        resampler_heads: int = 8,
        resampler_dim_head: int = 64,
        resampler_ff_mult: int = 4,
        vision_feature_layer: int = -2,
        drop_first_token: bool = True,
        num_frames: int = 16,
        image_token_index: int = IMAGE_TOKEN_INDEX,
        image_mean: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        image_std: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        position_encoding_fp16: bool = True,
        **kwargs: Any,
    ) -> None:
        if vision_config is None or isinstance(vision_config, dict):
            vision_config = SiglipVisionConfig(**{**_VISION_DEFAULTS, **(vision_config or {})})
        if text_config is None or isinstance(text_config, dict):
            text_config = Qwen2Config(**{**_TEXT_DEFAULTS, **(text_config or {})})
        self.vision_config = vision_config
        self.text_config = text_config
        self.num_queries = int(num_queries)
        self.group = int(group)
        self.resampler_layers = int(resampler_layers)
        self.resampler_heads = int(resampler_heads)
        self.resampler_dim_head = int(resampler_dim_head)
        self.resampler_ff_mult = int(resampler_ff_mult)
        self.vision_feature_layer = int(vision_feature_layer)
        self.drop_first_token = bool(drop_first_token)
        self.num_frames = int(num_frames)
        self.image_token_index = int(image_token_index)
        self.image_mean = [float(x) for x in image_mean]
        self.image_std = [float(x) for x in image_std]
        self.position_encoding_fp16 = bool(position_encoding_fp16)
        # Tied embeddings live in the text config (Qwen2's lm_head = embed_tokens when tied).
        kwargs.setdefault("tie_word_embeddings", bool(getattr(text_config, "tie_word_embeddings", False)))
        super().__init__(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the connector fields cannot work together."""
        if self.group < 1:
            raise ValueError(f"group must be >= 1, got {self.group}")
        if self.num_queries < self.group or self.num_queries % self.group:
            raise ValueError(
                f"num_queries ({self.num_queries}) must be a positive multiple of group ({self.group}): "
                "each group is resampled to num_queries // group latents"
            )
        layers = self.vision_config.num_hidden_layers
        if not -(layers + 1) <= self.vision_feature_layer <= layers:
            raise ValueError(
                f"vision_feature_layer {self.vision_feature_layer} is outside the vision tower's "
                f"hidden states (0..{layers}, or -1..-{layers + 1})"
            )
        if self.image_token_index >= 0:
            raise ValueError(f"image_token_index must be negative (never a vocabulary id), got {self.image_token_index}")

    # Derived sizes -------------------------------------------------------------------------
    @property
    def latents_per_group(self) -> int:
        return self.num_queries // self.group

    @property
    def num_visual_tokens(self) -> int:
        """How many positions the video takes in the language model's sequence."""
        return self.num_queries

    @property
    def image_size(self) -> int:
        return int(self.vision_config.image_size)

    @property
    def tokens_per_frame(self) -> int:
        """Vision tokens per frame that reach the connector (patches, minus the dropped one)."""
        patches = (self.vision_config.image_size // self.vision_config.patch_size) ** 2
        return patches - int(self.drop_first_token)

    @property
    def feature_layer_index(self) -> int:
        """``vision_feature_layer`` as a non-negative index into the hidden states
        (= how many encoder layers actually run)."""
        layers = self.vision_config.num_hidden_layers
        idx = self.vision_feature_layer
        return idx if idx >= 0 else layers + 1 + idx

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["image_mean"] = list(self.image_mean)
        out["image_std"] = list(self.image_std)
        return out


# So that AutoConfig.from_pretrained(dir) (and AutoTokenizer, which peeks at config.json)
# understand our config.json as soon as the config class exists.
try:
    AutoConfig.register(MODEL_TYPE, TinyLlavaVideoConfig)
except ValueError:  # already registered (module reloaded)
    pass
