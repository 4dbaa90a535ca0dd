"""What a homework handout is made of, shared by `python -m mytorch handout` and `grade`.

An item is one thing a student writes:

    "matmul.vjp"   the backward rule of a primitive     x̄ = ȳ · ∂y/∂x   (adjoint)
    "matmul.jvp"   its tangent rule                     ẏ = ∂y/∂x · ẋ   (tangent)
    "nn.Linear"    a layer's `forward`, written with the primitives

A primitive's rules are graded by property checks (mytorch.testing.check_primitive). A layer is
graded against an oracle: for a few fixed inputs, the output, the engine's gradients and the
buffers after the forward, computed by the reference when the handout was made and stored beside
it (`grading_oracle.npz`), so the handout can carry the answers' values but not their code.

>>> split_item("matmul.vjp"), split_item("nn.GRUCell")
(('rule', 'matmul', 'vjp'), ('layer', 'GRUCell', None))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mytorch.autograd_engine import Autograd

CONFIG_NAME = "grading.json"
ORACLE_NAME = "grading_oracle.npz"
RULES = {"vjp": "backward rule", "jvp": "tangent rule"}
CHECK_MODES = {"vjp": "rev", "jvp": "fwd"}  # check_primitive's name for each rule


def rule_item(op: str, rule: str) -> str:
    return f"{op}.{rule}"


def layer_item(layer: str) -> str:
    return f"nn.{layer}"


def split_item(item: str) -> tuple[str, str, str | None]:
    """("rule", op, "vjp"|"jvp") or ("layer", class name, None); ValueError for anything else."""
    head, _, tail = item.rpartition(".")
    if head == "nn" and tail:
        return "layer", tail, None
    if head and tail in RULES:
        return "rule", head, tail
    raise ValueError(f"{item!r} is not an item: write op.vjp, op.jvp (matmul.vjp) or nn.Layer (nn.Linear)")


# ---- hints: the formula's shape, in the lecture's notation ----------------------------------------

# Elementwise y = f(x): ∂y/∂x, from which both rules follow.
_DERIVATIVES = {
    "exp": "y", "log": "1/x", "sqrt": "1/(2y)", "abs": "sign(x)", "sin": "cos x", "cos": "−sin x",
    "tanh": "1 − y²", "sigmoid": "y (1 − y)", "relu": "[x > 0] (0 at the kink)", "erf": "(2/√π) e^(−x²)",
    "neg": "−1",
}
# (backward, tangent) hints of the others. z = op(x, y) for two inputs, y = op(x) for one.
_RULE_HINTS = {
    "add": ("x̄ = z̄, ȳ = z̄, each summed back to its input's shape (unbroadcast)", "ż = ẋ + ẏ"),
    "sub": ("x̄ = z̄, ȳ = −z̄, each summed back to its input's shape", "ż = ẋ − ẏ"),
    "mul": ("x̄ = z̄ ⊙ y, ȳ = z̄ ⊙ x, each summed back to its input's shape", "ż = ẋ ⊙ y + x ⊙ ẏ"),
    "div": ("z = x / y: x̄ = z̄ / y, ȳ = −z̄ ⊙ z / y, each summed back to its input's shape",
            "ż = (ẋ − z ⊙ ẏ) / y"),
    "power": ("z = x^p: x̄ = z̄ ⊙ p x^(p−1), p̄ = z̄ ⊙ z ln x (where x > 0), each in its input's shape",
              "ż = p x^(p−1) ⊙ ẋ + z ln x ⊙ ṗ"),
    "matmul": ("y = a @ b: ā = ȳ @ bᵀ (shape of a), b̄ = aᵀ @ ȳ (shape of b); a 1-D a acts as a row, "
               "a 1-D b as a column", "ẏ = ȧ @ b + a @ ḃ"),
    "maximum": ("z̄ goes to the input that wins, half to each at a tie: x̄ = z̄ ⊙ [x wins], ȳ = z̄ ⊙ [y wins]",
                "ż = ẋ ⊙ [x wins] + ẏ ⊙ [y wins] (half each at a tie)"),
    "clip": ("x̄ = ȳ where lo ≤ x ≤ hi, else 0; a bound that was taken gets ȳ there",
             "ẏ = ẋ inside [lo, hi], else the tangent of the bound that was taken"),
    "where": ("where(c, x, y): x̄ = where(c, z̄, 0), ȳ = where(c, 0, z̄), none for c", "ż = where(c, ẋ, ẏ)"),
    "sum": ("x̄ = ȳ with the summed axes put back, broadcast to x's shape", "ẏ = sum(ẋ) over the same axes"),
    "mean": ("x̄ = ȳ / n with the averaged axes put back, broadcast to x's shape (n = elements averaged)",
             "ẏ = mean(ẋ) over the same axes"),
    "max": ("x̄ = ȳ at the elements that attain the extremum (split evenly among ties), 0 elsewhere",
            "ẏ = ẋ averaged over the elements that attain the extremum"),
    "reshape": ("x̄ = ȳ reshaped to x's shape", "ẏ = ẋ reshaped to y's shape"),
    "transpose": ("x̄ = ȳ transposed by the inverse permutation of axes", "ẏ = ẋ transposed by the same axes"),
    "broadcast_to": ("x̄ = ȳ summed back to x's shape", "ẏ = ẋ broadcast to the same shape"),
    "expand_dims": ("x̄ = ȳ reshaped to x's shape", "ẏ = expand_dims(ẋ) on the same axes"),
    "squeeze": ("x̄ = ȳ reshaped to x's shape", "ẏ = squeeze(ẋ) on the same axes"),
    "getitem": ("x̄ = zeros of x's shape with ȳ added in at index (repeated indices add up)", "ẏ = ẋ[index]"),
    "scatter_add": ("ū = ȳ[index]", "ẏ = scatter_add(u̇, index, shape)"),
    "concatenate": ("each input's x̄ is its own slice of ȳ along axis", "ẏ = concatenate(tangents, axis)"),
    "stack": ("the i-th input's x̄ is ȳ[..., i, ...] along axis", "ẏ = stack(tangents, axis)"),
    "pad": ("x̄ = the middle of ȳ, the padding cut off", "ẏ = pad(ẋ) with zeros"),
    "logsumexp": ("x̄ = ȳ ⊙ softmax(x), ȳ broadcast over axis", "ẏ = Σ softmax(x) ⊙ ẋ over axis"),
    "softmax": ("x̄ = y ⊙ (ȳ − Σ ȳ ⊙ y), the sum over axis", "ẏ = y ⊙ (ẋ − Σ ẋ ⊙ y), the sum over axis"),
    "log_softmax": ("x̄ = ȳ − softmax(x) Σ ȳ, the sum over axis",
                    "ẏ = ẋ − Σ softmax(x) ⊙ ẋ, the sum over axis"),
    "linear": ("y = x Wᵀ + b: x̄ = ȳ W, W̄ = ȳᵀ x (summed over the batch), b̄ = Σ_batch ȳ",
               "ẏ = ẋ Wᵀ + x Ẇᵀ + ḃ"),
    "cross_entropy": ("L = −(1/N) Σ t · log_softmax(z): z̄ = L̄ (softmax(z) Σt − t) / N, "
                      "t̄ = −L̄ log_softmax(z) / N", "L̇ = Σ ∂L/∂z ⊙ ż + Σ ∂L/∂t ⊙ ṫ"),
    "astype": ("x̄ = ȳ cast back to x's dtype", "ẏ = ẋ cast to dtype"),
    "conv1d": ("W̄ = ȳ_rowsᵀ · im2col(x)_rows, x̄ = col2im(ȳ_rows · W_rows), b̄ = Σ ȳ over batch and positions",
               "ẏ = conv(ẋ, W) + conv(x, Ẇ) + ḃ"),
    "max_pool2d": ("x̄ = col2im(ȳ placed at the first maximum of each window, 0 elsewhere)",
                   "ẏ = ẋ at the first maximum of each window"),
    "im2col": ("x̄ = col2im(ȳ): each window added back where it came from", "ẏ = im2col(ẋ)"),
    "col2im": ("c̄ = im2col(ȳ)", "ẏ = col2im(ċ)"),
}
_SAME_RULES = {"minimum": "maximum", "min": "max", "conv2d": "conv1d"}


def rule_hint(op: str, rule: str) -> str:
    """The formula a stub shows: for exp's backward rule, "x̄ = ȳ ⊙ y, shape of x".

    >>> rule_hint("exp", "vjp"), rule_hint("exp", "jvp")
    ('x̄ = ȳ ⊙ y, shape of x', 'ẏ = y ⊙ ẋ')
    """
    if op in _DERIVATIVES:
        d = _DERIVATIVES[op]
        return f"x̄ = ȳ ⊙ {d}, shape of x" if rule == "vjp" else f"ẏ = {d} ⊙ ẋ"
    hints = _RULE_HINTS.get(_SAME_RULES.get(op, op))
    if hints is None:
        generic = ("x̄ = ȳ · ∂y/∂x for each input, in that input's shape (None for a constant)",
                   "ẏ = Σ ∂y/∂x · ẋ over the inputs")
        return generic[rule == "jvp"]
    return hints[rule == "jvp"]


# ---- layers: how to build one and feed it, for the oracle and the grader -------------------------


@dataclass(frozen=True)
class LayerSpec:
    """A layer as the grader exercises it: built small, fed batches of a few sizes."""

    build: Callable[[Any], Any]  # mytorch.nn -> a layer
    inputs: Callable[[np.random.Generator, int], tuple]  # (rng, batch) -> forward's arguments
    hint: str
    batches: tuple[int, ...] = (1, 2, 3, 4)  # one case each, smallest first
    eval_last: bool = False  # run the last case in eval mode


def _normal(*shape: int) -> Callable[[np.random.Generator, int], tuple]:
    return lambda rng, n: (rng.normal(size=(n, *shape)),)


def _cell_inputs(size: int, hidden: int) -> Callable[[np.random.Generator, int], tuple]:
    # The first (smallest) case starts from h = None, the cell's zeros.
    return lambda rng, n: (rng.normal(size=(n, size)), None if n == 1 else rng.normal(size=(n, hidden)))


LAYERS: dict[str, LayerSpec] = {
    "Linear": LayerSpec(lambda nn: nn.Linear(4, 3), _normal(4),
                        "Z = A Wᵀ + b (no bias when b is None), with mytorch.functional primitives"),
    "Sigmoid": LayerSpec(lambda nn: nn.Sigmoid(), _normal(5), "σ(Z) = 1 / (1 + e^−Z)"),
    "Tanh": LayerSpec(lambda nn: nn.Tanh(), _normal(5), "tanh Z"),
    "ReLU": LayerSpec(lambda nn: nn.ReLU(), _normal(5), "max(Z, 0)"),
    "GELU": LayerSpec(lambda nn: nn.GELU(), _normal(5),
                      "½ Z (1 + erf(Z / √2)); approximate='tanh': ½ Z (1 + tanh(√(2/π) (Z + 0.044715 Z³)))"),
    "Softmax": LayerSpec(lambda nn: nn.Softmax(dim=1), _normal(5),
                         "e^Z / Σ e^Z along self.dim (None: axis 0 for 0-, 1- and 3-D inputs, else 1)"),
    "Flatten": LayerSpec(lambda nn: nn.Flatten(), _normal(2, 3), "reshape axes start_dim..end_dim into one"),
    "BatchNorm1d": LayerSpec(
        lambda nn: nn.BatchNorm1d(3), _normal(3),
        "training: x̂ = (x − μ_B) / √(σ²_B + ε) over the batch, y = γ x̂ + β, and move the running "
        "statistics towards the batch's (unbiased variance); eval: use the running statistics",
        batches=(2, 3, 4, 5), eval_last=True,
    ),
    "Conv1d": LayerSpec(lambda nn: nn.Conv1d(2, 3, kernel_size=3, stride=2, padding=1), _normal(2, 7),
                        "Z = conv1d(A, W) + b with the layer's stride, padding and dilation; an unbatched "
                        "(C, L) input gets a batch axis of one"),
    "Conv2d": LayerSpec(lambda nn: nn.Conv2d(2, 3, kernel_size=3, padding=1), _normal(2, 4, 5),
                        "Z = conv2d(A, W) + b with the layer's stride, padding and dilation; an unbatched "
                        "(C, H, W) input gets a batch axis of one"),
    "MaxPool2d": LayerSpec(lambda nn: nn.MaxPool2d(2), _normal(2, 4, 4),
                           "the maximum of each window (kernel_size, stride, padding, dilation, ceil_mode)"),
    "RNNCell": LayerSpec(lambda nn: nn.RNNCell(3, 4), _cell_inputs(3, 4),
                         "h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh); h = self._initial_state(x, h) "
                         "gives zeros for h=None"),
    "GRUCell": LayerSpec(lambda nn: nn.GRUCell(3, 4), _cell_inputs(3, 4),
                         "r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr), z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz), "
                         "n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h; the "
                         "gates are stacked (r, z, n) in each weight; h = self._initial_state(x, h)"),
    "MSELoss": LayerSpec(
        lambda nn: nn.MSELoss(), lambda rng, n: (rng.normal(size=(n, 3)), rng.normal(size=(n, 3))),
        "mean((A − Y)²) over every element; return self._keep(A, loss)",
    ),
    "CrossEntropyLoss": LayerSpec(
        lambda nn: nn.CrossEntropyLoss(), lambda rng, n: (rng.normal(size=(n, 4)), rng.integers(0, 4, n)),
        "mean over the batch of −log softmax(A)[Y] (Y: labels or probability rows); "
        "return self._keep(A, loss)",
    ),
    "BCEWithLogitsLoss": LayerSpec(
        lambda nn: nn.BCEWithLogitsLoss(),
        lambda rng, n: (rng.normal(size=(n, 3)), rng.integers(0, 2, (n, 3)).astype(float)),
        "mean of Y softplus(−A) + (1 − Y) softplus(A) = −[Y log σ(A) + (1 − Y) log(1 − σ(A))], "
        "computed stably; return self._keep(A, loss)",
    ),
}


def layer_hint(layer: str) -> str:
    spec = LAYERS.get(layer)
    return spec.hint if spec else "write it with mytorch.functional primitives (see the class docstring)"


def run_layer(layer: Any, args: tuple, seed: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Forward `args` through `layer` on a fresh engine, then walk back from the output.

    Returns "out", "seed" (the output adjoint: `seed`, or ones), "grad/in<i>" for each float input,
    "grad/<name>" for each parameter, and "after/<name>" for each buffer (running statistics).
    A gradient the walk does not reach is zeros (a forward that escaped the tape gets those).
    """
    tape = Autograd()  # fresh and current: nothing else on the tape
    try:
        out = np.asarray(layer(*args))
        seed = np.ones_like(out, dtype=float) if seed is None else np.asarray(seed)
        if seed.shape != out.shape:
            raise ValueError(f"the output has shape {out.shape}, expected {seed.shape}")
        ops = tape.operation_list
        start = next((i for i in range(len(ops) - 1, -1, -1) if ops[i].output is out), None)
        adjoints = {} if start is None else tape.walk_backward(start, seed.astype(out.dtype))
        result = {"out": out.copy(), "seed": seed}
        for i, value in enumerate(args):
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                result[f"grad/in{i}"] = _adjoint(adjoints, value)
        parameters = dict(layer.named_parameters())
        for name, value in parameters.items():
            result[f"grad/{name}"] = _adjoint(adjoints, value)
        for name, value in layer.state_dict().items():
            if name not in parameters:
                result[f"after/{name}"] = np.array(value, copy=True)
        return result
    finally:
        tape.zero_grad()  # release the arrays the tape locked


