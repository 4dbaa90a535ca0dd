"""What a primitive is: a forward rule, a backward rule (VJP) and a tangent rule (JVP), in one object.

A rule reads like the lecture notes: for `y = exp(x)`, the adjoint is `x̄ = ȳ · y` and the tangent
is `ẏ = ẋ · y`. A primitive is made with `primitive(name, forward, vjp=..., jvp=...)`:

    vjp(g, ans, *inputs, **params) -> one gradient per input, as a tuple (None where there is none)
    vjp=(rule_0, rule_1, ...)      -> one rule per input, each returning that input's gradient;
                                      the walk calls only the rules whose gradient it needs
    jvp(t, ans, *inputs, **params) -> the output tangent, `t` holding one tangent per input

where `g` is the adjoint of the output `ans`.

Complex values (PyTorch's convention: a real loss's gradient with respect to z = x + iy is
∂L/∂x + i ∂L/∂y, the conjugate Wirtinger derivative up to a factor 2; tangents are complex-linear)
reach only the primitives that declare them with `complex=`:

    complex="holomorphic"  the rules are the analytic formulas (exp: ȳ · y). For complex values
                           the walk runs them as conj(vjp(conj(ȳ))), which is ȳ · conj(f'(z)); the
                           tangent rule f'(z) ż is already right
    complex="explicit"     the rules handle complex values themselves (abs, real, angle, fft, eig)

A real input of a complex operation gets the real part of its gradient (as in PyTorch).

Which gradients a walk needs reaches the primitive
as an argument (`pullback(..., needs)`). A rule returns each gradient in its input's shape (it
undoes broadcasting with `reduce_to(g, x)`: a rule that forgets is an error naming it, never a
silently summed gradient); `pullback` casts it to the input's dtype.

Rules are written with primitives, so a backward walk that records (`create_graph=True`) is just
more tape and can be differentiated again. The two primitives that plumbing needs, `broadcast_to`
and its adjoint `unbroadcast`, and the dtype cast `astype`, live here with the machinery.
"""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mytorch.autograd_engine import engine, recording, refuse_complex, state
from mytorch.tracked import Tracked, computed, holds_tracked, plain, plain_each
from mytorch.utils import gradient_dtype, is_complex, is_float_array
from mytorch.utils import unbroadcast as sum_to

PRIMITIVES: dict[str, Primitive] = {}
# Why a primitive takes no complex values, by name (filled by mytorch.rules.complex): the refusal says it.
COMPLEX_REFUSALS: dict[str, str] = {}
_NO_PARAMS: dict[str, Any] = {}


