"""The app's serving settings, some read from the environment, and the ZeroGPU hook.

    TINYR1_QUEUE_SIZE=32 python app.py              # let more requests wait for the model
    TINYR1_MAX_UPLOAD_BYTES=200000000 python app.py # a larger upload limit (tinyr1.limits)
    TINYR1_RUNS_MAX_COUNT=5 python app.py           # keep at most 5 runs the app started
    TINYR1_POLICY=tiny-grpo python app.py           # open on this policy (a picker key, alias or folder)
    TINYR1_QUANTIZATION=int8 python app.py          # and load it this way (none, nf4, int8)

Which policy the app opens on: TinyLLaVA-Video-R1 in nf4 where ``cuda_available()`` and its
weights are here or downloadable, else the embedded tiny policy (tinyr1.policy.spec.serving_default).
On ZeroGPU (``on_zero_gpu()``) that policy is loaded once at start-up, outside any GPU call, as
ZeroGPU's documentation asks, and ``zero_gpu`` wraps only the generation (Workbench.generate).

Disk rules of a public app (docs/RELIABILITY.md, "Public app"): gradio's copies of uploads are
deleted once used and, in any case, after ``UPLOAD_MAX_AGE_S``; runs the app started
(``created_by: app`` in their run.json) are deleted after ``TINYR1_RUNS_MAX_AGE_HOURS`` or beyond
the newest ``TINYR1_RUNS_MAX_COUNT``; no run starts with less than ``TINYR1_MIN_FREE_DISK_MB`` free.

Serving rules (docs/DESIGN.md, "Serving the app"): every listener that runs the model shares one
``concurrency_id`` (``MODEL_QUEUE``) with concurrency 1, so one generation runs at a time and the
rest wait in a bounded queue (``QUEUE_SIZE``) that turns people away when full instead of letting
waits grow.
"""
from __future__ import annotations

import os
from typing import Callable

import gradio as gr
from gradio.utils import get_upload_folder

from tinyr1.app.guard import env_number
from tinyr1.format import LETTERS
from tinyr1.limits import UPLOAD_BYTES
from tinyr1.policy.spec import QUANTIZATION_CHOICES

#: How many requests may wait for the model before new ones are turned away ("queue is full").
QUEUE_SIZE = int(os.environ.get("TINYR1_QUEUE_SIZE", "16"))
#: Upload limit (bytes) checked by the server before a handler runs, per file: tinyr1.limits'
#: UPLOAD_BYTES, which also bounds all files of one request together (tinyr1.app.guard).
MAX_FILE_SIZE = UPLOAD_BYTES.value
#: Where gradio keeps uploaded files (its temp folder): the only place uploads are deleted from.
UPLOAD_ROOT = get_upload_folder()
#: gradio's ``delete_cache``: every ``UPLOAD_SWEEP_S`` seconds, files the app's visitors uploaded
#: (and its outputs) older than ``UPLOAD_MAX_AGE_S`` are deleted; examples are kept.
UPLOAD_MAX_AGE_S = int(env_number("TINYR1_UPLOAD_MAX_AGE_MINUTES", 60) * 60)
UPLOAD_SWEEP_S = max(60, UPLOAD_MAX_AGE_S // 4)
#: Runs the app started are deleted when older than this many hours (0: never by age) ...
RUNS_MAX_AGE_HOURS = env_number("TINYR1_RUNS_MAX_AGE_HOURS", 24)
#: ... or beyond the newest this many (0: no count limit). Runs of the CLI are never touched.
RUNS_MAX_COUNT = int(env_number("TINYR1_RUNS_MAX_COUNT", 20))
#: New runs are refused when the disk of runs/ has less free space than this (MiB).
MIN_FREE_DISK_MB = env_number("TINYR1_MIN_FREE_DISK_MB", 1024)
#: The concurrency group of every listener that runs the model (Reason, GRPO Start / Resume).
MODEL_QUEUE = "model"
#: Least seconds between two streamed updates (the last text is always sent): the browser redraws
#: the chart on each, and the tiny policy writes hundreds of tokens a second.
STREAM_INTERVAL = 0.05
#: ZeroGPU time asked per Reason call (seconds): room for the longest generation the sliders
#: allow (1024 tokens); not yet measured on ZeroGPU hardware.
GPU_SECONDS = 120
#: Frames are decoded at most this many pixels on their long side (see Workbench.load_frames).
FRAME_SIDE = 448
#: The side of the frame thumbnails shown in the gallery (pixels); the policy gets the frames.
THUMB_SIDE = 256
#: The option boxes of the Reason tab (A-D, as in the paper's multiple-choice sets).
OPTION_LETTERS = LETTERS[:4]
#: The quantization choices, spelled for a picker ("none" instead of None).
QUANTIZATIONS = QUANTIZATION_CHOICES
DEFAULT_QUESTION = "What happens in this video?"

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")
CSS = """
#tinyr1-banner {border-left: 4px solid var(--color-accent); padding-left: 0.8em;}
#reason-answer textarea {font-size: 1.25em; font-weight: 600;}
#reason-status, #lab-status {min-height: 2em;}
/* Frames: as many columns as fit (3 on a phone, 5 beside the inputs on a desktop; more scroll) instead of a fixed 8 that
   overflow a narrow column, and captions ("#12 · 10.50 s") small enough to show whole. */
#reason-frames .grid-container {grid-template-columns: repeat(auto-fill, minmax(100px, 1fr)) !important;
  grid-template-rows: none !important; grid-auto-rows: auto !important;}
#reason-frames .caption-label {max-width: calc(100% - 4px); font-size: 0.7em; padding: 1px 4px;
  white-space: nowrap; overflow: visible; text-overflow: clip;}
"""


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (on ZeroGPU, ``spaces`` makes this true at start-up)."""
    import torch

    return bool(torch.cuda.is_available())


def on_zero_gpu() -> bool:
    """A ZeroGPU Space: the ``spaces`` package importable and ``SPACES_ZERO_GPU`` set (what
    ``spaces`` itself reads; elsewhere its ``GPU`` decorator returns the function unchanged)."""
    if os.environ.get("SPACES_ZERO_GPU", "").strip().lower() not in ("1", "t", "true"):
        return False
    try:
        import spaces  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def zero_gpu(fn: Callable) -> Callable:
    """``spaces.GPU(duration=GPU_SECONDS)(fn)`` when the ``spaces`` package is importable (a
    Hugging Face Space), else ``fn`` unchanged. Off ZeroGPU hardware ``spaces.GPU`` is a no-op."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(duration=GPU_SECONDS)(fn)
