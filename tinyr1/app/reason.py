"""The Reason tab: a policy streams its think text and answer on a video, with the frames it saw
and the live reward. ``Workbench`` (gradio-free) holds the app's state and yields ``ReasonStep``s;
``ReasonTab`` lays out the tab and adapts those steps to its components.

    bench = Workbench("/path/to/root")
    for step in bench.reason("clip.mp4", "Which way does it move?", ["left", "right"], "B"):
        print(step.status)

Stop is a signal, not a cancel: the tab's Stop sets the session's stop event, the generator sees
it at the next token, closes the policy's stream (which ends its generation thread) and ends with
a stopped state showing the partial text and its reward. (Gradio's ``cancels=`` would drop the
event's stream, so the page would keep its last "Generating…" state for good, and would close the
generator on the server's event loop, where waiting for the generation thread blocks every
request.) An API client's ``job.cancel()`` still closes the generator; the stream is then closed
in a thread of its own for the same reason. ``/reason`` streams the same updates to API clients.
"""
from __future__ import annotations

import gc
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

import gradio as gr

from tinyr1.app.guard import LimitError, UploadLedger, check_reason, md_text, relative_paths
from tinyr1.app.policies import PolicyCatalog, rescan_policies, select_policy
from tinyr1.app.settings import (
    DEFAULT_QUESTION,
    FRAME_SIDE,
    MODEL_QUEUE,
    OPTION_LETTERS,
    QUANTIZATIONS,
    STREAM_INTERVAL,
    THUMB_SIDE,
    zero_gpu,
)
from tinyr1.app.tables import PART_ORDER, TABLE_WIDTHS, empty_table, reward_chart, reward_summary, reward_table
from tinyr1.format import LETTERS, partial_view
from tinyr1.rewards import RewardConfig, score

# ------------------------------------------------------------------------------------ examples


#: The shipped examples' manifest under ``assets/examples/`` (a JSONL dataset with a ``label``
#: and a ``kind`` per row: "world" or "real"), made and checked by bench/make_examples.py.
EXAMPLES_MANIFEST = "examples.jsonl"


@dataclass(frozen=True)
class Example:
    """One row of the Examples table: ``row`` is ``[video, question, A, B, C, D, answer]``;
    ``label`` is what the table shows (which kind of clip it is)."""

    row: list[str]
    label: str
    kind: str  # "world" (synthetic, the policy's own kind of clip), "real", or "clip" (no question)


def load_examples(root: str | Path, per_file: int = 8, limit: int = 16) -> list[Example]:
    """The Examples table of an app root: ``assets/examples/examples.jsonl`` in its order when
    there is one; otherwise every JSONL under ``assets/examples/`` (a world split's rows: the first
    ``per_file`` with at most four options), then the videos no JSONL names, with the generic
    question and no options. A file that cannot be read is skipped with a message in the log."""
    folder = Path(root) / "assets" / "examples"
    if not folder.is_dir():
        return []
    manifest = folder / EXAMPLES_MANIFEST
    jsonls = [manifest] if manifest.is_file() else sorted(folder.rglob("*.jsonl"))
    out: list[Example] = []
    named: set[str] = set()
    for jsonl in jsonls:
        for item in _dataset_rows(jsonl, per_file if jsonl != manifest else limit):
            options = [str(o) for o in (item.options or [])] + [""] * (len(OPTION_LETTERS) - len(item.options or []))
            video = str(Path(item.video).resolve())
            kind = str(item.extra.get("kind") or ("world" if item.family else "real"))
            label = str(item.extra.get("label") or (f"world clip · {item.family.replace('_', ' ')}" if item.family
                                                      else f"real clip · {Path(video).name}"))
            out.append(Example([video, item.question, *options, item.answer or ""], label, kind))
            named.add(video)
    if not manifest.is_file():
        for video in sorted(p for ext in ("mp4", "webm", "mov", "avi", "mkv") for p in folder.rglob(f"*.{ext}")):
            if str(video.resolve()) not in named:
                row = [str(video.resolve()), DEFAULT_QUESTION, "", "", "", "", ""]
                out.append(Example(row, f"clip, no question · {video.name}", "clip"))
    return out[:limit]


