"""``tinyr1 frames`` (tinyr1/cli/frames.py): the contact sheet, the JSON view and the exit codes.

    .venv/bin/pytest tests/test_cli_frames.py -q
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from clips import NUM, Clips
from tinyr1.cli import main
from tinyr1.video import sample_indices

EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "examples" / "bbb_clip.mp4"


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.getbasetemp() / "video-clips")  # the same folder as test_video.py's


def test_default_sheet_goes_next_to_the_cwd_and_is_announced(clips: Clips, tmp_path: Path, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["frames", str(clips.get("h264.mp4")), "-n", "9"]) == 0
    out = capsys.readouterr().out
    sheet = tmp_path / "h264_frames.png"
    assert f"wrote {sheet}" in out and "30 frames" in out and "0 3 7 10 14 18 21 25 29" in out
    with Image.open(sheet) as img:
        assert img.width > 3 * 64 and img.height > 3 * 48  # a 3x3 grid of (enlarged) thumbnails


def test_json_lists_indices_timestamps_and_metadata_without_writing(clips: Clips, tmp_path: Path, capsys,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["frames", str(clips.get("h264.mp4")), "-n", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["indices"] == sample_indices(NUM, 8)
    assert data["timestamps"] == pytest.approx([i / 10 for i in data["indices"]], abs=1e-3)
    assert data["meta"]["num_frames"] == NUM and data["meta"]["codec"] == "h264"
    assert data["frame_size"] == [48, 64] and data["sheet"] is None
    assert list(tmp_path.iterdir()) == []  # --json alone writes nothing


@pytest.mark.parametrize("size, frame_size", [("32", [32, 32]), ("24x40", [24, 40])])
def test_size_and_out(clips: Clips, tmp_path: Path, capsys, size: str, frame_size: list[int]) -> None:
    sheet = tmp_path / "sheet.png"
    assert main(["frames", str(clips.get("h264.mp4")), "-n", "4", "--size", size, "--out", str(sheet), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["frame_size"] == frame_size and data["sheet"] == str(sheet) and sheet.exists()


def test_the_bundled_example_loads(tmp_path: Path, capsys) -> None:
    assert main(["frames", str(EXAMPLE), "--out", str(tmp_path / "s.png"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["meta"]["width"] == 640 and data["meta"]["height"] == 360 and len(data["indices"]) == 16


@pytest.mark.parametrize("args, words", [
    (["{text.mp4}"], "contains text, not video data"),          # bad video: VideoError
    (["{audio.m4a}"], "no video stream"),
    (["{h264.mp4}", "-n", "0"], "at least 1"),                   # bad count: VideoError too
    (["{h264.mp4}", "--out", "/no/such/folder/s.png"], "does not exist"),
    (["{h264.mp4}", "--out", "{tmp}/sheet.txt"], "must end in .png"),
    (["{h264.mp4}", "--max-seconds", "1"], "over the limit of 1 s"),
])
def test_bad_input_exits_2_with_the_message_on_stderr(clips: Clips, tmp_path: Path, capsys, args, words) -> None:
    argv = ["frames"] + [a.replace("{tmp}", str(tmp_path)) for a in args]
    argv = [str(clips.get(a[1:-1])) if a.startswith("{") else a for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert words in captured.err and captured.err.startswith("tinyr1 frames: error:")
    assert captured.out == ""


def test_the_console_script_exits_2_on_a_bad_file(clips: Clips) -> None:
    script = Path(sys.executable).with_name("tinyr1")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([str(script), "frames", str(clips.get("truncated.mp4"))], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "truncated" in done.stderr and "Traceback" not in done.stderr and done.stdout == ""
