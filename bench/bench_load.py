"""The app under load: 16 concurrent ``gradio_client`` requests to ``/reason`` on a local server,
alone and while a GRPO run (``/train``) trains in the app's training worker.

    .venv/bin/python bench/bench_load.py                     # prints a table; exits 1 on a failure
    .venv/bin/python bench/bench_load.py --write-docs        # also (re)writes the section in docs/BENCHMARKS.md

The server is the real app (``tinyr1.app.build_app``) in its own process, on the embedded tiny
policy when ``assets/policies`` holds one, else on a tiny random policy made for the run. For each
queue size (the default, then a small one that must turn requests away) all requests start at once
and each must end in one of two ways: answered (the final result is done, no error) or cleanly
turned away by the full queue (gradio's "Queue is full"). Anything else is a server error. The
server's resident memory (RSS) is sampled every 0.1 s: its growth over the runs must stay bounded.
With ``--train`` scenarios (the default adds them), a long ``/train`` run is started first and must
still be training when the requests end; a second ``/train`` meanwhile must be told "busy" at once.
The root is a copy (the shipped policies, or a tiny random one) so that runs never land in the repo.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## App under load"
#: RSS growth allowed over all the runs (MB): a leak of one frame set per request would pass it
#: only for tiny clips, and one policy copy per request would not.
RSS_GROWTH_LIMIT_MB = 300

SERVER = r"""
import sys
from pathlib import Path
from tinyr1.app import build_app, launch_kwargs
root = Path(sys.argv[1])
demo = build_app(root)
demo.launch(server_port=int(sys.argv[2]), quiet=True, **launch_kwargs(root))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_root(tmp: Path) -> tuple[Path, str, dict]:
    """A copy of a root holding the policies (runs are written under it, never in the repo) and one world clip."""
    from tinyr1.world import write_split

    sys.path.insert(0, str(ROOT / "tests"))
    from app_support import make_root, shipped_policies  # the shipped policies (or a random one) and clips

    root = make_root(tmp / "root", world_examples=0, bare_clip=False)
    which = ("embedded tiny policy (assets/policies, a copy)" if shipped_policies()
             else "tiny random policy (no embedded one yet)")
    from tinyr1.data import load_dataset

    item = load_dataset(write_split("test", 1, tmp / "clip", progress=False))[0]  # absolute video path
    return root, which, {"video": item.video, "question": item.question, "options": item.options, "answer": item.answer}


class Server:
    def __init__(self, root: Path, queue_size: int) -> None:
        import psutil

        self.port = _free_port()
        env = {**os.environ, "TINYR1_QUEUE_SIZE": str(queue_size), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        # The server's own log: a traceback there is a server error even when every client got an answer.
        self.log = tempfile.NamedTemporaryFile(prefix="tinyr1-load-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(root), str(self.port)], env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.ps = psutil.Process(self.proc.pid)
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "config", timeout=2)
                break
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError("the server exited while starting")
                time.sleep(0.3)
        else:
            raise RuntimeError("the server did not start in 120 s")
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in [self.ps, *self.ps.children(recursive=True)]) / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.rss_mb())
            except Exception:
                pass
            time.sleep(0.1)

    def close(self) -> str:
        """Stop the server; return its log."""
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        text = Path(self.log.name).read_text(errors="replace")
        Path(self.log.name).unlink(missing_ok=True)
        return text


def _one_request(url: str, row: dict, max_new_tokens: int, seed: int) -> tuple[str, float, str]:
    from gradio_client import Client, handle_file

    started = time.perf_counter()
    try:
        client = Client(url, verbose=False)
        options = (row.get("options") or []) + [""] * 4
        out = client.predict(
            video=handle_file(row["video"]), question=row["question"],
            option_a=options[0], option_b=options[1], option_c=options[2], option_d=options[3],
            answer=row.get("answer") or "", max_new_tokens=max_new_tokens, temperature=1.0, seed=seed,
            api_name="/reason",
        )
        result = out[5]
        if isinstance(result, dict) and result.get("done") and not result.get("error") and "reward" in result:
            return "answered", time.perf_counter() - started, ""
        return "error", time.perf_counter() - started, f"unexpected result: {str(result)[:200]}"
    except Exception as exc:  # noqa: BLE001 - classified below
        kind = "turned away" if "queue is full" in str(exc).lower() else "error"
        return kind, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


#: The /train run kept busy during a scenario: long enough to outlast the requests, small steps.
TRAIN = dict(data_source="world", world_n=8, preset="tiny", prompts_per_step=2, num_generations=2,
             max_new_tokens=16, eval_before=False, eval_n=0, steps=100_000)


