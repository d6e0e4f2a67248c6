"""The generic policy runtime: stream answers, sample for GRPO, recompute log-probs, save.

    from tinyr1.policy import load_policy, GenerationSettings
    policy = load_policy("assets/policies/tiny-grpo")                   # or quantization="nf4"
    for text in policy.stream(frames, "How many squares?", ["1", "2", "3", "4"]):
        print(text)                                                     # the whole text so far
    batch = policy.sample([(frames, question, options), ...], G=8, settings=GenerationSettings(seed=1))
    new_lp = policy.logprobs(batch, batch.completion_ids, batch.completion_mask)   # with gradients

``Policy`` is the same for every model family; what differs (prompt building, frame processing,
the inputs ``generate`` takes, the recomputed logits, tokens, config accessors, saved metadata)
is its ``backend`` (tinyr1.policy.backend.Backend): ``TinyLlavaBackend`` (tinyr1/policy/tinyllava.py,
the default) or ``QwenVLBackend`` (tinyr1/policy/qwen2_5_vl.py). Loading and saving directories
is tinyr1/policy/load.py's.

Log-probabilities (the sampler's and ``Policy.logprobs``'s, which agree within 1e-4 in fp32):
for completion token t, ``log_softmax(z / T)[token]`` where ``z`` are the language model's raw
logits with the never-emit tokens (``Policy.suppressed_token_ids``) set to -inf, and ``T`` the
sampling temperature (1 for greedy, temperature 0). Top-p truncation is NOT included (as in TRL):
it is the distribution a policy-gradient loss differentiates, not the truncated one sampled from.
Positions after the first end token get log-prob 0 and mask 0. ``Policy.logprobs`` never builds
the [rows, T, vocab] logits: it takes the final hidden states of the completion positions and
sends the masked-in ones through the LM head a chunk at a time (``chunked_logprobs``).
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from tinyr1.models.tinyllava.processing import left_pad
from tinyr1.policy.backend import Backend, Item, PromptBatch
from tinyr1.policy.save import save_policy
from tinyr1.policy.spec import LOGPROB_CHUNK_ELEMENTS, GenerationSettings, PolicyError, cpu_threads_for
from tinyr1.policy.tinyllava import TinyLlavaBackend


# --------------------------------------------------------------------------------------------
# Sampled batches
# --------------------------------------------------------------------------------------------
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


#: Seconds a closed stream waits for its generation thread (which stops at its next token).
STOP_JOIN_SECONDS = 2.0


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


def chunked_logprobs(
    hidden: torch.Tensor,
    head: nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    suppressed: Sequence[int],
    temperature: float,
    chunk_elements: int = LOGPROB_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Log-probs [rows, T] of ``ids`` under ``log_softmax(head(hidden) / temperature)`` with the
    ``suppressed`` ids at -inf, without the [rows, T, vocab] wall: only positions where ``mask``
    is 1 go through the head, a chunk of positions at a time (``chunk_elements`` float32 logits);
    each chunk's log-prob is its logit at the token minus its logsumexp. With gradients, each
    chunk runs under activation checkpointing, so the backward recomputes one chunk's logits at a
    time instead of keeping every chunk's. 0 where the mask is 0."""
    rows, t = ids.shape
    keep = (mask > 0).reshape(-1).nonzero().squeeze(1)
    flat_hidden = hidden.reshape(rows * t, -1).index_select(0, keep)
    flat_ids = ids.reshape(-1).index_select(0, keep)
    vocab = int(getattr(head, "out_features", 0) or head.weight.shape[0])
    size = max(1, chunk_elements // vocab)
    blocked = torch.tensor(sorted(set(suppressed)), dtype=torch.long, device=hidden.device)

    def piece(h: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        logits = head(h).float()
        if len(blocked):
            logits = logits.index_fill(1, blocked, float("-inf"))
        logits = logits / temperature
        return logits.gather(1, tok[:, None]).squeeze(1) - torch.logsumexp(logits, dim=1)

    grad = torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in head.parameters()))
    parts = []
    for a in range(0, flat_ids.shape[0], size):
        h, tok = flat_hidden[a : a + size], flat_ids[a : a + size]
        if grad:
            from torch.utils.checkpoint import checkpoint

            parts.append(checkpoint(piece, h, tok, use_reentrant=False))
        else:
            parts.append(piece(h, tok))
    values = torch.cat(parts) if parts else flat_hidden.new_zeros(0, dtype=torch.float32)
    out = torch.zeros(rows * t, dtype=torch.float32, device=hidden.device)
    # index_put, not a product: tokens after the end (pad, suppressed) would give -inf * 0
    return out.index_put((keep,), values).reshape(rows, t)


