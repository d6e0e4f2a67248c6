"""tinyr1.checkpoints: the one checkpoint format; damage is detected, pickles are never run.

    python -m pytest -q tests/test_checkpoints.py
"""
from __future__ import annotations

import json
import os
import pickle
import random

import numpy as np
import pytest
import torch

from tinyr1 import checkpoints
from tinyr1.checkpoints import CheckpointError


def _save(root, step, value=1.0, keep=5):
    return checkpoints.save(root, step, tensors={"w": torch.full((64, 64), value), "b": torch.zeros(3)},
                            pickles={"state.pt": {"step": step, "rng": checkpoints.rng_state(),
                                                  "opt": {"lr": 0.1, "betas": (0.9, 0.99)}}},
                            jsons={"summary.json": {"step": step}}, keep=keep)


def test_round_trip_is_plain_data_and_restores_every_rng(tmp_path):
    random.seed(3), np.random.seed(4), torch.manual_seed(5)
    folder = _save(tmp_path, 7)
    want = (random.random(), np.random.rand(), float(torch.rand(1)))
    manifest = checkpoints.validate(folder)
    assert set(manifest["files"]) == {"tensors.safetensors", "state.pt", "summary.json"}
    state = checkpoints.load_plain(folder, "state.pt")  # weights_only=True
    checkpoints.set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), float(torch.rand(1))) == want
    assert torch.equal(checkpoints.load_tensors(folder)["w"], torch.ones(64, 64))


def test_tied_weights_are_saved(tmp_path):
    w = torch.randn(4, 4)
    folder = checkpoints.save(tmp_path, 1, tensors={"a": w, "b": w})
    t = checkpoints.load_tensors(folder)
    assert torch.equal(t["a"], w) and torch.equal(t["b"], w)


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _empty(p):
    p.write_bytes(b"")


def _random(p):
    p.write_bytes(os.urandom(p.stat().st_size))


def _garbage_mid_file(p):
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = os.urandom(min(4096, len(data) - mid))
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _empty, _random, _garbage_mid_file])
@pytest.mark.parametrize("name", ["tensors.safetensors", "state.pt", "manifest.json"])
def test_damaged_newest_falls_back_to_the_previous(tmp_path, damage, name):
    _save(tmp_path, 1, 1.0)
    newest = _save(tmp_path, 2, 2.0)
    damage(newest / name)
    with pytest.raises(CheckpointError):
        checkpoints.validate(newest)
    said = []
    step, folder = checkpoints.newest_intact(tmp_path, log=said.append)
    assert step == 1 and folder.name == "step-000001"
    assert len(said) == 1 and "step-000002" in said[0]
    assert (tmp_path / ".corrupt-step-000002").is_dir() and not newest.exists()
    assert [s for s, _ in checkpoints.list_checkpoints(tmp_path)] == [1]


def test_garbage_in_the_middle_of_the_tensors_is_detected(tmp_path):
    """4 KiB of garbage inside the weights keeps the file's size and its header: only the checksum
    can tell, and it must."""
    folder = _save(tmp_path, 1)
    path = folder / "tensors.safetensors"
    _garbage_mid_file(path)
    with pytest.raises(CheckpointError, match="checksum"):
        checkpoints.validate(folder)


def test_none_intact_is_an_error_and_old_format_says_so(tmp_path):
    old = tmp_path / "step-000003"
    old.mkdir()
    torch.save({"step": 3}, old / "trainer_state.pt")
    with pytest.raises(CheckpointError, match="written before tinyr1's checkpoint format"):
        checkpoints.newest_intact(tmp_path, log=lambda _: None)
    assert checkpoints.newest_intact(tmp_path / "nothing") is None


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_planted_pickle_is_refused_not_run(tmp_path):
    folder = _save(tmp_path, 1)
    marker = tmp_path / "pwned"
    with open(folder / "state.pt", "wb") as fh:
        pickle.dump({"step": _Payload(str(marker))}, fh)
    checkpoints.write_manifest(folder, 1)  # even with a manifest that vouches for it
    checkpoints.validate(folder)
    with pytest.raises(CheckpointError, match="refusing"):
        checkpoints.load_plain(folder, "state.pt")
    assert not marker.exists()
    torch.save({"step": _Payload(str(marker))}, folder / "state.pt")  # torch's own zip format too
    with pytest.raises(CheckpointError, match="refusing"):
        checkpoints.load_plain(folder, "state.pt")
    assert not marker.exists()


def test_keep_prunes_the_oldest(tmp_path):
    for s in range(1, 5):
        _save(tmp_path, s, keep=2)
    assert [s for s, _ in checkpoints.list_checkpoints(tmp_path)] == [3, 4]
    assert json.loads((tmp_path / "step-000004" / "manifest.json").read_text())["step"] == 4