def _start_training(url: str) -> tuple[object, float]:
    """A long /train run, followed until its first step; then a second Start, which must be told
    "busy" at once: (the run's job, seconds the second Start took)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    job = client.submit(**TRAIN, api_name="/train")
    deadline = time.time() + 300
    while not any(isinstance(o[8], dict) and o[8].get("phase") == "step" for o in job.outputs()):
        if time.time() > deadline or job.done():
            raise RuntimeError(f"/train did not reach its first step: {[o[0] for o in job.outputs()][-3:]}")
        time.sleep(0.1)
    started = time.perf_counter()
    second = client.predict(**{**TRAIN, "steps": 2}, api_name="/train")
    if second[8].get("phase") != "busy":
        raise RuntimeError(f"a second Start was not told busy: {second[0]}")
    return job, time.perf_counter() - started


def run_scenario(root: Path, row: dict, queue_size: int, n: int, max_new_tokens: int, train: bool = False) -> dict:
    from gradio_client import Client

    server = Server(root, queue_size)
    busy_s, still_training = None, None
    try:
        warm = _one_request(server.url, row, max_new_tokens, seed=0)  # loads the policy once
        if warm[0] != "answered":
            raise RuntimeError(f"warm-up request failed: {warm[2]}")
        if train:
            job, busy_s = _start_training(server.url)
        rss_before = server.rss_mb()
        started = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            outcomes = list(pool.map(lambda i: _one_request(server.url, row, max_new_tokens, seed=i + 1), range(n)))
        wall = time.perf_counter() - started
        after = _one_request(server.url, row, max_new_tokens, seed=99)  # still serving?
        if train:
            still_training = not job.done()
            Client(server.url, verbose=False).predict(api_name="/stop_training")
        time.sleep(0.3)
        rss_after = server.rss_mb()
        peak = max(server.samples or [rss_after])
    finally:
        log = server.close()
    kinds = [o[0] for o in outcomes]
    answered = [o[1] for o in outcomes if o[0] == "answered"]
    return {
        "queue_size": queue_size,
        "training": train,
        "still_training": still_training,
        "busy_answer_s": busy_s,
        "requests": n,
        "answered": kinds.count("answered"),
        "turned_away": kinds.count("turned away"),
        "errors": kinds.count("error") + log.count("Traceback"),
        "server_log_tracebacks": log.count("Traceback"),
        "error_messages": sorted({o[2] for o in outcomes if o[0] == "error"})[:5],
        "served_after": after[0] == "answered",
        "wall_s": wall,
        "latency_p50_s": statistics.median(answered) if answered else None,
        "latency_p95_s": sorted(answered)[max(0, round(0.95 * len(answered)) - 1)] if answered else None,
        "latency_max_s": max(answered) if answered else None,
        "rss_before_mb": rss_before,
        "rss_peak_mb": peak,
        "rss_after_mb": rss_after,
    }


def markdown(results: list[dict], which: str, args) -> str:
    import gradio

    lines = [
        SECTION,
        "",
        f"`python bench/bench_load.py --write-docs` ({time.strftime('%Y-%m-%d')}; {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, no GPU; Python {platform.python_version()}, gradio {gradio.__version__}). "
        f"{args.requests} `gradio_client` requests to `/reason` sent at once, each from its own client, on "
        f"the {which}, one world clip, up to {args.max_new_tokens} new tokens sampled at T = 1. Reason "
        "runs in one queue with concurrency 1; requests beyond the queue's size are turned away "
        "(gradio's \"Queue is full\"). *While training*: a `/train` run (tiny preset, G 2, 2 questions "
        "per step, 16 new tokens) trains in the app's training worker, outside that queue, from before "
        "the requests until after them; a second `/train` meanwhile is told \"busy\" (its answer time "
        "is shown). RSS is the server process's resident memory, sampled every 0.1 s.",
        "",
        "| queue size | while training | answered | turned away | errors (client or server log) | served after | "
        "second Start told busy in (s) | wall (s) | latency p50 / p95 / max (s) | RSS before → peak → after (MB) |",
        "|---:|:---:|---:|---:|---:|:---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lat = (f"{r['latency_p50_s']:.2f} / {r['latency_p95_s']:.2f} / {r['latency_max_s']:.2f}"
               if r["latency_p50_s"] is not None else "–")
        training = ("yes" if r["still_training"] else "STOPPED EARLY") if r["training"] else "no"
        busy = f"{r['busy_answer_s']:.2f}" if r["busy_answer_s"] is not None else "–"
        lines.append(
            f"| {r['queue_size']} | {training} | {r['answered']} | {r['turned_away']} | {r['errors']} "
            f"| {'yes' if r['served_after'] else 'NO'} | {busy} "
            f"| {r['wall_s']:.1f} | {lat} | {r['rss_before_mb']:.0f} → {r['rss_peak_mb']:.0f} → {r['rss_after_mb']:.0f} |"
        )
    lines += [
        "",
        "Every request was either answered or turned away at once by the full queue; no server error. "
        "Latency grows with the position in the queue (concurrency 1: one generation at a time, the "
        "rest wait), so a longer queue trades waiting time for fewer refusals; a run training at the "
        "same time shares the CPU cores but never the queue. "
        f"The check fails if RSS grows by more than {RSS_GROWTH_LIMIT_MB} MB.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace this section in the file (other engineers own the other sections), or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(SECTION + "\n")
    if start >= 0:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text.rstrip("\n") + ("\n" + old[end:] if end >= 0 else "\n")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--queue-sizes", type=int, nargs="+", default=None, help="default: the app's own, then 4")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--no-train", action="store_true", help="skip the scenarios with a /train run active")
    parser.add_argument("--write-docs", action="store_true", help="write the section into docs/BENCHMARKS.md")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tinyr1.app.settings import QUEUE_SIZE

    sizes = args.queue_sizes or [QUEUE_SIZE, 4]
    with tempfile.TemporaryDirectory(prefix="tinyr1-load-") as tmp:
        root, which, row = _make_root(Path(tmp))
        scenarios = [(q, False) for q in sizes] + ([] if args.no_train else [(q, True) for q in sizes])
        results = [run_scenario(root, row, q, args.requests, args.max_new_tokens, train) for q, train in scenarios]
    text = markdown(results, which, args)
    print(text)
    failed = [
        r for r in results
        if r["errors"] or not r["served_after"] or r["answered"] + r["turned_away"] != r["requests"]
        or (r["training"] and not r["still_training"])
        or r["rss_after_mb"] - r["rss_before_mb"] > RSS_GROWTH_LIMIT_MB
    ]
    for r in failed:
        print(f"FAILED at queue size {r['queue_size']}: {json.dumps(r, default=str)}", file=sys.stderr)
    if args.write_docs and not failed:
        write_section(ROOT / "docs" / "BENCHMARKS.md", text)
        print("wrote", ROOT / "docs" / "BENCHMARKS.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
