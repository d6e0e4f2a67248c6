"""The one checkpoint format of tinyr1's trainers (GRPO runs and the tiny trainer).

    from tinyr1 import checkpoints
    folder = checkpoints.save(root, step, tensors={"w": w}, pickles={"state.pt": {"step": 4}},
                              jsons={"summary.json": {...}}, keep=2)
    found = checkpoints.newest_intact(root, log=print)    # (step, folder) or None
    tensors = checkpoints.load_tensors(found[1])
    state = checkpoints.load_plain(found[1], "state.pt")

A checkpoint is a folder ``<root>/step-000050/`` (docs/DESIGN.md, "Files and runs"):

- ``tensors.safetensors``: the weights, by name (safetensors: no code runs when it is read);
- ``*.pt`` files: optimizer state, RNG states and scalars, as tensors and plain containers only,
  read with ``torch.load(weights_only=True)``, so a file planted in a run folder cannot execute
  code (numpy's and python's RNG states are stored as lists / tensors, see ``rng_state``);
- whatever else the trainer adds (GRPO: the policy directory, so ``load_policy`` opens a
  checkpoint; json summaries for people);
- ``manifest.json``, written last: the format version and every file's size and sha256.

The folder is built under a ``.tmp-*`` name and renamed into place (tinyr1.files.atomic_dir), so
a crash never leaves a half checkpoint under a ``step-*`` name. Loading still checks the manifest
(size and sha256 of every file), which catches what the rename cannot: a truncated, emptied or
overwritten file, a disk that lost blocks. ``newest_intact`` walks from the newest checkpoint
back to the first one that checks out, saying what it skipped and moving the bad ones aside
(``.corrupt-step-N``) so pruning never deletes the good one in their favour.

Checkpoints written before this format (no manifest, pickled RNG tuples) are reported as not
resumable; the shipped policies are policy folders, not checkpoints, and are not affected.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from tinyr1.files import atomic_dir, is_disk_full

FORMAT = "tinyr1-checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
TENSORS = "tensors.safetensors"
_STEP_DIR = re.compile(r"^step-(\d{6,})$")
_HASH_CHUNK = 1 << 20


class CheckpointError(RuntimeError):
    """A checkpoint folder that cannot be trusted or read (truncated, corrupted, old format)."""


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Every ``step-*`` folder under ``root``, oldest first, as (step, folder); intact or not."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


# ------------------------------------------------------------------------------------ RNG
def rng_state() -> dict[str, Any]:
    """python / numpy / torch RNG states as tensors, lists and scalars (weights_only-loadable)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": int(version), "internal": [int(x) for x in internal], "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    keys = np.asarray(npy["keys"].numpy(), dtype=np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])


# ---------------------------------------------------------------------------------- writing
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; safetensors refuses two names on one storage (tied embeddings),
    so every repeat of a storage is copied."""
    seen: set[int] = set()
    out = {}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        out[name] = t.clone() if ptr in seen else t
        seen.add(ptr)
    return out


def write_manifest(folder: Path, step: int) -> None:
    """Sizes and sha256 of every file under ``folder`` (the manifest itself excepted)."""
    entries = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            entries[p.relative_to(folder).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    text = json.dumps({"format": FORMAT, "version": VERSION, "step": step, "files": entries}, indent=1)
    with open(folder / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


def save(
    root: str | os.PathLike,
    step: int,
    *,
    tensors: dict[str, torch.Tensor] | None = None,
    pickles: dict[str, Any] | None = None,
    jsons: dict[str, Any] | None = None,
    extra: Callable[[Path], None] | None = None,
    keep: int = 2,
) -> Path:
    """Write ``<root>/step-N`` atomically and return it; keep the newest ``keep`` checkpoints.

    ``tensors`` go to ``tensors.safetensors``; each ``pickles[name]`` (plain data and tensors
    only) to ``name`` through torch.save; each ``jsons[name]`` to ``name``; ``extra(folder)``
    writes anything else (e.g. a policy directory). The manifest is written last."""
    from safetensors.torch import save_file

    root = Path(root)
    final = root / step_dir_name(step)
    with atomic_dir(final) as tmp:
        if extra is not None:
            extra(tmp)
        if tensors is not None:
            save_file(_unshared(tensors), str(tmp / TENSORS))
        for name, obj in (pickles or {}).items():
            _torch_save(obj, tmp / name)
        for name, obj in (jsons or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
        write_manifest(tmp, step)
    for _, p in list_checkpoints(root)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


class _Recorder:
    """A write-only file torch.save can use that remembers the OSError of a failed write: torch's
    zip writer replaces it with an opaque RuntimeError, and a full disk must be told apart."""

    def __init__(self, fh) -> None:
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def _torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as fh:
        rec = _Recorder(fh)
        try:
            torch.save(obj, rec)
        except RuntimeError as exc:
            if rec.error is not None:
                raise rec.error from exc
            raise


# ---------------------------------------------------------------------------------- reading
def validate(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an intact checkpoint; CheckpointError saying what is wrong otherwise."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(
            f"{folder} has no {MANIFEST}: it was written before tinyr1's checkpoint format {VERSION} "
            "(such runs cannot be resumed; start a new run in another folder) or its write never finished")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        ok = manifest.get("format") == FORMAT and isinstance(files, dict)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is damaged ({exc})") from None
    if not ok:
        raise CheckpointError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"{folder}: checkpoint format version {manifest.get('version')}, this tinyr1 reads {VERSION}")
    for rel, meta in files.items():
        p = folder / rel
        if not p.is_file():
            raise CheckpointError(f"{folder}: {rel} is missing")
        size = p.stat().st_size
        if size != meta["bytes"]:
            raise CheckpointError(f"{folder}: {rel} has {size} bytes, the manifest says {meta['bytes']} (truncated?)")
        if _sha256(p) != meta["sha256"]:
            raise CheckpointError(f"{folder}: {rel} does not match its checksum (corrupted)")
    return manifest


def newest_intact(root: str | os.PathLike, log: Callable[[str], None] = print) -> tuple[int, Path] | None:
    """The newest checkpoint under ``root`` that validates, as (step, folder); None when there
    are none at all. Bad ones newer than it are reported through ``log`` and renamed to
    ``.corrupt-step-N``; CheckpointError when checkpoints exist but none is intact."""
    found = list_checkpoints(root)
    problems = []
    for step, folder in reversed(found):
        try:
            validate(folder)
        except CheckpointError as exc:
            problems.append((folder, str(exc)))
            continue
        for bad, why in problems:
            aside = bad.with_name(f".corrupt-{bad.name}")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(bad, aside)
            log(f"skipping checkpoint {bad.name}: {why}; moved to {aside.name}, resuming from {folder.name}")
        return step, folder
    if problems:
        raise CheckpointError("no intact checkpoint to resume from:\n" + "\n".join(w for _, w in problems))
    return None


def load_tensors(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(folder) / TENSORS
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors' own error type; a damaged header is not our bug
        raise CheckpointError(f"{path} cannot be read: {exc}") from None


def load_plain(folder: str | os.PathLike, name: str) -> Any:
    """A ``.pt`` file of a checkpoint, unpickled with ``weights_only=True``: tensors and plain
    containers only, never arbitrary objects (a planted pickle is refused, not run)."""
    path = Path(folder) / name
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{folder} has no {name}") from None
    except Exception as exc:  # UnpicklingError for a foreign object, RuntimeError for a bad zip
        if is_disk_full(exc):
            raise
        raise CheckpointError(f"{path} is not a plain-data checkpoint file; refusing it ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
