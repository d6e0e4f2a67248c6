"""The demo's smaller defects, each pinned: a letter beyond the options as the correct answer, the
banner's frame count, a zip in the GRPO videos box, the run picker's freshness, `tinyr1 policies`
units, held-out accuracy with its noise, README commands that run as written, ignored outputs.

    .venv/bin/pytest tests/test_demo_defects.py -q
"""
from __future__ import annotations

import re
import shlex
import subprocess
import zipfile

import pytest

from app_support import ROOT, no_downloaded_models
from tinyr1.app.reason import Workbench, check_truth, load_examples
from tinyr1.app.tables import accuracy_change
from tinyr1.data import DatasetError

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


@pytest.fixture(scope="module")
def bench():
    with no_downloaded_models():
        b = Workbench(ROOT)
        b.policy_choices()
    return b


@pytest.fixture(scope="module")
def world_row():
    return next(e.row for e in load_examples(ROOT) if e.kind == "world")


@pytest.mark.parametrize("truth", ["E", "e", "Z"])
def test_a_letter_beyond_the_options_is_refused(bench, world_row, truth):
    video, question, *options, _ = world_row
    steps = list(bench.reason(video, question, options, truth, None))
    assert len(steps) == 1 and "not one of the options A–D" in steps[0].error


@pytest.mark.parametrize("truth, options", [("C", ["a", "b", "c"]), ("c", ["a", "b", "c"]), ("x", ["x", "y"]),
                                             ("E", None), ("cat", ["dog", "cat"])])
def test_letters_of_options_option_text_and_open_answers_pass(truth, options):
    check_truth(truth, options)


def test_the_banner_says_how_many_frames_this_run_used(bench, world_row):
    video, question, *options, answer = world_row
    banners = [s.banner for s in bench.reason(video, question, options, answer, None, num_frames=16) if s.banner]
    assert banners and "16 frames this run" in banners[-1] and "4 frames by default" in banners[-1]


def test_a_zip_of_videos_in_the_videos_box_is_unpacked(tmp_path):
    from tinyr1.app.uploads import prepare_upload
    from tinyr1.world import write_split

    jsonl = write_split("train", 4, tmp_path / "world", progress=False)
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for clip in (tmp_path / "world" / "clips").glob("*.mp4"):
            z.write(clip, f"some/folder/{clip.name}")
    rows = prepare_upload(jsonl, [str(archive)], tmp_path / "run")
    assert len(rows) == 4 and all((tmp_path / "run" / "videos").joinpath(r.video.split("/")[-1]).is_file() for r in rows)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", "no video here")
    with pytest.raises(DatasetError, match="holds no video"):
        prepare_upload(jsonl, [str(empty)], tmp_path / "run2")


def test_the_videos_box_takes_a_zip_and_the_run_picker_refreshes_when_opened(tmp_path):
    from tinyr1.app import build_app

    with no_downloaded_models():
        config = build_app(ROOT, workbench=Workbench(ROOT)).get_config_file()
    ids = {c["props"].get("elem_id"): c for c in config["components"]}
    assert ".zip" in ids["grpo-videos"]["props"]["file_types"]
    run_id = ids["grpo-run"]["id"]
    assert any([run_id, "focus"] in [list(t) for t in d["targets"]] and run_id in d["outputs"]
               for d in config["dependencies"])


def test_tinyr1_policies_puts_the_unit_in_each_cell(capsys):
    from tinyr1.cli import main

    assert main(["policies", "--no-probe"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "GB" not in lines[0]  # no "GB" column holding megabytes
    tiny = next(line for line in lines if line.startswith("tiny-grpo"))
    assert re.search(r"\d+\.\d MB\s+\d+\.\d MB\s+\d+\.\d MB$", tiny), tiny
    r1 = next(line for line in lines if line.startswith("Zhang199/TinyLLaVA-Video-R1 "))
    assert r1.endswith("3.24 GB"), r1


def test_held_out_accuracy_comes_with_its_size_and_noise():
    text = accuracy_change({"accuracy": 1.0, "n": 8}, {"accuracy": 0.875, "n": 8})
    assert "on 8 questions" in text and "±" in text and "within noise" in text
    assert "beyond noise" in accuracy_change({"accuracy": 0.9, "n": 500}, {"accuracy": 0.7, "n": 500})


def _cli_block() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^### The command line\n+```bash\n(.*?)^```", readme, re.M | re.S)
    assert section, "README.md has no '### The command line' block"
    text = section.group(1).replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in text.splitlines()]
    return [words for words in commands if len(words) >= 2]  # a comment-only line is no command


def test_readme_commands_read_only_files_that_exist_or_an_earlier_command_makes():
    made: list[str] = []
    for words in _cli_block():
        reads = [w for flag, w in zip(words, words[1:]) if flag in ("<", "--data", "--policy") and "/" in w]
        reads += [w for w in words[2:3] if words[1] in ("reason", "frames", "convert")]
        for path in reads:
            assert (ROOT / path).exists() or any(path.startswith(m.rstrip("/")) for m in made), (
                f"README runs `{' '.join(words)}`, but nothing makes {path}")
        made += [w for flag, w in zip(words, words[1:]) if flag in (">", "--out", "--local-dir")]
        if words[1] == "convert":
            made.append(words[3])


def test_what_the_readme_commands_write_is_ignored_and_the_assets_are_not():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0

    for path in ("data/train/data.jsonl", "sheet.png", "bbb_clip_frames.png", "completion.txt", "models/x",
                 "policies/r1/config.json", "runs/x/run.json"):
        assert ignored(path), path
    for path in ("assets/policies/tiny-grpo/config.json", "assets/examples/examples.jsonl", "tinyr1/data.py"):
        assert not ignored(path), path
