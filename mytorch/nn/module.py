"""Module: the base of every layer, and Sequential.

A layer is a composition of primitives: its forward records on the tape and it writes no gradient
code. What Module adds:

- parameters in PyTorch's order and names (`parameters()`, `named_parameters()`, `state_dict()`);
- the drop-in protocol of hand-written homework layers: `dLdA = layer.backward(dLdZ)`. Every forward
  marks the tape where it starts; `backward` walks only that stretch, seeded with `dLdZ`, returns the
  adjoint of the input and sets the parameters' gradients (`layer.dLdW`, `layer.dW`, ...). When that
  stretch is the end of the tape, it is consumed (cut off), so a training loop that only uses the
  protocol never grows the tape;
- homework call shapes: an engine passed positionally (`Linear(5, 5, engine)`, `Tanh(engine)`) or as
  `autograd_engine=`; a layer given an engine that is not the current one refuses to record.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from mytorch.autograd_engine import Autograd, Stretch, engine, is_recording, walk_backward
from mytorch.tracked import track


class _LastForward:
    """Where a module's last forward sits on the tape, and what went in and came out."""

    __slots__ = ("engine", "mark", "inputs", "output", "end", "last_op")

    def __init__(self, engine: Autograd, mark: tuple, inputs: tuple, output: Any) -> None:
        self.engine, self.mark, self.inputs, self.output = engine, mark, inputs, output
        tape = engine.operation_list
        self.end = len(tape)
        self.last_op = tape[-1] if self.end > mark[0] else None


def _takes_engine_positionally(init: Callable) -> Callable:
    """Let `Layer(..., engine)` (the handout's call shape) mean `Layer(..., autograd_engine=engine)`."""

    @functools.wraps(init)
    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        engines = [a for a in args if isinstance(a, Autograd)]
        if engines:
            args = tuple(a for a in args if not isinstance(a, Autograd))
            kwargs["autograd_engine"] = engines[0]
        init(self, *args, **kwargs)

    return __init__


def _marks_the_tape(forward: Callable) -> Callable:
    """Remember where each forward starts and what it returns, for `Module.backward`."""

    @functools.wraps(forward)
    def marked_forward(self: Module, *inputs: Any, **kwargs: Any) -> Any:
        current = self._recording_engine()
        mark = current.mark()
        output = forward(self, *inputs, **kwargs)
        self._last = _LastForward(current, mark, inputs, output) if is_recording() else None
        return output

    marked_forward._marks_the_tape = True  # type: ignore[attr-defined]
    return marked_forward


