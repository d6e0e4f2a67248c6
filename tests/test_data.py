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
    with pytest.raises(DatasetError, match="line 1: field 'video': .* outside the dataset's folder"):
        load_dataset(target)  # the videos lie outside out/: only an explicit allow_outside reads them
    assert load_dataset(target, allow_outside=True) == rows
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


# ------------------------------------------------------------------------- hostile or odd files


def test_lines_split_on_newline_only_and_a_bom_is_accepted(folder: Path) -> None:
    # U+2028, U+2029 and U+0085 are legal inside JSON strings; str.splitlines would cut the row there.
    question = "Which way\u2028does it\u2029roll\u0085?"
    text = json.dumps({**GOOD, "question": question}, ensure_ascii=False) + "\r\n" + json.dumps(GOOD) + "\n"
    path = folder / "seps.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # with a UTF-8 byte order mark
    first, second = load_dataset(path)
    assert first.question == question and second.question == "Which way?"


# (the bad row, the field named, a phrase of the message)
HOSTILE_ROWS = [
    ({**GOOD, "question": "Which\u0000way?"}, "question", "control character U+0000 at character 6"),
    ({**GOOD, "options": ["left", "ri\u001bght"]}, "options", "option B holds the control character U+001B"),
    ({**GOOD, "id": "a\u0007"}, "id", "control character U+0007"),
    ({**GOOD, "video": "clips/a.mp4\u0000.txt"}, "video", "control character U+0000"),
    ({**GOOD, "question": "x" * 4001}, "question", "the question is 4,001 characters; the limit is 4,000 (set TINYR1_MAX_QUESTION_CHARS"),
    ({**GOOD, "options": ["left", "r" * 501]}, "options", "option B is 501 characters; the limit is 500"),
    ({k: v for k, v in GOOD.items() if k != "options"} | {"question": "Q?\nA. l\nB. " + "r" * 501},
     "question", "option B is 501 characters"),  # options written in the question are limited too
    ({**GOOD, "video": "../a.mp4"}, "video", "leaves it with '..' outside the dataset's folder"),
    ({**GOOD, "video": "clips/../../a.mp4"}, "video", "leaves it with '..'"),
    ({**GOOD, "video": "/etc/passwd"}, "video", "is an absolute path outside the dataset's folder"),
    ({**GOOD, "video": "~/a.mp4"}, "video", "starts with '~'"),
    ({**GOOD, "video": "C:\\clips\\a.mp4"}, "video", "is a Windows path"),
    ({**GOOD, "video": "clips\\a.mp4"}, "video", "is a Windows path"),
    ({**GOOD, "options": ["a", "b", "c", "d"], "answer": "(e)"}, "answer", "is not one of the option letters A-D"),
    ({**GOOD, "options": ["a"]}, "options", "has 1 options; 2 to 10 are supported (letters A-J)"),
]


@pytest.mark.parametrize("row, field, phrase", HOSTILE_ROWS)
def test_hostile_rows_are_refused_naming_line_and_field(folder: Path, row, field, phrase) -> None:
    path = write_lines(folder / "data.jsonl", [GOOD, "", row])
    with pytest.raises(DatasetError) as info:
        load_dataset(path, check_files=False)
    message = str(info.value)
    assert message.startswith(f"{path} line 3: field '{field}': "), message
    assert phrase in message
    assert (info.value.line, info.value.field) == (3, field)


def test_tabs_and_line_breaks_are_text(folder: Path) -> None:
    row = parse_row({**GOOD, "question": "Which\tway?\nTell me.\r"}, base_dir=folder)
    assert row.question == "Which\tway?\nTell me."