def _dataset_rows(jsonl: Path, limit: int) -> list[Any]:
    """Up to ``limit`` rows of an example JSONL whose video exists and which has at most four
    options; [] (with a message in the log) when the file cannot be read: an example file must
    never stop the app from starting."""
    from tinyr1.data import load_dataset

    try:
        items = load_dataset(jsonl)
    except Exception as exc:
        print(f"[tinyr1.app] skipping examples in {jsonl}: {exc}")
        return []
    fit = [i for i in items if Path(i.video).is_file() and len(i.options or []) <= len(OPTION_LETTERS)]
    return fit[:limit]


def find_examples(root: str | Path, per_file: int = 8, limit: int = 16) -> list[list[str]]:
    """The Examples table's rows ``[video, question, A, B, C, D, answer]`` (``load_examples``)."""
    return [e.row for e in load_examples(root, per_file, limit)]


# ------------------------------------------------------------------------------- input helpers


def collect_options(*boxes: str | None) -> list[str] | None:
    """The filled option boxes, in order; ``None`` when all are empty. Gaps are an input error
    (option C without B would shift every letter after it)."""
    texts = [(b or "").strip() for b in boxes]
    last = max((i for i, t in enumerate(texts) if t), default=-1)
    if last < 0:
        return None
    missing = [LETTERS[i] for i in range(last + 1) if not texts[i]]
    if missing:
        raise ValueError(f"option {', '.join(missing)} is empty but a later one is filled: fill the options in order A, B, C, D")
    if last == 0:
        raise ValueError("one option is not a choice: give at least A and B, or leave the options empty")
    return texts[: last + 1]


def check_truth(answer: str | None, options: Sequence[str] | None) -> None:
    """ValueError when the correct answer is a letter no option has ("E" with options A-D): the
    accuracy reward would then call every answer wrong. Option text and free text pass."""
    truth = (answer or "").strip()
    if not options or len(truth) != 1 or not truth.isalpha():
        return
    letters = LETTERS[: len(options)]
    if truth.upper() not in letters and truth.lower() not in (o.strip().lower() for o in options):
        raise ValueError(f"the correct answer {truth!r} is not one of the options {letters[0]}–{letters[-1]}: "
                         "give the letter of a filled option, or its text")


# ------------------------------------------------------------------------------------- frames


def frame_gallery(frames: np.ndarray, timestamps: Sequence[float], side: int = THUMB_SIDE) -> list[tuple[np.ndarray, str]]:
    """(thumbnail, caption "#i · 1.25 s": the frame's number and its time in the video) per frame."""
    from PIL import Image

    items = []
    for i, (frame, t) in enumerate(zip(frames, timestamps)):
        image = Image.fromarray(np.ascontiguousarray(frame))
        image.thumbnail((side, side))
        items.append((np.asarray(image), f"#{i + 1} · {float(t):.2f} s"))
    return items


def save_frames(items: Sequence[tuple[np.ndarray, str]], folder: Path) -> list[tuple[str, str]]:
    """Thumbnails written as JPEG files in ``folder``: (path, caption) for the gallery.

    Files, not arrays: gradio 6.31 saves an array under a name derived from its content and
    rewrites that file on every request that shows the same frame (two people on the same example),
    truncating it while another client downloads it. A file is copied into the cache atomically,
    once."""
    from PIL import Image

    out = []
    for i, (image, caption) in enumerate(items):
        path = folder / f"frame_{i:03d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        out.append((str(path), caption))
    return out


