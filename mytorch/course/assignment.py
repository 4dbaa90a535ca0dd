"""What a homework handout is made of, shared by `python -m mytorch handout` and `grade`.

An item is one thing a student writes:

    "matmul.vjp"   the backward rule of a primitive     x̄ = ȳ · ∂y/∂x   (adjoint)
    "matmul.jvp"   its tangent rule                     ẏ = ∂y/∂x · ẋ   (tangent)
    "nn.Linear"    a layer's `forward`, written with the primitives

A primitive's rules are graded against central finite differences of the reference's forward
(first order, and second order for rules written with the primitives); a layer against the
reference layer built with the same constructor arguments, in several configurations. Both on
inputs drawn when grading (see mytorch.course.grade): a handout carries no reference outputs.

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

CONFIG_NAME = "grading.json"
VISIBILITIES = ("visible", "after_due_date", "hidden")  # Gradescope's
RULES = {"vjp": "backward rule", "jvp": "tangent rule"}


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


# ---- layers: how to build one and feed it ---------------------------------------------------------


Inputs = Callable[[np.random.Generator, int], tuple]  # (rng, batch) -> forward's arguments


@dataclass(frozen=True)
class LayerSpec:
    """A layer as the grader exercises it: built small in a few configurations (constructor
    arguments), each fed batches of a few sizes. A forward that ignores an argument fails the
    configurations where it matters."""

    configs: tuple[tuple[dict, Inputs], ...]  # (constructor keyword arguments, inputs)
    hint: str
    batches: tuple[int, ...] = (1, 3)  # one case each per configuration
    eval_last: bool = False  # run the last case of each configuration in eval mode


def _normal(*shape: int) -> Inputs:
    return lambda rng, n: (rng.normal(size=(n, *shape)),)


def _cell_inputs(size: int, hidden: int) -> Inputs:
    # The first (smallest) case starts from h = None, the cell's zeros.
    return lambda rng, n: (rng.normal(size=(n, size)), None if n == 1 else rng.normal(size=(n, hidden)))


def _same(inputs: Inputs, *configs: dict) -> tuple[tuple[dict, Inputs], ...]:
    return tuple((config, inputs) for config in configs)


_REDUCTIONS = ({}, {"reduction": "sum"})

LAYERS: dict[str, LayerSpec] = {
    "Linear": LayerSpec(_same(_normal(4), {"in_features": 4, "out_features": 3},
                              {"in_features": 4, "out_features": 2, "bias": False}),
                        "Z = A Wᵀ + b (no bias when b is None), with mytorch.functional primitives"),
    "Sigmoid": LayerSpec(((({}, _normal(5))), ({}, _normal(2, 3))), "σ(Z) = 1 / (1 + e^−Z)"),
    "Tanh": LayerSpec((({}, _normal(5)), ({}, _normal(2, 3))), "tanh Z"),
    "ReLU": LayerSpec((({}, _normal(5)), ({}, _normal(2, 3))), "max(Z, 0)"),
    "GELU": LayerSpec(_same(_normal(5), {}, {"approximate": "tanh"}),
                      "½ Z (1 + erf(Z / √2)); approximate='tanh': ½ Z (1 + tanh(√(2/π) (Z + 0.044715 Z³)))"),
    "Softmax": LayerSpec((({"dim": 1}, _normal(5)), ({"dim": 0}, _normal(4)), ({"dim": -1}, _normal(2, 3)),
                          ({"dim": 1}, _normal(3, 2))),
                         "e^Z / Σ e^Z along self.dim (None: axis 0 for 0-, 1- and 3-D inputs, else 1)"),
    "Flatten": LayerSpec((({}, _normal(2, 3)), ({"start_dim": 0}, _normal(2, 3)),
                          ({"start_dim": 1, "end_dim": 2}, _normal(2, 3, 2))),
                         "reshape axes start_dim..end_dim into one"),
    "BatchNorm1d": LayerSpec(
        _same(_normal(3), {"num_features": 3}, {"num_features": 3, "eps": 0.5, "momentum": 0.5}),
        "training: x̂ = (x − μ_B) / √(σ²_B + ε) over the batch, y = γ x̂ + β, and move the running "
        "statistics towards the batch's (unbiased variance); eval: use the running statistics",
        batches=(2, 4), eval_last=True,
    ),
    "Conv1d": LayerSpec(
        (({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1}, _normal(2, 7)),
         ({"in_channels": 2, "out_channels": 2, "kernel_size": 2, "dilation": 2}, _normal(2, 6)),
         ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "bias": False}, _normal(1, 5))),
        "Z = conv1d(A, W) + b with the layer's stride, padding and dilation; an unbatched "
        "(C, L) input gets a batch axis of one"),
    "Conv2d": LayerSpec(
        (({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}, _normal(2, 4, 5)),
         ({"in_channels": 2, "out_channels": 2, "kernel_size": 2, "stride": 2, "dilation": 2},
          _normal(2, 6, 7)),
         ({"in_channels": 1, "out_channels": 2, "kernel_size": (2, 3), "stride": (2, 1), "padding": (1, 0)},
          _normal(1, 5, 5))),
        "Z = conv2d(A, W) + b with the layer's stride, padding and dilation; an unbatched "
        "(C, H, W) input gets a batch axis of one"),
    "MaxPool2d": LayerSpec(
        (({"kernel_size": 2}, _normal(2, 4, 4)),
         ({"kernel_size": 3, "stride": 2, "padding": 1}, _normal(1, 5, 5)),
         ({"kernel_size": 2, "stride": 1}, _normal(2, 3, 4))),
        "the maximum of each window (kernel_size, stride, padding, dilation, ceil_mode)"),
    "RNNCell": LayerSpec(_same(_cell_inputs(3, 4), {"input_size": 3, "hidden_size": 4},
                               {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu"},
                               {"input_size": 3, "hidden_size": 4, "bias": False}),
                         "h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh); h = self._initial_state(x, h) "
                         "gives zeros for h=None"),
    "GRUCell": LayerSpec(_same(_cell_inputs(3, 4), {"input_size": 3, "hidden_size": 4},
                               {"input_size": 3, "hidden_size": 4, "bias": False}),
                         "r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr), z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz), "
                         "n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h; the "
                         "gates are stacked (r, z, n) in each weight; h = self._initial_state(x, h)"),
    "MSELoss": LayerSpec(
        _same(lambda rng, n: (rng.normal(size=(n, 3)), rng.normal(size=(n, 3))), *_REDUCTIONS),
        "mean((A − Y)²) over every element; return self._keep(A, loss)",
    ),
    "CrossEntropyLoss": LayerSpec(
        (*_same(lambda rng, n: (rng.normal(size=(n, 4)), rng.integers(0, 4, n)), *_REDUCTIONS),
         ({}, lambda rng, n: (rng.normal(size=(n, 4)), rng.dirichlet(np.ones(4), n)))),
        "mean over the batch of −log softmax(A)[Y] (Y: labels or probability rows); "
        "return self._keep(A, loss)",
    ),
    "BCEWithLogitsLoss": LayerSpec(
        _same(lambda rng, n: (rng.normal(size=(n, 3)), rng.integers(0, 2, (n, 3)).astype(float)),
              *_REDUCTIONS),
        "mean of Y softplus(−A) + (1 − Y) softplus(A) = −[Y log σ(A) + (1 − Y) log(1 − σ(A))], "
        "computed stably; return self._keep(A, loss)",
    ),
}


def layer_hint(layer: str) -> str:
    spec = LAYERS.get(layer)
    return spec.hint if spec else "write it with mytorch.functional primitives (see the class docstring)"


@dataclass
class LayerCase:
    """One case of a layer: its constructor arguments, parameters and inputs, the output's adjoint."""

    kwargs: dict[str, Any]
    state: dict[str, np.ndarray]
    args: tuple
    eval_mode: bool
    seed: np.ndarray | None  # the adjoint of the output the walk starts from (None: drawn from seed_draw)
    seed_draw: int = 0  # np.random.default_rng(seed_draw).normal(size=output's shape) when seed is None

    def describe(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        shapes = ", ".join("None" if a is None else f"shape {np.shape(a)}" for a in self.args)
        return f"({arguments}){' in eval mode' if self.eval_mode else ''} on inputs of {shapes}"


def make_layer_cases(name: str, nn: Any, seed: Any = 0, reference: bool = True) -> list[LayerCase]:
    """`name`'s cases for one grading run: parameters drawn from U(−1, 1), inputs and the output's
    adjoint from `seed`. `nn` (the reference's mytorch.nn) gives the parameters' and output's shapes;
    with `reference=False` (its forward is the student's) the output's adjoint is left to `seed_draw`."""
    spec = LAYERS[name]
    cases = []
    for c, (kwargs, inputs) in enumerate(spec.configs):
        for k, batch in enumerate(spec.batches):
            rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), c, k])
            layer = getattr(nn, name)(**kwargs)
            for parameter in layer.parameters():
                parameter[...] = rng.uniform(-1, 1, parameter.shape)
            state = {key: np.array(value, copy=True) for key, value in layer.state_dict().items()}
            eval_mode = spec.eval_last and k == len(spec.batches) - 1
            if eval_mode:
                layer.eval()
            args = inputs(rng, batch)
            try:
                if not reference:
                    raise NotImplementedError
                with _no_grad():
                    copies = (np.array(a, copy=True) if a is not None else a for a in args)
                    out_shape = np.shape(layer(*copies))
                adjoint = rng.normal(size=out_shape)
            except NotImplementedError:  # a handout's stub: the child's output gives the shape
                adjoint = None
            cases.append(LayerCase(dict(kwargs), state, args, eval_mode, adjoint, int(rng.integers(2**31))))
    return cases


