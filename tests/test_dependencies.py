"""pyproject.toml's runtime dependencies are exactly what tinyr1/ and app.py import.

    .venv/bin/pytest tests/test_dependencies.py -q

Test- and benchmark-only libraries belong in the ``dev`` / ``bench`` extras, so that the app and a
Space install nothing they do not run; a library the package imports must be declared, not left
to arrive through another one. Two runtime dependencies are needed without being imported by
tinyr1 (transformers imports them): accelerate and bitsandbytes; pyproject.toml says why.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from conftest import ROOT

NEEDED_NOT_IMPORTED = {"accelerate", "bitsandbytes"}
# Imported only when present: ZeroGPU Spaces preinstall `spaces` (tinyr1/app/).
OPTIONAL_IMPORTS = {"spaces"}


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported_top_level() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "app.py", *sorted((ROOT / "tinyr1").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"tinyr1", "__future__"} - OPTIONAL_IMPORTS


def test_runtime_dependencies_are_what_the_package_imports():
    dists = packages_distributions()
    imported = {_name(dists[module][0]) for module in _imported_top_level()}
    declared = {_name(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert imported | NEEDED_NOT_IMPORTED == declared