class Module:
    """A layer or a network of layers. `layer(x)` is `layer.forward(x)`.

    >>> from mytorch import nn
    >>> layer = nn.Linear(3, 2)
    >>> [p.shape for p in layer.parameters()]
    [(2, 3), (2,)]
    >>> Z = layer(np.ones((4, 3)))
    >>> dLdA = layer.backward(np.ones((4, 2)))     # the drop-in protocol
    >>> dLdA.shape, layer.dLdW.shape
    ((4, 3), (2, 3))
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _takes_engine_positionally(cls.__dict__["__init__"])  # type: ignore[misc]
        forward = cls.__dict__.get("forward")
        if forward is not None and not getattr(forward, "_marks_the_tape", False):
            cls.forward = _marks_the_tape(forward)  # type: ignore[method-assign]

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        if autograd_engine is not None and not isinstance(autograd_engine, Autograd):
            raise TypeError(
                f"{type(self).__name__}: autograd_engine must be an Autograd, got "
                f"{type(autograd_engine).__name__}"
            )
        self.__dict__.setdefault("_modules", {})
        self.__dict__.setdefault("_parameters", {})  # PyTorch name -> attribute holding the array
        self.__dict__.setdefault("_buffers", {})  # PyTorch name -> attribute holding the array
        self.autograd_engine = autograd_engine
        self.training = True
        self._last: _LastForward | None = None

    # ---- attributes: children, parameters and their PyTorch names -----------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Module):
            self.__dict__.setdefault("_modules", {})[name] = value
        parameters = self.__dict__.get("_parameters", {})
        if name in parameters and parameters[name] != name:
            name = parameters[name]  # `layer.weight = ...` sets `layer.W`
        object.__setattr__(self, name, value)  # as given: `layer.W = W` keeps W's identity

    def __getattr__(self, name: str) -> Any:
        # Only called when ordinary lookup fails: PyTorch names and gradient names of parameters.
        names = {**self.__dict__.get("_parameters", {}), **self.__dict__.get("_buffers", {})}
        if name in names and names[name] != name:
            return getattr(self, names[name])
        attributes = set(names) | set(names.values())
        for prefix in ("dLd", "d"):
            if name.startswith(prefix) and name[len(prefix):] in attributes:
                return self.gradient_of(getattr(self, name[len(prefix):]))
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_parameter(self, name: str, value: np.ndarray | None, attribute: str | None = None) -> None:
        """Make `value` a parameter called `name` (PyTorch's name), kept in `self.<attribute>`."""
        attribute = attribute or name
        self.__dict__.setdefault("_parameters", {})[name] = attribute
        if self.__dict__.get("autograd_engine") is None:
            # Tracked, so NumPy code on it in a forward records. A homework-style layer (given its
            # engine) keeps plain arrays: the handouts' seeding of "the last operation" and their
            # inspection of W with NumPy must not record anything.
            value = _as_parameter(value)
        object.__setattr__(self, attribute, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep `value` in the state_dict (running statistics), but not among the parameters."""
        self.__dict__.setdefault("_buffers", {})[name] = name
        object.__setattr__(self, name, value)

    # ---- calling ------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def _recording_engine(self) -> Autograd:
        current = engine()
        given = self.__dict__.get("autograd_engine")
        if given is not None and given is not current:
            raise RuntimeError(
                f"{type(self).__name__}: this layer was given an Autograd engine that is not the "
                "current one, so its operations would land on a different tape than the rest of the "
                "network. Create the engine (Autograd()) before the layers that use it, and do not "
                "create another one in between."
            )
        return current

    # ---- parameters and state -----------------------------------------------------------------

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, each once (a layer used twice in a Sequential is one child)."""
        seen: set[int] = set()
        for child in self.__dict__.get("_modules", {}).values():
            if id(child) not in seen:
                seen.add(id(child))
                yield child

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(name, module) pairs, this module first, then its sub-modules depth first, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = reversed(module.__dict__.get("_modules", {}).items())
            stack += [(f"{name}.{key}" if name else key, child) for key, child in children]

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> list[tuple[str, np.ndarray]]:
        """(name, array) pairs in PyTorch's order: this module's own, then each child's.

        A parameter shared by several layers (a layer used twice, tied weights `dec.W = enc.W`) is
        listed once, under its first name, as in PyTorch; so is an optimizer built from
        `parameters()` stepping it once. (`state_dict()` keeps every name, as PyTorch's does.)
        """
        modules = self.named_modules(prefix, remove_duplicate) if recurse else iter([(prefix, self)])
        seen: set[int] = set()
        named = []
        for module_name, module in modules:
            for name, attribute in module.__dict__.get("_parameters", {}).items():
                array = getattr(module, attribute)
                if array is None or (remove_duplicate and id(array) in seen):
                    continue
                seen.add(id(array))
                named.append((f"{module_name}.{name}" if module_name else name, array))
        return named

    def parameters_tree(self) -> dict[str, np.ndarray]:
        """The parameters as a dict (name -> array): a tree for the transforms and `functional_call`.

        >>> from mytorch import nn
        >>> sorted(nn.Linear(3, 2).parameters_tree())
        ['bias', 'weight']
        """
        return dict(self.named_parameters())

    def _parameter_slots(self) -> list[tuple[str, Module, str]]:
        """(PyTorch name, module, attribute) of every parameter, shared ones under each name."""
        return [
            (f"{module_name}.{name}" if module_name else name, module, attribute)
            for module_name, module in self.named_modules(remove_duplicate=False)
            for name, attribute in module.__dict__.get("_parameters", {}).items()
        ]

    def parameters(self, recurse: bool = True) -> list[np.ndarray]:
        """The parameter arrays, in the order and with the shapes of PyTorch's module, each once."""
        return [array for _, array in self.named_parameters(recurse=recurse)]

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Copies of the parameters and buffers, under PyTorch's names (`0.weight`, `1.running_mean`).

        Every name is kept, as in PyTorch: a shared parameter appears under each of its names.
        """
        return {key: np.array(value, copy=True) for key, value in self._state_targets(prefix).items()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy `state` into the parameters and buffers, in place (optimizers keep their arrays).

        All or nothing: every key, shape and dtype is checked before anything is written, so a
        mismatch anywhere (the last layer too) leaves the model unchanged. Values are cast to the
        model's dtypes within a kind (float64 into float32, as PyTorch's copy does); a value that
        does not cast (complex or text into float, float into an integer buffer) is refused.
        """
        name = type(self).__name__
        targets = self._state_targets()
        missing = [key for key in targets if key not in state]
        unexpected = [key for key in state if key not in targets]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict({name}): missing keys {missing}, unexpected keys {unexpected}; "
                "nothing was loaded"
            )
        writes, problems, held = [], [], 0
        for key, target in targets.items():
            if key not in state:
                continue
            try:
                value = np.asarray(state[key])
            except Exception as error:  # a ragged list, an object that is no array
                problems.append(f"{key} is not an array ({type(error).__name__}: {error})")
                continue
            if value.shape != target.shape:
                problems.append(f"{key} has shape {value.shape} in the state, {target.shape} in the model")
            elif not np.can_cast(value.dtype, target.dtype, casting="same_kind"):
                problems.append(f"{key} has dtype {value.dtype} in the state, {target.dtype} in the model")
            elif not target.flags.writeable:
                held += 1
                problems.append(
                    f"{key} is held read-only by the tape; call engine.zero_grad() (or finish the "
                    "backward pass) first"
                )
            else:
                writes.append((target, value))
        if problems:
            error = RuntimeError if held == len(problems) else ValueError  # the tape's doing, or the state's
            raise error(f"load_state_dict({name}): " + "; ".join(problems) + "; nothing was loaded")
        for target, value in writes:
            target[...] = value

    def _state_targets(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The arrays of the state_dict themselves (not copies), by name."""
        targets = {}
        for table in ("_parameters", "_buffers"):
            for name, attribute in self.__dict__.get(table, {}).items():
                value = getattr(self, attribute)
                if value is not None:
                    targets[prefix + name] = value
        for child_name, child in self.__dict__.get("_modules", {}).items():
            targets.update(child._state_targets(f"{prefix}{child_name}."))
        return targets

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout drops, batch norm uses batch statistics) or, with False, eval."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ---- gradients: the drop-in protocol ------------------------------------------------------

    def _gradient_engine(self) -> Autograd:
        last = self.__dict__.get("_last")
        if last is not None:
            return last.engine
        return self.__dict__.get("autograd_engine") or engine()

    def gradient_of(self, array: np.ndarray) -> np.ndarray:
        """The gradient held for one of this module's arrays (`layer.dLdW`).

        Zeros when no gradient arrived (before any backward, or when the walk did not reach the
        array): the drop-in protocol's attributes are always arrays, as hand-written layers' are.
        Optimizers tell "no gradient" from a zero one (`GradientBuffer.gradient`) and skip it.
        """
        gradient = self._gradient_engine().gradient_buffer.gradient(array)
        return np.zeros_like(array) if gradient is None else gradient

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget this module's parameter gradients (PyTorch's default), or set them to zero."""
        buffer = self._gradient_engine().gradient_buffer
        for array in self.parameters():
            if buffer.is_in_memory(array):
                if set_to_none:
                    buffer.clear_gradient(array)
                else:
                    buffer.set_param(array, np.zeros_like(array))

    def backward(self, dLdZ: Any) -> Any:
        """The drop-in protocol: given dL/d(output) of the last forward, return dL/d(input).

        The engine walks only this module's stretch of the tape; afterwards the parameters'
        gradients are set (`dLdW`, `dLdb`, ...). With several array inputs, a tuple comes back.
        """
        adjoints = _walk_last_forward(self, dLdZ)
        inputs = [x for x in self._last_inputs() if isinstance(x, np.ndarray) and x.dtype.kind == "f"]
        input_adjoints = tuple(adjoint_of(adjoints, x) for x in inputs)
        return input_adjoints[0] if len(input_adjoints) == 1 else input_adjoints

    def _last_inputs(self) -> tuple:
        last = self.__dict__.get("_last")
        return () if last is None else last.inputs

    # ---- printing -----------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = self.__dict__.get("_modules", {})
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


# engine -> the tape as it was when a loss built with it walked the whole engine (`loss.backward()` in
# the handouts), which took those records off the tape. A layer-by-layer backward that follows it
# (`l2.backward(dLdZ)`, as the handouts also teach) walks its own records from this copy.
_LOSS_WALKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember_loss_walk(loss_engine: Autograd, records: list) -> None:
    """Keep the records a loss's whole walk of `loss_engine` is about to take off its tape."""
    _LOSS_WALKS[loss_engine] = records


def _records_of(last: _LastForward) -> Sequence[Any] | None:
    """This forward's records: on the tape, else in the copy kept by the loss walk that took them."""
    tape = last.engine.operation_list
    if len(tape) >= last.end and (last.last_op is None or tape[last.end - 1] is last.last_op):
        return tape
    kept = _LOSS_WALKS.get(last.engine)
    if kept is not None and last.last_op is not None and len(kept) >= last.end \
            and kept[last.end - 1] is last.last_op:
        return kept
    return None


def _walk_last_forward(module: Module, seed_value: Any, consume: bool = True) -> dict[int, np.ndarray]:
    """Walk the stretch of tape of `module`'s last forward, seeded at its output.

    Sets the gradients of the module's parameters and returns the adjoints found, keyed by id.
    With `consume`, a stretch that ends the tape is cut off afterwards.
    """
    name = type(module).__name__
    last = module.__dict__.get("_last")
    if last is None:
        raise RuntimeError(
            f"{name}.backward: no recorded forward to walk back through. Call forward first (and not "
            "inside no_grad)."
        )
    tape = last.engine.operation_list
    records = _records_of(last)
    if records is None:
        raise RuntimeError(
            f"{name}.backward: the tape no longer holds this layer's last forward (a backward already "
            "consumed it, or engine.zero_grad() emptied the tape). Run forward again."
        )
    output = last.output
    if not isinstance(output, np.ndarray):
        raise TypeError(f"{name}.backward: the forward returned {type(output).__name__}, not an array")
    seed = np.asarray(seed_value, dtype=output.dtype)
    if seed.shape != output.shape:
        if seed.ndim:
            raise ValueError(
                f"{name}.backward: dLdZ has shape {seed.shape}, the layer's output has shape {output.shape}"
            )
        seed = np.full(output.shape, seed, dtype=output.dtype)

    if records is tape:
        stretch = Stretch(last.engine, start=last.mark)
        stretch.seal(end=last.end)
        adjoints = stretch.backward(output, seed)
        if consume and len(tape) == last.end:  # this stretch ends the tape: consume it, as a backward does
            stretch.cut_back(keep_gradients=True)
    else:  # a loss's whole walk took these records off the tape: walk the kept copy
        segment = records[last.mark[0]:last.end]
        start = next((i for i in range(len(segment) - 1, -1, -1) if segment[i].output is output), None)
        adjoints = {id(output): seed} if start is None else walk_backward(segment, start, seed)
    buffer = last.engine.gradient_buffer
    for array in module.parameters():
        if id(array) in adjoints:
            buffer.set_param(array, adjoint_of(adjoints, array))
        else:  # not on the path from the output: no gradient (dLdW reads zeros; optimizers skip it)
            buffer.clear_gradient(array)
    return adjoints


def _as_parameter(value: Any) -> Any:
    """A float array becomes tracked (so NumPy code on it in a forward records); others stay."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return track(value)
    return value


def functional_call(model: Module, params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """`model(*args, **kwargs)` run with `params` (name -> array, as `named_parameters()` names them)
    in place of its own parameters, which are put back afterwards (PyTorch's
    `torch.func.functional_call`). With it, the transforms differentiate a model's parameters:

    >>> import mytorch
    >>> from mytorch import nn
    >>> model = nn.Linear(3, 1)
    >>> X = np.ones((4, 3))
    >>> loss = lambda p: np.mean(functional_call(model, p, X) ** 2)
    >>> grads = mytorch.grad(loss)(model.parameters_tree())
    >>> sorted(grads), grads["weight"].shape
    (['bias', 'weight'], (1, 3))
    """
    slots = model._parameter_slots()
    names = {name for name, _, _ in slots}
    unknown = sorted(set(params) - names)
    if unknown:
        raise KeyError(f"functional_call({type(model).__name__}): no parameters named {unknown}; "
                       f"its parameters are {sorted(names)}")
    # A parameter shared under several names (tied weights) is replaced under each of them.
    replacement = {id(getattr(module, attribute)): params[name] for name, module, attribute in slots
                   if name in params}
    saved = [(module, attribute, getattr(module, attribute)) for _, module, attribute in slots]
    try:
        for module, attribute, array in saved:
            if array is not None and id(array) in replacement:
                object.__setattr__(module, attribute, replacement[id(array)])
        return model(*args, **kwargs)
    finally:
        for module, attribute, array in saved:
            object.__setattr__(module, attribute, array)


def adjoint_of(adjoints: dict[int, np.ndarray], array: np.ndarray) -> np.ndarray:
    """`array`'s adjoint from a walk (a fresh, writable array; zeros if nothing reached it)."""
    adjoint = adjoints.get(id(array))
    return np.zeros_like(array) if adjoint is None else np.array(adjoint, dtype=array.dtype)


class Sequential(Module):
    """Layers applied one after the other; `model[i]` and `for layer in model` give the layers.

    >>> from mytorch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> len(model), type(model[1]).__name__
    (3, 'ReLU')
    """

    def __init__(self, *layers: Module, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if len(layers) == 1 and isinstance(layers[0], dict):
            named = list(layers[0].items())
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        for layer_name, layer in named:
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: {layer_name} is a {type(layer).__name__}, not a Module")
            setattr(self, layer_name, layer)

    def forward(self, x: Any) -> Any:
        for layer in self:
            x = layer(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        layers = list(self.__dict__["_modules"].values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def __len__(self) -> int:
        return len(self.__dict__["_modules"])

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self.__dict__["_modules"].values()))  # a layer used twice comes twice

    def append(self, layer: Module) -> Sequential:
        setattr(self, str(len(self)), layer)
        return self
