"""Crash-safe file writes: whole files, whole folders and append-only JSONL logs.

    from tinyr1.files import atomic_file, atomic_dir, append_jsonl, read_jsonl

    with atomic_file("run.json", "w") as fh:        # readers see the old file or the new one
        fh.write(text)
    with atomic_dir("checkpoints/step-000004") as tmp:   # build the folder, renamed into place at the end
        (tmp / "state.pt").write_bytes(data)
    append_jsonl("metrics.jsonl", {"step": 4})      # one complete line, flushed and fsynced
    records = read_jsonl("metrics.jsonl", on_torn=print)  # a torn last line is dropped and reported

The rules behind them (docs/DESIGN.md, "Files and runs"): a crash (power loss, SIGKILL, a full
disk) must never leave a half-written file where a reader looks. Whole files and folders are
built under a temporary name in the same folder (same filesystem, so ``os.replace`` is atomic)
and renamed into place; logs only ever grow by whole lines, and a reader tolerates the one torn
line a crash mid-append can leave at the end. A full disk raises ``DiskFullError`` (an OSError)
with a message a person can act on, and leaves no partial temporary behind.

No torch here: this is the bottom layer, imported by the data writers as well as the trainers.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

#: Prefix of every temporary this module makes; a run folder's ``.tmp-*`` entries are leftovers
#: of a crash and ``remove_stale_temporaries`` deletes them.
TMP_PREFIX = ".tmp-"

_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# How libraries that swallow the OSError (safetensors' Rust writer, torch's zip writer) word it.
_DISK_FULL_WORDS = ("No space left on device", "StorageFull", "Disk quota exceeded")


class DiskFullError(OSError):
    """Writing failed because the disk (or quota) is full; nothing half-written was left behind."""


def is_disk_full(exc: BaseException) -> bool:
    """True for a full-disk failure, whether raised as OSError or wrapped by a library."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        if any(w in str(exc) for w in _DISK_FULL_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _disk_full(path: Path, exc: BaseException) -> DiskFullError:
    return DiskFullError(
        errno.ENOSPC,
        f"no space left on the disk while writing {path} ({exc}); free some space (or pick an output "
        "folder on another disk) and run again: nothing half-written was kept")


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_name(path: str | os.PathLike) -> Path:
    """The sibling a write of ``path`` is built under: ``.tmp-<name>-<pid>``."""
    p = Path(path)
    return p.with_name(f"{TMP_PREFIX}{p.name}-{os.getpid()}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; on a clean exit flush, fsync and
    ``os.replace`` it onto ``path``; on an error remove it and leave ``path`` as it was."""
    if not any(m in mode for m in "wx") or "+" in mode or "a" in mode:
        raise ValueError(f"atomic_file writes a whole new file: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    fh = open(tmp, mode.replace("x", "w"), encoding=None if "b" in mode else encoding)
    try:
        try:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fh.close()
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise _disk_full(target, exc) from exc
        raise
    _fsync_dir(target.parent)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (UTF-8)."""
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Replace ``path`` with ``obj`` as JSON (and a final newline), atomically."""
    return write_text(path, json.dumps(obj, indent=indent, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to fill; on a clean exit rename it onto ``path``.

    An existing ``path`` is first renamed aside and deleted only after the new folder is in
    place, so at every instant ``path`` is either the old folder or the new one (never missing
    for longer than between two renames, never half-built). On an error the temporary goes away.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of this very process id (pids recycle)
    tmp.mkdir()
    try:
        yield tmp
        for sub in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            _fsync_dir(sub)
        old = target.with_name(f"{TMP_PREFIX}old-{target.name}-{os.getpid()}")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise _disk_full(target, exc) from exc
        raise
    _fsync_dir(target.parent)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.tmp-*`` leftovers (files or folders) directly inside ``folder``; return them.

    Only for a folder no other process is writing into (a run being resumed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(TMP_PREFIX):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# ------------------------------------------------------------------------------------ JSONL
def append_jsonl(path: str | os.PathLike, record: Any) -> None:
    """Append ``record`` as one JSON line, flushed and fsynced before returning.

    The line is written with one ``write`` of the whole encoded line; if the write fails (a full
    disk) the file is cut back to its size before, so no torn line is left for a later run."""
    path = Path(path)
    data = (json.dumps(record) + "\n").encode("utf-8")
    with open(path, "ab") as fh:
        start = fh.tell()
        try:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException as exc:
            with contextlib.suppress(OSError):
                fh.truncate(start)
            if is_disk_full(exc):
                raise _disk_full(path, exc) from exc
            raise


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete ``\\n``-terminated lines and the unterminated tail. Only ``\\n`` ends a line:
    str.splitlines would also split on U+2028, U+2029 and U+0085, which JSON strings may hold."""
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]


def read_jsonl(path: str | os.PathLike, *, on_torn: Callable[[str], None] | None = None) -> list[Any]:
    """The records of a JSONL file, skipping blank lines.

    A last line that is unterminated or does not decode (what a crash mid-append leaves) is
    dropped and reported through ``on_torn(message)``; any other bad line is an error (ValueError
    naming the line), since a crash cannot tear a line in the middle of a file."""
    path = Path(path)
    lines, tail = _lines(path.read_bytes())
    records = []
    torn: str | None = None
    if tail.strip():
        torn = f"{path}: dropped an unterminated last line ({len(tail)} bytes; a write that did not finish)"
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if i == len(lines) - 1 and torn is None:
                torn = f"{path}: dropped an undecodable last line {i + 1} ({exc})"
                continue
            raise ValueError(f"{path}: line {i + 1} is not JSON ({exc})") from None
    if torn is not None and on_torn is not None:
        on_torn(torn)
    return records


def complete_length(data: bytes) -> int:
    """Bytes of ``data`` up to and including its last complete, decodable JSON line."""
    lines, _ = _lines(data)
    end = sum(len(line) + 1 for line in lines)
    if lines and lines[-1].strip():
        try:
            json.loads(lines[-1].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            end -= len(lines[-1]) + 1
    return end


def repair_jsonl(path: str | os.PathLike, *, on_torn: Callable[[str], None] | None = None) -> bool:
    """Truncate a JSONL file back to its last complete line (so appends start on a fresh line);
    report what was cut through ``on_torn``. Returns True when something was cut."""
    path = Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    keep = complete_length(data)
    if keep == len(data):
        return False
    with open(path, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    if on_torn is not None:
        on_torn(f"{path}: cut a torn last line ({len(data) - keep} bytes) left by a write that did not finish")
    return True


def rewrite_jsonl(path: str | os.PathLike, records: list[Any]) -> None:
    """Replace a JSONL file with ``records`` atomically."""
    with atomic_file(path, "w") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records))
