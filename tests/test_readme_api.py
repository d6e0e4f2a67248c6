"""README's "Use it from Python" snippets run verbatim against the real served app (the shipped
policies, the shipped clip): only the server's address is substituted.

    .venv/bin/pytest tests/test_readme_api.py -q
"""
from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from app_support import ROOT, launched_app

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

README_URL = "http://127.0.0.1:7860/"


def snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Use it from Python", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_shows_reason_reward_and_train():
    code = "\n".join(snippets())
    for endpoint in ("/reason", "/reward", "/train"):
        assert f'api_name="{endpoint}"' in code
    assert README_URL in code


def test_the_snippets_run_against_the_served_app(monkeypatch):
    app = launched_app()
    monkeypatch.chdir(ROOT)  # the snippets name assets/examples/bbb_clip.mp4 as a person in the repo would
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for code in snippets():
            exec(compile(code.replace(README_URL, app.url), "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["result"]["done"] and namespace["result"]["error"] is None
    assert namespace["breakdown"]["format_ok"] and namespace["breakdown"]["total"] > 0
    assert namespace["run"]["phase"] == "done" and namespace["tuned"][5]["error"] is None
    assert os.path.isdir(app.root / namespace["run"]["run"] / "final")
    assert "runs/" in printed.getvalue()