def show_frames(items: Sequence[tuple[np.ndarray, str]] | None) -> Iterator[list[tuple[str, str]]]:
    """The gallery's value for the frames a run saw: JPEG files in a fresh folder, removed once
    gradio has copied them into its cache (by the time the generator is resumed)."""
    folder = Path(tempfile.mkdtemp(prefix="tinyr1-frames-"))
    try:
        yield save_frames(items or [], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------ Reason


@dataclass
class ReasonStep:
    """One streamed state of a Reason run (what every panel shows at that moment)."""

    status: str
    frames: list[tuple[np.ndarray, str]] | None = None  # set once, when the frames are loaded
    think: str = ""
    answer: str = ""
    table: pd.DataFrame | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # a message for the person (bad upload, bad input): shown, not raised
    banner: str | None = None  # the policy banner, once the policy is loaded


class Workbench(PolicyCatalog):
    """What one app holds: the repo root (assets, runs), how to load policies and frames, and the
    policy currently loaded (one at a time: a second would double the memory a Space pays for).
    The policy list is its ``PolicyCatalog``'s."""

    def __init__(
        self,
        root: str | Path,
        *,
        policy_loader: Callable[..., Any] | None = None,
        frame_loader: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(root)
        self._policy_loader = policy_loader
        self._frame_loader = frame_loader
        self._loaded: tuple[tuple[str, str | None], Any] | None = None
        self._lock = threading.Lock()  # the GRPO tab and Reason may both ask for a policy
        # Only generation runs inside a ZeroGPU call: loading stays in the main process, where it
        # happens once (at start-up for the default policy, tinyr1.app.build_app). Its arguments
        # are plain data (ZeroGPU pickles them to its worker); the policy comes from the cache.
        self.generate = zero_gpu(self._generate)
        #: Bytes uploaded per browser session (Reason's videos and the GRPO tab's datasets).
        self.uploads = UploadLedger()

    def option(self, key: str | None) -> Any:
        """The pickers' options, and what an API client may name besides: ``runs/NAME/final`` (the
        same as ``runs/NAME``) and a run's checkpoint, ``runs/NAME/checkpoints/step-NNNNNN``."""
        found = super().option(key)
        if found is not None or not key:
            return found
        parts = key.strip().strip("/").split("/")
        if len(parts) == 3 and parts[0] == "runs" and parts[2] == "final":
            return super().option("/".join(parts[:2]))
        if len(parts) == 4 and parts[0] == "runs" and parts[2] == "checkpoints" and parts[3].startswith("step-"):
            from tinyr1.registry import PolicyOption

            base = (Path(self.root) / "runs").resolve()
            folder = (base / parts[1] / "checkpoints" / parts[3]).resolve()
            if folder.parent.parent.parent == base and (folder / "config.json").is_file():
                return PolicyOption(key="/".join(parts), label="/".join(parts), target=str(folder))
        return None

    def loaded_description(self, target: str) -> dict[str, Any] | None:
        if self._loaded and self._loaded[0][0] == target:
            return _describe(self._loaded[1])
        return None

    def fresh_policy(self, target: str) -> Any:
        """A newly loaded, unquantized copy of a policy, never the cached one (GRPO trains it in
        place, and it is the KL reference's source)."""
        loader = self._policy_loader
        if loader is None:
            from tinyr1.policy import load_policy as loader
        return loader(target, quantization=None)

    # -- loading
    def load_policy(self, label: str, quantization: str | None) -> Any:
        """The policy behind ``label`` (cached: a Reason run after the first starts at once)."""
        option = self.option(label)
        if option is None:
            raise ValueError(self.why_unavailable(label))
        key = (option.target, None if quantization in (None, "", "none") else quantization)
        with self._lock:
            if self._loaded is None or self._loaded[0] != key:
                self._loaded = None  # drop the old one before loading the next: one in memory at a time
                gc.collect()
                loader = self._policy_loader
                if loader is None:
                    from tinyr1.policy import load_policy as loader
                self._loaded = (key, loader(key[0], quantization=key[1]))
            return self._loaded[1]

    def load_frames(self, video: str, num_frames: int) -> Any:
        """``num_frames`` frames sampled uniformly (tinyr1.video), decoded at most FRAME_SIDE
        pixels on their long side: the policy resizes to its own input (384 px for the real
        one) anyway, and 16 frames of a 4K video would otherwise hold 400 MB per request."""
        if self._frame_loader is not None:
            return self._frame_loader(video, num_frames=num_frames)
        from tinyr1.video import load_frames, probe

        meta = probe(video)
        scale = FRAME_SIDE / max(meta.width, meta.height, 1)
        size = None
        if scale < 1:
            size = (max(2, round(meta.height * scale)), max(2, round(meta.width * scale)))
        return load_frames(video, num_frames, size=size)

    # -- the Reason run
    def reason(
        self,
        video: str | None,
        question: str,
        options: Sequence[str] | None = None,
        answer: str | None = None,
        policy: str | None = None,
        *,
        num_frames: int = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        quantization: str = "none",
        config: RewardConfig = RewardConfig(),
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[ReasonStep]:
        """Stream one answer: frames first, then the think and answer text with the reward of the
        text so far, then the final result. Bad input ends the stream with ``error`` set;
        ``should_stop()`` turning true ends it at the next token with the partial text scored
        (``result["stopped"]``)."""
        stopped = should_stop or (lambda: False)
        started = time.perf_counter()
        answer = (answer or "").strip() or None
        options = list(options) if options else None
        try:  # before any model work: a 1 MB question is refused here, in microseconds
            check_reason(question or "", options, num_frames=int(num_frames or 0), max_new_tokens=int(max_new_tokens))
            check_truth(answer, options)
        except LimitError as exc:
            yield _fail(str(exc), self.root)
            return
        except ValueError as exc:
            yield _fail(str(exc)[0].upper() + str(exc)[1:] + ".", self.root)
            return
        prepared: dict[str, Any] = {}
        yield from self._prepare(video, question, policy, num_frames, quantization, prepared)
        if not prepared:
            return
        clip, n, result = prepared["clip"], prepared["n"], prepared["result"]
        if stopped():  # Stop while the policy or the frames were loading
            yield self._step("", answer, options, config, result, started, done=True, stopped=True)
            return

        from tinyr1.policy import GenerationSettings, PolicyError  # only here: the import pulls in torch

        try:
            settings = GenerationSettings(
                max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_p=float(top_p),
                seed=int(seed), num_frames=n,
            )
        except ValueError as exc:  # PolicyError: a setting out of range, said plainly
            yield _fail(f"Bad generation settings: {exc}", self.root)
            return
        text, last, interrupted = "", 0.0, False
        stream = self.generate(prepared["policy"], quantization, clip.frames, question, options, settings)
        closed_from_outside = True  # until the loop below ends by itself
        try:
            for text in stream:
                if stopped():
                    interrupted = True
                    break
                now = time.perf_counter()
                if now - last < STREAM_INTERVAL:
                    continue  # the final text is yielded after the loop in any case
                last = now
                yield self._step(text, answer, options, config, result, started, done=False)
            closed_from_outside = False
        except PolicyError as exc:  # the prompt and max new tokens do not fit the context: refused
            closed_from_outside = False
            yield _fail(str(exc), self.root)
            return
        except Exception as exc:
            closed_from_outside = False
            traceback.print_exc()
            yield _fail(f"Generation failed: {type(exc).__name__}: {exc}", self.root)
            return
        finally:
            _close_stream(stream, in_thread=closed_from_outside)
        yield self._step(text, answer, options, config, result, started, done=True, stopped=interrupted)

    def _generate(self, policy: str, quantization: str | None, frames: Any, question: str,
                  options: list[str] | None, settings: Any) -> Iterator[str]:
        """The policy's text so far, streamed (the part of Reason that needs the accelerator)."""
        stream = self.load_policy(policy, quantization).stream(frames, question, options, settings)
        try:
            yield from stream
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # on Stop: ends the policy's generation thread too

    def _prepare(self, video: str | None, question: str, policy: str | None, num_frames: int, quantization: str,
                 out: dict[str, Any]) -> Iterator[ReasonStep]:
        """The checks, the policy and the frames of a Reason run, as streamed steps; ``out`` gets
        model, clip, n (frames) and result when all went well, and stays empty otherwise."""
        if not video:
            yield _fail("No video: upload a clip or pick one of the examples below.", self.root)
            return
        if not (question or "").strip():
            yield _fail("The question is empty: ask something about the video.", self.root)
            return
        policy = policy or self.default_policy()
        if policy is None:
            yield _fail("No policy available: the Policies table under the picker says how to get one.", self.root)
            return

        yield ReasonStep(status=f"Loading policy **{policy}**…")
        try:
            model = self.load_policy(policy, quantization)
        except Exception as exc:  # a missing/broken checkpoint or a quantization this machine lacks
            yield _fail(f"Could not load policy {policy!r}: {exc}", self.root)
            return
        banner = self.banner(policy)
        n = int(num_frames) if num_frames and int(num_frames) > 0 else int(getattr(model, "num_frames", 16) or 16)

        try:
            clip = self.load_frames(video, n)
        except Exception as exc:
            if type(exc).__name__ != "VideoError":  # VideoError already says what is wrong
                traceback.print_exc()
                exc = f"could not read this video ({type(exc).__name__}: {exc})"
            yield _fail(f"{str(exc).rstrip('.')}. Upload a video file (mp4, webm, mov…) that plays in a video player.", self.root)
            return
        frames = frame_gallery(clip.frames, clip.timestamps)
        head, sep, tail = banner.partition("\n\n")  # in the policy's line, before any how-to paragraph
        banner = f"{head} · **{len(frames)} frames this run**{sep}{tail}"  # the policy's own count may differ
        meta = getattr(clip, "meta", None)
        clip_info = f"{len(frames)} frames of a {getattr(meta, 'duration', 0) or 0:.1f} s clip" if meta else f"{len(frames)} frames"
        result: dict[str, Any] = {
            "policy": policy,
            "timestamps": [round(float(t), 3) for t in clip.timestamps],
            "done": False,
            "error": None,
        }
        yield ReasonStep(status=f"Generating with **{policy}** on {clip_info}…", frames=frames, banner=banner, result=dict(result))
        out.update(model=model, clip=clip, n=n, result=result, policy=policy)

    @staticmethod
    def _step(
        text: str,
        answer: str | None,
        options: list[str] | None,
        config: RewardConfig,
        result: dict[str, Any],
        started: float,
        done: bool,
        stopped: bool = False,
    ) -> ReasonStep:
        think, said = partial_view(text)
        b = score(text, answer, options, config)
        seconds = time.perf_counter() - started
        result.update(completion=text, think=think, answer=said, reward=b.to_dict(), done=done, seconds=round(seconds, 3),
                      stopped=stopped)
        if stopped:
            status = (f"⏹ **Stopped** after {seconds:.1f} s: the reward of the partial text ({len(text)} characters) · "
                      + reward_summary(b))
        elif done:
            status = f"Done in {seconds:.1f} s · " + reward_summary(b)
        else:
            status = f"Generating… {len(text)} characters so far ({seconds:.1f} s)"
        return ReasonStep(status=status, think=think, answer=said, table=reward_table(b, config, generating=not done), result=dict(result))


def _close_stream(stream: Any, *, in_thread: bool) -> None:
    """Close the policy's stream, which stops its generation thread and waits for it. ``in_thread``
    when the Reason generator itself is being closed from outside (an API client's cancel): gradio
    does that on its event loop, which must not wait for a generation thread."""
    close = getattr(stream, "close", None)
    if close is None:
        return
    if in_thread:
        threading.Thread(target=close, name="tinyr1-close-stream", daemon=True).start()
    else:
        close()


def _fail(message: str, root: str | Path | None = None) -> ReasonStep:
    """The last step of a run that cannot go on: the message is shown (escaped: it may quote a
    file name or text someone sent), not raised; paths under ``root`` are shown relative to it."""
    if root is not None:
        message = relative_paths(message, root)
    return ReasonStep(status=f"⚠️ {md_text(message)}", error=message, result={"error": message, "done": True})


def _session(request: Any) -> str:
    """The browser session a request comes from ("" without one: a direct call)."""
    return str(getattr(request, "session_hash", None) or "")


def _describe(policy: Any) -> dict[str, Any] | None:
    describe = getattr(policy, "describe", None)
    try:
        described = describe() if describe is not None else None
    except Exception:  # a banner must never break a run
        return None
    return described if isinstance(described, dict) else None



# ------------------------------------------------------------------------------------ the tab


class ReasonTab:
    """The Reason tab's components and listeners; built inside a ``gr.Tab``. Its handlers are
    its methods (``reason`` is ``/reason``)."""

    def __init__(self, bench: Workbench, default_policy: str | None, quantization: str | None = None) -> None:
        self.bench = bench
        self.default_policy = default_policy
        self._stops: dict[str, threading.Event] = {}  # browser session -> its Reason run's stop event
        self.default_quantization = quantization or "none"
        # the opening policy's recommended settings (a registry policy's), as a later pick would set
        self.defaults = bench.recommended_settings(default_policy) or {}
        self.banner = gr.Markdown(bench.banner(default_policy), elem_id="tinyr1-banner", label="Policy banner")
        with gr.Row():
            with gr.Column(scale=5):
                self._inputs(bench.policy_choices())
            with gr.Column(scale=7):
                self._outputs()
        examples = load_examples(bench.root)
        if examples:
            # Labels say which clips are the policy's own kind (synthetic world) and which are real.
            gr.Examples(
                examples=[e.row for e in examples], inputs=[self.video, self.question, *self.opt_boxes, self.answer_truth],
                example_labels=[e.label for e in examples], label="Examples: world clips are what the tiny policy knows; the real clip is not",
                examples_per_page=8, elem_id="reason-examples",
            )
        self._wire()

    def _inputs(self, choices: list[tuple[str, str]]) -> None:
        self.video = gr.Video(label="Video", sources=["upload"], elem_id="reason-video", height=260)
        self.question = gr.Textbox(label="Question", value=DEFAULT_QUESTION, lines=2, elem_id="reason-question")
        with gr.Accordion("Options (optional, multiple choice A–D)", open=True):
            with gr.Row():
                self.opt_boxes = [
                    gr.Textbox(value="", label=f"{letter}", placeholder=f"option {letter}",
                               elem_id=f"reason-option-{letter.lower()}", min_width=80)
                    for letter in OPTION_LETTERS
                ]
        self.answer_truth = gr.Textbox(
            value="", label="Correct answer (optional)", info="a letter or the option's text; enables the accuracy reward",
            elem_id="reason-truth",
        )
        with gr.Row():
            self.policy_dd = gr.Dropdown(
                choices=choices, value=self.default_policy, label="Policy", elem_id="reason-policy", scale=4,
                allow_custom_value=True,  # /reason takes runs/NAME/final or a run's checkpoint too; option() checks it
                info="the registry's policies that are here or downloadable, then runs/NAME/final",
            )
            self.refresh = gr.Button("↻ Rescan", scale=1, size="sm")
        with gr.Accordion("Policies: size, memory, how to get the missing ones", open=False):
            self.policy_md = gr.Markdown(self.bench.policy_info(), elem_id="reason-policy-info")
        with gr.Accordion("Generation settings", open=False):
            d = self.defaults
            self.frames = gr.Slider(0, 32, value=d.get("frames", 0), step=1, label="Frames sampled (0 = the policy's own)",
                                    elem_id="reason-frames-n")
            self.temperature = gr.Slider(0, 2, value=d.get("temperature", 0.0), step=0.05, label="Temperature (0 = greedy)",
                                         elem_id="reason-temperature")
            self.top_p = gr.Slider(0.05, 1, value=d.get("top_p", 1.0), step=0.05, label="Top-p", elem_id="reason-top-p")
            self.max_new = gr.Slider(16, 1024, value=d.get("max_new_tokens", 256), step=16, label="Max new tokens",
                                     elem_id="reason-max-new")
            self.seed = gr.Number(value=d.get("seed", 0), precision=0, label="Seed")
            self.quant = gr.Radio(list(QUANTIZATIONS), value=self.default_quantization,
                                  label="Quantization (nf4/int8 need bitsandbytes and a CUDA GPU)", elem_id="reason-quant")
        with gr.Row():
            self.run = gr.Button("Reason", variant="primary", elem_id="reason-run")
            self.stop = gr.Button("Stop", variant="stop", elem_id="reason-stop")

    def _outputs(self) -> None:
        self.status = gr.Markdown("Upload a clip (or pick an example), then press **Reason**.", elem_id="reason-status",
                                  label="Status")
        self.gallery = gr.Gallery(
            label="Frames the policy sees (number · time in the video)", columns=8, height=240,
            object_fit="contain", elem_id="reason-frames", preview=False,
        )
        # The frames travel through a State, which gradio keeps out of the API: /reason's outputs
        # stay plain JSON values on every streamed update (a gallery slot would be files, sent
        # once, and gradio's "unchanged" marker after), and the gallery fills from the State's
        # change event. The times of the frames are in the result JSON (``timestamps``).
        self.frames_state = gr.State(None)
        self.think = gr.Textbox(label="Think", lines=6, max_lines=14, autoscroll=True, elem_id="reason-think")
        self.answer_out = gr.Textbox(label="Answer", lines=1, elem_id="reason-answer")
        with gr.Row(equal_height=False):
            self.chart = gr.BarPlot(
                value=reward_chart(empty_table()), x="part", y="value", y_lim=[-2.2, 2.2],  # ±(r0 + r1 + r2)
                sort=PART_ORDER, height=260, scale=2, min_width=260,
                title="Reward of the text so far", label="Reward chart", elem_id="reason-chart", x_title=" ",
            )
            self.table = gr.Dataframe(
                value=empty_table(), label="Reward breakdown", elem_id="reason-table",
                interactive=False, wrap=True, scale=3, column_widths=TABLE_WIDTHS,
            )
        with gr.Accordion("Result as JSON (what /reason returns last)", open=False):
            self.result = gr.JSON(label="Result", elem_id="reason-json")

    def _wire(self) -> None:
        inputs = [self.video, self.question, *self.opt_boxes, self.answer_truth, self.policy_dd, self.frames,
                  self.temperature, self.top_p, self.max_new, self.seed, self.quant]
        outputs = [self.status, self.frames_state, self.think, self.answer_out, self.chart, self.table, self.result,
                   self.banner]
        # Arm first (at once, outside the queue), so that a Stop pressed while the run still waits
        # for the model stops it too; then the run itself, which Stop ends with a stopped state.
        self.run.click(self.arm, api_visibility="private", queue=False).then(
            self.reason, inputs=inputs, outputs=outputs, api_name="reason",
            concurrency_id=MODEL_QUEUE, concurrency_limit=1)
        self.stop.click(self.request_stop, api_visibility="private", queue=False)
        # Its own queue without a limit: showing frames never waits for a model.
        self.frames_state.change(show_frames, inputs=self.frames_state, outputs=self.gallery, api_visibility="private",
                                 concurrency_id="frames", concurrency_limit=None)
        self.policy_dd.change(
            self.select_policy, inputs=self.policy_dd,
            outputs=[self.banner, self.frames, self.temperature, self.top_p, self.max_new, self.seed],
            api_visibility="private", queue=False,
        )
        self.refresh.click(self.rescan, inputs=self.policy_dd, outputs=[self.policy_dd, self.policy_md],
                           api_visibility="private", queue=False)

    def reason(
        self,
        video: str | None,
        question: str,
        option_a: str = "",
        option_b: str = "",
        option_c: str = "",
        option_d: str = "",
        answer: str = "",
        policy: str | None = None,
        frames: float = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: float = 256,
        seed: float = 0,
        quantization: str = "none",
        request: gr.Request | None = None,
    ) -> Iterator[dict[Any, Any]]:
        """Stream the policy's think text and answer on a video, with the live reward. Outputs:
        status, think, answer, reward chart, reward table, result JSON (its `reward` holds the
        breakdown, `timestamps` the times of the frames the policy saw; `done` is true on the last
        update, `stopped` when Stop ended it early), policy banner."""
        try:
            options = collect_options(option_a, option_b, option_c, option_d)
            # The upload counts against its session's total (the server already bounds each file).
            self.bench.uploads.charge(getattr(request, "session_hash", None), [video])
        except ValueError as exc:  # LimitError is a ValueError
            gr.Warning(str(exc))
            yield {self.status: f"⚠️ {md_text(str(exc))}", self.frames_state: [], self.think: "", self.answer_out: "",
                   self.chart: reward_chart(empty_table()), self.table: empty_table(),
                   self.result: {"error": str(exc), "done": True}, self.banner: self.bench.banner(policy or self.default_policy)}
            return
        session = _session(request)
        stop = self._stops.setdefault(session, threading.Event())  # armed by the click, or new (an API call)
        # Every output on every update, so that an API client gets plain values, never gradio's
        # "unchanged" marker; the frames (a State, outside the API) go once per run.
        shown: dict[Any, Any] = {self.status: "", self.think: "", self.answer_out: "",
                                 self.chart: reward_chart(empty_table()), self.table: empty_table(), self.result: {},
                                 self.banner: self.bench.banner(policy or self.default_policy)}
        first = True  # the first update clears the last run's frames
        try:
            for step in self.bench.reason(
                video, question, options, answer, policy or self.default_policy,
                num_frames=int(frames), temperature=temperature, top_p=top_p,
                max_new_tokens=int(max_new_tokens), seed=int(seed), quantization=quantization or self.default_quantization,
                should_stop=stop.is_set,
            ):
                update = self._show(step)
                frames_now = update.pop(self.frames_state, None)
                shown.update(update)
                if frames_now is not None or first:
                    yield {**shown, self.frames_state: frames_now if frames_now is not None else []}
                else:
                    yield dict(shown)
                first = False
        finally:
            if self._stops.get(session) is stop:
                del self._stops[session]  # a Stop pressed after the run has nothing to stop

    def arm(self, request: gr.Request | None = None) -> None:
        """A Reason click: a fresh stop event for this browser session (before the run is queued)."""
        self._stops[_session(request)] = threading.Event()

    def request_stop(self, request: gr.Request | None = None) -> None:
        """Stop: the session's run ends at its next token with a stopped state (see the module
        docstring); nothing happens when no run is armed or running."""
        stop = self._stops.get(_session(request))
        if stop is not None:
            stop.set()

    def _show(self, step: ReasonStep) -> dict[Any, Any]:
        """The outputs a step changes (the frames once, the text and reward while it streams)."""
        if step.error:
            gr.Warning(step.error)
        update: dict[Any, Any] = {self.status: step.status, self.result: step.result}
        if step.frames is not None:
            update[self.frames_state] = step.frames
        if step.table is not None:
            update.update({self.think: step.think, self.answer_out: step.answer, self.chart: reward_chart(step.table),
                           self.table: step.table})
        if step.banner:
            update[self.banner] = step.banner
        return update

    def select_policy(self, key: str | None) -> dict[Any, Any]:
        # A registry policy brings its recommended settings; a folder keeps the ones chosen.
        components = dict(banner=self.banner, frames=self.frames, temperature=self.temperature, top_p=self.top_p,
                          max_new=self.max_new, seed=self.seed)
        return select_policy(self.bench, components, key)

    def rescan(self, current: str | None) -> tuple[Any, str]:
        return rescan_policies(self.bench, current), self.bench.policy_info()
