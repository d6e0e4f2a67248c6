"""The app's training worker: one GRPO run at a time, in a thread the app owns, apart from the
model queue that Reason uses. Gradio-free.

    worker = TrainingWorker()
    job = worker.submit(lambda should_stop: runner.start(world_n=64, steps=20, should_stop=should_stop))
    if isinstance(job, str):
        print(job)                       # "busy: a run is training, about 40 s left ..."
    else:
        for update in job.follow():      # any number of followers; the run does not depend on them
            print(update.status)
    worker.stop()                        # ends the run after its current step, with a checkpoint

Why a worker and not a listener: a GRPO run can last minutes, and a listener in the model queue
would hold every other visitor's Reason for that long; a listener outside it would end its run
when the browser tab closes. Here the run belongs to the app: a closed tab only stops following
it, a reopened one follows it again (``current().follow()``), and the next person who presses
Start is told at once that a run is training and about how long it has left.

Caps: every run the app starts is checked against ``tinyr1.limits`` (``GRPO_STEPS``, G, new
tokens ...) and stopped after ``GRPO_MINUTES`` by ``GRPORunner`` (tinyr1/app/guard.py), whatever
started it; the worker adds the one-at-a-time rule. ``is_public()`` (``TINYR1_PUBLIC=1``, or a
Hugging Face Space: ``SPACE_ID`` set) is reported by ``describe``.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from tinyr1.app.grpo_runner import TrainUpdate


def is_public() -> bool:
    """Whether the app serves strangers: ``TINYR1_PUBLIC`` set to 1/true/yes, or on a Space."""
    flag = os.environ.get("TINYR1_PUBLIC", "").strip().lower()
    return flag in ("1", "true", "yes") or bool(os.environ.get("SPACE_ID"))


class Job:
    """One run's updates, kept for its followers; ``stop`` asks it to end after its current step."""

    def __init__(self) -> None:
        self.updates: list[TrainUpdate] = []
        self.done = False
        self.stop = threading.Event()
        self.started = time.monotonic()
        self._cond = threading.Condition()
        self._paced: tuple[float, int] | None = None  # (time, step) of the first step seen

    @property
    def latest(self) -> TrainUpdate | None:
        return self.updates[-1] if self.updates else None

    def add(self, update: TrainUpdate) -> None:
        with self._cond:
            if update.phase == "step" and update.step and self._paced is None:
                self._paced = (time.monotonic(), update.step)
            self.updates.append(update)
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def seconds_left(self) -> float | None:
        """The steps left at the pace since the first step (None before the second step)."""
        latest = self.latest
        if self._paced is None or latest is None or latest.step <= self._paced[1]:
            return None
        since, first = self._paced
        pace = (time.monotonic() - since) / (latest.step - first)
        return max(0.0, pace * (latest.steps - latest.step))

    def follow(self, *, replay: int | None = None, poll: float = 1.0) -> Iterator[TrainUpdate]:
        """The run's updates as they come, until it ends. ``replay``: how many past updates to
        send first (None: all; a reopened tab needs only the latest, which carries the plots)."""
        with self._cond:
            i = 0 if replay is None else max(0, len(self.updates) - replay)
        while True:
            with self._cond:
                while i >= len(self.updates) and not self.done:
                    self._cond.wait(poll)
                new, ended = self.updates[i:], self.done
                i = len(self.updates)
            yield from new
            if ended and i >= len(self.updates):
                return


class TrainingWorker:
    """Runs one job at a time in a background thread; ``public``: whether the app serves strangers
    (default: ``is_public()``)."""

    def __init__(self, *, public: bool | None = None) -> None:
        self.public = is_public() if public is None else public
        self._job: Job | None = None
        self._lock = threading.Lock()

    def current(self) -> Job | None:
        """The job that is running, or None."""
        job = self._job
        return job if job is not None and not job.done else None

    def busy(self) -> str | None:
        """What the next person who presses Start is told while a run trains; None when idle."""
        job = self.current()
        if job is None:
            return None
        latest = job.latest
        where = f" (`{latest.run}`, step {latest.step}/{latest.steps})" if latest and latest.run else ""
        left = job.seconds_left()
        eta = f"about {left:.0f} s left" if left is not None else "starting, time left not known yet"
        return (f"busy: a run is training{where}, {eta}. One run trains at a time: try again when it ends "
                "(reload the page to follow it).")

    def submit(self, make: Callable[[Callable[[], bool]], Iterator[TrainUpdate]]) -> Job | str:
        """Start ``make(should_stop)``'s updates in the worker thread; the busy message instead
        when a run is training."""
        with self._lock:
            message = self.busy()
            if message is not None:
                return message
            job = Job()
            self._job = job
        threading.Thread(target=self._work, args=(job, make, job.stop.is_set), name="tinyr1-train", daemon=True).start()
        return job

    def _work(self, job: Job, make: Callable, should_stop: Callable[[], bool]) -> None:
        try:
            for update in make(should_stop):
                job.add(update)
        except Exception as exc:  # the runner says its own errors; this is one it did not expect
            traceback.print_exc()
            message = f"Training failed: {type(exc).__name__}: {exc}"
            job.add(TrainUpdate(status=f"⚠️ {message}", phase="error", error=message,
                                result={"phase": "error", "error": message, "done": True}))
        finally:
            job.finish()

    def stop(self, timeout: float = 120.0) -> TrainUpdate | None:
        """Ask the running job to stop after its current step and wait for it (up to ``timeout``
        s); its last update, or None when nothing was training."""
        job = self.current()
        if job is None:
            return None
        job.stop.set()
        with job._cond:
            job._cond.wait_for(lambda: job.done, timeout)
        return job.latest

    def describe(self) -> dict[str, Any]:
        job = self.current()
        return {"busy": job is not None, "public": self.public, "message": self.busy()}