class Primitive:
    """A differentiable operation: forward rule, backward rule, tangent rule. Made by `primitive`.

    Calling it computes the forward rule with NumPy and records the call on the current engine.
    `backward(grad_output, *inputs)` returns the input gradients (for `add_operation` by hand).
    """

    def __init__(self, name: str, forward: Callable[..., Any], vjp: Any, jvp: Callable[..., Any],
                 arity: int | None, defined_in: str,
                 complex: str | None = None) -> None:  # noqa: A002 - the keyword `primitive` takes
        self.name, self.forward, self.vjp, self.jvp, self.arity = name, forward, vjp, jvp, arity
        self.defined_in = defined_in  # the module whose `primitive(...)` call made it
        _RULE_MODULES.add(defined_in)
        if isinstance(vjp, (tuple, list)) and arity is not None and len(vjp) != arity:
            raise ValueError(f"{name}: {len(vjp)} vjp rules for {arity} inputs")
        if complex not in (None, "holomorphic", "explicit"):
            raise ValueError(f"{name}: complex= is 'holomorphic', 'explicit' or None, not {complex!r}")
        self.complex = complex  # how complex values are differentiated (None: refused)
        # The rules a walk runs when the output is complex (see the module docstring).
        self.complex_vjp = _conjugated(vjp) if complex == "holomorphic" else vjp
        self._bind_plan(forward, arity)
        self.backward = self._make_backward()
        self._fresh = isinstance(forward, np.ufunc)  # its output is never one of its inputs
        self._plain_form: tuple[Any, Any] = (None, None)  # (the rules, their plain form): see `plain_rules`

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    @property
    def complex_refusal(self) -> str | None:
        """Why this primitive refuses complex values (None when it declares them, or when no reason
        is recorded in `COMPLEX_REFUSALS`)."""
        return None if self.complex else COMPLEX_REFUSALS.get(self.name)

    @functools.cached_property
    def bare(self) -> Callable[..., np.ndarray]:
        """The forward rule alone, as an array: this primitive in a plain rule (see `plain_rule`).

        A ufunc's is the ufunc itself, a Python call less on every use in a rule; its 0-d result
        is then a NumPy scalar, which the pullback's fit (`_fitted`) makes an array again."""
        if self._fresh and self._plain_arity == self.arity:
            return self.forward
        forward, name, bind = self.forward, self.name, self._bind
        sequence = self.arity is None  # its inputs come as one sequence: forward(*inputs, **params)

        def bare(*args: Any, **kwargs: Any) -> np.ndarray:
            try:
                if sequence:
                    inputs, params = bind(args, kwargs)
                    output = forward(*inputs, **params)
                else:
                    output = forward(*args, **kwargs)
            except (ValueError, TypeError, IndexError) as error:
                raise _explained(name, args, error) from error
            return output if type(output) is np.ndarray else np.asarray(output)

        return bare

    # ---- calling: bind the arguments, compute, record -------------------------------------------

    def _bind_plan(self, forward: Callable[..., Any], arity: int | None) -> None:
        import inspect

        if isinstance(forward, np.ufunc):  # its inputs only, not its out=/dtype=/... keywords
            signature = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in "xyz"[:arity]]
        else:
            signature = list(inspect.signature(forward).parameters.values())
        self._names = [p.name for p in signature if p.kind is not p.VAR_POSITIONAL]
        self._defaults = {p.name: p.default for p in signature if p.default is not p.empty}
        self._input_count = 1 if arity is None else arity
        # Calls with exactly this many positional arguments skip binding (the hot path).
        self._plain_arity = arity if arity is not None and len(self._names) == arity else -1
        # The parameters (after the inputs): their positions, and the defaults of those that have one.
        self._param_position = {n: i for i, n in enumerate(self._names[self._input_count :])}
        self._param_defaults = {n: v for n, v in self._defaults.items() if n in self._param_position}

    def _bind(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Split a call's arguments into the inputs and the parameters."""
        count = self._input_count
        if not kwargs and len(args) == self._plain_arity:
            return args, _NO_PARAMS
        if self.arity is not None and count <= len(args) <= len(self._names):
            # Inputs by position, parameters by position or keyword (sum(x, axis=0)): the usual
            # call, bound without building the whole table; anything else takes the careful path.
            given = len(args) - count
            position = self._param_position
            if all(position.get(name, -1) >= given for name in kwargs):
                params = dict(self._param_defaults)
                params.update(zip(position, args[count:]))
                params.update(kwargs)
                if len(params) == len(position):
                    return args[:count], params
        names = self._names
        if self.arity is None:  # one sequence of inputs, then the parameters
            if not args:
                raise TypeError(f"{self.name}() needs a sequence of arrays")
            names = ["inputs", *names]
        bound = dict(self._defaults)
        if len(args) > len(names):
            raise TypeError(f"{self.name}() takes {len(names)} arguments, got {len(args)}")
        bound.update(zip(names, args))
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"{self.name}() got unexpected arguments {sorted(unknown)}")
        repeated = set(names[: len(args)]) & set(kwargs)
        if repeated:  # concatenate(a, b, axis=0) would otherwise read b as the axis, then drop it
            raise TypeError(f"{self.name}() got multiple values for {sorted(repeated)}")
        bound.update(kwargs)
        missing = [n for n in names if n not in bound]
        if missing:
            raise TypeError(f"{self.name}() missing arguments {missing}")
        if self.arity is None:
            return tuple(bound.pop("inputs")), bound
        return tuple(bound.pop(n) for n in names[:count]), bound

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        if kwargs or len(args) != self._plain_arity:
            return self.apply(*self._bind(args, kwargs))
        return self.apply(args, _NO_PARAMS)

    def apply(self, inputs: tuple, params: dict) -> np.ndarray:
        """Compute the forward rule on `inputs` and record it on the current engine.

        The forward rule computes on plain arrays; when an input is tracked (mytorch.tracked), so
        is the output, and the record keeps the tracked inputs (the tape knows arrays by identity).
        """
        tracked = False
        for value in inputs:
            if type(value) is Tracked:
                tracked = True
            elif type(value) is not np.ndarray and not isinstance(value, (int, float, np.generic)):
                inputs, tracked = self._checked_inputs(inputs)
                break
        recorder = state.recorder  # the engine, when recording is plain
        if recorder is None:
            return self._unrecorded(inputs, params, tracked)
        # The hot path, with `_computed` written out (a call less on every operation).
        try:
            if tracked:
                output = self.forward(*plain_each(inputs), **(plain(params) if params else params))
            else:
                output = self.forward(*inputs, **params)
        except (ValueError, TypeError, IndexError) as error:
            raise _explained(self.name, inputs, error) from error
        if type(output) is not np.ndarray and not isinstance(output, np.ndarray):
            output = np.asarray(output)  # numpy hands back scalars for 0-d results
        if tracked:  # a new object whatever the rule returned: the output is its own
            output = output.view(Tracked)
        elif not self._fresh:
            for value in inputs:
                if value is output:  # an array is known by its identity: the output must be its own
                    output = output.view()
                    break
        recorder._record(self, inputs, output, params, False, self._fresh)
        return output

    def _unrecorded(self, inputs: tuple, params: dict, tracked: bool) -> np.ndarray:
        """`apply` when recording is not plain: off (no_grad, a walk's rules), compile tracing,
        anomaly mode, or the thread's first operation (its engine is made now)."""
        if state.tracing is not None:
            return self._traced(inputs, params, tracked)
        return self._computed_and_recorded(inputs, params, tracked)

    def _computed(self, inputs: tuple, params: dict, tracked: bool) -> np.ndarray:
        """The forward rule's value, as an array (computed on plain arrays)."""
        try:
            if tracked:
                output = self.forward(*plain_each(inputs), **(plain(params) if params else params))
            else:
                output = self.forward(*inputs, **params)
        except (ValueError, TypeError, IndexError) as error:
            raise _explained(self.name, inputs, error) from error
        return output if isinstance(output, np.ndarray) else np.asarray(output)  # numpy gives scalars

    def _traced(self, inputs: tuple, params: dict, tracked: bool) -> np.ndarray:
        """`apply` while compile traces: a traced index makes the output traced too, and a call that
        does not record (no_grad) is a step of the program without a gradient."""
        if params and holds_tracked(tuple(params.values())):
            state.tracing.check_shapes(self.name, tuple(params.values()))
            tracked = True  # an index computed from traced data: the output is traced too
        if tracked and not state.recording:
            # no_grad (or a walk that does not record) while compile traces: a step of the
            # program that carries no gradient, as the eager call's constant result carries none.
            return state.tracing.step(self.forward, inputs, params)
        return self._computed_and_recorded(inputs, params, tracked)

    def _computed_and_recorded(self, inputs: tuple, params: dict, tracked: bool) -> np.ndarray:
        """The output, an array of its own, recorded on the current engine if recording is on (the
        careful path: anomaly mode, compile's trace, the thread's first operation)."""
        output = self._computed(inputs, params, tracked)
        if not state.recording:
            return _own(output, inputs, False)
        output = _own(output, inputs, tracked)
        engine()._record(self, inputs, output, params)
        return output

    def _checked_inputs(self, inputs: tuple) -> tuple[tuple, bool]:
        """The inputs, with sequences made arrays (on the tape, where they hold arrays: sequences
        carry the tape), and whether any is tracked. Masked arrays and matrices are refused."""
        checked, tracked = [], False
        for position, value in enumerate(inputs):
            if isinstance(value, (np.ma.MaskedArray, np.matrix)):
                raise TypeError(
                    f"{self.name}: input {position} is a {type(value).__name__}; its "
                    f"{'mask' if isinstance(value, np.ma.MaskedArray) else 'matrix semantics'} would "
                    "be lost silently. Pass a plain array (np.asarray, or fill the masked values)."
                )
            if isinstance(value, (list, tuple)):
                value = _sequence_as_array(value)
            tracked = tracked or isinstance(value, Tracked)
            checked.append(value)
        return tuple(checked), tracked

    # ---- differentiating ------------------------------------------------------------------------

    def pullback(self, grad_output: Any, output: Any, inputs: Sequence[Any], params: dict,
                 needs: Sequence[bool], plain: bool | None = None) -> list[Any]:
        """The gradients of the inputs whose `needs` is true (None for the others), each reduced to
        its input's shape and dtype. `plain` (when the caller knows): no walk records, so the rules
        run in their plain form (see `plain_rule`)."""
        rules = self.vjp if output.dtype.kind != "c" else self.complex_vjp
        if plain is None:
            plain = not state.recording and state.tracing is None
        if plain:
            # A first-order walk: the rules in their plain form, on plain arrays (see `plain_rules`).
            plain_form = self._plain_form
            rules = plain_form[1] if plain_form[0] is rules else self._made_plain(rules)
            if type(output) is Tracked:  # a ufunc's views the array the ufunc made: that one, as it is
                output = output.base if self._fresh else output.view(np.ndarray)
                inputs = plain_each(inputs)
        if type(rules) is tuple or type(rules) is list:  # one rule per input: only those needed run
            if len(rules) == 2 and not params:  # the usual case: two inputs, positional calls
                rule_x, rule_y = rules
                x, y = inputs
                grads = [
                    rule_x(grad_output, output, x, y) if needs[0] and rule_x else None,
                    rule_y(grad_output, output, x, y) if needs[1] and rule_y else None,
                ]
            elif not params:  # positional calls (an empty ** costs a dict on every call)
                grads = [
                    rule(grad_output, output, *inputs) if need and rule is not None else None
                    for rule, need in zip(rules, needs)
                ]
            else:
                grads = [
                    rule(grad_output, output, *inputs, **params) if need and rule is not None else None
                    for rule, need in zip(rules, needs)
                ]
        else:
            if len(inputs) == 1 and not params:
                grads = rules(grad_output, output, inputs[0])
            else:
                grads = rules(grad_output, output, *inputs, **params)
            if type(grads) is not tuple and not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
                got = f"{len(grads)} gradients" if isinstance(grads, (tuple, list)) else (
                    f"a bare {type(grads).__name__}")
                raise TypeError(
                    f"{self.name}: its vjp returned {got} for {len(inputs)} input(s); a vjp returns "
                    "one gradient per input, as a tuple (None for an input without one): "
                    "`return (grad_x,)` for one input"
                )
        if len(grads) == 1:  # the usual cases unrolled (measured: ~1.2k instructions an op on B1)
            grad, value = grads[0], inputs[0]
            if needs[0] and type(grad) is np.ndarray and grad.dtype is value.dtype and (
                grad.shape == value.shape
            ):
                return grads
        elif len(grads) == 2:
            grad, value = grads[0], inputs[0]
            if grad is not None and (not needs[0] or type(grad) is not np.ndarray
                                     or grad.dtype is not value.dtype or grad.shape != value.shape):
                return self._fitted_all(grads, inputs, needs)
            grad, value = grads[1], inputs[1]
            if grad is not None and (not needs[1] or type(grad) is not np.ndarray
                                     or grad.dtype is not value.dtype or grad.shape != value.shape):
                return self._fitted_all(grads, inputs, needs)
            return grads
        elif len(grads) == len(inputs):  # the same test as the two above, for any count
            for grad, value, need in zip(grads, inputs, needs):
                if grad is not None and (not need or type(grad) is not np.ndarray
                                         or grad.dtype is not value.dtype or grad.shape != value.shape):
                    break
            else:
                return grads
        return self._fitted_all(grads, inputs, needs)

    def _made_plain(self, rules: Any) -> Any:
        plain_rules = plain_rule(rules) if not isinstance(rules, (tuple, list)) else tuple(
            None if rule is None else plain_rule(rule) for rule in rules)
        self._plain_form = (rules, plain_rules)
        return plain_rules

    def _fitted_all(self, grads: Sequence[Any], inputs: Sequence[Any], needs: Sequence[bool]) -> list[Any]:
        return [
            _fitted(self, i, grad, value) if need and grad is not None else None
            for i, (grad, value, need) in enumerate(zip(grads, inputs, needs))
        ]

    def _make_backward(self) -> Callable[..., Any]:
        primitive = self

        def backward(grad_output: Any, *args: Any, **kwargs: Any) -> Any:
            inputs, params = primitive._bind(args, kwargs)
            if primitive.complex is None and any(is_complex(v) for v in (grad_output, *inputs)):
                refuse_complex(primitive, inputs, grad_output)
            # Called by hand (or by a walk over add_operation records, which are first-order
            # only), the rule must not record: that would hold the user's arrays and put stray
            # operations at the end of the tape, where backward(seed) would start.
            try:
                with recording(False):
                    ans = np.asarray(primitive.forward(*inputs, **params))
                    needs = [is_float_array(x) for x in inputs]
                    grads = primitive.pullback(np.asarray(grad_output), ans, inputs, params, needs)
            except (ValueError, TypeError, IndexError) as error:  # named, with the shapes (law 6)
                raise _explained(f"{primitive.name}_backward", (grad_output, *inputs), error) from error
            return grads[0] if len(grads) == 1 else tuple(grads)

        backward.__name__ = backward.__qualname__ = f"{self.name}_backward"
        backward.__doc__ = (
            f"Gradients of `{self.name}`'s inputs given the adjoint of its output "
            "(one per input, each with its input's shape)."
        )
        return backward