# --------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------
class Policy:
    """A loaded policy: ``model`` (the family's model, possibly quantized or wrapped by peft after
    loading), ``tokenizer``, ``backend`` (what differs per family; TinyLLaVA-Video by default),
    and the decoding / scoring methods.

    Generation is serialised by a lock (one generate call at a time per policy)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        backend: Backend | None = None,
        name: str | None = None,
        path: str | Path | None = None,
        quantization: str | None = None,
        metadata: dict | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.backend = backend if backend is not None else TinyLlavaBackend()
        self.path = Path(path) if path is not None else None
        self.quantization = quantization
        self.metadata = dict(metadata or {})
        self.name = name or self.metadata.get("name") or (self.path.name if self.path else "policy")
        #: Timings of the last generate/stream/sample call (seconds): encode_s (vision tower,
        #: connector and embeddings), prefill_s (first LM forward), decode_s (the other tokens),
        #: new_tokens (longest row), tokens_per_s (decode speed), rows.
        self.last_stats: dict[str, float | int] = {}
        #: Threads for CPU generation: None = automatic (spec.cpu_threads_for), else this many.
        self.cpu_threads: int | None = None
        self._lock = threading.RLock()
        self._check_tokenizer()
        self.backend.attach(self.core)

    # -- properties ---------------------------------------------------------------------------
    @property
    def core(self) -> nn.Module:
        """The family's model itself (inside any peft wrapper)."""
        return self.backend.unwrap(self.model)

    @property
    def config(self):
        return self.core.config

    @property
    def num_frames(self) -> int:
        return self.backend.num_frames(self.core)

    @property
    def image_size(self) -> int:
        return self.backend.image_size(self.core)

    @property
    def device(self) -> torch.device:
        return next(self._language_model_parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the full-precision weights (embeddings), i.e. of activations."""
        return self.core.get_input_embeddings().weight.dtype

    @property
    def end_token_ids(self) -> list[int]:
        """Every id that ends a completion (the first is ``eos_token_id``)."""
        return self.backend.end_token_ids(self.tokenizer)

    @property
    def eos_token_id(self) -> int:
        return self.end_token_ids[0]

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.end_token_ids[-1]

    @property
    def suppressed_token_ids(self) -> list[int]:
        """Ids sampling must never emit: the pad token (unless it ends a completion, as in Qwen2),
        the family's visual tokens, and embedding rows beyond the tokenizer's vocabulary."""
        ids: set[int] = set(self.backend.never_emit(self.tokenizer))
        if self.pad_token_id not in self.end_token_ids:
            ids.add(self.pad_token_id)
        rows = self.core.get_input_embeddings().weight.shape[0]
        ids.update(range(len(self.tokenizer), rows))
        return sorted(ids)

    def _check_tokenizer(self) -> None:
        core = self.core
        rows = core.get_input_embeddings().weight.shape[0]
        if len(self.tokenizer) > rows:
            raise PolicyError(f"the tokenizer has {len(self.tokenizer)} tokens but the model only {rows} embeddings")
        self.backend.check_tokenizer(core, self.tokenizer)

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Named parameters by part: 'vision_tower', 'connector', 'language_model' (names as in
        ``self.model.named_parameters()``, so peft adapters appear under their part)."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {"vision_tower": [], "connector": [], "language_model": []}
        core = self.core
        for name, p in self.model.named_parameters():
            groups[self.backend.part_of(core, name)].append((name, p))
        return groups

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: name, path, sizes, parameters per part, device, dtype, quantization."""
        core = self.core
        counts = {part: sum(p.numel() for _, p in params) for part, params in self.parameter_groups().items()}
        text_hidden, text_layers, vision_hidden, vision_layers = self.backend.sizes(core)
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "quantization": self.quantization,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "parameters": {**counts, "total": sum(counts.values())},
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            **self.backend.describe(core),
            "vocab_size": len(self.tokenizer),
            "text_hidden_size": text_hidden,
            "text_layers": text_layers,
            "vision_hidden_size": vision_hidden,
            "vision_layers": vision_layers,
            "metadata": self.metadata,
        }

    # -- inputs -------------------------------------------------------------------------------
    def pixel_values(self, frames: np.ndarray, *args: Any) -> torch.Tensor:
        """uint8 frames [N, H, W, 3] -> normalised float32 [N, 3, h, w] (CPU); the backend's
        optional arguments (e.g. Qwen2.5-VL's target size) pass through."""
        return self.backend.pixel_values(self.core, frames, *args)

    def prompt_ids(self, question: str, options: Sequence[str] | None = None, *args: Any) -> list[int]:
        """The prompt's ids with the family's visual placeholders (backend arguments pass through)."""
        return self.backend.prompt_ids(self.core, self.tokenizer, question, options, *args)

    def build_inputs(self, items: Sequence[Item]) -> PromptBatch:
        """A left-padded PromptBatch (on the policy's device) for (frames, question, options) items.
        All items must have the same number of frames."""
        if not items:
            raise PolicyError("no prompts given")
        rows, pixels = self.backend.encode_items(self.core, self.tokenizer, items)
        counts = {p.shape[0] for p in pixels}
        if len(counts) > 1:
            raise PolicyError(f"all videos of a batch need the same number of frames, got {sorted(counts)}")
        ids, mask = left_pad(rows, self.pad_token_id)
        return PromptBatch(ids, mask, torch.stack(pixels)).to(self.device)

    # -- the backend's view of the model ------------------------------------------------------
    def _generation_inputs(self, batch: PromptBatch, group_size: int) -> tuple[Any, dict[str, Any]]:
        """(the module whose ``generate`` decodes, its keyword inputs): the backend's."""
        return self.backend.generation_inputs(self.core, batch, group_size)

    def _completion_logits(self, prompts: PromptBatch, group_size: int, completion_ids: torch.Tensor) -> torch.Tensor:
        """Raw logits [B*G, T, V] predicting each completion token, with gradients: the backend's
        whole-vocabulary reference (``logprobs`` goes through the head in chunks)."""
        return self.backend.completion_logits(self.core, prompts, group_size, completion_ids, self.device)

    def _language_model_parameters(self) -> Iterator[nn.Parameter]:
        """The language model's parameters (their count decides the CPU thread rule)."""
        return self.backend.language_model(self.core).parameters()

    def _generation_threads(self) -> int | None:
        if self.cpu_threads is not None:
            return self.cpu_threads
        if self.device.type != "cpu":
            return None
        return cpu_threads_for(sum(p.numel() for p in self._language_model_parameters()))

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

    # -- the context ------------------------------------------------------------------------
    @property
    def max_positions(self) -> int | None:
        """Positions the language model can attend to (prompt plus completion), from its config's
        ``max_position_embeddings``; None when the config does not say."""
        config = getattr(self.backend.language_model(self.core), "config", None)
        value = getattr(config, "max_position_embeddings", None) or getattr(self.config, "max_position_embeddings", None)
        return int(value) if value else None

    def check_context(self, prompt_length: int, max_new_tokens: int) -> None:
        """PolicyError when a prompt of ``prompt_length`` positions plus ``max_new_tokens`` new
        tokens exceeds ``max_positions``: refused before any generation starts (a long prompt's
        prefill cannot be interrupted, and positions past the context give garbage)."""
        limit = self.max_positions
        if limit is not None and prompt_length + int(max_new_tokens) > limit:
            room = limit - prompt_length
            hint = (f"ask for at most {room} new tokens" if room > 0 else "shorten the question or its options")
            raise PolicyError(
                f"the prompt takes {prompt_length} positions (video and text) and {int(max_new_tokens)} new tokens "
                f"were asked for: {prompt_length + int(max_new_tokens)} > the policy's context of {limit} positions; {hint}")

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
        self.check_context(int(batch.input_ids.shape[1]), settings.max_new_tokens)
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
            # The request ended (the end token, Stop, a disconnect, the timeout): the criterion ends
            # generate at its next token, and the thread's ``with self._lock`` releases the model.
            # Waiting longer than a token or two would hold the caller, not free the model sooner.
            stop.set()
            thread.join(timeout=STOP_JOIN_SECONDS)
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
        batch = self.build_inputs([(frames, question, options)])
        self.check_context(int(batch.input_ids.shape[1]), settings.max_new_tokens)
        ids, _ = self._run_generate(batch, settings)
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
        hidden = self.backend.completion_hidden(self.core, prompts, g, completion_ids, device)
        return chunked_logprobs(hidden, self.backend.lm_head(self.core), completion_ids, completion_mask,
                                self.suppressed_token_ids, temperature)

    # -- saving -------------------------------------------------------------------------------
    def save(self, path: str | Path, *, metadata: dict | None = None, inherit: bool = True) -> Path:
        """Write a policy directory atomically (tinyr1.policy.save.save_policy). A peft-wrapped
        model is saved with its adapters merged (into a copy); quantized models cannot be saved."""
        return save_policy(self, path, metadata=metadata, inherit=inherit)



__all__ = ["Policy", "PromptBatch", "SampleBatch", "chunked_logprobs"]
