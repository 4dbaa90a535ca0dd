"""`python -m mytorch handout --out DIR`: a student copy of mytorch with chosen parts left to write.

    python -m mytorch handout --out hw1 --ops exp,matmul,linear --layers Linear,GRUCell
    python -m mytorch handout --list          # what can be stubbed

The reference code is the only copy of every answer: nothing in the source is marked by hand.
What to cut out is found from the source's structure with `ast`:

- a primitive's backward / tangent rule is whatever its `primitive("name", ..., vjp=..., jvp=...)`
  call binds to the keyword: a lambda (replaced by a stub function defined just above the
  primitive), or a named function (its body replaced). Rules made by a factory (`max`/`min` by
  `_extremum`, `maximum`/`minimum` by `_binary_select_rules`, `conv1d`/`conv2d` by `_convolution`)
  are one piece of code for the whole family, so choosing one member stubs (and grades) all of
  them; a rule function that another rule calls (cross_entropy's jvp calls its vjp) brings that
  rule along;
- a layer is the body of its class's `forward` in mytorch/nn.

Each stub raises NotImplementedError with the formula's shape (`mytorch.course.assignment.rule_hint`).
The files that hold rules are found from the primitives themselves (the source file of each
registered primitive's rules), not from a list of file names.

The copy also gets grading.json (items, points, the files students edit), a README for students
and a pytest file that runs the grader. It carries no reference outputs: the teacher's grader
computes them when grading. The test suite, the benchmark and this generator are left out; the
grader (`grade`) ships, so students can check their work with the visible seed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mytorch.course.assignment import (
    CONFIG_NAME,
    LAYERS,
    RULES,
    Config,
    layer_hint,
    layer_item,
    rule_hint,
    rule_item,
    split_item,
)

# Not in a student's copy: the generator (and its old import path), the timing harness.
LEFT_OUT = ("handout.py", "bench", "course/handout.py")
DEFAULT_OPS = ("mul", "div", "exp", "log", "tanh", "matmul", "sum", "linear")
DEFAULT_LAYERS = ("Linear", "GRUCell")


class HandoutError(ValueError):
    """A handout that cannot be made as asked (unknown item, a rule shared with other code, ...)."""


# ---- reading the source: byte offsets, as ast counts columns in UTF-8 bytes ---------------------


class _Source:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.tree = ast.parse(self.data, filename=str(path))
        self.line_starts = [0] + [i + 1 for i, byte in enumerate(self.data) if byte == 10]

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.line_starts[node.lineno - 1] + node.col_offset
        return start, self.line_starts[node.end_lineno - 1] + node.end_col_offset

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.data[start:end].decode("utf-8")


@dataclass(eq=False)
class Site:
    """Where one piece of code to cut out lives: a lambda, or the body of a function."""

    source: _Source
    node: ast.Lambda | ast.FunctionDef
    statement: ast.stmt  # the statement holding a lambda (a stub function is defined above it)
    scope: ast.Module | ast.FunctionDef  # where names are looked up: the module or a factory
    items: list[str] = field(default_factory=list)  # what the students write here

    @property
    def key(self) -> tuple[str, int]:
        return str(self.source.path), self.source.span(self.node)[0]

    def label(self) -> str:
        where = "" if isinstance(self.scope, ast.Module) else f"{self.scope.name}."
        node = self.node
        name = node.name if isinstance(node, ast.FunctionDef) else f"lambda at line {node.lineno}"
        return f"{self.source.path.name}: {where}{name}"


def _top_functions(scope: ast.Module | ast.FunctionDef) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in scope.body if isinstance(node, ast.FunctionDef)}


def _is_call_to(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _is_rule_tuple(node: ast.AST) -> bool:
    return isinstance(node, ast.Tuple) and all(
        isinstance(e, ast.Lambda) or isinstance(e, ast.Constant) and e.value is None for e in node.elts
    ) and any(isinstance(e, ast.Lambda) for e in node.elts)


def _stub_arguments(node: ast.AST) -> ast.arguments:
    """The parameters of a stub standing for a lambda, or for a tuple of per-input lambdas."""
    if isinstance(node, ast.Tuple):
        return next(e for e in node.elts if isinstance(e, ast.Lambda)).args
    return node.args


def _rule_site(source: _Source, call: ast.Call, rule: str, statement: ast.stmt,
               scope: ast.Module | ast.FunctionDef) -> Site:
    """The code bound to `rule=` in a `primitive(...)` call."""
    keyword = next((k for k in call.keywords if k.arg == rule), None)
    if keyword is None:  # **factory(...): the factory's nested function of that name
        spread = next((k for k in call.keywords if k.arg is None and isinstance(k.value, ast.Call)), None)
        factory = _top_functions(source.tree).get(getattr(spread.value.func, "id", "")) if spread else None
        nested = _top_functions(factory).get(rule) if factory else None
        if nested is None:
            raise HandoutError(f"{source.path.name}:{call.lineno}: cannot find this primitive's {rule} rule")
        return Site(source, nested, nested, factory)
    value = keyword.value
    if isinstance(value, ast.Lambda) or _is_rule_tuple(value):  # a tuple of per-input rules: one stub
        return Site(source, value, statement, scope)
    if isinstance(value, ast.Name):
        function = _top_functions(scope).get(value.id) if isinstance(scope, ast.FunctionDef) else None
        function = function or _top_functions(source.tree).get(value.id)
        if function is not None:
            owner = scope if function in getattr(scope, "body", ()) else source.tree
            return Site(source, function, function, owner)
    raise HandoutError(f"{source.path.name}:{value.lineno}: the {rule} rule is not a lambda or a function")


def primitive_files(package: Path) -> list[Path]:
    """The package's source files that define registered primitives, found from the primitives
    themselves (the module whose `primitive(...)` call made each, else where its rules' code is),
    in a stable order."""
    import importlib.util
    import inspect

    from mytorch.testing import all_primitives

    package = package.resolve()
    files: set[Path] = set()
    for primitive in all_primitives().values():
        found: list[str | None] = []
        module = getattr(primitive, "defined_in", None)
        if module:
            spec = importlib.util.find_spec(module)
            found.append(spec.origin if spec else None)
        else:
            rules = [getattr(primitive, rule, None) for rule in (*RULES, "forward")]
            for rule in rules:
                for function in rule if isinstance(rule, (tuple, list)) else (rule,):
                    try:
                        found.append(inspect.getsourcefile(function))
                    except TypeError:  # a NumPy ufunc forward, a None rule: no Python source
                        continue
        for path in found:
            if path and Path(path).resolve().is_relative_to(package):
                files.add(Path(path).resolve())
    return sorted(files)


def rule_sites(package: Path) -> dict[str, Site]:
    """Every primitive rule in the package's source, by item ("exp.vjp"); items sharing code share a Site."""
    sites: dict[str, Site] = {}
    by_key: dict[tuple[str, int], Site] = {}
    for path in primitive_files(package):
        source = _Source(path)
        factories = _top_functions(source.tree)
        for statement in source.tree.body:
            if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
                continue
            call, target = statement.value, statement.targets[0]
            unregistered = any(k.arg == "register" and getattr(k.value, "value", True) is False
                               for k in call.keywords)  # plumbing (F.copy), not a graded primitive
            if unregistered:
                continue
            if _is_call_to(call, "primitive") and call.args and isinstance(call.args[0], ast.Constant):
                op, found = call.args[0].value, [(call, statement, source.tree)]
            elif getattr(call.func, "id", None) in factories and isinstance(target, ast.Name):
                factory = factories[call.func.id]  # e.g. max = _extremum("max", np.max)
                op = target.id
                found = [(inner, step, factory) for step in factory.body for inner in ast.walk(step)
                         if _is_call_to(inner, "primitive")]
            else:
                continue
            if len(found) != 1:
                continue
            inner_call, inner_statement, scope = found[0]
            for rule in RULES:
                site = _rule_site(source, inner_call, rule, inner_statement, scope)
                site = by_key.setdefault(site.key, site)
                site.items.append(rule_item(op, rule))
                sites[rule_item(op, rule)] = site
    return sites


def layer_site(package: Path, layer: str) -> Site:
    """The `forward` of class `layer` of mytorch.nn, in the file that defines the class."""
    import inspect

    from mytorch import nn

    cls = getattr(nn, layer, None)
    try:
        defined = Path(inspect.getsourcefile(cls)).resolve() if isinstance(cls, type) else None
    except TypeError:
        defined = None
    candidates = [defined] if defined and defined.is_relative_to(package.resolve()) else []
    for path in candidates or sorted((package / "nn").glob("*.py")):
        source = _Source(path)
        for node in source.tree.body:
            if isinstance(node, ast.ClassDef) and node.name == layer:
                forward = _top_functions(node).get("forward")  # type: ignore[arg-type]
                if forward is None:
                    raise HandoutError(f"nn.{layer} has no forward of its own (it inherits one)")
                return Site(source, forward, forward, source.tree, [layer_item(layer)])
    raise HandoutError(f"no layer nn.{layer} in {package / 'nn'}")


def _users(site: Site, sites: Iterable[Site], package: Path) -> list[Site]:
    """The other rule sites that call `site`'s function. A use anywhere else makes it unstubbable."""
    if isinstance(site.node, (ast.Lambda, ast.Tuple)):
        return []
    name, source = site.node.name, site.source
    # Where a rule is handed over: `vjp=name` in a call, or {"vjp": name} returned by a factory.
    binders = {id(k.value) for node in ast.walk(source.tree) if isinstance(node, ast.Call)
               for k in node.keywords if k.arg in RULES}
    binders |= {id(v) for node in ast.walk(source.tree) if isinstance(node, ast.Dict)
                for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant) and k.value in RULES}
    users = []
    for node in ast.walk(site.scope):
        if not (isinstance(node, ast.Name) and node.id == name) or id(node) in binders:
            continue
        start = source.span(node)[0]
        inside = [s for s in sites if s.source is source and s is not site
                  and source.span(s.node)[0] <= start < source.span(s.node)[1]]
        if not inside:
            raise HandoutError(f"{', '.join(site.items)}: {name} is also used at {source.path.name}:"
                               f"{node.lineno}, outside the rules, so it cannot be stubbed")
        users.extend(inside)
    if not isinstance(site.scope, ast.Module):
        return users  # a factory's own function: nothing outside the factory can reach it
    word = re.compile(rf"\b{re.escape(name)}\b")
    for path in package.rglob("*.py"):
        if path != source.path and word.search(path.read_text(encoding="utf-8")):
            raise HandoutError(f"{', '.join(site.items)}: {name} is also used in {path.name}, "
                               "so it cannot be stubbed")
    return users


