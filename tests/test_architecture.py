"""The package's shape, checked from its source with `ast`: no import cycles, no stage importing
another stage, files and functions of a readable size, and `dvc.yaml` deps that are exactly
the modules each stage's command imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pipeline"
STAGES = ("ingest", "deid", "segment", "embed", "themes", "coding", "agreement", "report")
# Wiring above the stages: the CLI, the runner, what notebooks import (and its old name).
WIRING = {"pipeline", "pipeline.__main__", "pipeline.runner", "pipeline.notebook"}
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, names: list[str]) -> set[str]:
    """What `from module import names` loads: the module (a package's `__init__` runs first) and
    the submodules among the names."""
    return {module} | {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}


def imports(node: ast.AST, current: str) -> set[str]:
    """The `pipeline` modules imported anywhere inside `node` (module level or in functions)."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names if a.name.split(".")[0] == "pipeline"}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:  # relative import
                package = current if MODULES[current].name == "__init__.py" else current.rpartition(".")[0]
                base = ".".join([*package.split(".")[: len(package.split(".")) - n.level + 1], base]).strip(
                    "."
                )
            if base.split(".")[0] == "pipeline":
                out |= _resolve(base, [a.name for a in n.names])
    return {m for m in out if m in MODULES}


GRAPH = {name: imports(ast.parse(path.read_text()), name) for name, path in MODULES.items()}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(GRAPH[m] - {m}):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*path, dep])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_stages_share_only_through_modules_below_them():
    wrong = []
    for m, deps in sorted(GRAPH.items()):
        if m in WIRING:
            continue
        own = stage_of(m)
        for dep in sorted(deps):
            theirs = stage_of(dep)
            if theirs is not None and theirs != own:
                wrong.append(f"{m} imports {dep}")
    assert not wrong, "a module imports a stage other than its own:\n" + "\n".join(wrong)


def test_files_and_functions_stay_readable():
    long_files, long_functions = [], []
    for path in sorted([*PACKAGE.rglob("*.py"), *(REPO / "bench").rglob("*.py")]):
        source = path.read_text()
        if len(source.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.relative_to(REPO)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(
                        f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {length} lines"
                    )
    assert not long_files, "\n".join(long_files)
    assert not long_functions, "\n".join(long_functions)


def _closure(roots: set[str]) -> set[str]:
    """Every module loaded by importing `roots`: their imports, transitively, and the package
    `__init__` of each (Python runs it before any of its submodules)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += GRAPH[m]
        parent = m.rpartition(".")[0]
        if parent in MODULES:
            todo.append(parent)
    return seen


def command_modules(command: str) -> set[str]:
    """The modules `python -m pipeline <command>` loads: what the CLI module imports at its top,
    and what the command's function (and the CLI helpers it calls) import."""
    tree = ast.parse(MODULES["pipeline.__main__"].read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    top = set()
    for n in tree.body:
        if isinstance(n, ast.Import | ast.ImportFrom):
            top |= imports(n, "pipeline.__main__")
    found, todo, done = set(top), [functions[command]], set()
    while todo:
        fn = todo.pop()
        if fn.name in done:
            continue
        done.add(fn.name)
        found |= imports(fn, "pipeline.__main__")
        todo += [
            functions[c.func.id]
            for c in ast.walk(fn)
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in functions
        ]
    return _closure(found) - {"pipeline", "pipeline.__main__"}


def _dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(_dvc_stages()))
def test_dvc_deps_are_exactly_the_modules_the_stage_imports(stage):
    spec = _dvc_stages()[stage]
    command = spec["cmd"].split("python -m pipeline ", 1)[1].split()[0].replace("-", "_")
    declared: set[str] = set()
    for dep in spec.get("deps", []):
        path = REPO / dep
        if dep.startswith("pipeline/") and path.is_dir():
            declared |= {module_name(p) for p in path.rglob("*.py")}
        elif dep.startswith("pipeline/") and path.suffix == ".py":
            declared.add(module_name(path))
    needed = command_modules(command)
    assert sorted(needed - declared) == [], f"{stage}: modules it imports but dvc.yaml does not list"
    assert sorted(declared - needed) == [], f"{stage}: modules dvc.yaml lists but it does not import"
