"""The package's shape, checked from its source with `ast`: no import cycles, no stage importing
another stage, files and functions of a readable size, `dvc.yaml` as the stage registry declares
it (commands, data deps, outputs, params) with module deps that are exactly the modules each
stage's command imports, `params.yaml` stating the defaults, and the unassigned theme named."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.stages import BY_NAME, STUDY
from pipeline.stages import STAGES as REGISTRY

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pipeline"
STAGES = tuple(s.name for s in REGISTRY)
# Wiring above the stages: the CLI, the runner, what notebooks import.
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
    if command in BY_NAME:  # the registry imports the stage's package by name (`Stage.node`)
        found.add(f"pipeline.{command}")
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


# ---- the registry and dvc.yaml ----
REPO_LAYOUT = Layout(Path("."))
NOT_DVC_OUTPUTS = {"key_store"}  # the encrypted pseudonym key: never a DVC output


def dvc_paths(key: str) -> set[str]:
    """The paths `dvc.yaml` lists for a registry key, relative to the repository."""
    if key in NOT_DVC_OUTPUTS:
        return set()
    if key == "exports":
        return {"exports/candidate_themes.qdc", "exports/study.qdpx"}
    path = str(REPO_LAYOUT.path(key))
    return {path, path.removesuffix(".npy") + ".json"} if key == "embeddings" else {path}


def _listed(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_dvc_yaml_has_the_registry_stages_in_order():
    assert list(_dvc_stages()) == [s.name for s in REGISTRY]


@pytest.mark.parametrize("stage", [s.name for s in REGISTRY])
def test_dvc_yaml_runs_each_stage_as_the_registry_declares_it(stage):
    spec, declared = _dvc_stages()[stage], BY_NAME[stage]
    assert spec["cmd"] == " ".join(declared.command(study="${study}", root="."))
    data = {d for d in spec.get("deps", []) if not d.startswith("pipeline/")}
    wanted = set().union(*(dvc_paths(k) for k in declared.inputs if k != STUDY))
    # the review stage runs on every `dvc repro` (always_changed), so it lists no study dep
    if STUDY in declared.inputs and not spec.get("always_changed"):
        wanted.add("${study}")
    assert data == wanted
    written = set().union(*(_listed(spec.get(kind, [])) for kind in ("outs", "metrics", "plots")))
    assert written == set().union(*(dvc_paths(k) for k in declared.outputs))
    assert spec.get("params", []) == list(declared.params)


def test_params_yaml_states_the_defaults():
    """Defaults live in pipeline/config.py; params.yaml says the same, key for key."""
    stated = Params.model_validate(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert stated.model_dump() == Params().model_dump()
    assert set(yaml.safe_load((REPO / "params.yaml").read_text())) == set(Params().model_dump())


def _is_minus_one(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and node.operand.value == 1
    )


def test_the_unassigned_theme_is_named_not_written_as_minus_one():
    """`pipeline.schemas.UNASSIGNED` is the one place -1 stands for "in no theme": no comparison
    with -1 anywhere in the package, and no -1 at all where themes are handled."""
    themed = ("pipeline.themes", "pipeline.report", "pipeline.comparison", "pipeline.theme_review")
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        # an index or a slice bound (`words[-1]`, `xs[:-1]`) is a position, not a theme
        positions = {id(n) for s in ast.walk(tree) if isinstance(s, ast.Subscript) for n in ast.walk(s.slice)}
        for node in ast.walk(tree):
            if id(node) in positions:
                continue
            operands = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            compared = any(map(_is_minus_one, operands))
            literal = name.startswith(themed) and _is_minus_one(node)
            if compared or literal:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, "a literal -1 for the unassigned theme:\n" + "\n".join(found)
