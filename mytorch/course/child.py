"""What runs the student's code for `grade`: one child process per item, in a fresh interpreter.

    python -I grade_child.py STUDENT_ROOT WORK_DIR

The grader (mytorch.course.launch) copies this file into WORK_DIR, a temporary directory of its own,
with `request.json` and `request.npz` (the inputs it drew for this grading run), and starts a
fresh interpreter on it. This file puts STUDENT_ROOT first on sys.path, imports the student's
mytorch, computes what each task asks (values, gradients, tangents, second-order quantities)
with the student's code, and writes raw arrays to `out.npz` and per-task errors to `out.json`.
Nothing here judges anything: the grader reads those arrays (allow_pickle=False) and compares
them, in a process that never imports the student's code, with what it computed itself.

The grader also imports this module to run the same tasks on its own (reference) mytorch, and
to encode what it sends. Only numpy, the standard library and mytorch's public API are used.

Values cross the process boundary as JSON with tagged arrays: an array is {"a": key} (its data in
the .npz), a slice {"slice": [start, stop, step]}, a tuple {"tuple": [...]}, Ellipsis
{"ellipsis": 1}, a numpy scalar {"scalar": key}, a dtype {"dtype": "float32"}.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

import numpy as np

STEP = 1e-6  # central differences of the stand-in rules (float64)
MAX_TEXT = 4000  # characters of an error message sent back


# ---- values across the boundary ------------------------------------------------------------------


def encode(value: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """`value` as JSON, its arrays put into `arrays` under keys starting with `prefix`."""
    if isinstance(value, np.ndarray):
        for key, held in arrays.items():  # the same array at two places stays one (`mul(x, x)`)
            if held is value:
                return {"a": key}
        key = f"{prefix}{len(arrays)}"
        arrays[key] = value
        return {"a": key}
    if isinstance(value, np.generic):
        key = f"{prefix}{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"scalar": key}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"dtype": np.dtype(value).name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, slice):
        return {"slice": [encode(v, arrays, prefix) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"ellipsis": 1}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, arrays, prefix) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays, prefix) for v in value]
    if isinstance(value, dict):
        return {"dict": {str(k): encode(v, arrays, prefix) for k, v in value.items()}}
    raise TypeError(f"cannot send a {type(value).__name__} to the grading child")


def decode(value: Any, arrays: Any, made: dict[str, np.ndarray] | None = None) -> Any:
    """The value `encode` sent, each array a fresh, writable copy; an array sent at two places of
    `value` comes back as one array at both (`made` holds the copies made so far, by key)."""
    made = {} if made is None else made
    if isinstance(value, list):
        return [decode(v, arrays, made) for v in value]
    if not isinstance(value, dict):
        return value
    if "a" in value:
        if value["a"] not in made:
            made[value["a"]] = np.array(arrays[value["a"]])
        return made[value["a"]]
    if "scalar" in value:
        return np.asarray(arrays[value["scalar"]])[()]
    if "dtype" in value:
        return np.dtype(value["dtype"])
    if "slice" in value:
        return slice(*(decode(v, arrays, made) for v in value["slice"]))
    if "ellipsis" in value:
        return Ellipsis
    if "tuple" in value:
        return tuple(decode(v, arrays, made) for v in value["tuple"])
    if "dict" in value:
        return {k: decode(v, arrays, made) for k, v in value["dict"].items()}
    raise ValueError(f"unknown tagged value {sorted(value)}")


# ---- stand-in rules: central differences of a primitive's forward ---------------------------------


def _fd_vjp(forward: Any) -> Any:
    """x̄ᵢ[k] = Σ ȳ ⊙ (f(x + h eₖ) − f(x − h eₖ)) / 2h for each float input xᵢ (None for the others)."""

    def vjp(g: Any, ans: Any, *inputs: Any, **params: Any) -> tuple:
        adjoint = np.asarray(g, dtype=np.float64)
        grads: list[Any] = []
        for i, x in enumerate(inputs):
            if not (isinstance(x, np.ndarray) and x.dtype.kind == "f"):
                grads.append(None)
                continue
            grad = np.zeros(x.size)
            for k in range(x.size):
                change = []
                for step in (STEP, -STEP):
                    moved = x.astype(np.float64).reshape(-1)
                    moved[k] += step
                    shifted = (*inputs[:i], moved.reshape(x.shape), *inputs[i + 1 :])
                    change.append(np.asarray(forward(*shifted, **params), dtype=np.float64))
                grad[k] = np.sum(adjoint * (change[0] - change[1])) / (2 * STEP)
            grads.append(grad.reshape(x.shape).astype(x.dtype))
        return tuple(grads)

    return vjp


def _fd_jvp(forward: Any) -> Any:
    """ẏ = (f(x + h ẋ) − f(x − h ẋ)) / 2h, all inputs moved together."""

    def jvp(tangents: Any, ans: Any, *inputs: Any, **params: Any) -> Any:
        change = []
        for sign in (1.0, -1.0):
            moved = []
            for x, t in zip(inputs, tangents):
                if isinstance(x, np.ndarray) and x.dtype.kind == "f" and t is not None:
                    x = x.astype(np.float64) + sign * STEP * np.asarray(t, dtype=np.float64)
                moved.append(x)
            change.append(np.asarray(forward(*moved, **params), dtype=np.float64))
        ans = np.asarray(ans)
        return ((change[0] - change[1]) / (2 * STEP)).astype(ans.dtype if ans.dtype.kind == "f" else float)

    return jvp


def stand_in(primitives: dict[str, Any], rules: list[list[str]]) -> None:
    """Replace these (op, rule) pairs by central differences of the op's forward (first order only)."""
    for op, rule in rules:
        primitive = primitives.get(op)
        if primitive is None or getattr(primitive, "arity", 1) is None or not hasattr(primitive, rule):
            continue
        setattr(primitive, rule, (_fd_vjp if rule == "vjp" else _fd_jvp)(primitive.forward))