def _no_grad() -> Any:
    from mytorch.autograd_engine import no_grad

    return no_grad()


# ---- the grading config -----------------------------------------------------------------------------


@dataclass
class Config:
    """grading.json: the graded items and their points, and how hard to look.

    An item maps to its points, or to {"points": 2, "visibility": "hidden"} (Gradescope's
    "visible", "after_due_date" or "hidden"). `seed` is the visible seed: the student's own
    `grade` and tests draw with it; a teacher's `grade --submission` draws with another.
    """

    items: dict[str, float]
    examples: int = 30  # drawn examples per rule
    seed: int = 0  # the visible seed
    time_limit: float = 60.0  # seconds per item (the child is killed after it)
    memory_limit: int = 2048  # megabytes of address space per child
    title: str = "mytorch handout"
    files: list[str] = field(default_factory=list)  # the files students edit (for grade --submission)
    visibility: dict[str, str] = field(default_factory=dict)  # item -> visibility (default "visible")
    directory: Path = Path(".")  # where the config was found; not saved
    handout: str = ""  # the handout folder, relative to the config's (a teacher's config kept apart)

    def handout_dir(self) -> Path:
        """The handout's folder: `handout` read from where the config is, else the config's folder.

        >>> Config({"exp.vjp": 1.0}, directory=Path("teacher"), handout="../hw1").handout_dir()
        PosixPath('teacher/../hw1')
        """
        return self.directory / self.handout if self.handout else self.directory

    def save(self, path: Path) -> None:
        items = {item: points if self.visibility.get(item, "visible") == "visible"
                 else {"points": points, "visibility": self.visibility[item]}
                 for item, points in self.items.items()}
        fields = {"title": self.title, "examples": self.examples, "seed": self.seed,
                  "time_limit": self.time_limit, "memory_limit": self.memory_limit, "files": self.files,
                  **({"handout": self.handout} if self.handout else {}), "items": items}
        path.write_text(json.dumps(fields, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Config:
        fields = json.loads(path.read_text(encoding="utf-8"))
        items = fields.pop("items", None)
        if not isinstance(items, dict) or not items:
            raise ValueError(f"{path}: 'items' must map each graded item to its points: {{\"exp.vjp\": 1}}")
        points, visibility = {}, {}
        for item, value in items.items():
            split_item(item)  # a clear error for a misspelt item
            if isinstance(value, dict):
                unknown = set(value) - {"points", "visibility"}
                shown = value.get("visibility", "visible")
                if unknown or shown not in VISIBILITIES:
                    raise ValueError(f"{path}: {item}: write {{\"points\": 1, \"visibility\": one of "
                                     f"{', '.join(VISIBILITIES)}}}")
                value, visibility[item] = value.get("points", 1.0), shown
            points[item] = float(value)
        unknown = set(fields) - {"title", "examples", "seed", "time_limit", "memory_limit", "files",
                                 "handout"}
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        return cls(points, **fields, visibility=visibility, directory=path.parent)
