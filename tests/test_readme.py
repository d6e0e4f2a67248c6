"""README.md's "Project layout" names only files and folders that exist.

    .venv/bin/pytest tests/test_readme.py -q

The layout is a tree in a code block: a line's first word is a path (``name/`` for a folder),
indented under the folder it lives in; the rest of the line describes it. The test rebuilds each
path from the indentation, so moving or renaming a module without updating the README fails here.
"""
from __future__ import annotations

import re

from conftest import ROOT


def _layout_block(readme: str) -> str:
    section = re.search(r"^## Project layout\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, "README.md has no '## Project layout' section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "the 'Project layout' section has no code block"
    return block.group(1)


def layout_paths(block: str) -> list[str]:
    """The paths the tree names, each relative to the repository root ('tinyr1/models/convert.py')."""
    parents: list[tuple[int, str]] = []  # (indent, folder path) of the folders enclosing the line
    paths = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        name = line.split()[0]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = (parents[-1][1] if parents else "") + name
        paths.append(path)
        if name.endswith("/"):
            parents.append((indent, path))
    return paths


def test_layout_parser_follows_the_indentation():
    block = "app.py   the app\npkg/\n  a.py     x\n  sub/     y\n    b.py   z\n  c.py\ndocs/\n"
    assert layout_paths(block) == ["app.py", "pkg/", "pkg/a.py", "pkg/sub/", "pkg/sub/b.py", "pkg/c.py", "docs/"]


def test_layout_names_only_paths_that_exist():
    paths = layout_paths(_layout_block((ROOT / "README.md").read_text(encoding="utf-8")))
    assert any(p.startswith("tinyr1/") for p in paths), "the layout lists no module of the package"
    missing = [p for p in paths if not (ROOT / p).exists() or (p.endswith("/") and not (ROOT / p).is_dir())]
    assert not missing, f"README.md's layout names paths that do not exist: {missing}"


def test_layout_names_every_module_of_the_package():
    """Every module and subpackage directly in tinyr1/ is in the tree, and a folder whose files the
    tree lists has all of them listed: the layout is the package, not a sample of it."""
    paths = set(layout_paths(_layout_block((ROOT / "README.md").read_text(encoding="utf-8"))))
    package = ROOT / "tinyr1"

    def entries(folder):
        return sorted(p for p in folder.iterdir()
                      if p.name not in ("__init__.py", "__main__.py", "__pycache__")
                      and (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())))

    def name(p):
        return p.relative_to(ROOT).as_posix() + ("/" if p.is_dir() else "")

    unnamed = [name(p) for p in entries(package) if name(p) not in paths]
    for folder in (p for p in package.rglob("*") if p.is_dir() and name(p) in paths):
        listed = [name(p) for p in entries(folder) if name(p) in paths]
        if listed:  # the tree opens this folder, so it must list all of it
            unnamed += [name(p) for p in entries(folder) if name(p) not in paths]
    assert not unnamed, f"README's Project layout does not name: {unnamed}"
