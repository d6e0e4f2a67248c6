"""Random TinyLLaVA-Video policies built in memory, for the benchmarks that need a model of the
published size without its weights (no network here): ``bench/memory_figures.py --speed`` and
``bench/bench_grpo.py --size real`` and ``bench/bench_cpu_decode.py``.

    from random_real import random_weights, load_random_policy
    config, tokenizer, state = random_weights("real")            # the TinyLLaVA-Video-R1 architecture
    policy = load_random_policy(config, tokenizer, state, "cuda", "nf4", name="random-real")

``random_weights(size)``: ``"real"`` is the published TinyLLaVA-Video-R1 architecture
(``tinyr1.registry.ARCHITECTURES["tinyllava_video_r1"]`` through ``official_config``, 3.6B
parameters), ``"tiny"`` the embedded size (``tinyr1.models.tinyllava.random``); the tokenizer is a 400-token
one trained on ``tinyr1.tokenizer.default_corpus()`` (ids beyond it are never sampled, see
``Policy.suppressed_token_ids``); the weights are drawn with ``torch.manual_seed(seed)`` by the
model's own initialisation in bf16 (7.2 GB at the real size, never a float32 copy), and kept on the CPU without the tied LM head. Built
once per (size, seed, init_device) and process: a second call returns the same objects.
``init_device="cuda"`` draws them on the GPU (seconds instead of about a minute on the CPU for the
real size; other random numbers than a CPU draw) and still keeps them on the CPU.

``load_random_policy`` loads them with ``from_pretrained`` (bf16, or nf4 through bitsandbytes, as
``tinyr1.policy.load_policy`` would) onto ``device`` and wraps the model in a ``Policy``. Random
weights: the text is noise, only speed and memory mean something.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_BUILT: dict[tuple[str, int, str], tuple[Any, Any, dict]] = {}


def random_weights(size: str = "real", *, seed: int = 0, init_device: str = "cpu") -> tuple[Any, Any, dict]:
    """(config, tokenizer, bf16 state dict on the CPU) of a random TinyLLaVA-Video; ``size`` is
    "real" (TinyLLaVA-Video-R1) or "tiny" (the embedded size). Cached per process."""
    key = (size, seed, str(init_device))
    if key in _BUILT:
        return _BUILT[key]
    import torch

    from tinyr1 import registry
    from tinyr1.models import TinyLlavaVideoForConditionalGeneration
    from tinyr1.models.tinyllava.convert import official_config
    from tinyr1.models.tinyllava.random import tiny_config
    from tinyr1.tokenizer import default_corpus, train_tokenizer

    tokenizer = train_tokenizer(default_corpus(), 400)
    if size == "real":
        config = official_config(ROOT, registry.ARCHITECTURES["tinyllava_video_r1"])
    elif size == "tiny":
        config = tiny_config(len(tokenizer), "embedded", pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    else:
        raise ValueError(f"unknown size {size!r}; use real or tiny")
    torch.manual_seed(seed)
    # Built in bf16 from the start: a float32 build of the real size would hold 14 GB on the way.
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(init_device):
            base = TinyLlavaVideoForConditionalGeneration(config).to(torch.bfloat16)
    finally:
        torch.set_default_dtype(default)
    state = {k: v.to("cpu") for k, v in base.state_dict().items() if k != "language_model.lm_head.weight"}
    del base
    if str(init_device).startswith("cuda"):
        torch.cuda.empty_cache()
    _BUILT[key] = (config, tokenizer, state)
    return _BUILT[key]


def forget_weights() -> None:
    """Drop the cached state dicts (7.2 GB at the real size) once their policy is loaded."""
    _BUILT.clear()


def load_random_policy(config: Any, tokenizer: Any, state: dict, device: str, quantization: str | None = None,
                       *, name: str = "random", policy_cls: Any = None) -> Any:
    """``random_weights``' model on ``device`` in bf16 (``quantization`` None) or nf4 / int8
    (bf16 compute), in eval mode, as a ``policy_cls`` (default ``tinyr1.policy.Policy``)."""
    import torch

    from tinyr1.models import TinyLlavaVideoForConditionalGeneration
    from tinyr1.policy import Policy
    from tinyr1.policy.load import quantization_kwargs, quiet_loading

    kwargs = {"dtype": torch.bfloat16, "device_map": {"": device}, **quantization_kwargs(quantization, torch.bfloat16)}
    with quiet_loading():
        model = TinyLlavaVideoForConditionalGeneration.from_pretrained(None, config=config, state_dict=dict(state),
                                                                       **kwargs)
    return (policy_cls or Policy)(model.eval(), tokenizer, name=name, quantization=quantization)