def primitive(
    name: str, forward: Callable[..., Any], *, vjp: Any, jvp: Callable, arity: int | None = 1,
    register: bool = True, complex: str | None = None,  # noqa: A002 - reads as what it declares
) -> Primitive:
    """Define a primitive: one definition holding its three rules (see the module docstring).

    `register=True` (the built-ins) lists it in `PRIMITIVES`, the table that `python -m mytorch
    check`, the handout and the test suite walk (each entry needs an input spec in
    mytorch.testing.cases); a user-defined primitive passes `register=False`.

    >>> cube = primitive("cube", lambda x: x**3,
    ...                  vjp=lambda g, ans, x: (g * 3 * x**2,),
    ...                  jvp=lambda t, ans, x: t[0] * 3 * x**2, register=False)
    >>> cube(np.array([1.0, 2.0]))
    array([1., 8.])
    >>> cube.backward(np.ones(2), np.array([1.0, 2.0]))
    array([ 3., 12.])
    """
    defined_in = sys._getframe(1).f_globals.get("__name__", "")
    made = Primitive(name, forward, vjp, jvp, arity, defined_in, complex)
    if register:
        PRIMITIVES[name] = made
    return made


# ---- first-order walks: each rule's primitives as bare NumPy calls -------------------------------
#
# A walk that does not record calls the primitives in a rule for their values alone, and the
# dispatch around the value (binding, the recording checks) costs as much as NumPy's own call on a
# small array. So a rule written in mytorch also has a plain form: the same code over a copy of its
# module's namespace in which each primitive's name means a bare call of its forward rule, and each
# helper function of mytorch's rule modules (those that define primitives; none rebinds a global
# once imported) means its plain form in turn. A walk that records
# (create_graph) or traces uses the rules as written; so does any rule defined outside mytorch (a
# user's or a student's).

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_RULE_MODULES: set[str] = set()  # the modules of mytorch that define primitives
_PLAIN_FUNCTIONS: dict[Any, Any] = {}
_PLAIN_NAMESPACES: dict[int, dict[str, Any]] = {}


