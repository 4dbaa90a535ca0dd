"""`python -m mytorch demo`: the lecture notes, run on the real tape.

1. The lecture's example y = ln(x1) + x1·x2 - sin(x2) at (x1, x2) = (2, 5), printed as its three
   traces: the forward evaluation trace (v1 ... v7), the forward-mode tangent trace along x1, and the
   reverse adjoint trace. Every number is read from the engine's tape: values are the recorded
   outputs, tangents come from `walk_forward` (each primitive's tangent rule), adjoints from a reverse
   loop over the recorded operations with each primitive's backward rule; `engine.backward` is run
   too and must agree.
2. The lecture's two-layer MLP, softmax(W σ(V x)) with 16 sigmoid hidden units and the mean
   cross-entropy, trained on Fisher's Iris (shipped in the package) with a stratified train/test
   split and a progress bar; prints the test accuracy. Deterministic for a given --seed.
3. Writes both tapes as Graphviz DOT files (and SVG when the `dot` program exists) and the loss curve
   as a PNG when matplotlib is installed, into --out.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch import nn, optim
from mytorch.autograd_engine import Autograd, Operation, no_grad

# ---- 1. the lecture's traces ------------------------------------------------------------------

# How each primitive reads in the lecture's notation (labels only: every number comes from the tape).
_DEFINITION = {"log": "ln {0}", "mul": "{0} × {1}", "sin": "sin {0}", "cos": "cos {0}", "exp": "exp {0}",
               "add": "{0} + {1}", "sub": "{0} - {1}", "div": "{0} / {1}", "neg": "-{0}"}
_TANGENT = {"log": "{t0} / {0}", "mul": "{t0} × {1} + {t1} × {0}", "sin": "{t0} × cos {0}",
            "cos": "-{t0} × sin {0}", "exp": "{t0} × exp {0}", "add": "{t0} + {t1}", "sub": "{t0} - {t1}",
            "neg": "-{t0}"}
_ADJOINT = {("log", 0): "{bar} / {0}", ("mul", 0): "{bar} × {1}", ("mul", 1): "{bar} × {0}",
            ("sin", 0): "{bar} × cos {0}", ("cos", 0): "-{bar} × sin {0}", ("exp", 0): "{bar} × exp {0}",
            ("add", 0): "{bar}", ("add", 1): "{bar}", ("sub", 0): "{bar}", ("sub", 1): "-{bar}",
            ("neg", 0): "-{bar}"}


@dataclass
class Traces:
    """The lecture example as recorded: names, values, tangents along x1, adjoints, and the tape."""

    engine: Autograd
    names: dict[int, str]  # id(array) -> "v1", "v2", ...
    order: list[np.ndarray]  # v1, v2, ... in order
    inputs: dict[int, str]  # id(leaf) -> "x1", "x2"
    tangents: dict[int, np.ndarray]
    adjoints: dict[int, np.ndarray]
    contributions: dict[int, list[tuple[str, np.ndarray]]]  # id(v) -> [(formula, value), ...]
    gradients: tuple[float, float]  # dy/dx1, dy/dx2 from engine.backward

    def value(self, name: str) -> float:
        return float(self.order[int(name[1:]) - 1])

    def tangent(self, name: str) -> float:
        return float(self.tangents[id(self.order[int(name[1:]) - 1])])

    def adjoint(self, name: str) -> float:
        return float(self.adjoints[id(self.order[int(name[1:]) - 1])])


def lecture_traces(x1: float = 2.0, x2: float = 5.0) -> Traces:
    """Record y = ln(x1) + x1·x2 - sin(x2) on a fresh engine and read its three traces off the tape."""
    engine = Autograd()
    a, b = np.array(x1), np.array(x2)
    ln_x1 = F.log(a)  # recorded in the lecture's order: v3, v4, v5, v6, v7
    product = F.mul(a, b)
    sine = F.sin(b)
    y = F.sub(F.add(ln_x1, product), sine)
    tape = engine.operation_list

    # v1, v2 are the inputs; v3 ... are the outputs of the recorded operations, in recording order.
    order = [a, b] + [op.output for op in tape]
    names = {id(v): f"v{i + 1}" for i, v in enumerate(order)}

    # Forward mode: the tape walked forwards with each primitive's tangent rule, seeded ẋ1 = 1, ẋ2 = 0.
    with no_grad():
        tangents = engine.walk_forward(0, {id(a): np.array(1.0), id(b): np.array(0.0)})

    # Reverse mode: the tape walked backwards with each primitive's backward rule. A small loop of our
    # own, because the engine frees an intermediate's adjoint once used and the trace shows them all.
    adjoints: dict[int, np.ndarray] = {id(y): np.array(1.0)}
    contributions: dict[int, list[tuple[str, np.ndarray]]] = {}
    with no_grad():
        for op in reversed(tape):
            bar = adjoints[id(op.output)]
            needs = [id(value) in names for value in op.inputs]
            grads = op.primitive.pullback(bar, op.output, op.inputs, op.params, needs)
            for position, (value, grad) in enumerate(zip(op.inputs, grads)):
                if grad is None or id(value) not in names:
                    continue
                adjoints[id(value)] = adjoints.get(id(value), 0.0) + grad
                contributions.setdefault(id(value), []).append((_adjoint_formula(op, position, names), grad))

    engine.backward(y, retain_graph=True)  # the engine's own reverse walk, for the cross-check
    gradients = (float(engine.gradient_buffer.get_param(a)), float(engine.gradient_buffer.get_param(b)))
    return Traces(engine, names, order, {id(a): "x1", id(b): "x2"}, tangents, adjoints, contributions,
                  gradients)


def _arguments(op: Operation, names: dict[int, str]) -> list[str]:
    return [names.get(id(v), repr(v)) for v in op.inputs]


def _definition(op: Operation, names: dict[int, str]) -> str:
    args = _arguments(op, names)
    template = _DEFINITION.get(op.primitive.name)
    return template.format(*args) if template else f"{op.primitive.name}({', '.join(args)})"


def _tangent_formula(op: Operation, names: dict[int, str], dot: str) -> str:
    args = _arguments(op, names)
    tangents = {f"t{i}": _marked(name, dot) for i, name in enumerate(args)}
    template = _TANGENT.get(op.primitive.name)
    return template.format(*args, **tangents) if template else f"jvp of {op.primitive.name}"


def _adjoint_formula(op: Operation, position: int, names: dict[int, str]) -> str:
    # Kept with a placeholder for the bar: the symbols are chosen when printing.
    args = _arguments(op, names)
    template = _ADJOINT.get((op.primitive.name, position))
    bar = "{bar:" + names[id(op.output)] + "}"
    if template is None:
        return f"{bar} ∂{names[id(op.output)]}/∂{args[position]}"
    return template.format(*args, bar=bar)


def _marked(name: str, mark: str) -> str:
    """v3 with a dot or bar over the v: 'v̇3', 'v̄3' (or the ASCII fallback)."""
    return f"{name[0]}{mark}{name[1:]}" if len(mark) == 1 else f"{name}{mark}"


def _number(value: Any) -> str:
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _width(text: str) -> int:
    """Printed width: a combining dot or bar takes no column of its own."""
    return sum(not unicodedata.combining(c) for c in text)


def _table(title: str, rows: list[tuple[str, ...]]) -> str:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [title, "-" * _width(title)]
    for row in rows:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths)]
        lines.append("  " + "   ".join(cells).rstrip())
    return "\n".join(lines)


def format_traces(traces: Traces, unicode: bool = True) -> str:
    """The three tables of the lecture, from the recorded tape."""
    dot, bar = ("\u0307", "\u0304") if unicode else ("_dot", "_bar")
    names, tape = traces.names, traces.engine.operation_list
    first_op = len(traces.order) - len(tape)  # v1, v2 are inputs; the rest are op outputs

    forward = [(f"{names[id(v)]} = {traces.inputs[id(v)]}", "", f"= {_number(v)}")
               for v in traces.order[:first_op]]
    for op in tape[:len(traces.order) - first_op]:
        forward.append((f"{names[id(op.output)]} = {_definition(op, names)}", "", f"= {_number(op.output)}"))
    forward.append((f"y = {names[id(traces.order[-1])]}", "", f"= {_number(traces.order[-1])}"))

    tangent = [(f"{_marked(names[id(v)], dot)} = ∂{traces.inputs[id(v)]}/∂x1", "",
                f"= {_number(traces.tangents[id(v)])}") for v in traces.order[:first_op]]
    for op in tape[:len(traces.order) - first_op]:
        name = names[id(op.output)]
        tangent.append((f"{_marked(name, dot)} = {_tangent_formula(op, names, dot)}", "",
                        f"= {_number(traces.tangents[id(op.output)])}"))

    def barred(formula: str) -> str:
        for v in traces.order:
            formula = formula.replace("{bar:" + names[id(v)] + "}", _marked(names[id(v)], bar))
        return formula

    last = traces.order[-1]
    reverse = [(f"{_marked(names[id(last)], bar)} = ∂y/∂{names[id(last)]}", "", "= 1")]
    for v in reversed(traces.order[:-1]):
        parts = traces.contributions.get(id(v), [])
        formula = " + ".join(barred(f) for f, _ in parts).replace("+ -", "- ")
        values = " + ".join(_number(g) for _, g in parts).replace("+ -", "- ")
        shown = f"= {values} " if len(parts) > 1 else ""
        adjoint = f"= {_number(traces.adjoints[id(v)])}"
        reverse.append((f"{_marked(names[id(v)], bar)} = {formula}", shown, adjoint))

    times = "×" if unicode else "*"
    text = "\n\n".join([
        _table("Forward evaluation trace", forward),
        _table(f"Forward-mode (tangent) trace along x1:  {_marked('v', dot)}i = ∂vi/∂x1", tangent),
        _table(f"Reverse-mode (adjoint) trace:  {_marked('v', bar)}i = ∂y/∂vi", reverse),
        f"engine.backward(y) agrees: dy/dx1 = {_number(traces.gradients[0])}, "
        f"dy/dx2 = {_number(traces.gradients[1])}",
    ])
    return text if unicode else _ascii(text.replace("×", times))


def _ascii(text: str) -> str:
    return text.replace("∂", "d").replace("σ", "sigma").replace("·", "*")


# ---- 2. the lecture's MLP on Iris ---------------------------------------------------------------


def load_iris() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fisher's Iris, shipped in the package: features (150, 4), labels (150,), class names."""
    text = resources.files("mytorch").joinpath("data", "iris.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(text.splitlines()))[1:]
    classes = sorted({row[4] for row in rows})
    features = np.array([[float(v) for v in row[:4]] for row in rows])
    labels = np.array([classes.index(row[4]) for row in rows])
    return features, labels, classes


@dataclass
class TrainingResult:
    model: nn.Module
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    train_accuracy: float = 0.0
    test_accuracy: float = 0.0
    train_size: int = 0
    test_size: int = 0


def stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple:
    """Train and test indices with each class in the same proportion."""
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * test_fraction))
        test += list(members[:cut])
        train += list(members[cut:])
    return np.array(sorted(train)), np.array(sorted(test))


