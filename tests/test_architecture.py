"""The layering: who imports whom (README, "Architecture"), read from the source with ast.

- no import cycle among mytorch's modules, counting imports inside functions too;
- no module imports a private (underscore) name from a module outside its own subpackage;
- `autograd_engine.py` and `utils.py` import nothing else of mytorch (a course copies them alone).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mytorch"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in `name`, nested ones too."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [base]).strip(".")
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:  # `from mytorch import functional`: the submodule itself
                    found.append((submodule, [], node.lineno))
                else:
                    found.append((base, [alias.name], node.lineno))
    return [(module, names, line) for module, names, line in found if module.split(".")[0] == "mytorch"]


GRAPH = {name: {module for module, _, _ in _imports(name) if module in MODULES and module != name}
         for name in MODULES}


def test_no_import_cycles():
    # The package's __init__ gathers the public names, so it is left out: it imports, nothing imports it.
    graph = {n: {m for m in deps if m != "mytorch"} for n, deps in GRAPH.items() if n != "mytorch"}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                cycles.append(path[path.index(child):] + [child] if child in path else [node, child])
            elif child not in state:
                visit(child, path + [child])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles}"


def test_nothing_imports_the_package_init_from_below():
    # `import mytorch` inside the package reaches __init__, which imports every layer: an upward edge.
    offenders = sorted(n for n, deps in GRAPH.items() if "mytorch" in deps and n != "mytorch")
    assert not offenders, f"modules importing the mytorch package itself: {offenders}"


def _subpackage(name: str) -> str:
    return name.rpartition(".")[0] if MODULES[name].name != "__init__.py" else name


def test_no_private_name_crosses_a_subpackage():
    crossings = []
    for name in MODULES:
        for module, names, line in _imports(name):
            if module not in MODULES:
                continue
            same_home = _subpackage(module) == _subpackage(name) and _subpackage(name) != "mytorch"
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__") and not same_home:
                    crossings.append(f"{name}:{line} imports {module}.{imported}")
    assert not crossings, "private names imported across modules:\n" + "\n".join(crossings)


@pytest.mark.parametrize("leaf", ["mytorch.utils", "mytorch.autograd_engine"])
def test_the_engine_files_stand_alone(leaf):
    allowed = {"mytorch.utils"}
    assert GRAPH[leaf] <= allowed, f"{leaf} imports {GRAPH[leaf] - allowed}"


# The old top-level paths of the course tools, kept for handouts that import them: each only re-exports.
COURSE_SHIMS = {"mytorch.grade", "mytorch.grade_child", "mytorch.handout", "mytorch.assignment",
                "mytorch.functional_hw1", "mytorch.functional_hw2"}


def test_the_engine_does_not_import_the_course():
    # The engine's floor holds only the engine: nothing outside mytorch.course reaches into it.
    offenders = sorted(f"{name} imports {dep}" for name, deps in GRAPH.items()
                       if not name.startswith("mytorch.course") and name not in COURSE_SHIMS
                       for dep in deps if dep.startswith("mytorch.course"))
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("shim", sorted(COURSE_SHIMS))
def test_an_old_course_path_only_points_into_the_course(shim):
    tree = ast.parse(MODULES[shim].read_text(encoding="utf-8"))
    kinds = {type(node).__name__ for node in tree.body}
    assert kinds <= {"Expr", "ImportFrom", "Assign", "If"}, f"{shim} holds code: {kinds}"
    assert GRAPH[shim] and all(dep.startswith("mytorch.course") for dep in GRAPH[shim]), GRAPH[shim]