def plain_rule(function: Any) -> Any:
    """The plain form of a rule (or helper) written in mytorch's own files; anything else as it is.

    >>> from mytorch.functional import exp
    >>> plain_rule(exp.vjp)(np.ones(1), np.ones(1), np.zeros(1))
    (array([1.]),)
    """
    made = _PLAIN_FUNCTIONS.get(function)
    if made is None:
        made = _PLAIN_FUNCTIONS[function] = _rebuilt(function)
    return made


def _rebuilt(function: Any) -> Any:
    if (type(function) is not types.FunctionType or function.__module__ not in _RULE_MODULES
            or not function.__code__.co_filename.startswith(_PACKAGE_DIR)
            or _rebinds_globals(function.__code__)):
        return function
    made = types.FunctionType(function.__code__, _plain_namespace(function.__globals__), function.__name__,
                              function.__defaults__, function.__closure__)
    made.__kwdefaults__ = function.__kwdefaults__  # the constructor takes the positional defaults only
    made.__qualname__ = function.__qualname__
    return made


def _rebinds_globals(code: types.CodeType) -> bool:
    """Whether `code` (or code nested in it) assigns a global: it must see its module's own namespace."""
    import dis

    return any(i.opname in ("STORE_GLOBAL", "DELETE_GLOBAL") for i in dis.get_instructions(code)) or any(
        _rebinds_globals(c) for c in code.co_consts if isinstance(c, types.CodeType))