def compiled_training_step(model: nn.Module, loss_fn: nn.Module) -> Any:
    """`step(*model.parameters(), X, Y) -> (loss, gradients)`, compiled with `mytorch.compile`.

    The model's parameters become the arguments of the recorded function (a compiled function
    takes its arrays as arguments), swapped in while it runs.
    """
    from mytorch.compile import compile as compile_step
    from mytorch.nn.module import functional_call
    from mytorch.transforms import value_and_grad

    names = [name for name, _ in model.named_parameters()]  # the order of model.parameters()

    def loss(*arrays: np.ndarray) -> np.ndarray:
        *params, X, Y = arrays
        return loss_fn(functional_call(model, dict(zip(names, params)), X), Y)

    return compile_step(value_and_grad(loss, argnums=tuple(range(len(names)))))


def train_iris(epochs: int = 100, seed: int = 0, hidden: int = 16, lr: float = 0.1, momentum: float = 0.9,
               batch_size: int = 16, progress: bool = True, compiled: bool = False) -> TrainingResult:
    """Train softmax(W σ(V x)) on Iris with mini-batch SGD and mean cross-entropy.

    With `compiled`, each step replays a program recorded once per batch size (`mytorch.compile`)
    and hands its gradients to the optimizer through the engine's buffer.
    """
    from tqdm import tqdm

    features, labels, classes = load_iris()
    rng = np.random.default_rng(seed)
    train, test = stratified_split(labels, 0.2, rng)
    mean, std = features[train].mean(axis=0), features[train].std(axis=0)  # the training set's scale only
    X = (features - mean) / std

    outer_rng = np.random.get_state()
    np.random.seed(seed)  # layers draw their initial weights from np.random, as PyTorch's do
    model = nn.Sequential(nn.Linear(4, hidden), nn.Sigmoid(), nn.Linear(hidden, len(classes)))
    np.random.set_state(outer_rng)
    loss_fn = nn.CrossEntropyLoss()  # the softmax output and the mean cross-entropy, in one stable step
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    engine = Autograd()
    result = TrainingResult(model, train_size=len(train), test_size=len(test))
    step = compiled_training_step(model, loss_fn) if compiled else None
    params = model.parameters()

    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, file=sys.stderr)
    for _ in bar:
        order = rng.permutation(train)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            if step is not None:  # replay: no tape, the gradients come back as arrays
                loss, grads = step(*params, X[batch], labels[batch])
                for p, g in zip(params, grads):
                    engine.gradient_buffer.set_param(p, g)
                optimizer.step()
                total += float(loss) * len(batch)
                continue
            engine.zero_grad()  # an empty tape for every step
            loss = loss_fn(model(X[batch]), labels[batch])
            engine.backward(loss)
            optimizer.step()
            total += float(loss) * len(batch)
        result.losses.append(total / len(order))
        bar.set_postfix(loss=f"{result.losses[-1]:.4f}", refresh=False)  # redraw at tqdm's own pace
    engine.zero_grad()

    with no_grad():
        result.train_accuracy = float(np.mean(np.argmax(model(X[train]), axis=1) == labels[train]))
        result.test_accuracy = float(np.mean(np.argmax(model(X[test]), axis=1) == labels[test]))
    return result


