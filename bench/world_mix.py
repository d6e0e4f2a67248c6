"""Write the mixed GRPO training set of docs/RESULTS.md ("GRPO on world 3 with world-2 moving clips"):
the world-3 train split plus world-2 moving-colour clips, as one dataset for ``tinyr1 train --data``.

    .venv/bin/python bench/world_mix.py --out runs/mix                 # 2000 world-3 + 800 world-2 questions
    .venv/bin/python bench/world_mix.py --out runs/mix2 --world2-extra-n 600   # + 300 world-2 order, 300 direction
    tinyr1 train --policy runs/tiny-temporal/policy --data runs/mix/data.jsonl --steps 1000 --preset tiny \
        --seed 0 --max-new-tokens 96 --threads 1 --rewards format_accuracy consistency --reward-weights 1 0.5 \
        --out runs/gm-temporal

Why a mix: from the world-3 cold start, GRPO on world 3 alone barely moved moving colour (its
sampled accuracy there is near a three-way guess, so few groups have a right answer to
reinforce), while world 2's movers cross most of the frame and are right more often; its clips
give GRPO the signal and world 3's, where one frame says nothing, keep the answer on the motion.
Both splits are train splits (disjoint from every validation and test clip, tinyr1/world.py);
ids are prefixed ``w3-`` / ``w2-`` so they stay unique in the merged file.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINYR1 = [sys.executable, "-m", "tinyr1"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder: w3/, w2/ and the merged data.jsonl")
    p.add_argument("--world3-n", type=int, default=2000, help="world-3 train questions, every family (default 2000)")
    p.add_argument("--world2-n", type=int, default=800, help="world-2 train moving-colour questions (default 800)")
    p.add_argument("--world2-extra-n", type=int, default=0,
                   help="further world-2 train questions of --world2-extra-families (default 0): keeps what the "
                        "world-2 policy knew of those families while GRPO trains on world 3")
    p.add_argument("--world2-extra-families", nargs="+", default=["order", "direction"], metavar="FAMILY",
                   help="families of the extra world-2 questions, in equal numbers (default: order direction)")
    p.add_argument("--seed", type=int, default=0,
                   help="base seed of the train splits (default 0; the extra world-2 part uses seed + 1, so its "
                        "scenes are not the moving part's)")
    args = p.parse_args(argv)
    if args.world3_n < 1 or args.world2_n < 0 or args.world2_extra_n < 0:
        p.error("--world3-n must be >= 1, --world2-n and --world2-extra-n >= 0")
    parts = [("w3", args.seed, ["--n", str(args.world3_n), "--version", "3"])]
    if args.world2_n:
        parts.append(("w2", args.seed, ["--n", str(args.world2_n), "--version", "2", "--families", "moving_color"]))
    if args.world2_extra_n:
        parts.append(("w2x", args.seed + 1, ["--n", str(args.world2_extra_n), "--version", "2",
                                             "--families", *args.world2_extra_families]))
    rows = []
    for name, seed, flags in parts:
        folder = args.out / name
        subprocess.run([*TINYR1, "world", "--split", "train", "--seed", str(seed), "--out", str(folder), *flags],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        for line in (folder / "data.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row["video"] = f"{name}/{row['video']}"
            row["id"] = f"{name}-{row['id']}"
            rows.append(row)
    tmp = args.out / "data.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(args.out / "data.jsonl")  # atomic: a stopped run never leaves half a dataset
    print(f"{len(rows)} questions in {args.out / 'data.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