@dataclass
class Plan:
    """The sites to stub and the graded items, with notes on what was added and why."""

    sites: list[Site]
    items: list[str]
    notes: list[str]


def plan(package: Path, ops: Iterable[str], layers: Iterable[str],
         rules: Iterable[str] = tuple(RULES)) -> Plan:
    """What to cut out for these ops (their chosen rules) and layers, families and callers included."""
    all_sites = rule_sites(package)
    known_ops = list(dict.fromkeys(split_item(item)[1] for item in all_sites))
    ops = known_ops if list(ops) == ["all"] else ops
    layers = list(LAYERS) if list(layers) == ["all"] else layers
    chosen: list[Site] = []
    notes: list[str] = []
    for op in ops:
        if op not in known_ops:
            raise HandoutError(f"unknown primitive {op!r}; stubbable: {', '.join(known_ops)}")
        for rule in rules:
            site = all_sites[rule_item(op, rule)]
            if site not in chosen:
                chosen.append(site)
    queue = list(chosen)
    while queue:  # a rule that calls a stubbed rule's function must be written by the student too
        site = queue.pop()
        for user in _users(site, set(all_sites.values()), package):
            if user not in chosen:
                notes.append(f"{', '.join(user.items)} calls {site.node.name}: stubbed and graded too")
                chosen.append(user)
                queue.append(user)
    for site in chosen:
        if len(site.items) > 1:
            notes.append(f"{' and '.join(site.items)} share one piece of code ({site.label()}): "
                         "all stubbed and graded")
    for layer in layers:
        layer = layer.removeprefix("nn.")
        if layer not in LAYERS:
            raise HandoutError(f"layer nn.{layer} has no grading spec; gradable layers: {', '.join(LAYERS)}")
        chosen.append(layer_site(package, layer))
    items = [item for site in chosen for item in site.items]
    return Plan(chosen, list(dict.fromkeys(items)), notes)