def _plain_namespace(namespace: dict[str, Any]) -> dict[str, Any]:
    plain = _PLAIN_NAMESPACES.get(id(namespace))
    if plain is None:
        plain = _PLAIN_NAMESPACES[id(namespace)] = dict(namespace)  # filled after: modules import each other
        for name, value in namespace.items():
            if type(value) is Primitive:
                plain[name] = value.bare
            elif type(value) is types.FunctionType:
                plain[name] = plain_rule(value)
    return plain


# ---- what rule writers use ------------------------------------------------------------------------


def constant(array: Any, like: Any) -> np.ndarray:
    """A mask or sign, as a constant (never on the tape) of `like`'s float dtype (while compile
    traces, a mask computed from traced data is a step of its program: mytorch.tracked.computed)."""
    if type(array) is Tracked:
        return computed(np.asarray, (array,), {"dtype": gradient_dtype(like)})
    return np.asarray(array, dtype=gradient_dtype(like))


def reduce_to(g: Any, x: Any) -> Any:
    """`g` summed over the axes that broadcasting `x` added or stretched, so it has `x`'s shape.

    >>> reduce_to(np.ones((4, 3)), np.zeros(3))
    array([4., 4., 4.])
    """
    if type(g) is np.ndarray and type(x) is np.ndarray and g.shape == x.shape:
        return g  # the usual case, without np.shape's calls
    return sum_to_shape(g, np.shape(x))