def _adjoint(adjoints: dict[int, np.ndarray], array: np.ndarray) -> np.ndarray:
    adjoint = adjoints.get(id(array))
    return np.zeros_like(array) if adjoint is None else np.array(adjoint, dtype=array.dtype)


@dataclass
class LayerCase:
    """One oracle case of a layer: its parameters, inputs and what the reference gave."""

    state: dict[str, np.ndarray]
    args: tuple
    eval_mode: bool
    expected: dict[str, np.ndarray]


def make_layer_cases(name: str, nn: Any, seed: int = 0) -> list[LayerCase]:
    """The reference's answers for `name`'s cases (parameters drawn from U(−1, 1))."""
    spec = LAYERS[name]
    cases = []
    for k, batch in enumerate(spec.batches):
        rng = np.random.default_rng([seed, k])
        layer = spec.build(nn)
        for parameter in layer.parameters():
            parameter[...] = rng.uniform(-1, 1, parameter.shape)
        state = {key: np.array(value, copy=True) for key, value in layer.state_dict().items()}
        eval_mode = spec.eval_last and k == len(spec.batches) - 1
        if eval_mode:
            layer.eval()
        args = spec.inputs(rng, batch)
        out_shape = np.shape(run_layer(layer, args)["out"])  # to draw the output adjoint
        layer.load_state_dict(state)
        expected = run_layer(layer, args, rng.normal(size=out_shape))
        cases.append(LayerCase(state, args, eval_mode, expected))
    return cases