# ---- writing stubs ------------------------------------------------------------------------------


def _message(site: Site) -> str:
    kind, name, rule = split_item(site.items[0])
    if kind == "layer":
        return f"nn.{name}.forward is yours to write: {layer_hint(name)}"
    ops = "/".join(split_item(item)[1] for item in site.items)
    return f"{ops} {RULES[rule]} ({rule}) is yours to write: {rule_hint(name, rule)}"


def _raise(message: str, indent: str) -> str:
    """`raise NotImplementedError("...")`, the message split over lines of at most ~100 characters."""
    quoted = lambda text: json.dumps(text, ensure_ascii=False)  # noqa: E731 - double quotes, unicode kept
    if len(indent) + len(message) < 80:
        return f"raise NotImplementedError({quoted(message)})"
    chunks = textwrap.wrap(message, 96 - len(indent), drop_whitespace=False)
    lines = "".join(f"{indent}    {quoted(chunk)}\n" for chunk in chunks)
    return f"raise NotImplementedError(\n{lines}{indent})"


def _defined_names(scope: ast.Module | ast.FunctionDef) -> set[str]:
    names = set(_top_functions(scope))
    for node in scope.body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _edits(site: Site, taken: set[str]) -> list[tuple[int, int, bytes]]:
    """(start, end, replacement) byte edits that turn `site` into a stub."""
    source, node = site.source, site.node
    if isinstance(node, ast.FunctionDef):  # keep the signature and docstring, replace the rest
        body = node.body
        raise_line = _raise(_message(site), " " * body[0].col_offset)
        has_docstring = ast.get_docstring(node, clean=False) is not None
        statements = body[1:] if has_docstring and len(body) > 1 else body
        start, end = source.span(statements[0])[0], source.span(statements[-1])[1]
        if has_docstring and len(body) == 1:
            start = end = source.span(body[0])[1]
            raise_line = "\n" + " " * body[0].col_offset + raise_line
        return [(start, end, raise_line.encode("utf-8"))]
    raise_line = _raise(_message(site), " " * (site.statement.col_offset + 4))
    rule = site.items[0].rpartition(".")[2]
    base = rule if isinstance(site.scope, ast.FunctionDef) else f"_{site.items[0].replace('.', '_')}"
    name = base
    while name in taken:
        name += "_stub"
    taken.add(name)
    indent = " " * site.statement.col_offset
    gap = "\n" if indent else "\n\n"
    params = ast.unparse(_stub_arguments(node))
    stub = f"{indent}def {name}({params}):\n{indent}    {raise_line}\n{gap}"
    line_start = source.line_starts[site.statement.lineno - 1]
    lambda_start, lambda_end = source.span(node)
    return [(line_start, line_start, stub.encode("utf-8")), (lambda_start, lambda_end, name.encode("utf-8"))]


