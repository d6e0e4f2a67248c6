"""Model-side code of the two model families tinyr1 runs, with no policy logic.

    from tinyr1.models import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration

- ``tinyr1.models.tinyllava``: the TinyLLaVA-Video architecture (configuration, connector,
  modeling, processing, convert, random);
- ``tinyr1.models.qwen2_5_vl``: Qwen2.5-VL's video input and chat prompt without torchvision, and
  tiny random Qwen2.5-VL models.

The names below are re-exported from ``tinyr1.models.tinyllava`` lazily (PEP 562): importing
``tinyr1.models`` (e.g. for a submodule) does not load transformers until a name is used.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MODEL_TYPE": "tinyr1.models.tinyllava.configuration",
    "TinyLlavaVideoConfig": "tinyr1.models.tinyllava.configuration",
    "GroupResampler": "tinyr1.models.tinyllava.connector",
    "PART_PREFIXES": "tinyr1.models.tinyllava.modeling",
    "TinyLlavaVideoForConditionalGeneration": "tinyr1.models.tinyllava.modeling",
    "TinyLlavaVideoPreTrainedModel": "tinyr1.models.tinyllava.modeling",
    "positions_from_mask": "tinyr1.models.tinyllava.modeling",
    "left_pad": "tinyr1.models.tinyllava.processing",
    "preprocess_frames": "tinyr1.models.tinyllava.processing",
    "prompt_ids": "tinyr1.models.tinyllava.processing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tinyr1.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
