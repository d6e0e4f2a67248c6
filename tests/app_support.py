"""Shared setup of the app's three test levels (handlers, server, browser); not a test module.

- ``make_root(dir, ...)``: a repository-like folder with ``assets/policies/tiny`` (a real tiny
  random policy, made once per session) and ``assets/examples`` (real mp4 clips of the world).
- ``launched_app()``: the real app on that root, launched once per test session on a free port
  (the server and browser tests share it), closed when the session ends.
- ``REASON_OUTPUTS`` and ``reason_example(root)``: /reason's outputs by name, and the keyword
  arguments of a call on the root's first world example (a clip with options and an answer).
- ``bad_uploads(dir)``: files a person may upload by mistake.
- ``no_downloaded_models()``: while inside, the policy registry sees no downloaded checkpoint (an
  empty ``$TINYR1_MODELS`` and Hugging Face cache), so the app's default policy is the root's tiny
  one even on a machine that holds the real TinyLLaVA-Video-R1 or Qwen2.5-VL weights.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import socket
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def tiny_policy_dir() -> Path:
    """A real tiny random policy directory (the "test" preset, ~0.4M parameters), made once."""
    from tinyr1.policy.random import make_random_policy

    out = Path(tempfile.mkdtemp(prefix="tinyr1-app-policy-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return Path(make_random_policy(out / "tiny-random", "test", seed=0))


def shipped_policies() -> list[Path]:
    """The repository's own policies (assets/policies/*), once they are shipped."""
    folder = ROOT / "assets" / "policies"
    return sorted(p for p in folder.iterdir() if (p / "config.json").is_file()) if folder.is_dir() else []


def write_clip(path: Path, frames: int = 16, size: int = 64, seed: int = 0) -> Path:
    """A real mp4 of moving noise-free colour (not the world: a bare clip without a question)."""
    import numpy as np

    from tinyr1.world import write_mp4

    rng = np.random.default_rng(seed)
    video = np.zeros((frames, size, size, 3), np.uint8)
    colour = rng.integers(64, 255, 3)
    for t in range(frames):
        x = int(t * (size - 16) / max(frames - 1, 1))
        video[t, 24:40, x : x + 16] = colour
    return write_mp4(video, path)


def make_root(base: Path, *, world_examples: int = 2, bare_clip: bool = True, policy: bool = True) -> Path:
    """A folder shaped like the repository for the app: policies and examples."""
    base = Path(base)
    examples = base / "assets" / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    if world_examples:
        from tinyr1.world import write_split

        write_split("test", world_examples, examples / "world", progress=False)
    if bare_clip:
        write_clip(examples / "sliding_square.mp4")
        for clip in sorted((ROOT / "assets" / "examples").glob("*.mp4")):  # the shipped real clips
            shutil.copy2(clip, examples / clip.name)
    if policy:
        # The shipped policies when there are (the screenshots then show a trained one), and the
        # random one in any case (honest, fast, always there).
        for source in [*shipped_policies(), tiny_policy_dir()]:
            target = base / "assets" / "policies" / source.name
            if not target.exists():
                shutil.copytree(source, target)
    return base


@contextlib.contextmanager
def no_downloaded_models():
    """The registry sees no downloaded checkpoint inside (a Workbench lists it once, at its first
    use: list it inside, and it stays so until a Rescan)."""
    import pytest
    from huggingface_hub import constants

    empty = Path(tempfile.mkdtemp(prefix="tinyr1-no-models-"))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TINYR1_MODELS", str(empty / "models"))
            mp.setattr(constants, "HF_HUB_CACHE", str(empty / "hf-cache"))
            yield empty
    finally:
        shutil.rmtree(empty, ignore_errors=True)


def bad_uploads(folder: Path) -> dict[str, Path]:
    """Uploads that are not a playable video: text named .mp4, a truncated mp4, an empty file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = write_clip(folder / "good.mp4", frames=32)
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    return {"text named .mp4": text, "truncated mp4": truncated, "empty file": empty}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LaunchedApp:
    def __init__(self, root: Path, demo, url: str) -> None:
        self.root, self.demo, self.url = root, demo, url


@functools.lru_cache(maxsize=1)
def launched_app() -> LaunchedApp:
    """The real app (real tiny policy, real clips) served on a free port, once per session."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from tinyr1.app import build_app, launch_kwargs

    root = Path(tempfile.mkdtemp(prefix="tinyr1-app-root-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    make_root(root, world_examples=2, bare_clip=True)
    with no_downloaded_models():
        demo = build_app(root)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True, **launch_kwargs(root))
    atexit.register(demo.close)
    return LaunchedApp(root, demo, f"http://127.0.0.1:{port}/")


#: /reason's outputs in order (the frames stay in the page: a State, outside the API).
REASON_OUTPUTS = ("status", "think", "answer", "chart", "table", "result", "banner")


def reason_example(root: Path) -> dict:
    """gradio_client keyword arguments for /reason on ``root``'s first world example."""
    from gradio_client import handle_file

    from tinyr1.app.reason import find_examples

    rows = [r for r in find_examples(root) if r[2]]  # a world clip with options and an answer
    assert rows, "the test root has world examples"
    video, question, a, b, c, d, answer = rows[0]
    return dict(video=handle_file(video), question=question, option_a=a, option_b=b, option_c=c, option_d=d,
                answer=answer)


def find_chromium() -> str | None:
    """Debian's chromium (docs/DESIGN.md, "CPU facts"), or None when it is not installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None
