"""Unpack an uploaded dataset zip safely: every entry is checked before anything is written.

    from tinyr1.archive import extract_zip
    files = extract_zip("upload.zip", "runs/r1/data/zip")   # list[Path]; DatasetError if refused

A zip comes from a stranger, so it is refused, with a ``DatasetError`` naming the entry, when:

- a name could land outside the folder: absolute (``/x``), a drive letter (``C:x``), a backslash
  (``..\\x`` is a traversal on Windows and an odd name everywhere else), a ``..``, ``.`` or empty
  component;
- an entry is a symlink or another special file (its Unix mode in ``external_attr``): a link
  written now would let a later entry or reader escape through it;
- a file and a folder have the same name, or a name appears twice (which one wins depends on the
  tool);
- there are more entries than ``tinyr1.limits.ZIP_ENTRIES`` (counted from the end record before
  the central directory is parsed, so 100,000 entries are refused in milliseconds), or the sizes
  add up to more than ``ZIP_BYTES``; an entry that expands beyond its declared size (a lying zip
  bomb) stops the copy at once.

The files are written into a fresh temporary folder next to ``out`` and moved into place at the
end, so a refused or broken zip leaves nothing behind. macOS metadata (``__MACOSX/``) is checked
like everything else, then not extracted. The limits are in docs/RELIABILITY.md, "Limits".
"""
from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path

from tinyr1 import limits
from tinyr1.data import DatasetError
from tinyr1.files import atomic_dir

__all__ = ["extract_zip"]

SKIPPED_PREFIXES = ("__MACOSX/",)
_CHUNK = 1 << 20
_END = b"PK\x05\x06"  # end of central directory record
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def extract_zip(archive: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Check every entry of ``archive``, then unpack its files into ``out`` (which must not exist,
    or be an empty folder). Returns the files written, in the zip's order."""
    archive, out = Path(archive), Path(out)
    where = archive.name
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: the folder to unpack into must be new or empty", path=where)
    _check_count(_declared_entries(archive, where), where)
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            _check_count(len(infos), where)
            _check_entries(infos, where)
            return _extract(z, infos, out, where)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{where}: not a readable zip file ({exc})", path=where) from None


def _check_count(n: int, where: str) -> None:
    try:
        limits.ZIP_ENTRIES.check(n, f"{where}: its entry count")
    except limits.LimitError as exc:
        raise DatasetError(str(exc), path=where) from None


def _declared_entries(archive: Path, where: str) -> int:
    """The entry count the zip's end record declares, read from its last 64 KiB without parsing
    the central directory (which for 100,000 entries takes a second)."""
    try:
        with archive.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - (1 << 16) - 22)  # the record is 22 bytes plus a comment of < 64 KiB
            handle.seek(start)
            tail = handle.read()
            at = tail.rfind(_END)
            if at < 0 or len(tail) - at < 22:
                raise DatasetError(f"{where}: not a readable zip file (no end of central directory)", path=where)
            count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
            locator = tail.rfind(_END64_LOCATOR, 0, at)
            if count == 0xFFFF and locator >= 0 and at - locator == 20:  # zip64: the count is 8 bytes elsewhere
                (offset,) = struct.unpack("<Q", tail[locator + 8 : locator + 16])
                handle.seek(offset)
                record = handle.read(56)
                if record[:4] == _END64 and len(record) == 56:
                    count = struct.unpack("<Q", record[32:40])[0]
            return count
    except OSError as exc:
        raise DatasetError(f"{where}: cannot be read ({exc.strerror or exc})", path=where) from None


def _name_problem(name: str) -> str | None:
    """Why an entry name is refused, or None."""
    if not name:
        return "has an empty name"
    if _CONTROL.search(name):
        return "has a control character in its name"
    if "\\" in name:
        return "has a backslash in its name (a Windows path separator: write zips with '/')"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if ".." in parts:
        return "climbs out of the folder with '..'"
    if "" in parts or "." in parts:
        return "has an empty or '.' path component"
    return None


def _type_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry's file type is refused (from the Unix mode bits), or None."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link (links are refused: they could point anywhere)"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"is a special file (mode {kind:o}), not a file or a folder"
    return None


def _check_entries(infos: list[zipfile.ZipInfo], where: str) -> None:
    """Refuse the zip if any entry is bad: names, types, clashes, total size (nothing written yet)."""
    files: dict[str, str] = {}  # file path -> its entry name
    folders: dict[str, str] = {}  # folder path (explicit or implied by a file inside) -> an entry naming it
    total, largest = 0, None
    for info in infos:
        name = info.filename
        problem = _name_problem(name) or _type_problem(info)
        if problem:
            raise DatasetError(f"{where}: entry {name!r} {problem}", path=where, field=name)
        path = name.rstrip("/")
        parents = path.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            folders.setdefault("/".join(parents[:i]), name)
        if info.is_dir():
            folders.setdefault(path, name)
        elif path in files:
            raise DatasetError(f"{where}: entry {name!r} appears twice", path=where, field=name)
        else:
            files[path] = name
        total += info.file_size
        if largest is None or info.file_size > largest.file_size:
            largest = info
    for path, name in files.items():
        if path in folders:
            raise DatasetError(f"{where}: entry {name!r} is a file, and {folders[path]!r} makes it a folder too",
                               path=where, field=name)
    try:
        limits.ZIP_BYTES.check(total, f"{where}: what it expands to")
    except limits.LimitError as exc:
        name = largest.filename if largest else None
        raise DatasetError(f"{exc}; the largest entry is {name!r} ({largest.file_size:,} bytes)" if largest else str(exc),
                           path=where, field=name) from None


def _extract(z: zipfile.ZipFile, infos: list[zipfile.ZipInfo], out: Path, where: str) -> list[Path]:
    """Write the checked entries into a temporary sibling of ``out`` that replaces it whole
    (tinyr1.files.atomic_dir): an error part-way leaves no half-unpacked folder."""
    budget = limits.ZIP_BYTES.value
    written: list[str] = []
    with atomic_dir(out) as staging:
        for info in infos:
            if info.filename.startswith(SKIPPED_PREFIXES):
                continue
            target = staging / info.filename.rstrip("/")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            budget -= _copy_entry(z, info, target, budget, where)
            written.append(info.filename)
    return [out / name for name in written]


def _copy_entry(z: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, where: str) -> int:
    """Copy one entry, stopping as soon as it expands past its declared size or the zip's byte
    budget (the declared sizes were checked; this catches a zip that lies about them)."""
    copied = 0
    try:
        with z.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(_CHUNK):
                copied += len(chunk)
                if copied > info.file_size or copied > budget:
                    raise DatasetError(f"{where}: entry {info.filename!r} expands beyond its declared "
                                       f"{info.file_size:,} bytes (a zip bomb?)", path=where, field=info.filename)
                sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{where}: entry {info.filename!r} cannot be unpacked ({exc})",
                           path=where, field=info.filename) from None
    return copied
