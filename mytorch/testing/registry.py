"""One record per primitive (as PyTorch's OpInfo): everything the laws, the fuzzer and the checks need.

A record is a view over the tables that already hold these facts, keyed by the primitive's name,
so a primitive added in any module (with its input spec in `mytorch.testing.cases`) gets a record
without touching this file:

- `primitive`: the forward, backward and tangent rules (`mytorch.functional.PRIMITIVES`);
- `case`: its input spec (`mytorch.testing.cases.CASES`), whose `examples(dtype)` draws inputs;
- `reference`: the NumPy or SciPy function of the same meaning (`np.add` for `add`), or None
  where NumPy has none (`relu`, `linear`): law 7 compares forward values with it;
- `torch`: the PyTorch twin (the oracle for gradients and second order);
- `dtypes`: the dtypes it computes in (float32 stays float32), complex ones where it declares them;
- `hint`: the formulas a student stub shows (`mytorch.assignment.rule_hint`);
- `fuzz_step`: how the program fuzzer draws a call of it (`mytorch.testing.fuzz.MENU`).

`edge_examples(dtype)` draws from the edge grammar: the case's examples, changed into an edge of
the forward's domain (±inf, nan, ties, the same array twice, non-contiguous, negative-stride and
Fortran-ordered views, NumPy scalars and 0-d arrays as parameters, float32).

>>> record = registry()["add"]
>>> record.reference is np.add, record.dtypes
(True, (dtype('float64'), dtype('float32'), dtype('complex128'), dtype('complex64')))
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from mytorch.testing.cases import CASES, Case, Example, all_primitives

__all__ = ["EDGES", "OpInfo", "edge_example", "reference_of", "registry"]

# NumPy/SciPy names where mytorch's differ (the others are looked up by the same name).
_NUMPY_NAMES = {
    "sub": "subtract", "mul": "multiply", "div": "divide", "neg": "negative", "getitem": None,
    "sigmoid": "scipy.special.expit", "erf": "scipy.special.erf", "logsumexp": "scipy.special.logsumexp",
    "softmax": "scipy.special.softmax", "log_softmax": "scipy.special.log_softmax",
}
# Primitives with no NumPy or SciPy function of their meaning (law 7 has nothing to compare).
_NO_REFERENCE = {
    "relu": "NumPy has no relu", "linear": "torch.nn.functional.linear, not NumPy",
    "cross_entropy": "torch.nn.functional.cross_entropy, not NumPy",
    "unbroadcast": "the adjoint of broadcasting: no NumPy function",
    "scatter_add": "np.add.at's out-of-place form",
    "im2col": "no NumPy function", "col2im": "no NumPy function", "conv1d": "torch's conv1d",
    "conv2d": "torch's conv2d", "max_pool2d": "torch's max_pool2d", "softplus": "np.logaddexp(0, x)",
    "setitem": "x[index] = value, out of place", "astype": "an ndarray method",
}
_FAMILY_PREFIX = {"linalg": "linalg", "special": "scipy.special", "scipy_linalg": "scipy.linalg",
                  "signal": "scipy.signal", "fft": "fft"}
_REAL_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_COMPLEX_DTYPES = (np.dtype(np.complex128), np.dtype(np.complex64))


def _function(dotted: str) -> Callable[..., Any] | None:
    module: Any = np
    if dotted.startswith("scipy."):
        import importlib

        parts = dotted.split(".")
        module = importlib.import_module(".".join(parts[:2]))
        dotted = ".".join(parts[2:])
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _axis_last(function: Callable[..., Any]) -> Callable[..., Any]:
    """SciPy's softmax family with mytorch's (and PyTorch's) default axis=-1, an argument both take;
    over no axis (a 0-d input, axis=()) the shape stays as NumPy's reductions keep it (SciPy's
    logsumexp adds an axis)."""

    def call(x: Any, axis: Any = -1, **params: Any) -> Any:
        if np.ndim(x) == 0 or axis == ():  # over no axis: over a new axis of one, then dropped
            params.pop("keepdims", None)
            return np.asarray(function(np.expand_dims(x, -1), axis=-1, **params)).reshape(np.shape(x))
        return function(x, axis=axis, **params)

    call.__name__ = call.__qualname__ = getattr(function, "__name__", "reference")
    return call


def reference_of(name: str, defined_in: str = "") -> Callable[..., Any] | None:
    """The NumPy or SciPy function `F.<name>` must equal in value, or None.

    >>> reference_of("norm", "mytorch.rules.linalg") is np.linalg.norm
    True
    """
    if name in _NO_REFERENCE:
        return None
    if name == "getitem":
        return operator.getitem
    dotted = _NUMPY_NAMES.get(name)
    if dotted is None:
        family = _FAMILY_PREFIX.get(defined_in.rsplit(".", 1)[-1])
        dotted = f"{family}.{name}" if family else name
    function = _function(dotted)
    if name in ("softmax", "log_softmax", "logsumexp") and function is not None:
        return _axis_last(function)
    return function


@dataclass(frozen=True)
class OpInfo:
    """Everything the generic tests know about one primitive (see the module docstring)."""

    name: str
    primitive: Any
    case: Case | None
    reference: Callable[..., Any] | None
    torch: Callable[..., Any] | None
    dtypes: tuple[np.dtype, ...]  # float64 and float32, then complex128 and complex64 if declared
    hint: tuple[str, str]
    fuzz_step: Callable[..., Any] | None
    no_reference: str = ""  # why there is no NumPy reference, when there is none

    def examples(self, dtype: Any = None, *, ties: bool = False) -> st.SearchStrategy[Example]:
        """The input spec's examples (an error naming the primitive if it has none), in `dtype`;
        by default in float64, and in complex128 too where the primitive declares complex values
        (so every law that draws its examples here covers them; float32 and complex64 are the
        edge grammar's "float32")."""
        if self.case is None:
            raise KeyError(f"{self.name}: no input spec in mytorch.testing.cases")
        if dtype is None:
            widest = [d for d in self.dtypes if d in (np.dtype(np.float64), np.dtype(np.complex128))]
            return st.one_of(*(self.case.examples(d, ties=ties) for d in widest))
        return self.case.examples(dtype, ties=ties)

    def edge_examples(self, dtype: Any = None) -> st.SearchStrategy[Example]:
        """Examples changed into one edge of the edge grammar each (`EDGES`)."""
        return st.tuples(self.examples(dtype, ties=True), st.sampled_from(sorted(EDGES)), st.randoms()).map(
            lambda drawn: edge_example(*drawn)
        )


def registry() -> dict[str, OpInfo]:
    """One `OpInfo` per registered primitive, built from the tables each fact lives in.

    >>> "matmul" in registry()
    True
    """
    from mytorch.assignment import rule_hint
    from mytorch.testing.fuzz import MENU
    from mytorch.testing.fuzz_complex import COMPLEX_MENU

    records = {}
    for name, prim in all_primitives().items():
        case = CASES.get(name)
        records[name] = OpInfo(
            name=name,
            primitive=prim,
            case=case,
            reference=reference_of(name, prim.defined_in),
            torch=None if case is None else case.torch,
            # complex ones where the primitive declares them (`complex=` in its definition)
            dtypes=_REAL_DTYPES + (_COMPLEX_DTYPES if prim.complex else ()),
            hint=(rule_hint(name, "vjp"), rule_hint(name, "jvp")),
            fuzz_step=MENU.get(name) or MENU.get(f"leaf+{name}") or COMPLEX_MENU.get(name),
            no_reference=_NO_REFERENCE.get(name, ""),
        )
    return records


# ---- the edge grammar ---------------------------------------------------------------------------


def _floats(example: Example) -> list[int]:
    return example.float_positions


def _replace(example: Example, position: int, value: Any) -> Example:
    inputs = list(example.inputs)
    inputs[position] = value
    return Example(tuple(inputs), dict(example.params))


def _each_float(example: Example, change: Callable[[np.ndarray], np.ndarray]) -> Example:
    inputs = tuple(change(v) if i in _floats(example) else v for i, v in enumerate(example.inputs))
    return Example(inputs, dict(example.params))


def _negative_stride(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0:
        return x
    return np.ascontiguousarray(x[..., ::-1])[..., ::-1]  # same values, read backwards


def _strided(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0:
        return x
    return np.repeat(x, 2, axis=-1)[..., ::2]  # same values, every other element of a base


def _special_value(value: float) -> Callable[[Example, Any], Example]:
    def put(example: Example, rng: Any) -> Example:
        positions = [i for i in _floats(example) if example.inputs[i].size]
        if not positions:
            return example
        position = rng.choice(positions)
        x = example.inputs[position].copy()
        x.flat[rng.randrange(x.size)] = value
        return _replace(example, position, x)

    return put


def _same_array_twice(example: Example, rng: Any) -> Example:
    positions = _floats(example)
    for i in positions:
        for j in positions:
            a, b = example.inputs[i], example.inputs[j]
            if i < j and a.shape == b.shape and a.dtype == b.dtype:
                return _replace(example, j, a)
    return example


def _numpy_scalar_params(example: Example, rng: Any) -> Example:
    params = {
        key: (np.int64(value) if rng.random() < 0.5 else np.array(value))
        if isinstance(value, int) and not isinstance(value, bool) else value
        for key, value in example.params.items()
    }
    return Example(example.inputs, params)


# name -> change(example, random) -> example. Each keeps the example inside the forward's domain as
# far as NumPy is concerned: the laws then ask the rules to accept whatever the forward accepted.
EDGES: dict[str, Callable[[Example, Any], Example]] = {
    "plain": lambda example, rng: example,
    "+inf": _special_value(np.inf),
    "-inf": _special_value(-np.inf),
    "nan": _special_value(np.nan),
    "same array twice": _same_array_twice,
    "negative stride": lambda example, rng: _each_float(example, _negative_stride),
    "non-contiguous": lambda example, rng: _each_float(example, _strided),
    "fortran order": lambda example, rng: _each_float(example, np.asfortranarray),
    "numpy scalar parameters": _numpy_scalar_params,
    "float32": lambda example, rng: example.astype(np.float32),
}


def edge_example(example: Example, edge: str, rng: Any) -> Example:
    """`example` changed by the edge named `edge` (a key of `EDGES`), with `rng` choosing where.

    >>> import random
    >>> int(np.isinf(edge_example(Example((np.ones(3),)), "+inf", random.Random(0)).inputs[0]).sum())
    1
    """
    return EDGES[edge](example, rng)


# ---- the layers the laws walk -------------------------------------------------------------------


@dataclass(frozen=True)
class LayerInfo:
    """How to build one nn layer and the shape of an input batch it takes."""

    name: str
    make: Callable[..., Any]  # make(**kwargs) -> layer (kwargs such as dtype=)
    input_shape: tuple[int, ...]


def layers() -> dict[str, LayerInfo]:
    """One `LayerInfo` per layer of `mytorch.nn` (losses, which take targets, are not layers here).

    >>> layers()["Linear"].make().W.shape
    (2, 3)
    """
    from mytorch import nn

    table = [
        LayerInfo("Linear", lambda **k: nn.Linear(3, 2, **k), (4, 3)),
        LayerInfo("Identity", lambda **k: nn.Identity(**k), (4, 3)),
        LayerInfo("Sigmoid", lambda **k: nn.Sigmoid(**k), (4, 3)),
        LayerInfo("Tanh", lambda **k: nn.Tanh(**k), (4, 3)),
        LayerInfo("ReLU", lambda **k: nn.ReLU(**k), (4, 3)),
        LayerInfo("GELU", lambda **k: nn.GELU(**k), (4, 3)),
        LayerInfo("Softmax", lambda **k: nn.Softmax(dim=-1, **k), (4, 3)),
        LayerInfo("Dropout", lambda **k: nn.Dropout(0.0, **k), (4, 3)),
        LayerInfo("BatchNorm1d", lambda **k: nn.BatchNorm1d(3, **k), (4, 3)),
        LayerInfo("Conv1d", lambda **k: nn.Conv1d(2, 3, 2, **k), (2, 2, 5)),
        LayerInfo("Conv2d", lambda **k: nn.Conv2d(2, 3, 2, **k), (2, 2, 4, 4)),
        LayerInfo("Conv1D_stride1", lambda **k: nn.conv.Conv1D_stride1(2, 3, 2, **k), (2, 2, 5)),
        LayerInfo("Conv2D_stride1", lambda **k: nn.conv.Conv2D_stride1(2, 3, 2, **k), (2, 2, 4, 4)),
        LayerInfo("MaxPool2d", lambda **k: nn.MaxPool2d(2, **k), (1, 2, 4, 4)),
        LayerInfo("Flatten", lambda **k: nn.Flatten(**k), (2, 3, 2)),
        LayerInfo("Downsample1d", lambda **k: nn.Downsample1d(2, **k), (2, 2, 6)),
        LayerInfo("Downsample2d", lambda **k: nn.Downsample2d(2, **k), (2, 2, 4, 4)),
        LayerInfo("Upsample1d", lambda **k: nn.Upsample1d(2, **k), (2, 2, 3)),
        LayerInfo("Upsample2d", lambda **k: nn.Upsample2d(2, **k), (2, 2, 3, 3)),
        LayerInfo("RNNCell", lambda **k: nn.RNNCell(3, 4, **k), (2, 3)),
        LayerInfo("GRUCell", lambda **k: nn.GRUCell(3, 4, **k), (2, 3)),
        LayerInfo("Sequential", lambda **k: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), **k),
                  (4, 3)),
    ]
    return {info.name: info for info in table}


def missing_layers() -> list[str]:
    """Layers of `mytorch.nn` (every Module subclass it exports or defines, losses aside) without a
    `LayerInfo`: each would be a layer no law walks."""
    import inspect

    from mytorch import nn
    from mytorch.nn import conv, loss

    classes = {c for module in (nn, conv) for _, c in inspect.getmembers(module, inspect.isclass)}
    names = {c.__name__ for c in classes
             if issubclass(c, nn.Module) and c is not nn.Module and not c.__name__.startswith("_")
             and not issubclass(c, loss._Loss)}
    return sorted(names - set(layers()))