def stubbed_sources(sites: Iterable[Site]) -> dict[Path, str]:
    """The new text of every source file with stubs, keyed by the reference file's path."""
    by_file: dict[Path, list[Site]] = {}
    for site in sites:
        by_file.setdefault(site.source.path, []).append(site)
    result = {}
    for path, file_sites in by_file.items():
        source = file_sites[0].source
        edits: list[tuple[int, int, bytes]] = []
        taken: dict[int, set[str]] = {}
        for site in file_sites:
            edits += _edits(site, taken.setdefault(id(site.scope), _defined_names(site.scope)))
        data = source.data
        # Later edits first, so earlier offsets stay valid; of two stubs inserted at one spot, the
        # first listed (vjp) ends up first.
        order = sorted(range(len(edits)), key=lambda i: (edits[i][0], edits[i][1], i), reverse=True)
        for start, end, text in (edits[i] for i in order):
            data = data[:start] + text + data[end:]
        text = data.decode("utf-8")
        ast.parse(text, filename=str(path))  # a broken stub is a bug here, not the student's problem
        result[path] = text
    return result


# ---- the copy -----------------------------------------------------------------------------------


def _without_subcommands(cli_text: str, package: Path) -> str:
    """cli.py without the SUBCOMMANDS lines whose module is not in the copy."""
    tree = ast.parse(cli_text)
    lines = cli_text.splitlines(keepends=True)
    drop: set[int] = set()
    for statement in tree.body:
        targets = getattr(statement, "targets", [getattr(statement, "target", None)])
        node = getattr(statement, "value", None)
        if [getattr(t, "id", "") for t in targets] == ["SUBCOMMANDS"] and isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                module = getattr(value.elts[0], "value", "")  # type: ignore[attr-defined]
                place = package.joinpath(*str(module).split(".")[1:])
                if place != package and not (place.with_suffix(".py").exists() or place.is_dir()):
                    drop.update(range(key.lineno - 1, value.end_lineno))
    return "".join(line for i, line in enumerate(lines) if i not in drop)


