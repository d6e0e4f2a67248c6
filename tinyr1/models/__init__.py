"""The TinyLLaVA-Video architecture (SigLIP -> group resampler -> Qwen2) on plain transformers.

    from tinyr1.models import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration

Modules: configuration (the config), connector (the group resampler), modeling (the model),
processing (frames and prompts to tensors), random (tiny random checkpoints:
``python -m tinyr1.models.random OUT_DIR``).
"""
from transformers import AutoConfig

from tinyr1.models.configuration import MODEL_TYPE, TinyLlavaVideoConfig
from tinyr1.models.connector import GroupResampler
from tinyr1.models.modeling import (
    PART_PREFIXES,
    TinyLlavaVideoForConditionalGeneration,
    TinyLlavaVideoPreTrainedModel,
    positions_from_mask,
)
from tinyr1.models.processing import left_pad, preprocess_frames, prompt_ids

# So that AutoConfig.from_pretrained(dir) understands our config.json too.
try:
    AutoConfig.register(MODEL_TYPE, TinyLlavaVideoConfig)
except ValueError:  # already registered (module reloaded)
    pass

__all__ = [
    "MODEL_TYPE",
    "PART_PREFIXES",
    "GroupResampler",
    "TinyLlavaVideoConfig",
    "TinyLlavaVideoForConditionalGeneration",
    "TinyLlavaVideoPreTrainedModel",
    "left_pad",
    "positions_from_mask",
    "preprocess_frames",
    "prompt_ids",
]