# ---- the tasks ----------------------------------------------------------------------------------------


def _floats(inputs: Any) -> list[int]:
    return [i for i, v in enumerate(inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


def _as_array(value: Any, like: np.ndarray) -> np.ndarray:
    return np.zeros_like(like) if value is None else np.asarray(value)


def rule_task(mytorch: Any, primitive: Any, task: dict, arrays: Any) -> dict[str, np.ndarray]:
    """The student's forward, first-order rule and second-order quantity at one drawn example."""
    inputs, params = decode(task["inputs"], arrays), decode(task["params"], arrays)
    sequence = getattr(primitive, "arity", 1) is None
    inputs = list(inputs)
    every = _floats(inputs)
    # An array at several places (`mul(x, x)`) is one variable of the transforms, put at each of
    # its places, so the rule meets the very same array there, as in a walk of the engine.
    places = {p: [q for q in every if inputs[q] is inputs[p]] for p in every}
    positions = [p for p in every if places[p][0] == p]

    def call(*floats: Any) -> Any:
        full = list(inputs)
        for p, x in zip(positions, floats):
            for q in places[p]:
                full[q] = x
        return primitive(full, **params) if sequence else primitive(*full, **params)

    primals = [inputs[p] for p in positions]
    result: dict[str, np.ndarray] = {}
    with mytorch.no_grad():
        result["out"] = np.array(call(*primals), copy=True)
    a, b = arrays[task["a"]], [arrays[key] for p, key in zip(every, task["b"]) if p in positions]
    if not positions:  # integer inputs only: nothing to differentiate
        return result
    if task["rule"] == "vjp":
        if sequence:
            grads = primitive.backward(a, inputs, **params)
        else:
            grads = primitive.backward(a, *inputs, **params)
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        for p in every:
            result[f"first/{p}"] = _as_array(grads[p] if p < len(grads) else None, inputs[p])
    else:
        tangent = mytorch.jvp(call, tuple(primals), tuple(b))[1]
        result["first/out"] = _as_array(tangent, result["out"])
    if task.get("second"):
        try:
            _second_order(mytorch, primitive, task, call, a, b, primals, positions, inputs, result)
        except TypeError as error:
            if UNTRACED not in str(error):
                result["error/second order"] = error  # type: ignore[assignment]
            else:  # a rule whose result is off the tape has zero second derivatives: the numbers judge
                _zero_second_order(task, a, positions, inputs, result)  # (right for sign, wrong for exp)
        except Exception as error:  # the first order still counts
            result["error/second order"] = error  # type: ignore[assignment]
    return result


UNTRACED = "was not produced by any recorded operation"  # mytorch.vjp's refusal of an off-tape output


def _zero_second_order(task: dict, a: np.ndarray, positions: list[int], inputs: list, result: dict) -> None:
    keys = ["dir"] if task["rule"] == "vjp" else [f"dir{p}" for p in positions]
    for key in keys:
        like = a if key == "dir" else inputs[int(key[3:])]
        result[f"second/{key}"] = np.zeros_like(np.asarray(like, dtype=float))
    for p in positions:
        result[f"second/{p}"] = np.zeros_like(np.asarray(inputs[p], dtype=float))


def _second_order(
    mytorch: Any,
    primitive: Any,
    task: dict,
    call: Any,
    a: np.ndarray,
    b: list,
    primals: list,
    positions: list[int],
    inputs: list,
    result: dict,
) -> None:
    n = len(positions)
    if task["rule"] == "vjp":
        # reverse over reverse: x̄ = vjp(a, x) recorded; walk it back along b: ∂⟨b, x̄⟩/∂(a, x)
        def first(adjoint: Any, *floats: Any) -> tuple:
            return tuple(mytorch.vjp(call, *floats)[1](adjoint))

        value, back = mytorch.vjp(first, a, *primals)
        # The walk back through the recorded rule meets the op itself where the rule uses it
        # (matmul's rule calls matmul): there, the op's first-order rule is stood in for, so a
        # wrong rule's error is not undone by the same error on the way back.
        own = primitive.vjp
        if getattr(primitive, "arity", 1) is not None:
            primitive.vjp = _fd_vjp(primitive.forward)
        try:
            grads = back(tuple(b))
        finally:
            primitive.vjp = own
        result["second/dir"] = _as_array(grads[0], a)
    else:
        # reverse over forward: ẏ = jvp(x; b) recorded; walk it back along a: ∂⟨a, ẏ⟩/∂(x, b)
        def first(*both: Any) -> Any:
            return mytorch.jvp(call, tuple(both[:n]), tuple(both[n:]))[1]

        value, back = mytorch.vjp(first, *primals, *b)
        grads = (None, *back(a))
        for k, p in enumerate(positions):
            result[f"second/dir{p}"] = _as_array(grads[1 + n + k], inputs[p])
    for k, p in enumerate(positions):
        result[f"second/{p}"] = _as_array(grads[1 + k], inputs[p])


def layer_task(mytorch: Any, task: dict, arrays: Any) -> dict[str, np.ndarray]:
    """A layer built with the task's arguments: its output, the gradients of its inputs and
    parameters for a walk back from the output, its buffers, and (probes) its output at moved
    inputs and parameters."""
    from mytorch import nn
    from mytorch.autograd_engine import Autograd

    def build() -> Any:
        layer = getattr(nn, task["layer"])(**decode(task["kwargs"], arrays))
        layer.load_state_dict(decode(task["state"], arrays))
        if task.get("eval"):
            layer.eval()
        return layer

    args = tuple(decode(task["args"], arrays))
    layer = build()
    tape = Autograd()  # fresh and current: nothing else on the tape
    result: dict[str, np.ndarray] = {}
    try:
        out = layer(*args)
        result["out"] = np.array(out, copy=True)
        seed = (
            arrays[task["seed"]]
            if isinstance(task["seed"], str)
            else np.random.default_rng(task["seed"]).normal(size=np.shape(out))
        )
        if np.shape(out) != seed.shape:
            raise ValueError(f"the output has shape {np.shape(out)}, expected {seed.shape}")
        # L = Σ seed ⊙ out, walked back from: the same adjoints as a walk seeded with `seed` at out
        from mytorch import functional as F

        tape.backward(F.sum(F.mul(out, np.asarray(seed, dtype=np.asarray(out).dtype))))
        recorded = True
        parameters = dict(layer.named_parameters())

        def gradient(array: np.ndarray) -> np.ndarray:
            try:
                return (
                    np.array(tape.gradient_buffer.get_param(array), dtype=array.dtype)
                    if recorded
                    else np.zeros_like(array)
                )
            except KeyError:
                return np.zeros_like(array)

        for i, value in enumerate(args):
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                result[f"grad/in{i}"] = gradient(value)
        for name, value in parameters.items():
            result[f"grad/{name}"] = gradient(value)
        for name, value in layer.state_dict().items():
            if name not in parameters:
                result[f"after/{name}"] = np.array(value, copy=True)
    finally:
        tape.zero_grad()
    for k, probe in enumerate(task.get("probes", [])):
        for sign, label in ((1.0, "+"), (-1.0, "-")):
            moved_layer = build()
            for name, value in moved_layer.named_parameters():
                value += sign * arrays[probe["params"][name]]
            moved = list(args)
            for i, key in probe["inputs"].items():
                moved[int(i)] = args[int(i)] + sign * arrays[key]
            with mytorch.no_grad():
                result[f"probe{k}{label}"] = np.array(moved_layer(*moved), copy=True)
    return result


def where_raised(error: BaseException, root: str | None, depth: int = 3) -> str:
    """The innermost lines of the traceback inside `root` (the student's copy), outermost first:
    "file:line in function: code", one per line."""
    frames = traceback.extract_tb(error.__traceback__)
    prefix = os.path.abspath(root) + os.sep if root else ""
    inside = [f for f in frames if prefix and os.path.abspath(f.filename).startswith(prefix)]
    frames = (inside or frames)[-depth:]
    lines = []
    for frame in frames:
        filename = frame.filename
        if prefix and os.path.abspath(filename).startswith(prefix):
            filename = os.path.relpath(filename, root)
        lines.append(f"{filename}:{frame.lineno} in {frame.name}: {(frame.line or '').strip()}")
    return "\n".join(lines)


def _primitives(importlib: Any, modules: list[str]) -> dict[str, Any]:
    """The registered primitives, once the modules that define them are imported (without
    mytorch.testing, whose hypothesis import costs a child a third of a second)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            pass
    try:
        from mytorch.functional import PRIMITIVES  # re-exported from where it lives
    except ImportError:
        from mytorch.testing import all_primitives

        return all_primitives()
    return dict(PRIMITIVES)


def _report(error: BaseException, root: str | None) -> dict:
    return {
        "type": type(error).__name__,
        "message": str(error)[:MAX_TEXT],
        "where": where_raised(error, root),
    }


def run_tasks(request: dict, arrays: Any, root: str | None = None) -> tuple[dict[str, np.ndarray], list]:
    """Every task of a request on the mytorch that is importable now; (arrays, one report per task)."""
    import importlib
    from types import SimpleNamespace

    from mytorch.autograd_engine import no_grad
    from mytorch.transforms import jvp, vjp

    mytorch = SimpleNamespace(no_grad=no_grad, jvp=jvp, vjp=vjp)  # the public transforms the tasks use

    primitives = _primitives(importlib, request.get("modules", []))
    out: dict[str, np.ndarray] = {}
    reports: list = []
    for k, task in enumerate(request["tasks"]):
        rules = task.get("stand_in", [])
        saved = {
            (op, rule): getattr(primitives[op], rule)
            for op, rule in rules
            if op in primitives and hasattr(primitives[op], rule)
        }
        stand_in(primitives, rules)
        try:
            if task["kind"] == "rule":
                got = rule_task(mytorch, primitives[task["op"]], task, arrays)
            else:
                got = layer_task(mytorch, task, arrays)
            errors = {key[6:]: _report(got.pop(key), root) for key in list(got) if key.startswith("error/")}
            out.update({f"{k}/{key}": value for key, value in got.items()})
            reports.append({"parts": errors} if errors else None)
        except Exception as error:  # reported per task: the others still run
            reports.append(_report(error, root))
        finally:
            for (op, rule), value in saved.items():
                setattr(primitives[op], rule, value)
    return out, reports


def limit(memory_mb: int, seconds: float, processes: int | None = None) -> None:
    """Limits that the student's code, running as this process, cannot raise again. `processes`
    (RLIMIT_NPROC) only when the child has a uid of its own: the limit counts the uid's processes."""
    import resource

    limits = [
        ("RLIMIT_AS", memory_mb * 2**20),
        ("RLIMIT_FSIZE", 256 * 2**20),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_CPU", int(seconds) + 2),
    ]
    if processes is not None:
        limits.append(("RLIMIT_NPROC", processes))
    for name, value in limits:
        if hasattr(resource, name):
            try:
                resource.setrlimit(getattr(resource, name), (value, value))
            except (ValueError, OSError):
                pass


def main() -> None:
    root, work = sys.argv[1], sys.argv[2]
    limit(int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else None)
    sys.path.insert(0, root)
    with open(os.path.join(work, "request.json"), encoding="utf-8") as file:
        request = json.load(file)
    with np.load(os.path.join(work, "request.npz"), allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    try:
        out, reports = run_tasks(request, arrays, root)
    except BaseException as error:  # the import itself failed (or a stub at import time)
        out, reports = (
            {},
            [
                {
                    "type": type(error).__name__,
                    "message": str(error)[:MAX_TEXT],
                    "where": where_raised(error, root),
                    "fatal": True,
                }
            ],
        )
    np.savez(os.path.join(work, "out.npz"), **out)
    with open(os.path.join(work, "out.json"), "w", encoding="utf-8") as file:
        json.dump({"reports": reports}, file)


if __name__ == "__main__":
    main()