# ---- 3. the tape as a graph ---------------------------------------------------------------------


def tape_to_dot(tape: list[Operation], labels: dict[int, str], title: str = "tape") -> str:
    """Graphviz DOT of a tape: an ellipse per array, a box per operation, edges in data order."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    nodes: dict[int, str] = {}

    def node(array: Any) -> str:
        key = id(array)
        if key not in nodes:
            nodes[key] = f"a{len(nodes)}"
            if key in labels:
                text = labels[key]
            elif isinstance(array, np.ndarray):
                text = _number(array) if array.size == 1 else "×".join(map(str, array.shape)) or "()"
            else:
                text = repr(array)
            lines.append(f'  {nodes[key]} [label="{_escaped(text)}", shape=ellipse];')
        return nodes[key]

    for index, op in enumerate(tape):
        name = getattr(op.primitive, "name", None) or getattr(op.backward_operation, "__name__", "op")
        lines.append(f'  op{index} [label="{_escaped(name)}", shape=box, style=filled, fillcolor="#e8e8e8"];')
        for value in op.inputs:
            if value is not None:
                lines.append(f"  {node(value)} -> op{index};")
        lines.append(f"  op{index} -> {node(op.output)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_graph(dot_text: str, path: Path) -> list[Path]:
    """Write the DOT file, and an SVG beside it when Graphviz's `dot` is installed."""
    path.write_text(dot_text, encoding="utf-8")
    written = [path]
    dot_program = shutil.which("dot")
    if dot_program:
        svg = path.with_suffix(".svg")
        command = [dot_program, "-Tsvg", str(path), "-o", str(svg)]
        done = subprocess.run(command, capture_output=True, timeout=60)
        if done.returncode == 0:
            written.append(svg)
    return written


