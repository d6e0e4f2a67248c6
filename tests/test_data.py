"""Video-QA datasets (tinyr1.data): the JSONL format, the official fields, and errors that name the
file, the line and the field.

    .venv/bin/pytest tests/test_data.py -q
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tinyr1.data import DatasetError, VideoQA, load_dataset, parse_row, split_options, write_dataset


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "clips").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "clips" / name).write_bytes(b"")  # existence is all load_dataset checks
    return tmp_path


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"video": "clips/a.mp4", "question": "Which way?", "options": ["left", "right"], "answer": "B"}


def test_a_good_file_loads_with_paths_resolved(folder: Path) -> None:
    path = write_lines(folder / "data.jsonl", [
        GOOD,
        "",  # blank lines are skipped
        {"video": str(folder / "clips" / "b.mp4"), "question": "How many?", "answer": 3, "id": 7,
         "family": "count", "think": "one, two, three", "source": "synthetic"},
        {"video": "clips/a.mp4", "question": "Describe it."},  # open question, no answer
    ])
    rows = load_dataset(path)
    assert len(rows) == 3
    first, second, third = rows
    assert first == VideoQA(str(folder / "clips" / "a.mp4"), "Which way?", ["left", "right"], "B")
    assert first.is_multiple_choice and first.answer_text() == "right"
    assert (second.answer, second.id, second.family, second.think) == ("3", "7", "count", "one, two, three")
    assert second.extra == {"source": "synthetic"}  # unknown fields are kept, not dropped
    assert (third.options, third.answer) == ([], None)


def test_the_official_fields_are_accepted(folder: Path) -> None:
    path = write_lines(folder / "official.jsonl", [
        {"problem": "What does the man do?\nA. drop\nB. sit down\nC. pick up", "solution": "<answer>C</answer>",
         "video_filename": "./clips/a.mp4"},
    ])
    (row,) = load_dataset(path)
    assert row.question == "What does the man do?"  # option lines split out of the problem
    assert row.options == ["drop", "sit down", "pick up"]
    assert row.answer == "C" and row.video == str(folder / "clips" / "a.mp4")


# (answer as written, options, stored answer)
ANSWER_SPELLINGS = [
    ("B", ["l", "r"], "B"),  # the letter
    ("b", ["l", "r"], "B"),  # lower case
    ("(B)", ["l", "r"], "B"),  # bracketed
    ("B.", ["l", "r"], "B"),  # with a full stop
    ("right", ["left", "right"], "B"),  # the option's text
    ("B. right", ["left", "right"], "B"),  # letter and text
    ("<answer>B</answer>", ["l", "r"], "B"),  # official solution
    ("moves right", None, "moves right"),  # open question: free text kept
    ("", None, None),  # empty: unknown
]


@pytest.mark.parametrize("written, options, stored", ANSWER_SPELLINGS)
def test_answer_spellings_are_normalised(folder: Path, written, options, stored) -> None:
    row = {"video": "clips/a.mp4", "question": "Q?", "answer": written}
    if options:
        row["options"] = options
    assert parse_row(row, base_dir=folder).answer == stored


def test_options_written_in_the_question_and_the_field_are_kept_once(folder: Path) -> None:
    row = parse_row({"video": "clips/a.mp4", "question": "Q?\nA. left\nB. right", "options": ["left", "B. right"]},
                    base_dir=folder)
    assert (row.question, row.options) == ("Q?", ["left", "right"])


def test_split_options() -> None:
    assert split_options("Q?\nA. l\nB. r") == ("Q?", ["l", "r"])
    assert split_options("Q?\n(A) l\n(B) r\n(C) s") == ("Q?", ["l", "r", "s"])
    assert split_options("Q?\nB. l\nC. r") == ("Q?\nB. l\nC. r", [])  # must start at A
    assert split_options("Q?\nA. only one") == ("Q?\nA. only one", [])  # one option is not a list
    assert split_options("A. l\nB. r") == ("A. l\nB. r", [])  # nothing left as the question


# (the bad line, the field named, a phrase of the message)
BAD_ROWS = [
    ({**GOOD, "answer": "E", "options": ["a", "b", "c", "d"]}, "answer", "'E' is not one of the option letters A-D"),
    ({**GOOD, "answer": "up"}, "answer", "is not one of the option letters A-B"),
    ({k: v for k, v in GOOD.items() if k != "video"}, "video", "is required"),
    ({**GOOD, "video": "clips/missing.mp4"}, "video", "file not found"),
    ({**GOOD, "video": "clips"}, "video", "is a folder"),
    ({**GOOD, "video": 5}, "video", "must be a string"),
    ({k: v for k, v in GOOD.items() if k != "question"}, "question", "is required"),
    ({**GOOD, "question": "   "}, "question", "is empty"),
    ({**GOOD, "options": ["only"]}, "options", "has 1 options; 2 to 10"),
    ({**GOOD, "options": [str(i) for i in range(11)]}, "options", "has 11 options"),
    ({**GOOD, "options": ["left", " "]}, "options", "option B is empty"),
    ({**GOOD, "options": ["left", 2]}, "options", "option B must be a string"),
    ({**GOOD, "options": "left, right"}, "options", "must be a list"),
    ({**GOOD, "answer": True}, "answer", "must be a string"),
    ({**GOOD, "family": ["x"]}, "family", "must be a string"),
]


@pytest.mark.parametrize("row, field, phrase", BAD_ROWS)
def test_each_malformed_row_names_file_line_and_field(folder: Path, row, field, phrase) -> None:
    path = write_lines(folder / "data.jsonl", [GOOD, "", row])  # the bad row is on line 3
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path} line 3: field '{field}': "), message
    assert phrase in message
    assert (info.value.line, info.value.field) == (3, field)


def test_file_level_errors(folder: Path) -> None:
    with pytest.raises(DatasetError, match="dataset file not found"):
        load_dataset(folder / "nope.jsonl")
    with pytest.raises(DatasetError, match="line 2: not valid JSON"):
        load_dataset(write_lines(folder / "j.jsonl", [GOOD, "{oops"]))
    with pytest.raises(DatasetError, match="line 1: a row must be a JSON object"):
        load_dataset(write_lines(folder / "l.jsonl", ["[1, 2]"]))
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(write_lines(folder / "e.jsonl", ["", "  "]))
    (folder / "bin.jsonl").write_bytes(b"\xff\xfe{}")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(folder / "bin.jsonl")


def test_every_bad_line_is_listed(folder: Path) -> None:
    path = write_lines(folder / "data.jsonl", [{**GOOD, "answer": "Z"}, GOOD, {**GOOD, "video": "x.mp4"}])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert [e.split(": field")[0] for e in info.value.errors] == [f"{path} line 1", f"{path} line 3"]


def test_check_files_off_and_video_root(folder: Path, tmp_path_factory) -> None:
    path = write_lines(folder / "data.jsonl", [{**GOOD, "video": "later.mp4"}])
    assert load_dataset(path, check_files=False)[0].video == str(folder / "later.mp4")
    other = tmp_path_factory.mktemp("videos")
    (other / "later.mp4").write_bytes(b"")
    assert load_dataset(path, video_root=other)[0].video == str(other / "later.mp4")


def test_write_is_atomic_and_round_trips(folder: Path, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "c.mp4"
    outside.write_bytes(b"")
    rows = [
        VideoQA(str(folder / "clips" / "a.mp4"), "Which way?", ["left", "right"], "B", "1", "motion", None, {"k": 1}),
        VideoQA(str(outside), "How many? ünïcode", [], "3", None, None, "one two three"),
    ]
    target = folder / "out" / "data.jsonl"
    assert write_dataset(rows, target) == target
    assert load_dataset(target) == rows
    written = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert written[0]["video"] == str(folder / "clips" / "a.mp4")  # not inside out/: absolute
    assert written[0]["k"] == 1  # extra fields are written back
    assert written[1]["video"] == str(outside)
    assert "options" not in written[1] and written[1]["answer"] == "3"  # open question: no options
    assert sorted(os.listdir(target.parent)) == ["data.jsonl"]  # no temporary file left behind


def test_write_relative_inside_the_folder_and_keeps_the_old_file_on_failure(folder: Path) -> None:
    target = folder / "data.jsonl"
    rows = [VideoQA(str(folder / "clips" / "a.mp4"), "Q?")]
    write_dataset(rows, target)
    assert json.loads(target.read_text())["video"] == "clips/a.mp4"
    before = target.read_text()
    with pytest.raises(TypeError, match="row 1 must be a VideoQA"):
        write_dataset([rows[0], {"video": "x"}], target)
    assert target.read_text() == before  # the old file is intact
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]
