"""Saving a policy directory, for every model family.

    policy.save("runs/x/policy")          # Policy.save calls save_policy

A policy directory holds ``config.json`` + ``model.safetensors``, the tokenizer files, any files
the backend adds, and ``policy.json`` (free-form metadata). It is written through
tinyr1.files.atomic_dir, so a crash leaves the old directory or the new one, never half of one
(docs/DESIGN.md, "Files and runs"). This module imports nothing of the policy runtime at import
time, so the runtime can import it without an import circle.
"""
from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any, Iterator

from tinyr1.files import atomic_dir
from tinyr1.policy.spec import POLICY_META, PolicyError

@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No per-shard progress bars while loading (they clutter the CLI and the app's logs)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def save_policy(policy: Any, path: str | Path, *, metadata: dict | None = None, inherit: bool = True) -> Path:
    """Write ``policy`` (a tinyr1.policy.runtime.Policy; typed loosely so this module never
    imports the runtime) atomically (tinyr1.files.atomic_dir): the weights and config, the tokenizer, the backend's extra files and policy.json. A peft-wrapped model is
    saved with its adapters merged (into a copy); quantized models cannot be saved.

    policy.json is ``metadata`` over the policy's own (``inherit``) or ``metadata`` alone: a policy
    trained further must not carry its start's command, accuracy or description as its own."""
    if policy.quantization:
        raise PolicyError(f"cannot save a {policy.quantization}-quantized policy: load it unquantized to save")
    path = Path(path)
    model = policy.model
    backend = policy.backend
    if not isinstance(model, backend.model_class()):
        merge = getattr(model, "merge_and_unload", None)
        if merge is None:
            raise PolicyError(f"cannot save a {type(model).__name__}")
        model = copy.deepcopy(model).merge_and_unload()
    meta = {**(policy.metadata if inherit else {}), **backend.policy_metadata(), **(metadata or {})}
    meta.setdefault("name", path.name)
    with atomic_dir(path) as tmp:
        with quiet_loading():
            model.save_pretrained(tmp)
        policy.tokenizer.save_pretrained(tmp)
        for name, text in backend.extra_files().items():
            (tmp / name).write_text(text)
        (tmp / POLICY_META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        for f in tmp.iterdir():  # safetensors writes 0600; a shipped policy should be readable
            f.chmod(0o644)
    return path