def plot_losses(losses: list[float], path: Path) -> bool:
    """The loss curve as a PNG, if matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(1, len(losses) + 1), losses)
    axes.set(xlabel="epoch", ylabel="mean cross-entropy (training set)", title="Iris MLP: training loss")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


# ---- the subcommand -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    parser.add_argument("--out", default="mytorch-demo", help="folder for the graphs and the plot")
    parser.add_argument("--compile", action="store_true",
                        help="train with mytorch.compile: each step replays a recorded program")


def run(args: argparse.Namespace) -> int:
    """The demo; in a handout whose rules are still stubs, what to write instead of a traceback."""
    try:
        return _run(args)
    except NotImplementedError as stub:
        print(f"\ndemo: this copy of mytorch is a handout, and the demo needs rules still to write:\n"
              f"  {stub}\n{_handout_items()}", file=sys.stderr)
        return 1


def _handout_items() -> str:
    """The items of the handout's grading.json (beside the package), read as plain JSON: the demo
    stays below the course tools."""
    import json

    config = Path(__file__).resolve().parents[1] / "grading.json"
    try:
        items = list(json.loads(config.read_text(encoding="utf-8"))["items"])
    except (OSError, ValueError, KeyError, TypeError):
        return "  write the stubs (NotImplementedError) first."
    return (f"  the handout's items ({config.name}): {', '.join(items)}\n"
            "  python -m mytorch grade checks each one; the demo runs once they are written.")


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.epochs < 1:
        print("demo: --epochs must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    unicode = _can_print("v\u0304\u0307×∂σ·−")

    print("1. y = ln(x1) + x1·x2 - sin(x2) at (x1, x2) = (2, 5), read off the tape\n" if unicode
          else "1. y = ln(x1) + x1*x2 - sin(x2) at (x1, x2) = (2, 5), read off the tape\n")
    traces = lecture_traces()
    print(format_traces(traces, unicode))

    model_text = "softmax(W σ(V x))" if unicode else "softmax(W sigmoid(V x))"
    print(f"\n2. {model_text}, 16 sigmoid hidden units, mean cross-entropy, on Fisher's Iris")
    result = train_iris(epochs=args.epochs, seed=args.seed, compiled=getattr(args, "compile", False))
    print(f"   {result.model!r}".replace("\n", "\n   "))
    print(f"   split: {result.train_size} train / {result.test_size} test (stratified, seed {args.seed}); "
          f"SGD lr 0.1, momentum 0.9, batches of 16, {args.epochs} epochs"
          + (", compiled (mytorch.compile)" if getattr(args, "compile", False) else ""))
    print(f"   final training loss: {result.losses[-1]:.4f}")
    print(f"   train accuracy: {result.train_accuracy:.3f}")
    print(f"   test accuracy: {result.test_accuracy:.3f}")

    print("\n3. the tapes as graphs")
    lecture_labels = {key: f"{name}\n{_number(traces.order[int(name[1:]) - 1])}"
                      for key, name in traces.names.items()}
    written = write_graph(tape_to_dot(traces.engine.operation_list, lecture_labels, "lecture"),
                          out / "lecture_tape.dot")
    written += write_graph(_training_step_dot(result.model), out / "mlp_tape.dot")
    if plot_losses(result.losses, out / "loss_curve.png"):
        written.append(out / "loss_curve.png")
    else:
        print("   (matplotlib is not installed: no loss curve; pip install 'mytorch[plot]')")
    if not shutil.which("dot"):
        print("   (Graphviz's dot is not installed: DOT files only, no SVG)")
    for path in written:
        print(f"   wrote {path}")
    print(f"\ndemo finished in {time.perf_counter() - started:.2f} s")
    return 0


def _training_step_dot(model: nn.Module) -> str:
    """One recorded training step of the MLP (forward and loss) on a few Iris rows, as DOT."""
    features, labels, _ = load_iris()
    rows = np.array([0, 50, 100])  # one flower of each species
    X = (features[rows] - features.mean(axis=0)) / features.std(axis=0)
    targets = labels[rows]
    engine = Autograd()
    loss = nn.CrossEntropyLoss()(model(X), targets)
    names = {id(array): name for name, array in model.named_parameters()}
    names.update({id(X): "X (3×4)", id(targets): "labels (3,)", id(loss): f"L\n{_number(loss)}"})
    dot = tape_to_dot(engine.operation_list, names, "mlp")
    engine.zero_grad()
    return dot


def _can_print(text: str) -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
