"""The TinyLLaVA-Video architecture (SigLIP -> group resampler -> Qwen2) on plain transformers.

    from tinyr1.models.tinyllava import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration

Modules: configuration (the config), connector (the group resampler), modeling (the model),
processing (frames and prompts to tensors), convert (official checkpoints to ours), random (tiny
random models for tests and benchmarks). See docs/DESIGN.md, "The TinyLLaVA-Video architecture".
"""
from tinyr1.models.tinyllava.configuration import MODEL_TYPE, TinyLlavaVideoConfig
from tinyr1.models.tinyllava.connector import GroupResampler
from tinyr1.models.tinyllava.modeling import (
    PART_PREFIXES,
    TinyLlavaVideoForConditionalGeneration,
    TinyLlavaVideoPreTrainedModel,
    positions_from_mask,
)
from tinyr1.models.tinyllava.processing import left_pad, preprocess_frames, prompt_ids

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
