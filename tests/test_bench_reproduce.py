"""bench/reproduce.py, the documented GRPO reproduction: the parts that protect earlier work and
the hand-written docs (the run itself takes 25 minutes and lives in docs/RESULTS.md, not here).

Run: .venv/bin/pytest tests/test_bench_reproduce.py -q
"""
from __future__ import annotations

import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_reproduce", ROOT / "bench" / "reproduce.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def test_a_folder_holding_earlier_runs_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "paper" / "checkpoints").mkdir(parents=True)
    (tmp_path / "paper" / "metrics.jsonl").write_text("{}\n")
    assert reproduce.main(["--out", str(tmp_path), "--steps", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "paper" / "metrics.jsonl").exists()  # nothing deleted


def test_write_block_replaces_only_the_generated_block(tmp_path):
    page = tmp_path / "RESULTS.md"
    page.write_text(f"# Title\n\nhand-written\n\n{reproduce.START}\nold numbers\n{reproduce.END}\n\nmore text\n")
    reproduce.write_block(page, "new numbers")
    assert page.read_text() == f"# Title\n\nhand-written\n\n{reproduce.START}\nnew numbers\n{reproduce.END}\n\nmore text\n"
    bare = tmp_path / "bare.md"
    reproduce.write_block(bare, "first")
    assert bare.read_text() == f"{reproduce.START}\nfirst\n{reproduce.END}\n"
