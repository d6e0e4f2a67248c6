"""Regenerate the app's example questions: ``assets/examples/examples.jsonl`` and the world clips
under ``assets/examples/world/``, each checked by running the default policy on it.

    .venv/bin/python bench/make_examples.py            # ~10 s on a CPU; rewrites the files above

Steps: ``tinyr1 world --split test`` writes candidate clips of every question family (test split:
clips the embedded policies never trained on), in the world version the default policy was
trained on (its policy.json's ``world_version``, else the default world); the default policy
(``tiny-temporal-grpo``) answers each
greedily through the app's own Reason path (``Workbench.reason``: same frames, same prompt, same
settings as a click on Reason); the first candidate of each family answered right in a valid
format is kept. The manifest then ends with the real Big Buck Bunny clip, labelled as what it is:
a real clip the tiny policy never saw anything like (its answer is expected to be wrong or
broken). tests/test_examples.py runs the policy again on the shipped manifest.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"
#: The families the embedded policies were trained on (tinyr1.world.DEFAULT_FAMILIES); moving_shape
#: is left out: the policy can hit its letter while its think text names a colour, not a shape.
FAMILIES = ("direction", "moving_color", "count", "order")
CANDIDATES = 32  # one run of `tinyr1 world`: 8 per family, plenty for one right answer each
REAL = {
    "video": "bbb_clip.mp4", "question": "What animal is shown?", "options": ["rabbit", "bird", "fish", "dog"],
    "answer": "A", "id": "bbb", "kind": "real",
    "label": "real clip (untrained): Big Buck Bunny",  # the table's buttons cut labels past ~45 characters
}


def answered_right(bench, video: str, row: dict) -> dict | None:
    """The last Reason step's reward when the default policy answers ``row`` right, else None."""
    last = None
    for step in bench.reason(video, row["question"], row["options"], row["answer"], None, temperature=0.0):
        last = step
    reward = (last.result or {}).get("reward") if last else None
    if not reward or not reward.get("format_ok") or not reward.get("correct"):
        return None
    return reward


def world_version_of(policy: Path) -> int:
    """The world a policy was trained on (its policy.json says so when it is not the default)."""
    from tinyr1.app.policies import policy_metadata
    from tinyr1.world import WORLD_VERSION

    return int(policy_metadata(policy).get("world_version") or WORLD_VERSION)


def main() -> None:
    from tinyr1.app.reason import Workbench
    from tinyr1.policy import default_policy_path

    version = world_version_of(default_policy_path())
    tmp = Path(tempfile.mkdtemp(prefix="tinyr1-examples-"))
    try:
        cmd = [sys.executable, "-m", "tinyr1", "world", "--split", "test", "--n", str(CANDIDATES),
               "--families", *FAMILIES, "--version", str(version), "--out", str(tmp / "world")]
        subprocess.run(cmd, check=True, cwd=ROOT)
        rows = [json.loads(line) for line in (tmp / "world" / "data.jsonl").read_text().splitlines() if line.strip()]
        bench = Workbench(ROOT)
        kept: dict[str, dict] = {}
        for row in rows:
            if row["family"] in kept:
                continue
            reward = answered_right(bench, str(tmp / "world" / row["video"]), row)
            print(f"{row['id']} {row['family']:<13} {'right' if reward else 'wrong or broken'}")
            if reward:
                kept[row["family"]] = row
        world = EXAMPLES / "world"
        shutil.rmtree(world, ignore_errors=True)
        world.mkdir(parents=True)
        manifest = []
        for family in FAMILIES:
            row = kept.get(family)
            if row is None:
                print(f"no {family} question answered right among {CANDIDATES} candidates: left out")
                continue
            name = Path(row["video"]).name
            shutil.copy2(tmp / "world" / row["video"], world / name)
            manifest.append({
                "video": f"world/{name}", "question": row["question"], "options": row["options"],
                "answer": row["answer"], "id": row["id"], "family": family, "kind": "world", "world_version": version,
                "label": f"world clip · {family.replace('_', ' ')}",
            })
        manifest.append(dict(REAL))
        text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in manifest)
        (EXAMPLES / "examples.jsonl").write_text(text)
        print(f"wrote {len(manifest)} examples to {(EXAMPLES / 'examples.jsonl').relative_to(ROOT)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