def sum_to_shape(g: Any, shape: tuple[int, ...]) -> Any:
    """`g` summed over broadcast axes (or given the size-1 axes it lacks) so that it has `shape`.

    >>> sum_to_shape(np.ones((4, 3)), (1, 3))
    array([[4., 4., 4.]])
    """
    return g if np.shape(g) == tuple(shape) else unbroadcast(g, tuple(shape))


def _sequence_as_array(value: list | tuple) -> Any:
    """A (nested) list or tuple as one array: stacked on the tape where it holds float arrays, so
    `F.mean([x, F.add(x, 2.0)])` follows both; a constant where it holds numbers only."""
    parts = [_sequence_as_array(v) if isinstance(v, (list, tuple)) else v for v in value]
    if any(isinstance(p, np.ndarray) and p.dtype.kind in "fc" for p in parts):
        return PRIMITIVES["stack"](parts, axis=0)
    return np.asarray(parts)


def _own(output: np.ndarray, inputs: tuple, tracked: bool) -> np.ndarray:
    """The output as an array of its own (the tape knows arrays by identity): a tracked view when an
    input is tracked, a view where the forward rule handed back one of its inputs."""
    if tracked:
        return output.view(Tracked)
    return output.view() if any(value is output for value in inputs) else output


def _fitted(primitive: Primitive, position: int, grad: Any, value: Any) -> Any:
    """`grad`, checked to have `value`'s shape and cast to its dtype."""
    if type(grad) is np.ndarray and grad.dtype is value.dtype and grad.shape == value.shape:
        return grad  # the usual case
    if np.shape(grad) != np.shape(value):
        raise ValueError(
            f"{primitive.name}: its vjp returned a gradient that has shape {np.shape(grad)} for input "
            f"{position}, but its input has shape {np.shape(value)} (undo broadcasting with "
            "reduce_to(g, x))"
        )
    dtype = getattr(grad, "dtype", None)
    if dtype is not None and dtype != value.dtype:
        if dtype.kind == "c" and value.dtype.kind != "c":  # a real input of a complex operation:
            grad = PRIMITIVES["real"](grad)  # its gradient is the real part (PyTorch's convention)
            if grad.dtype == value.dtype:
                return grad
        grad = astype(grad, value.dtype)
    return grad if isinstance(grad, np.ndarray) else np.asarray(grad)  # a plain rule's 0-d result