def _copy_tree(root: Path, out: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}
        here = Path(directory).resolve().relative_to((root / "mytorch").resolve()).as_posix()
        skipped |= {n for n in names if (n if here == "." else f"{here}/{n}") in LEFT_OUT}
        return skipped

    shutil.copytree(root / "mytorch", out / "mytorch", ignore=ignore)
    for name in ("pyproject.toml", "setup.cfg", "LICENSE"):
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    settings = out / "setup.cfg"
    if settings.exists():  # students' `pytest` runs the assignment's tests, not the reference's doctests
        text = settings.read_text().replace("testpaths = tests mytorch", "testpaths = tests")
        settings.write_text(text.replace(" --doctest-modules", ""))


def make_handout(out: Path, ops: Iterable[str] = DEFAULT_OPS, layers: Iterable[str] = DEFAULT_LAYERS,
                 rules: Iterable[str] = tuple(RULES), *, examples: int = 30, seed: int = 0,
                 force: bool = False) -> Plan:
    """Write the student copy into `out` and return what was stubbed.

    >>> make_handout(Path("hw1"), ops=["exp"], layers=["Linear"]).items  # doctest: +SKIP
    ['exp.vjp', 'exp.jvp', 'nn.Linear']
    """
    package = Path(__file__).resolve().parents[1]  # mytorch, not mytorch/course
    root = package.parent
    if not (root / "pyproject.toml").exists():
        raise HandoutError(f"handout copies mytorch's source tree, but {root} has no pyproject.toml "
                           "(use a clone of the repository, installed with pip install -e)")
    rules = list(rules)
    if unknown := set(rules) - set(RULES):
        raise HandoutError(f"unknown rule(s) {sorted(unknown)}; choose from {', '.join(RULES)}")
    the_plan = plan(package, list(ops), list(layers), rules)
    if not the_plan.items:
        raise HandoutError("nothing to stub: choose --ops and/or --layers")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise HandoutError(f"{out} exists and is not empty (use --force to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _copy_tree(root, out)
    for path, text in stubbed_sources(the_plan.sites).items():
        (out / path.relative_to(root)).write_text(text, encoding="utf-8")
    cli = out / "mytorch" / "cli.py"
    cli.write_text(_without_subcommands(cli.read_text(encoding="utf-8"), out / "mytorch"), encoding="utf-8")

    files = sorted({site.source.path.relative_to(root).as_posix() for site in the_plan.sites})
    config = Config({item: 1.0 for item in the_plan.items}, examples=examples, seed=seed, files=files)
    config.save(out / CONFIG_NAME)
    (out / "README.md").write_text(_student_readme(the_plan, root), encoding="utf-8")
    (out / "tests").mkdir(exist_ok=True)
    (out / "tests" / "test_assignment.py").write_text(_STUDENT_TEST, encoding="utf-8")
    return the_plan


def _student_readme(the_plan: Plan, root: Path) -> str:
    lines = []
    for site in the_plan.sites:
        where = site.source.path.relative_to(root).as_posix()
        lines.append(f"- `{'`, `'.join(site.items)}` ({where}): {_message(site).split(': ', 1)[1]}")
    items = "\n".join(lines)
    files = ", ".join(f"`{name}`" for name in sorted({s.source.path.relative_to(root).as_posix()
                                                     for s in the_plan.sites}))
    return f"""# mytorch handout

A tape-based reverse-mode automatic-differentiation engine for NumPy, with some parts left for you
to write. Each one raises `NotImplementedError` with the formula it implements, in the lecture's
notation: the adjoint `x̄ = ȳ · ∂y/∂x` (backward rule, `vjp(g, ans, *inputs)`: one gradient per
input, in that input's shape, None for a constant) and the tangent `ẏ = ∂y/∂x · ẋ` (tangent rule,
`jvp(t, ans, *inputs)`: `t` holds one tangent per input). Write rules with the primitives of
`mytorch.functional` (`mul`, `matmul`, ...), not raw NumPy, so that gradients of gradients work;
a layer's `forward` must use them too, or the engine cannot see it.

## What to write

{items}

## Setup and grading

```bash
pip install -e '.[test]'           # the package and its test tools (pytest)
python -m mytorch grade            # the table: your code runs in a separate process per item
python -m mytorch grade --items matmul.vjp   # one item
pytest                             # the same checks, one test per item
```

Rules are checked against finite differences of the forward on inputs hypothesis draws
(broadcasting, 1-D and empty arrays, integer constants, ...): each input's gradient (or the
tangent) earns part of the item's points, and the second order (your rule recorded and walked back
once more: this is why rules must be written with the primitives) earns the rest. A failure shows
the simplest failing input drawn, the output adjoint ȳ (or the tangents) your rule was called
with, so you can redo the numbers by hand, the expected against your value with a hint at the
likely mistake, and the file and line of your code that raised. Layers are checked in several
configurations (constructor arguments) and batch sizes. Points per item are in `{CONFIG_NAME}`.

Your grade here uses a visible seed. Your teacher grades with other draws (and perhaps more items),
and checks your layers' outputs against the reference, which this handout does not contain.

## Handing in

Hand in the files you edit: {files}. Upload them as they are (flat is fine: only their names
matter, unless two share a name); the rest of the package is the handout's own. A file you do not
hand in counts as not written: its items score 0, the others are graded.
"""


_STUDENT_TEST = '''"""Each graded item as a test (visible seed): `pytest -k matmul` runs the matmul items."""

import pytest

from mytorch.course.grader import find_config, grade_item

CONFIG = find_config()


@pytest.mark.parametrize("item", list(CONFIG.items))
def test_item(item):
    result = grade_item(item, CONFIG)
    assert result.passed, f"{result.status}: {result.detail}"
'''


def stubbable(package: Path) -> str:
    """What `--ops` and `--layers` accept, and which items come together."""
    sites = rule_sites(package)
    ops = list(dict.fromkeys(split_item(item)[1] for item in sites))
    lines = ["primitives (--ops; each has a vjp and a jvp rule):", textwrap.fill(" ".join(ops), 100,
             initial_indent="  ", subsequent_indent="  "), "stubbed together:"]
    for site in dict.fromkeys(sites.values()):
        if len(site.items) > 1:
            lines.append(f"  {', '.join(site.items)}: one piece of code, {site.label()}")
        try:
            users = _users(site, set(sites.values()), package)
        except HandoutError as error:
            lines.append(f"  not stubbable: {error}")
            continue
        lines += [f"  {', '.join(site.items)} brings {', '.join(user.items)} (it calls {site.node.name})"
                  for user in users]
    lines.append(f"layers (--layers; their forward): {', '.join(LAYERS)}")
    return "\n".join(lines)


# ---- command line -------------------------------------------------------------------------------


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="directory for the student copy")
    parser.add_argument("--ops", metavar="A,B",
                        help=f"primitives whose rules to stub, or all (default {','.join(DEFAULT_OPS)})")
    parser.add_argument("--layers", metavar="A,B",
                        help=f"layers whose forward to stub, or all (default {','.join(DEFAULT_LAYERS)})")
    parser.add_argument("--rules", default="vjp,jvp", metavar="vjp,jvp",
                        help="which rules of the chosen primitives to stub (default both)")
    parser.add_argument("--examples", type=int, default=30, help="hypothesis examples per rule when grading")
    parser.add_argument("--seed", type=int, default=0, help="the visible seed (students' own grading)")
    parser.add_argument("--force", action="store_true", help="replace DIR if it exists")
    parser.add_argument("--list", action="store_true", help="list what can be stubbed, then exit")
    parser.add_argument("--gradescope", action="store_true",
                        help="also write DIR-gradescope.zip, Gradescope's autograder (setup.sh, "
                        "run_autograder, the config, the handout, the reference mytorch); with an "
                        "existing DIR and no --ops/--layers, package it as it is")
    parser.add_argument("--autolab", action="store_true",
                        help="also write DIR-autolab/ (autograde.tar, autograde-Makefile) for Autolab")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="with --gradescope/--autolab: the config to grade with (e.g. a teacher's, "
                        "with hidden items; default DIR's grading.json)")


