"""Record what the official Qwen2-VL video processor makes of fixed frames (the reference for
tinyr1's torchvision-free patchifier, tinyr1/models/qwen2_5_vl.py).

Run it in an environment WITH torchvision (it does not import beside tinyr1's CPU torch), outside
the repository's venv, e.g.:

    python3.11 -m venv /work/ref/tv-venv
    /work/ref/tv-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 && /work/ref/tv-venv/bin/pip install transformers==5.24.0
    /work/ref/tv-venv/bin/python bench/qwen_vl_patchify_reference.py --out tests/fixtures/qwen_vl_patchify

It writes ``cases.npz`` (per case: the uint8 frames, the processor's ``pixel_values_videos`` and
``video_grid_thw``) and ``cases.json`` (the settings of each case, smart_resize answers for a table
of sizes, the library versions). ``tests/test_models_qwen2_5_vl.py`` checks tinyr1 against them. This script
imports nothing from tinyr1 and is deterministic (seeded frames).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# (name, frames, height, width, min_pixels, max_pixels, why)
CASES = [
    ("upscale_odd_frames", 3, 30, 40, 56 * 56, 28 * 28 * 1280, "below min_pixels: up to 56 x 84; 3 frames padded to 4 (last repeated)"),
    ("downscale", 2, 90, 60, 28 * 28, 28 * 28 * 2, "above max_pixels: the floor branch, 28 x 28"),
    ("min_pixels", 2, 10, 17, 56 * 56, 28 * 28 * 1280, "far below min_pixels: the ceil branch, 56 x 84"),
    ("no_resize", 4, 56, 28, 28 * 28, 28 * 28 * 1280, "already multiples of 28: no resampling"),
    ("wide_many", 5, 20, 100, 28 * 28, 28 * 28 * 8, "wide frames, 5 frames -> t = 3"),
]
# smart_resize answers for typical video sizes at the processor defaults and at Video-R1's settings.
SIZES = [(480, 640), (720, 1280), (1080, 1920), (240, 320), (64, 64), (360, 480), (1280, 720), (50, 9000)]
PIXEL_SETTINGS = [
    ("processor_default", 128 * 28 * 28, 768 * 28 * 28),
    ("video_r1_train", 3136, 128 * 28 * 28),
    ("video_r1_eval", 3136, 256 * 28 * 28),
]


def frames_for(name: str, n: int, h: int, w: int) -> np.ndarray:
    seed = sum(ord(c) for c in name)
    rng = np.random.default_rng(seed)
    # smooth structure plus noise, so resampling differences would show
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 / max(w - 1, 1)), (yy * 255 / max(h - 1, 1)), ((xx + yy) * 127 / max(h + w - 2, 1))], -1)
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        noise = rng.integers(-60, 61, (h, w, 3))
        out[t] = np.clip(base + noise + 10 * t, 0, 255).astype(np.uint8)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch
    import torchvision
    import transformers
    from transformers import Qwen2VLVideoProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import smart_resize

    args.out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    meta = {"cases": [], "smart_resize": [], "versions": {
        "torch": torch.__version__, "torchvision": torchvision.__version__, "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability()}}
    for name, n, h, w, lo, hi, why in CASES:
        frames = frames_for(name, n, h, w)
        proc = Qwen2VLVideoProcessor(size={"shortest_edge": lo, "longest_edge": hi})
        out = proc(videos=[frames], return_tensors="pt", cap_pixels_per_frame=False)
        pv = out["pixel_values_videos"].numpy().astype(np.float32)
        grid = out["video_grid_thw"].numpy().astype(np.int64)
        arrays[f"{name}/frames"] = frames
        arrays[f"{name}/pixel_values_videos"] = pv
        arrays[f"{name}/video_grid_thw"] = grid
        meta["cases"].append({"name": name, "frames": n, "height": h, "width": w, "min_pixels": lo, "max_pixels": hi,
                              "why": why, "grid": grid.tolist(), "rows": int(pv.shape[0]), "cols": int(pv.shape[1])})
        print(f"{name}: frames {frames.shape} -> pixel_values_videos {pv.shape}, grid {grid.tolist()}")
    for setting, lo, hi in PIXEL_SETTINGS:
        for h, w in SIZES:
            meta["smart_resize"].append({"setting": setting, "height": h, "width": w, "min_pixels": lo,
                                         "max_pixels": hi, "result": list(smart_resize(h, w, 28, lo, hi))})
    np.savez_compressed(args.out / "cases.npz", **arrays)
    (args.out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out}/cases.npz and cases.json")


if __name__ == "__main__":
    main()