def test_a_symlink_out_of_the_folder_is_refused_unless_allowed(folder: Path, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("secret") / "key.mp4"
    outside.write_bytes(b"")
    (folder / "clips" / "link.mp4").symlink_to(outside)
    (folder / "clips" / "inner.mp4").symlink_to(folder / "clips" / "a.mp4")  # a link inside: fine
    path = write_lines(folder / "data.jsonl", [{**GOOD, "video": "clips/inner.mp4"}, {**GOOD, "video": "clips/link.mp4"}])
    with pytest.raises(DatasetError, match=r"line 2: field 'video': 'clips/link.mp4' is a link to .*key.mp4, outside"):
        load_dataset(path)
    assert [r.video for r in load_dataset(path, allow_outside=True)] == [
        str(folder / "clips" / "inner.mp4"), str(folder / "clips" / "link.mp4")]


def test_paths_outside_the_folder_need_allow_outside(folder: Path, tmp_path_factory) -> None:
    other = tmp_path_factory.mktemp("videos")
    (other / "c.mp4").write_bytes(b"")
    path = write_lines(folder / "data.jsonl", [{**GOOD, "video": str(other / "c.mp4")},
                                               {**GOOD, "video": str(folder / "clips" / "b.mp4")}])  # absolute, inside
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert info.value.errors == [f"{path} line 1: field 'video': {str(other / 'c.mp4')!r} is an absolute path "
                                 f"outside the dataset's folder {folder} (videos must lie inside it)"]
    rows = load_dataset(path, allow_outside=True)
    assert [r.video for r in rows] == [str(other / "c.mp4"), str(folder / "clips" / "b.mp4")]
    with pytest.raises(DatasetError, match="outside the dataset's folder"):
        parse_row({**GOOD, "video": "../c.mp4"}, base_dir=folder)
    assert parse_row({**GOOD, "video": "../c.mp4"}, base_dir=folder, allow_outside=True, check_files=False).video == \
        str(folder.parent / "c.mp4")


def test_duplicate_ids_name_both_lines(folder: Path) -> None:
    path = write_lines(folder / "data.jsonl", [{**GOOD, "id": "7"}, {**GOOD, "id": "8"}, "", {**GOOD, "id": 7}])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(info.value) == f"{path} line 4: field 'id': duplicate id '7': lines 1 and 4"
    assert (info.value.line, info.value.field) == (4, "id")


def test_deep_nesting_is_refused_naming_the_line(folder: Path) -> None:
    deep = '{"video": "clips/a.mp4", "question": "Q?", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    nested = {**GOOD, "x": json.loads("[" * 40 + "]" * 40)}
    path = write_lines(folder / "data.jsonl", [GOOD, deep, nested])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert info.value.errors == [
        f"{path} line 2: JSON nested too deeply to parse; the limit is 32 levels (set TINYR1_MAX_JSON_DEPTH to raise it)",
        f"{path} line 3: JSON nested 41 levels deep; the limit is 32 (set TINYR1_MAX_JSON_DEPTH to raise it)",
    ]


def test_a_long_row_is_refused_before_parsing(folder: Path, monkeypatch) -> None:
    monkeypatch.setenv("TINYR1_MAX_DATASET_ROW_BYTES", "1000")
    long_row = json.dumps({**GOOD, "think": "x" * 2000})
    path = write_lines(folder / "data.jsonl", [GOOD, long_row, "{not json but long" + "y" * 5000, GOOD])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert [e.split(": ", 1)[1] for e in info.value.errors] == [
        f"the row is {len(long_row):,} bytes or more; the limit is 1,000 (set TINYR1_MAX_DATASET_ROW_BYTES to raise it)",
        "the row is 5,018 bytes or more; the limit is 1,000 (set TINYR1_MAX_DATASET_ROW_BYTES to raise it)",
    ]  # the broken JSON of line 3 is never parsed; lines 1 and 4 are read fine around them


def test_a_50_mb_one_row_file_is_refused_without_reading_it_into_memory(folder: Path) -> None:
    import tracemalloc

    path = folder / "huge.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"video": "clips/a.mp4", "question": "')
        for _ in range(50):
            handle.write(b"x" * (1 << 20))
        handle.write(b'"}\n')
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="line 1: the row is 52,428,840 bytes or more; the limit is 1,048,576"):
            load_dataset(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB: the row was held in memory"


def test_bad_utf8_names_the_line(folder: Path) -> None:
    path = folder / "bad.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"video": "\xff"}\n')
    with pytest.raises(DatasetError, match=r"line 2: not UTF-8 text \(invalid start byte at byte \d+\)"):
        load_dataset(path)