def run(args: argparse.Namespace) -> int:
    package = Path(__file__).resolve().parents[1]  # mytorch, not mytorch/course
    if args.list:
        print(stubbable(package))
        return 0
    if args.out is None:
        print("handout: --out DIR is required", file=sys.stderr)
        return 2
    ops, layers = _names(args.ops), _names(args.layers)
    packaging = args.gradescope or args.autolab
    if packaging and ops is None and layers is None and (args.out / CONFIG_NAME).is_file() and not args.force:
        return _package(args)  # an existing handout (its grading.json perhaps edited): packaged as it is
    if ops is None and layers is None:
        ops, layers = list(DEFAULT_OPS), list(DEFAULT_LAYERS)
    try:
        the_plan = make_handout(args.out, ops or [], layers or [], _names(args.rules) or [],
                                examples=args.examples, seed=args.seed, force=args.force)
    except HandoutError as error:
        print(f"handout: {error}", file=sys.stderr)
        return 2
    for note in the_plan.notes:
        print(f"note: {note}")
    copy_first = {**os.environ, "PYTHONPATH": str(args.out.resolve())}
    check = subprocess.run([sys.executable, "-c", "import mytorch.grade, mytorch.course.grade"],
                           cwd=args.out,
                           env=copy_first, capture_output=True, text=True)
    if check.returncode:
        print(f"handout: the copy does not import:\n{check.stderr}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(the_plan.items)} items to write ({', '.join(the_plan.items)})")
    print(f"points: {args.out / CONFIG_NAME}; grade inside it with: python -m mytorch grade")
    return _package(args) if packaging else 0


def _package(args: argparse.Namespace) -> int:
    """Gradescope's zip and Autolab's files, beside the handout (never inside it: students get DIR)."""
    from mytorch.course.package import autolab_files, gradescope_zip

    reference_root = Path(__file__).resolve().parents[2]
    out = args.out.resolve()
    try:
        if args.gradescope:
            zipped = out.with_name(out.name + "-gradescope.zip")
            written = gradescope_zip(out, zipped, reference_root, args.config)
            print(f"wrote {written}: upload it as the Gradescope autograder (zip file)")
        if args.autolab:
            written = autolab_files(out, out.with_name(out.name + "-autolab"), reference_root, args.config)
            print(f"wrote {written}: autograde.tar and autograde-Makefile for the Autolab assessment")
    except (OSError, ValueError) as error:
        print(f"handout: {error}", file=sys.stderr)
        return 2
    return 0
