"""Safe zip import (tinyr1.archive.extract_zip): every entry is checked before anything is
written, and each refusal is a DatasetError naming the entry. The zips are generated here.

    .venv/bin/pytest tests/test_archive.py -q
"""
from __future__ import annotations

import stat
import struct
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from tinyr1.archive import extract_zip
from tinyr1.data import DatasetError


def make_zip(path: Path, entries: list[tuple[str, bytes] | zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                z.writestr(entry, b"")
            else:
                z.writestr(*entry)
    return path


def symlink_entry(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode bits in external_attr mean what they say
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def test_a_valid_zip_is_unpacked(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "ok.zip", [("data/data.jsonl", b"{}\n"), ("data/clips/", b""),
                                             ("data/clips/a.mp4", b"video"), ("__MACOSX/._a.mp4", b"meta")])
    out = tmp_path / "out"
    files = extract_zip(archive, out)
    assert files == [out / "data/data.jsonl", out / "data/clips/a.mp4"]
    assert (out / "data/clips/a.mp4").read_bytes() == b"video"
    assert not (out / "__MACOSX").exists()  # macOS metadata: checked, not extracted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.zip", "out"]  # no staging folder left


# (entries, the entry named in the error, a phrase)
BAD_ZIPS = [
    ([("../escape.mp4", b"x")], "../escape.mp4", "climbs out of the folder with '..'"),  # zip slip
    ([("data/../../escape.mp4", b"x")], "data/../../escape.mp4", "climbs out"),
    ([("/etc/cron.d/x", b"x")], "/etc/cron.d/x", "is an absolute path"),
    ([("C:/Windows/x", b"x")], "C:/Windows/x", "starts with a drive letter"),
    ([("..\\escape.mp4", b"x")], "..\\escape.mp4", "has a backslash"),
    ([("a//b", b"x")], "a//b", "empty or '.' path component"),
    ([("ok.txt", b"x"), symlink_entry("link", b"/etc/passwd")], "link", "is a symbolic link"),
    ([("clash", b"file"), ("clash/inside.mp4", b"x")], "clash", "is a file, and 'clash/inside.mp4' makes it a folder"),
    ([("clash", b"file"), ("clash/", b"")], "clash", "makes it a folder too"),
    ([("twice.mp4", b"1"), ("twice.mp4", b"2")], "twice.mp4", "appears twice"),
]


@pytest.mark.parametrize("entries, entry, phrase", BAD_ZIPS)
def test_bad_entries_are_refused_before_anything_is_written(tmp_path: Path, entries, entry, phrase) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns when it writes a name twice: that is the test
        archive = make_zip(tmp_path / "bad.zip", [("first.txt", b"written only if all is fine"), *entries])
    with pytest.raises(DatasetError) as info:
        extract_zip(archive, tmp_path / "out")
    assert str(info.value).startswith(f"bad.zip: entry {entry!r} "), str(info.value)
    assert phrase in str(info.value) and info.value.field == entry
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]  # nothing extracted, no staging left


def test_other_special_files_are_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("fifo")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    with pytest.raises(DatasetError, match="entry 'fifo' is a special file"):
        extract_zip(make_zip(tmp_path / "f.zip", [info]), tmp_path / "out")


def test_100000_entries_are_refused_fast(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:  # zip64: more entries than 16 bits count
        for i in range(100_000):
            z.writestr(f"f{i}", b"")
    started = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        extract_zip(archive, tmp_path / "out")
    elapsed = time.perf_counter() - started
    assert str(info.value) == ("many.zip: its entry count is 100,000 entries; the limit is 10,000 "
                               "(set TINYR1_MAX_ZIP_ENTRIES to raise it)")
    assert elapsed < 0.2, f"{elapsed:.2f} s: the central directory must not be parsed first"
    assert not (tmp_path / "out").exists()


def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", [("data.jsonl", b"{}\n"), ("zeros.mp4", b"\0" * 100_000)])
    raw = bytearray(archive.read_bytes())
    central = raw.find(b"PK\x01\x02")  # the central directory: data.jsonl's entry, then zeros.mp4's
    while raw[central + 46 : central + 55] != b"zeros.mp4":
        central = raw.find(b"PK\x01\x02", central + 1)
    raw[central + 24 : central + 28] = struct.pack("<I", 0xFFFF0000)  # declares 4 GiB uncompressed
    archive.write_bytes(bytes(raw))
    with pytest.raises(DatasetError) as info:
        extract_zip(archive, tmp_path / "out")
    assert str(info.value).startswith("bomb.zip: what it expands to is 4,294,901,763 bytes; the limit is 2,147,483,648")
    assert "largest entry is 'zeros.mp4'" in str(info.value) and info.value.field == "zeros.mp4"


def test_a_real_bomb_stops_at_the_byte_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TINYR1_MAX_ZIP_BYTES", "1000000")
    archive = make_zip(tmp_path / "bomb.zip", [("zeros.mp4", b"\0" * 5_000_000)])  # 5 MB from a few KB
    assert archive.stat().st_size < 20_000
    with pytest.raises(DatasetError, match="what it expands to is 5,000,000 bytes; the limit is 1,000,000"):
        extract_zip(archive, tmp_path / "out")


def test_a_zip_that_lies_about_its_size_stops_at_the_declared_size(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "liar.zip", [("zeros.mp4", b"\0" * 3_000_000)])
    raw = bytearray(archive.read_bytes())
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        at = raw.find(signature)
        raw[at + size_at : at + size_at + 4] = struct.pack("<I", 1000)
    archive.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="entry 'zeros.mp4' (expands beyond its declared 1,000 bytes|cannot be unpacked)"):
        extract_zip(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["liar.zip"]


def test_not_a_zip_and_a_busy_folder(tmp_path: Path) -> None:
    (tmp_path / "no.zip").write_bytes(b"plain text")
    with pytest.raises(DatasetError, match="no.zip: not a readable zip file"):
        extract_zip(tmp_path / "no.zip", tmp_path / "out")
    archive = make_zip(tmp_path / "ok.zip", [("a.txt", b"a")])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_bytes(b"")
    with pytest.raises(DatasetError, match="must be new or empty"):
        extract_zip(archive, tmp_path / "busy")
    (tmp_path / "empty").mkdir()
    assert extract_zip(archive, tmp_path / "empty") == [tmp_path / "empty" / "a.txt"]
