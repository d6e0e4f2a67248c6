"""The policy runtime: load a TinyLLaVA-Video checkpoint directory, stream answers, sample for GRPO.

    from tinyr1.policy import load_policy, GenerationSettings
    policy = load_policy("assets/policies/tiny-grpo")                   # or quantization="nf4"
    for text in policy.stream(frames, "How many squares?", ["1", "2", "3", "4"]):
        print(text)                                                     # the whole text so far
    batch = policy.sample([(frames, question, options), ...], G=8, settings=GenerationSettings(seed=1))
    new_lp = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)   # with gradients

A policy directory holds ``config.json`` + ``model.safetensors`` (tinyr1.models), the tokenizer
files, and optionally ``policy.json`` (free-form metadata: name, seed, data, accuracy...).
``load_policy`` also takes an official TinyLLaVA-Video checkpoint directory (converted in memory),
a Qwen2.5-VL checkpoint (``tinyr1.qwen_vl.QwenVLPolicy``, a subclass overriding the hooks
``_generation_inputs`` / ``_completion_logits``), or a registry / hub id (``tinyr1.registry``).

Log-probabilities (the sampler's and ``Policy.logprobs``'s, which agree within 1e-4 in fp32):
for completion token t, ``log_softmax(z / T)[token]`` where ``z`` are the language model's raw
logits with the never-emit tokens (``Policy.suppressed_token_ids``) set to -inf, and ``T`` the
sampling temperature (1 for greedy, temperature 0). Top-p truncation is NOT included (as in TRL):
it is the distribution a policy-gradient loss differentiates, not the truncated one sampled from.
Positions after the first end token get log-prob 0 and mask 0.

Quantization (``"nf4"`` / ``"int8"``) goes through transformers' ``BitsAndBytesConfig``; the
vision tower, the connector and the LM head stay in full precision (``QUANT_SKIP_MODULES``):
the connector is small and sensitive, and the vision tower is ~11% of the real model's weights
but feeds everything visual and is the costly part of the tiny one, so quantizing it buys little
memory for a quality and speed risk. On CPUs with AVX512-BF16 every ``Linear4bit`` gets
``support_avx512bf16_for_cpu = False`` (DESIGN section 7: the repacking done by the first no-grad
forward silently breaks later LoRA gradients); call ``disable_cpu_weight_repacking(model)`` again
after wrapping a model with peft if you build one yourself.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from tinyr1.format import END_TOKEN, IMAGE_TOKEN, build_prompt
from tinyr1.models import (
    MODEL_TYPE,
    TinyLlavaVideoConfig,
    TinyLlavaVideoForConditionalGeneration,
    left_pad,
    positions_from_mask,
    preprocess_frames,
    prompt_ids,
)

QUANTIZATIONS = (None, "nf4", "int8")
#: Modules kept in full precision under bitsandbytes quantization (matched by name).
QUANT_SKIP_MODULES = ["vision_tower", "connector", "lm_head"]
POLICY_META = "policy.json"
#: Where the embedded policies live (``assets/policies/<name>``), next to the package.
POLICIES_DIR = Path(__file__).resolve().parents[1] / "assets" / "policies"
DEFAULT_POLICIES = ("tiny-grpo", "tiny-coldstart")

Item = tuple  # (frames [N, H, W, 3] uint8, question: str, options: list[str] | None)


class PolicyError(ValueError):
    """A policy directory or a request the runtime cannot use (missing, incompatible, bad settings)."""


# --------------------------------------------------------------------------------------------
# Settings and batches
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationSettings:
    """How to decode. ``temperature=0`` is greedy (deterministic); ``seed=None`` leaves torch's
    random state alone. ``num_frames`` is how many frames to sample from a video (None: the
    policy's own ``num_frames``); the runtime itself uses whatever frames it is given."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = 0
    num_frames: int | None = None

    def __post_init__(self) -> None:
        if int(self.max_new_tokens) < 1:
            raise PolicyError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not float(self.temperature) >= 0:
            raise PolicyError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < float(self.top_p) <= 1:
            raise PolicyError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_frames is not None and int(self.num_frames) < 1:
            raise PolicyError(f"num_frames must be >= 1, got {self.num_frames}")

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0

    @property
    def logprob_temperature(self) -> float:
        """The T of the log-prob definition: the temperature, or 1 when greedy."""
        return 1.0 if self.greedy else float(self.temperature)


@dataclass
class PromptBatch:
    """Model inputs for B prompts: ``input_ids`` [B, L] left-padded (pad id, mask 0) with
    ``num_visual_tokens`` placeholders (-200) each; ``pixel_values`` [B, N, 3, S, S]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "PromptBatch":
        pv = self.pixel_values.to(device=device, dtype=dtype) if dtype is not None else self.pixel_values.to(device)
        return PromptBatch(self.input_ids.to(device), self.attention_mask.to(device), pv)


@dataclass
class SampleBatch:
    """G completions for each of B prompts, rows ordered prompt-major (rows i*G .. i*G+G-1 answer
    prompt i). ``completion_mask`` is 1.0 up to and including the first end token (float32);
    ``logprobs`` [B*G, T] follow the module docstring's definition (0 where the mask is 0);
    ``finished`` says which rows reached the end token (the others hit max_new_tokens)."""

    prompts: PromptBatch
    group_size: int
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor
    texts: list[str]
    finished: torch.Tensor
    settings: GenerationSettings = field(default_factory=GenerationSettings)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def prompt_index(self) -> torch.Tensor:
        """[B*G]: which prompt each row answers."""
        return torch.arange(len(self.prompts)).repeat_interleave(self.group_size)

    @property
    def lengths(self) -> torch.Tensor:
        """[B*G]: completion tokens per row, end token included."""
        return self.completion_mask.sum(dim=1).long()


# --------------------------------------------------------------------------------------------
# Generation helpers
# --------------------------------------------------------------------------------------------
class _Suppress:
    """Logits processor: never emit the given ids (set to -inf)."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = torch.tensor(sorted(set(ids)), dtype=torch.long)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if len(self.ids):
            scores = scores.index_fill(1, self.ids.to(scores.device), float("-inf"))
        return scores


class _LogprobRecorder:
    """Logits processor placed after _Suppress and before the temperature/top-p warpers: keeps
    log_softmax(scores / T) of the current step and, at the next step (when ``input_ids`` holds
    the token chosen), gathers the chosen token's log-prob. Only one step's distribution is kept."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.pending: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []
        self.first_logits_at: float | None = None  # perf_counter when the prefill's logits arrived

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.first_logits_at is None:
            self.first_logits_at = time.perf_counter()
        if self.pending is not None:
            self._collect(input_ids[:, -1])
        self.pending = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _collect(self, chosen: torch.Tensor) -> None:
        assert self.pending is not None
        self.steps.append(self.pending.gather(1, chosen.view(-1, 1).to(self.pending.device)).squeeze(1))
        self.pending = None

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """[rows, T] log-probs of ``sequences`` (the generated ids)."""
        if self.pending is not None:
            self._collect(sequences[:, len(self.steps)])
        if not self.steps:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self.steps, dim=1)


class _Stop:
    """Stopping criterion: stop every row when ``event`` is set (a consumer left the stream)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _token_streamer(tokenizer, timeout: float):
    """A TextIteratorStreamer that emits after every token (not at word boundaries), holding back
    only an incomplete UTF-8 character, so the UI grows token by token."""
    from transformers import TextIteratorStreamer

    class TokenStreamer(TextIteratorStreamer):
        def put(self, value: torch.Tensor) -> None:
            if value.dim() > 1:
                if value.shape[0] > 1:
                    raise ValueError("streaming handles one sequence at a time")
                value = value[0]
            if self.skip_prompt and self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            self.token_cache.extend(value.tolist())
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            if text.endswith("\ufffd"):
                return
            printable, self.print_len = text[self.print_len :], len(text)
            if printable:
                self.on_finalized_text(printable)

    return TokenStreamer(tokenizer, skip_prompt=True, timeout=timeout, skip_special_tokens=True)


class _QuietInt8Cast(logging.Filter):
    """bitsandbytes logs one warning per int8 matmul on CPU float32 inputs; keep the first only."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "inputs will be cast from" in record.getMessage():
            if _QuietInt8Cast.seen:
                return False
            _QuietInt8Cast.seen = True
        return True


def disable_cpu_weight_repacking(model: nn.Module) -> int:
    """Set ``support_avx512bf16_for_cpu = False`` on every bitsandbytes ``Linear4bit`` (DESIGN 7);
    returns how many modules were changed."""
    n = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


#: Below this many language-model parameters, CPU generation runs on one thread: per-step costs of a
#: tiny model are dominated by operator overhead, and intra-op threads only add synchronisation
#: (measured: 128 tokens of the embedded-size policy took 0.6 s on 1 thread, 6-9 s on 2 busy cores).
SINGLE_THREAD_BELOW = 50_000_000


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (process-wide), then restore; None: unchanged."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _unwrap(model: nn.Module) -> TinyLlavaVideoForConditionalGeneration:
    """The TinyLLaVA-Video model inside a possible peft wrapper."""
    inner = model
    for _ in range(4):
        if isinstance(inner, TinyLlavaVideoForConditionalGeneration):
            return inner
        inner = getattr(inner, "base_model", None) or getattr(inner, "model", None)
        if inner is None:
            break
    raise PolicyError(f"not a TinyLLaVA-Video model: {type(model).__name__}")


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PolicyError(f"device {device!r} was asked for but no CUDA GPU is available")
    return dev


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise PolicyError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        return resolved
    return dtype


# --------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------
class Policy:
    """A loaded policy: ``model`` (TinyLlavaVideoForConditionalGeneration, possibly quantized or
    wrapped by peft after loading), ``tokenizer``, and the decoding / scoring methods.

    Generation is serialised by a lock (one generate call at a time per policy)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        name: str | None = None,
        path: str | Path | None = None,
        quantization: str | None = None,
        metadata: dict | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.path = Path(path) if path is not None else None
        self.quantization = quantization
        self.metadata = dict(metadata or {})
        self.name = name or self.metadata.get("name") or (self.path.name if self.path else "policy")
        #: Timings of the last generate/stream/sample call (seconds): encode_s (vision tower,
        #: connector and embeddings), prefill_s (first LM forward), decode_s (the other tokens),
        #: new_tokens (longest row), tokens_per_s (decode speed), rows.
        self.last_stats: dict[str, float | int] = {}
        #: Threads for CPU generation: None = automatic (1 for tiny models, else torch's setting).
        self.cpu_threads: int | None = None
        self._lock = threading.RLock()
        self._check_tokenizer()

    # -- properties ---------------------------------------------------------------------------
    @property
    def core(self) -> TinyLlavaVideoForConditionalGeneration:
        """The TinyLLaVA-Video model itself (inside any peft wrapper)."""
        return _unwrap(self.model)

    @property
    def config(self) -> TinyLlavaVideoConfig:
        return self.core.config

    @property
    def num_frames(self) -> int:
        return int(self.config.num_frames)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return next(self.core.language_model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the full-precision weights (embeddings), i.e. of activations."""
        return self.core.get_input_embeddings().weight.dtype

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(END_TOKEN))

    @property
    def end_token_ids(self) -> list[int]:
        """Every id that ends a completion (the first is ``eos_token_id``)."""
        return [self.eos_token_id]

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.eos_token_id

    @property
    def suppressed_token_ids(self) -> list[int]:
        """Ids sampling must never emit: the pad token (unless it is the end token, as in Qwen2),
        "<image>" if some tokenizer has it, and embedding rows beyond the tokenizer's vocabulary."""
        ids: set[int] = set()
        if self.pad_token_id != self.eos_token_id:
            ids.add(self.pad_token_id)
        image_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        unk = self.tokenizer.unk_token_id
        if isinstance(image_id, int) and image_id >= 0 and image_id != unk:
            ids.add(image_id)
        rows = self.core.get_input_embeddings().weight.shape[0]
        ids.update(range(len(self.tokenizer), rows))
        return sorted(ids)

    def _check_tokenizer(self) -> None:
        rows = self.core.get_input_embeddings().weight.shape[0]
        if len(self.tokenizer) > rows:
            raise PolicyError(f"the tokenizer has {len(self.tokenizer)} tokens but the model only {rows} embeddings")
        eos = self.tokenizer.convert_tokens_to_ids(END_TOKEN)
        # Compare the token back, not with unk: transformers 5's Qwen2Tokenizer sets unk = eos = END_TOKEN.
        if not isinstance(eos, int) or eos < 0 or self.tokenizer.convert_ids_to_tokens(eos) != END_TOKEN:
            raise PolicyError(f"the tokenizer has no {END_TOKEN!r} token (the end of every completion)")

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Named parameters by part: 'vision_tower', 'connector', 'language_model' (names as in
        ``self.model.named_parameters()``, so peft adapters appear under their part)."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {"vision_tower": [], "connector": [], "language_model": []}
        core = self.core
        for name, p in self.model.named_parameters():
            groups[core.part_of(name)].append((name, p))
        return groups

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: name, path, sizes, parameters per part, device, dtype, quantization."""
        cfg = self.config
        counts = {part: sum(p.numel() for _, p in params) for part, params in self.parameter_groups().items()}
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "quantization": self.quantization,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "parameters": {**counts, "total": sum(counts.values())},
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            "visual_tokens": cfg.num_visual_tokens,
            "group": cfg.group,
            "vocab_size": len(self.tokenizer),
            "text_hidden_size": cfg.text_config.hidden_size,
            "text_layers": cfg.text_config.num_hidden_layers,
            "vision_hidden_size": cfg.vision_config.hidden_size,
            "vision_layers": cfg.vision_config.num_hidden_layers,
            "metadata": self.metadata,
        }

    # -- inputs -------------------------------------------------------------------------------
    def pixel_values(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames [N, H, W, 3] -> normalised float32 [N, 3, S, S] (CPU)."""
        try:
            return preprocess_frames(frames, self.image_size, self.config.image_mean, self.config.image_std)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None

    def prompt_ids(self, question: str, options: Sequence[str] | None = None) -> list[int]:
        """The prompt's ids (format.build_prompt, with the GRPO suffix) with the placeholders."""
        try:
            prompt = build_prompt(question, options)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        return prompt_ids(self.tokenizer, prompt, self.config.num_visual_tokens, image_token_index=self.config.image_token_index)

    def build_inputs(self, items: Sequence[Item]) -> PromptBatch:
        """A left-padded PromptBatch (on the policy's device) for (frames, question, options) items.
        All items must have the same number of frames."""
        if not items:
            raise PolicyError("no prompts given")
        rows, pixels = [], []
        for item in items:
            frames, question, options = (tuple(item) + (None,))[:3]
            rows.append(self.prompt_ids(question, options))
            pixels.append(self.pixel_values(frames))
        counts = {p.shape[0] for p in pixels}
        if len(counts) > 1:
            raise PolicyError(f"all videos of a batch need the same number of frames, got {sorted(counts)}")
        ids, mask = left_pad(rows, self.pad_token_id)
        return PromptBatch(ids, mask, torch.stack(pixels)).to(self.device)

    # -- generation ---------------------------------------------------------------------------
    def _generation_config(self, settings: GenerationSettings, stop: threading.Event | None):
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        kwargs: dict[str, Any] = dict(
            max_new_tokens=int(settings.max_new_tokens),
            do_sample=not settings.greedy,
            num_beams=1,
            eos_token_id=self.end_token_ids if len(self.end_token_ids) > 1 else self.eos_token_id,
            pad_token_id=self.pad_token_id,
            bos_token_id=None,
            use_cache=True,
            # Explicitly neutral: nothing but our processors, temperature and top-p shapes sampling.
            repetition_penalty=1.0,
        )
        if not settings.greedy:  # top_k=0: transformers' default top-k of 50 off
            kwargs.update(temperature=float(settings.temperature), top_p=float(settings.top_p), top_k=0)
        recorder = _LogprobRecorder(settings.logprob_temperature)
        processors = LogitsProcessorList([_Suppress(self.suppressed_token_ids), recorder])
        criteria = StoppingCriteriaList([_Stop(stop)]) if stop is not None else None
        return GenerationConfig(**kwargs), processors, criteria, recorder

    def _seed(self, seed: int | None) -> None:
        if seed is not None:
            torch.manual_seed(int(seed))
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(int(seed))

    def _run_generate(
        self,
        batch: PromptBatch,
        settings: GenerationSettings,
        group_size: int = 1,
        *,
        streamer: Any = None,
        stop: threading.Event | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(new token ids [B*G, T], log-probs [B*G, T]) from one batched generate call."""
        gen_config, processors, criteria, recorder = self._generation_config(settings, stop)
        with self._lock, torch.no_grad(), _torch_threads(self._generation_threads()):
            was_training = self.model.training
            self.model.eval()
            try:
                self._seed(settings.seed)
                start = time.perf_counter()
                generator, inputs = self._generation_inputs(batch, group_size)
                mask = inputs["attention_mask"]
                encoded = time.perf_counter()
                out = generator.generate(
                    **inputs,
                    generation_config=gen_config,
                    logits_processor=processors,
                    stopping_criteria=criteria,
                    streamer=streamer,
                )
            finally:
                self.model.train(was_training)
            end = time.perf_counter()
        sequences = out if isinstance(out, torch.Tensor) else out.sequences
        first = recorder.first_logits_at or end
        decode_s, new_tokens = end - first, int(sequences.shape[1])
        self.last_stats = {
            "rows": int(sequences.shape[0]),
            "prompt_length": int(mask.shape[1]),
            "encode_s": encoded - start,
            "prefill_s": first - encoded,
            "decode_s": decode_s,
            "new_tokens": new_tokens,
            "tokens_per_s": (new_tokens - 1) / decode_s if new_tokens > 1 and decode_s > 0 else 0.0,
        }
        return sequences, recorder.finish(sequences)

    def _generation_inputs(self, batch: PromptBatch, group_size: int) -> tuple[Any, dict[str, Any]]:
        """(the module whose ``generate`` decodes, its keyword inputs) for ``batch`` with every
        prompt repeated ``group_size`` times: here the spliced prompt embeddings (each video
        encoded once) for the Qwen2 language model. Other architectures override this."""
        core = self.core
        embeds = core.embed_prompt(batch.input_ids, batch.pixel_values)
        mask = batch.attention_mask
        if group_size > 1:
            embeds = embeds.repeat_interleave(group_size, dim=0)
            mask = mask.repeat_interleave(group_size, dim=0)
        return core.language_model, {"inputs_embeds": embeds, "attention_mask": mask}

    def _completion_logits(self, prompts: PromptBatch, group_size: int, completion_ids: torch.Tensor) -> torch.Tensor:
        """Raw logits [B*G, T, V] predicting each completion token, with gradients, positions as
        ``generate`` gives them. Other architectures override this.

        The G completions of a prompt share it, so the prompt is run once per prompt, not G times:
        a first pass over the B prompts keeps its key/value cache (in the autograd graph), the
        cache is repeated G times, and a second pass runs the B*G completions on top of it. The
        prompt (about 145 positions for the tiny policy, against a few dozen completion tokens) was
        most of the loss forward's and backward's work when it was repeated; the result equals the
        single pass over [prompt; completion] (tests/test_policy.py checks logits and gradients)."""
        core = self.core
        device = self.device
        embeds = core.embed_prompt(prompts.input_ids.to(device), prompts.pixel_values.to(device))
        prompt_mask = prompts.attention_mask.to(device)
        t = completion_ids.shape[1]
        tokens = core.get_input_embeddings()(completion_ids).to(embeds.dtype)
        mask = prompt_mask.repeat_interleave(group_size, dim=0) if group_size > 1 else prompt_mask
        full_mask = torch.cat([mask, torch.ones_like(completion_ids, dtype=mask.dtype)], dim=1)
        positions = positions_from_mask(full_mask)
        if group_size == 1:
            out = core.language_model(
                inputs_embeds=torch.cat([embeds, tokens], dim=1), attention_mask=full_mask,
                position_ids=positions, use_cache=False, logits_to_keep=t + 1,
            )
            return out.logits[:, :-1]  # position L-1+i predicts completion token i
        length = embeds.shape[1]
        head = core.language_model(
            inputs_embeds=embeds, attention_mask=prompt_mask, position_ids=positions_from_mask(prompt_mask),
            use_cache=True, logits_to_keep=1,
        )
        cache = head.cache
        cache.batch_repeat_interleave(group_size)
        tail = core.language_model(
            inputs_embeds=tokens, attention_mask=full_mask, position_ids=positions[:, length:],
            cache=cache, use_cache=True, logits_to_keep=t,
        )
        first = head.logits[:, -1:].repeat_interleave(group_size, dim=0)  # predicts completion token 0
        return torch.cat([first, tail.logits[:, :-1]], dim=1)

    def _language_model_parameters(self) -> Iterator[nn.Parameter]:
        """The language model's parameters (their count decides the CPU thread policy)."""
        return self.core.language_model.parameters()

    def _generation_threads(self) -> int | None:
        if self.cpu_threads is not None:
            return self.cpu_threads
        if self.device.type != "cpu":
            return None
        n = sum(p.numel() for p in self._language_model_parameters())
        return 1 if n < SINGLE_THREAD_BELOW else None

    def stream(
        self,
        frames: np.ndarray,
        question: str,
        options: Sequence[str] | None = None,
        settings: GenerationSettings | None = None,
        *,
        timeout: float = 120.0,
    ) -> Iterator[str]:
        """Yield the whole completion text so far after every token, until the end token or
        ``max_new_tokens``. Generation runs in a thread; an exception there is re-raised here, and
        ``timeout`` seconds without a token raise PolicyError. Closing the iterator early stops
        the generation thread."""
        settings = settings or GenerationSettings()
        batch = self.build_inputs([(frames, question, options)])
        streamer = _token_streamer(self.tokenizer, timeout)
        stop = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                self._run_generate(batch, settings, streamer=streamer, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer below
                errors.append(exc)
                streamer.end()  # wake the consumer now instead of after the timeout

        thread = threading.Thread(target=work, name="tinyr1-generate", daemon=True)
        thread.start()
        text = ""
        try:
            try:
                for piece in streamer:
                    if errors:
                        break
                    if piece:
                        text += piece
                        yield text
            except queue.Empty:
                if not errors:
                    raise PolicyError(f"generation produced no token for {timeout:g} s (gave up)") from None
        finally:
            stop.set()
            thread.join(timeout=max(timeout, 1.0))
        if errors:
            raise errors[0]

    def generate(
        self,
        frames: np.ndarray,
        question: str,
        options: Sequence[str] | None = None,
        settings: GenerationSettings | None = None,
    ) -> str:
        """The final completion text (without the end token)."""
        settings = settings or GenerationSettings()
        ids, _ = self._run_generate(self.build_inputs([(frames, question, options)]), settings)
        mask = self._completion_mask(ids)
        return self._decode(ids, mask)[0]

    def _completion_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """1.0 up to and including the first end token of each row."""
        is_eos = torch.isin(ids, torch.tensor(self.end_token_ids, device=ids.device))
        after = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # strictly after the first eos
        return (~after).float()

    def _decode(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        return [
            self.tokenizer.decode(row[: int(m.sum())].tolist(), skip_special_tokens=True)
            for row, m in zip(ids.cpu(), mask.cpu())
        ]

    def sample(self, items: Sequence[Item], G: int = 1, settings: GenerationSettings | None = None) -> SampleBatch:
        """G completions per (frames, question, options) item, all in one batched generate call
        (each video is encoded once, its embeddings repeated G times)."""
        settings = settings or GenerationSettings()
        if int(G) < 1:
            raise PolicyError(f"G must be >= 1, got {G}")
        prompts = self.build_inputs(items)
        ids, logprobs = self._run_generate(prompts, settings, group_size=int(G))
        mask = self._completion_mask(ids).to(ids.device)
        finished = (torch.isin(ids, torch.tensor(self.end_token_ids, device=ids.device)) & (mask > 0)).any(dim=1)
        return SampleBatch(
            prompts=prompts,
            group_size=int(G),
            completion_ids=ids,
            completion_mask=mask,
            # where, not a product: after the end token the pad's log-prob is -inf (suppressed)
            logprobs=torch.where(mask > 0, logprobs.to(mask.device), torch.zeros_like(mask)),
            texts=self._decode(ids, mask),
            finished=finished,
            settings=settings,
        )

    def logprobs(
        self,
        batch: PromptBatch | SampleBatch,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        *,
        temperature: float | None = None,
    ) -> torch.Tensor:
        """Per-token log-probs [B*G, T] of the given completions, recomputed by one forward pass
        WITH gradients (through whatever is trainable: LM, LoRA adapters, connector, vision).
        ``batch`` is the SampleBatch (or its PromptBatch: then G = rows // B); ``temperature``
        defaults to the SampleBatch's (1 for greedy or a bare PromptBatch). 0 where the mask is 0."""
        if isinstance(batch, SampleBatch):
            prompts = batch.prompts
            if temperature is None:
                temperature = batch.settings.logprob_temperature
        else:
            prompts = batch
        temperature = 1.0 if not temperature else float(temperature)
        b, rows = len(prompts), completion_ids.shape[0]
        if rows % b:
            raise PolicyError(f"{rows} completions do not split evenly over {b} prompts")
        g = rows // b
        device = self.device
        completion_ids = completion_ids.to(device)
        completion_mask = completion_mask.to(device)
        logits = self._completion_logits(prompts, g, completion_ids).float()
        suppressed = self.suppressed_token_ids
        if suppressed:
            logits = logits.index_fill(2, torch.tensor(suppressed, device=logits.device), float("-inf"))
        lp = torch.log_softmax(logits / temperature, dim=-1).gather(2, completion_ids.unsqueeze(-1)).squeeze(-1)
        # where, not a product: tokens after the end (pad, suppressed) have log-prob -inf
        return torch.where(completion_mask > 0, lp, torch.zeros_like(lp))

    # -- saving -------------------------------------------------------------------------------
    def save(self, path: str | Path, *, metadata: dict | None = None) -> Path:
        """Write a policy directory atomically (a temporary sibling, then a rename). A peft-wrapped
        model is saved with its adapters merged (into a copy); quantized models cannot be saved."""
        if self.quantization:
            raise PolicyError(f"cannot save a {self.quantization}-quantized policy: load it unquantized to save")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model = self.model
        if not isinstance(model, TinyLlavaVideoForConditionalGeneration):
            merge = getattr(model, "merge_and_unload", None)
            if merge is None:
                raise PolicyError(f"cannot save a {type(model).__name__}")
            model = copy.deepcopy(model).merge_and_unload()
        meta = {**self.metadata, **(metadata or {})}
        meta.setdefault("name", path.name)
        try:
            with _quiet_loading():
                model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / POLICY_META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
            for f in tmp.iterdir():  # safetensors writes 0600; a shipped policy should be readable
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
def default_policy_path() -> Path:
    """The policy used when none is named: $TINYR1_POLICY if set, else the embedded
    ``assets/policies/tiny-grpo`` if present, else ``assets/policies/tiny-coldstart``."""
    env = os.environ.get("TINYR1_POLICY")
    if env:
        return Path(env)
    for name in DEFAULT_POLICIES:
        candidate = POLICIES_DIR / name
        if (candidate / "config.json").exists():
            return candidate
    raise PolicyError(
        f"no embedded policy found (looked for {', '.join(DEFAULT_POLICIES)} in {POLICIES_DIR}); "
        "pass --policy PATH, set TINYR1_POLICY, or make a random one with "
        "`python -m tinyr1.models.random OUT_DIR`"
    )


def default_start_policy_path() -> Path:
    """Where GRPO starts when no policy is named: the embedded cold start
    (``assets/policies/tiny-coldstart``, the paper's pipeline: GRPO follows the cold start), else
    ``default_policy_path()``."""
    coldstart = POLICIES_DIR / "tiny-coldstart"
    return coldstart if (coldstart / "config.json").exists() else default_policy_path()


def _check_dir(path: Path) -> dict:
    if not path.exists():
        raise PolicyError(f"no policy at {path}: the directory does not exist")
    if not path.is_dir():
        raise PolicyError(f"{path} is a file; a policy is a directory with config.json, weights and tokenizer")
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise PolicyError(f"{path} is not a policy directory: config.json is missing")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PolicyError(f"{cfg_file} is not valid JSON: {exc}") from None
    model_type = cfg.get("model_type")
    if model_type != MODEL_TYPE:
        hint = ""
        if model_type == "tinyllava" or "llm_model_name_or_path" in cfg:
            hint = " (an official TinyLLaVA-Video checkpoint: convert it first with `tinyr1 convert`)"
        raise PolicyError(f"{path} holds a {model_type!r} model, expected {MODEL_TYPE!r}{hint}")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise PolicyError(f"{path} has a config but no weights (*.safetensors)")
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        raise PolicyError(f"{path} has no tokenizer (tokenizer.json / tokenizer_config.json)")
    return cfg


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No per-shard progress bars while loading (they clutter the CLI and the app's logs)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def quantization_config(quantization: str | None, compute_dtype: torch.dtype):
    """The BitsAndBytesConfig for "nf4" / "int8" (None for no quantization)."""
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=list(QUANT_SKIP_MODULES),
        )
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(QUANT_SKIP_MODULES))
    raise PolicyError(f"unknown quantization {quantization!r}; use one of none, nf4, int8")


def _normalize_quantization(quantization: str | None) -> str | None:
    if quantization in ("none", "", "fp32", "full", "bf16"):
        return None
    if quantization not in QUANTIZATIONS:
        raise PolicyError(f"unknown quantization {quantization!r}; use one of none, nf4, int8")
    return quantization


def _is_path_like(text: str) -> bool:
    """A name that can only be a filesystem path (absolute, relative with ./ ../ ~, or deeper than owner/name)."""
    return text.startswith(("/", ".", "~")) or text.count("/") != 1 or (os.sep != "/" and os.sep in text)


def load_policy(
    path: str | Path | None = None,
    quantization: str | None = None,
    device: str | torch.device | None = None,
    *,
    dtype: str | torch.dtype | None = None,
) -> Policy:
    """Load a policy (None: ``default_policy_path()``). ``path`` may be

    - a tinyr1 policy directory (config.json of model_type "tinyllava_video", weights, tokenizer);
    - an official TinyLLaVA-Video(-R1) checkpoint directory (model_type "tinyllava"): converted in
      memory by tinyr1.models.convert (``tinyr1 convert`` writes the same as a policy directory);
    - a Qwen2.5-VL checkpoint directory (model_type "qwen2_5_vl"): a ``tinyr1.qwen_vl.QwenVLPolicy``;
    - a registry id or alias (``tinyr1 policies``), e.g. "Zhang199/TinyLLaVA-Video-R1", or another
      hub id "owner/name": its weights from ``$TINYR1_MODELS/<name>``, the Hugging Face cache, or a
      download when the hub is allowed and reachable (tinyr1.registry.resolve_policy); with
      HF_HUB_OFFLINE=1 and no local copy, a PolicyError says how to get them and where to put them.

    ``quantization``: None / "none", "nf4" (4-bit NormalFloat) or "int8" (LLM.int8), through
    bitsandbytes; the vision tower, connector and LM head stay in full precision.
    ``device``: None = CUDA if available, else CPU. ``dtype``: None = float32 on CPU, bfloat16
    (float16 without bf16 support) on CUDA. Raises PolicyError for a missing or incompatible
    directory or an unknown option."""
    quantization = _normalize_quantization(quantization)
    entry = None
    if path is None:
        path = default_policy_path()
    else:
        text = os.fspath(path)
        if not Path(text).expanduser().exists() and (not _is_path_like(text) or _registry_knows(text)):
            from tinyr1.registry import resolve_policy

            resolved = resolve_policy(text)
            path, entry = resolved.path, resolved.entry
    path = Path(path).expanduser()
    kind = _checkpoint_kind(path)
    name = entry.id if entry is not None and entry.kind != "tiny" else None
    if kind == "qwen2_5_vl":
        from tinyr1.qwen_vl import load_qwen_vl_policy
        from tinyr1.registry import loading_defaults

        return load_qwen_vl_policy(path, quantization, device, dtype=dtype, name=name,
                                   defaults=loading_defaults(entry))
    if kind == "tinyllava":
        return _load_official(path, quantization, device, dtype=dtype, name=name)
    _check_dir(path)
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype, dev)
    from transformers import AutoTokenizer

    # device_map: weights go straight to the device (no CPU copy of a 3.6B model first).
    kwargs: dict[str, Any] = {"dtype": dt, "device_map": {"": str(dev)}}
    kwargs.update(_quantization_kwargs(quantization, dt))
    try:
        with _quiet_loading():
            model = TinyLlavaVideoForConditionalGeneration.from_pretrained(path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyError(f"could not load the policy in {path}: {exc}") from exc
    if quantization is not None:
        disable_cpu_weight_repacking(model)
    model.eval()
    meta_file = path / POLICY_META
    metadata = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    return Policy(model, tokenizer, path=path, quantization=quantization, metadata=metadata)


def _registry_knows(name: str) -> bool:
    from tinyr1.registry import find_spec

    return find_spec(name) is not None


def _checkpoint_kind(path: Path) -> str | None:
    """config.json's model_type for a directory, None if unreadable (then _check_dir explains)."""
    try:
        return json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _quantization_kwargs(quantization: str | None, dt: torch.dtype) -> dict[str, Any]:
    qconfig = quantization_config(quantization, dt)
    if qconfig is None:
        return {}
    if quantization == "int8":
        logging.getLogger("bitsandbytes.autograd._functions").addFilter(_QuietInt8Cast())
    return {"quantization_config": qconfig}


def _load_official(
    src: Path,
    quantization: str | None,
    device: str | torch.device | None,
    *,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
) -> Policy:
    """An official TinyLLaVA-Video checkpoint directory converted in memory (tinyr1.models.convert:
    config mapping, weight names, Qwen2.5 tokenizer; qwen2_base template, SigLIP preprocessing and
    frames from the converted config), optionally quantized while loading."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from tinyr1.models.convert import (
        ConversionError,
        expected_parameters,
        map_official_state_dict,
        official_config,
        read_official_config,
        read_official_weights,
    )

    hint = ("(it is converted in memory; `tinyr1 convert SRC OUT` writes it as a tinyr1 policy and names "
            "what does not fit)")
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype, dev)
    try:
        raw = read_official_config(src)
        config = official_config(src, raw)
        weights = read_official_weights(src)
        mapped = map_official_state_dict(weights, expected_parameters(config),
                                         tied=bool(config.text_config.tie_word_embeddings))
        del weights
    except ConversionError as exc:
        raise PolicyError(f"could not load the official TinyLLaVA-Video checkpoint in {src} {hint}: {exc}") from None
    kwargs: dict[str, Any] = {"dtype": dt, "device_map": {"": str(dev)}}
    kwargs.update(_quantization_kwargs(quantization, dt))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # AutoTokenizer peeks at the official config.json and warns
    try:
        with _quiet_loading():
            model = TinyLlavaVideoForConditionalGeneration.from_pretrained(None, config=config, state_dict=mapped,
                                                                           **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyError(f"could not load the official TinyLLaVA-Video checkpoint in {src} {hint}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    if quantization is not None:
        disable_cpu_weight_repacking(model)
    model.eval()
    metadata = {
        "name": name or src.name, "kind": "tinyllava_official", "template": "qwen2_base",
        "converted_from": str(src), "source": "official TinyLLaVA-Video checkpoint, converted in memory by tinyr1",
        "official": {k: raw.get(k) for k in ("connector_type", "num_queries", "num_resampler_layers", "group",
                                             "tokenizer_model_max_length")},
    }
    return Policy(model, tokenizer, name=metadata["name"], path=src, quantization=quantization, metadata=metadata)


def policy_from_model(model: nn.Module, tokenizer, *, name: str = "policy", metadata: dict | None = None) -> Policy:
    """Wrap an in-memory model (e.g. one being trained) and its tokenizer as a Policy (a
    ``tinyr1.qwen_vl.QwenVLPolicy`` for a Qwen2.5-VL model)."""
    if getattr(getattr(model, "config", None), "model_type", None) == "qwen2_5_vl":
        from tinyr1.qwen_vl import qwen_policy_from_model

        return qwen_policy_from_model(model, tokenizer, name=name, metadata=metadata)
    return Policy(model, tokenizer, name=name, metadata=metadata)


__all__ = [
    "DEFAULT_POLICIES",
    "GenerationSettings",
    "Policy",
    "PolicyError",
    "PromptBatch",
    "QUANT_SKIP_MODULES",
    "SampleBatch",
    "default_policy_path",
    "default_start_policy_path",
    "disable_cpu_weight_repacking",
    "load_policy",
    "policy_from_model",
    "quantization_config",
]