def _conjugated(vjp: Any) -> Any:
    """A holomorphic primitive's backward rules for complex values: conj(vjp(conj(ȳ))).

    For w = f(z) holomorphic, PyTorch's convention asks for z̄ = ȳ · conj(f'(z)); the analytic rule
    computes ȳ · f'(z), so conjugating the adjoint on the way in and the gradient on the way out
    gives it (a real-coefficient linear rule, such as sum's, is unchanged by the two conj)."""

    def conj(value: Any) -> Any:
        return value if value is None else PRIMITIVES["conj"](value)

    if isinstance(vjp, (tuple, list)):
        return tuple(None if rule is None else _conjugated_rule(rule, conj) for rule in vjp)

    def conjugated(g: Any, ans: Any, *inputs: Any, **params: Any) -> Any:
        grads = vjp(conj(g), ans, *inputs, **params)
        return tuple(conj(grad) for grad in grads) if isinstance(grads, (tuple, list)) else conj(grads)

    return conjugated


def _conjugated_rule(rule: Callable[..., Any], conj: Callable[[Any], Any]) -> Callable[..., Any]:
    return lambda g, ans, *inputs, **params: conj(rule(conj(g), ans, *inputs, **params))


def _explained(name: str, inputs: tuple, error: Exception) -> Exception:
    detail = ", ".join(
        f"{v.shape} {v.dtype}" if isinstance(v, np.ndarray) else type(v).__name__ for v in inputs
    )
    kind = IndexError if isinstance(error, IndexError) and not isinstance(error, ValueError) else None
    if isinstance(error, np.linalg.LinAlgError):  # a ValueError, kept as itself for callers to tell
        kind = np.linalg.LinAlgError
    kind = kind or (TypeError if isinstance(error, TypeError) else ValueError)
    message = str(error) if str(error).startswith(f"{name}:") else f"{name}: {error}"  # named once
    return kind(f"{message} (inputs: {detail})")


# ---- the plumbing primitives: broadcasting and its adjoint, and casts ---------------------------


broadcast_to = primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
    vjp=lambda g, ans, x, shape: (reduce_to(g, x),),
    jvp=lambda t, ans, x, shape: broadcast_to(t[0], shape), complex="explicit",
)
# The adjoint of broadcasting: a gradient summed over the axes that broadcasting added or stretched.
unbroadcast = primitive(
    "unbroadcast", lambda x, shape: sum_to(x, shape),
    vjp=lambda g, ans, x, shape: (broadcast_to(g, np.shape(x)),),
    jvp=lambda t, ans, x, shape: unbroadcast(t[0], shape), complex="explicit",
)
# y = x as a new array (np.copy, x.copy(), and each transform's own variable).
copy = primitive(
    "copy", lambda x: np.array(x, copy=True),
    vjp=lambda g, ans, x: (g,),
    jvp=lambda t, ans, x: t[0],
    register=False, complex="explicit",
)
# y = x as a new tracked array: a transform's (or checkpoint's) own variable, on the tape after x
# itself (plain or tracked), so NumPy code on it records and its gradient reaches x.
variable = primitive(
    "variable", lambda x: np.array(x, copy=True).view(Tracked),
    vjp=lambda g, ans, x: (g,),
    jvp=lambda t, ans, x: t[0],
    register=False, complex="explicit",
)
def _cast(x: Any, dtype: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        x = x.real  # what NumPy's cast keeps, said out loud (NumPy warns that it drops the rest)
    return x.astype(dtype)


# A cast that keeps the chain between float dtypes (used where dtypes meet). A cast to an integer or
# bool dtype is a step function: its derivative is zero in every mode (no gradient, no tangent).
astype = primitive(
    "astype", lambda x, dtype: _cast(x, dtype),
    # complex to real keeps the real part (as NumPy's cast does): its rules are real()'s
    vjp=lambda g, ans, x, dtype: (g if ans.dtype.kind in "fc" else None,),  # pullback casts g back
    jvp=lambda t, ans, x, dtype: astype(t[0], dtype) if ans.dtype.kind in "fc" else None,
    complex="explicit",
)
