"""tinyr1.files: atomic files and folders, JSONL logs that survive a torn last line, full disks.

    python -m pytest -q tests/test_files.py
"""
from __future__ import annotations

import errno
import json

import pytest

from tinyr1 import files
from tinyr1.files import (
    DiskFullError,
    append_jsonl,
    atomic_dir,
    atomic_file,
    read_jsonl,
    remove_stale_temporaries,
    repair_jsonl,
)


def test_atomic_file_replaces_and_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with atomic_file(path, "w") as fh:
        fh.write("new")
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError):
        with atomic_file(path, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_file_refuses_append_mode(tmp_path):
    with pytest.raises(ValueError, match="whole new file"):
        with atomic_file(tmp_path / "x", "a"):
            pass


def test_atomic_dir_replaces_an_old_folder_whole(tmp_path):
    target = tmp_path / "ck"
    with atomic_dir(target) as tmp:
        (tmp / "one").write_text("1")
    with atomic_dir(target) as tmp:
        assert not (tmp / "one").exists()
        (tmp / "two").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["two"]
    with pytest.raises(KeyError):
        with atomic_dir(target) as tmp:
            (tmp / "three").write_text("3")
            raise KeyError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".tmp-step-000002-123").mkdir()
    (tmp_path / ".tmp-run.json-9").write_text("x")
    (tmp_path / "keep").write_text("y")
    removed = remove_stale_temporaries(tmp_path)
    assert len(removed) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_read_jsonl_splits_on_newline_only(tmp_path):
    path = tmp_path / "log.jsonl"
    text = 'a\u2028b\u2029c\x85d'
    path.write_bytes((json.dumps({"t": text}, ensure_ascii=False) + "\n").encode())
    assert read_jsonl(path) == [{"t": text}]


@pytest.mark.parametrize("tail", [b'{"step": 3, "x"', b'{"step": 3}', b'\xff\xfe{"s"\n'])
def test_a_torn_last_line_is_dropped_and_reported(tmp_path, tail):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2})
    with open(path, "ab") as fh:
        fh.write(tail)
    notes = []
    assert read_jsonl(path, on_torn=notes.append) == [{"step": 1}, {"step": 2}]
    assert len(notes) == 1 and "dropped" in notes[0]
    assert repair_jsonl(path, on_torn=notes.append)
    assert path.read_bytes() == b'{"step": 1}\n{"step": 2}\n'
    assert not repair_jsonl(path)
    append_jsonl(path, {"step": 3})
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}, {"step": 3}]


def test_a_bad_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(path)


def test_disk_full_append_leaves_no_torn_line(tmp_path, monkeypatch):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"step": 1})
    real_fsync = files.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(DiskFullError, match="no space left"):
        append_jsonl(path, {"step": 2, "pad": "x" * 100})
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert path.read_bytes() == b'{"step": 1}\n'


def test_disk_full_in_atomic_writes_is_a_clear_error(tmp_path):
    with pytest.raises(DiskFullError) as info:
        with atomic_file(tmp_path / "f.bin", "wb"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(info.value, OSError) and "free some space" in str(info.value)
    with pytest.raises(DiskFullError):
        with atomic_dir(tmp_path / "d"):
            raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
    assert list(tmp_path.iterdir()) == []
