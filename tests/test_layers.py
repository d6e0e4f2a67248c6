"""The package's layering, read from the source with ast: no import circle at module level, and no
module imports one from a layer above it.

    .venv/bin/pytest tests/test_layers.py -q

Layers, top to bottom (docs/DESIGN.md, "Code layout"):

4. the user interfaces: tinyr1/app, tinyr1/cli, the package's entry points;
3. what runs training: tinyr1/runs.py, tinyr1/grpo, tinyr1/tiny (training the tiny policy);
2. policies: tinyr1/policy, tinyr1/evaluate.py, tinyr1/registry.py (which policies exist and
   where their weights are: the policy loader resolves names through it);
1. the bottom: tinyr1/models, video, data, archive, world, rewards, conclusion, format, tokenizer,
   files, limits, checkpoints.

Imports inside functions count for the direction too: a lazy import defers the cost, it does not
make a lower layer independent of a higher one. ``EXEMPT`` lists the few that do, each with why.
Circles are checked twice: on module-level imports (only those run at import time and can leave
a module half-initialised), and on all imports, function-level ones included (two modules that
need each other are one idea split in two, however late one imports the other).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyr1"

LAYERS: dict[str, int] = {
    "tinyr1": 4, "tinyr1.__main__": 4, "tinyr1.app": 4, "tinyr1.cli": 4,
    "tinyr1.runs": 3, "tinyr1.grpo": 3, "tinyr1.tiny": 3,
    "tinyr1.policy": 2, "tinyr1.evaluate": 2, "tinyr1.registry": 2, "tinyr1.plan": 2,
    "tinyr1.models": 1, "tinyr1.video": 1, "tinyr1.data": 1, "tinyr1.world": 1, "tinyr1.rewards": 1,
    "tinyr1.format": 1, "tinyr1.tokenizer": 1, "tinyr1.files": 1, "tinyr1.limits": 1, "tinyr1.archive": 1, "tinyr1.checkpoints": 1, "tinyr1.answers": 1,
    "tinyr1.conclusion": 1,
}

#: (importer, imported) pairs allowed against the layering, with the reason. Empty: none needed.
EXEMPT: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    # The package itself ("tinyr1") names only tinyr1/__init__.py: a new module must be placed.
    best = max((k for k in LAYERS if module == k or (k != "tinyr1" and module.startswith(k + "."))),
               key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in tests/test_layers.py")
    return LAYERS[best]


def _imports(path: Path, module: str, known: set[str]) -> list[tuple[str, bool]]:
    """(imported tinyr1 module, at module level?) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # never runs
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names if a.name.split(".")[0] == "tinyr1")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] != "tinyr1":
                    continue
                submodules = [f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in known]
                # ``from pkg import submodule`` needs only the submodule: Python imports it even
                # while pkg itself is still initialising. Any other name needs pkg's namespace.
                if len(submodules) < len(child.names):
                    found.append((base, top))
                found.extend((m, top) for m in submodules)
            visit(child, top)

    visit(tree, True)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, bool]]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_no_module_imports_a_higher_layer(graph) -> None:
    wrong = []
    for importer, imports in graph.items():
        for imported, top in imports:
            if _layer(imported) > _layer(importer) and (importer, imported) not in EXEMPT:
                where = "at module level" if top else "inside a function"
                wrong.append(f"{importer} (layer {_layer(importer)}) imports {imported} "
                             f"(layer {_layer(imported)}) {where}")
    assert not wrong, "\n".join(wrong)


def _circles(edges: dict[str, list[str]]) -> list[str]:
    """Every circle a depth-first walk of ``edges`` meets, as "a -> b -> a"."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []
    circles: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in edges.get(m, []):
            if state.get(n) == 1:
                circles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                walk(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            walk(m)
    return circles


def test_no_import_circle_at_module_level(graph) -> None:
    edges = {m: sorted({i for i, top in imports if top and i in graph and i != m}) for m, imports in graph.items()}
    circles = _circles(edges)
    assert not circles, "\n".join(circles)


def test_no_import_circle_even_through_imports_inside_functions(graph) -> None:
    """A lazy import defers a cost; it is no licence for two modules to need each other."""
    edges = {m: sorted({i for i, _ in imports if i in graph and i != m}) for m, imports in graph.items()}
    circles = _circles(edges)
    assert not circles, "\n".join(circles)


def test_the_checker_sees_a_circle_and_a_violation(tmp_path) -> None:
    """The walker itself: relative and absolute imports, function-level ones kept apart."""
    pkg = tmp_path / "tinyr1"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("from . import a\n")
    (pkg / "models" / "a.py").write_text("import tinyr1.models\n\ndef f():\n    from tinyr1 import grpo\n")
    names = {"tinyr1", "tinyr1.models", "tinyr1.models.a", "tinyr1.grpo"}
    init = _imports(pkg / "models" / "__init__.py", "tinyr1.models", names)
    assert init == [("tinyr1.models.a", True)]  # a submodule, not the package being initialised
    a = _imports(pkg / "models" / "a.py", "tinyr1.models.a", names)
    assert ("tinyr1.models", True) in a and ("tinyr1.grpo", False) in a
    assert _layer("tinyr1.models.a") < _layer("tinyr1.grpo")
    assert _circles({"x": ["y"], "y": ["z"], "z": ["x"], "w": ["x"]}) == ["x -> y -> z -> x"]
    assert _circles({"x": ["y"], "y": [], "w": ["x", "y"]}) == []