def save_oracle(path: Path, cases: dict[str, list[LayerCase]]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, layer_cases in cases.items():
        for k, case in enumerate(layer_cases):
            prefix = f"{name}/{k}/"
            arrays[prefix + "eval"] = np.array(case.eval_mode)
            arrays[prefix + "count"] = np.array(len(case.args))
            arrays.update({f"{prefix}in{i}": a for i, a in enumerate(case.args) if a is not None})
            arrays.update({f"{prefix}state/{key}": v for key, v in case.state.items()})
            arrays.update({f"{prefix}expected/{key}": v for key, v in case.expected.items()})
    np.savez_compressed(path, **arrays)


def load_oracle(path: Path, name: str) -> list[LayerCase]:
    """The stored cases of layer `name` (an empty list when the oracle has none)."""
    with np.load(path, allow_pickle=False) as stored:
        keys = [key for key in stored.files if key.startswith(f"{name}/")]
        cases = []
        for k in range(len({key.split("/")[1] for key in keys})):
            prefix = f"{name}/{k}/"
            args = tuple(stored[f"{prefix}in{i}"] if f"{prefix}in{i}" in stored.files else None
                         for i in range(int(stored[prefix + "count"])))
            state, expected = (_under(stored, keys, prefix + part) for part in ("state/", "expected/"))
            cases.append(LayerCase(state, args, bool(stored[prefix + "eval"]), expected))
    return cases


def _under(stored: Any, keys: list[str], prefix: str) -> dict[str, np.ndarray]:
    return {key[len(prefix):]: stored[key] for key in keys if key.startswith(prefix)}


# ---- the grading config -----------------------------------------------------------------------------


@dataclass
class Config:
    """grading.json: the graded items and their points, and how hard to look."""

    items: dict[str, float]
    examples: int = 30  # hypothesis examples per rule
    seed: int = 0  # hypothesis seed: every student's code meets the same inputs
    time_limit: float = 60.0  # seconds per item
    title: str = "mytorch handout"
    files: list[str] = field(default_factory=list)  # the files students edit (for grade --submission)
    directory: Path = Path(".")  # where the config (and the oracle beside it) was found; not saved

    def save(self, path: Path) -> None:
        fields = {"title": self.title, "examples": self.examples, "seed": self.seed,
                  "time_limit": self.time_limit, "files": self.files, "items": self.items}
        path.write_text(json.dumps(fields, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Config:
        fields = json.loads(path.read_text(encoding="utf-8"))
        items = fields.pop("items", None)
        if not isinstance(items, dict) or not items:
            raise ValueError(f"{path}: 'items' must map each graded item to its points: {{\"exp.vjp\": 1}}")
        for item in items:
            split_item(item)  # a clear error for a misspelt item
        unknown = set(fields) - {"title", "examples", "seed", "time_limit", "files"}
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        return cls({item: float(points) for item, points in items.items()}, **fields, directory=path.parent)
