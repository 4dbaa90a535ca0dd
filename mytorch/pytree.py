"""Containers of arrays ("pytrees"): dicts, lists and tuples, nested, with arrays (or numbers) at
the leaves. Transforms flatten such arguments into their leaves, differentiate with respect to
each leaf, and hand the gradients back in the same structure.

>>> leaves, structure = tree_flatten({"W": 1.0, "layers": [2.0, (3.0, None)]})
>>> leaves
[1.0, 2.0, 3.0]
>>> tree_unflatten(structure, [10, 20, 30])
{'W': 10, 'layers': [20, (30, None)]}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TreeDef", "is_container", "tree_flatten", "tree_map", "tree_unflatten"]


def is_container(value: Any) -> bool:
    """Whether `value` is a node of a tree (a dict, list or tuple), not a leaf."""
    return isinstance(value, (dict, list, tuple))


@dataclass(frozen=True)
class TreeDef:
    """A tree's structure: the kind of each node and its keys, leaves left as slots.

    kind is "leaf", "none" (None: no leaf), "dict", "list", "tuple" or "namedtuple".
    """

    kind: str
    keys: tuple = ()
    children: tuple[TreeDef, ...] = ()
    node_type: Any = None  # a namedtuple's class

    @property
    def leaf_count(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(child.leaf_count for child in self.children)

    def __repr__(self) -> str:
        if self.kind in ("leaf", "none"):
            return "*" if self.kind == "leaf" else "None"
        inner = ", ".join(
            f"{k!r}: {c!r}" if self.kind == "dict" else repr(c) for k, c in zip(self.keys, self.children)
        )
        return {"dict": "{%s}", "list": "[%s]"}.get(self.kind, "(%s)") % inner


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """The leaves of `tree` (depth first; a dict's in the order of its keys) and its structure.
    None is an empty node (no leaf), as in JAX."""
    leaves: list[Any] = []

    def walk(node: Any) -> TreeDef:
        if node is None:
            return TreeDef("none")
        if isinstance(node, dict):
            keys = tuple(node)
            return TreeDef("dict", keys, tuple(walk(node[k]) for k in keys))
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return TreeDef("namedtuple", tuple(node._fields), tuple(walk(v) for v in node), type(node))
        if isinstance(node, (list, tuple)):
            return TreeDef(type(node).__name__ if type(node) in (list, tuple) else "list", (),
                           tuple(walk(v) for v in node))
        leaves.append(node)
        return TreeDef("leaf")

    structure = walk(tree)
    return leaves, structure


def tree_unflatten(structure: TreeDef, leaves: Any) -> Any:
    """The tree of `structure` with `leaves` in its slots (in `tree_flatten`'s order)."""
    supply = iter(leaves)

    def build(node: TreeDef) -> Any:
        if node.kind == "leaf":
            return next(supply)
        if node.kind == "none":
            return None
        values = [build(child) for child in node.children]
        if node.kind == "dict":
            return dict(zip(node.keys, values))
        if node.kind == "namedtuple":
            return node.node_type(*values)
        return values if node.kind == "list" else tuple(values)

    tree = build(structure)
    if next(supply, _END) is not _END:
        slots = structure.leaf_count
        raise ValueError(f"tree_unflatten: more leaves than the {slots} slots of {structure!r}")
    return tree


_END = object()


def tree_map(function: Callable[..., Any], tree: Any, *others: Any) -> Any:
    """`function` applied leaf by leaf (to the matching leaves of `others`, of the same structure).

    >>> tree_map(lambda a, b: a + b, {"x": 1, "y": [2]}, {"x": 10, "y": [20]})
    {'x': 11, 'y': [22]}
    """
    leaves, structure = tree_flatten(tree)
    other_leaves = [tree_flatten(other)[0] for other in others]
    return tree_unflatten(structure, [function(*group) for group in zip(leaves, *other_leaves)])


def value_and_grad_over_trees(
    core: Callable, f: Callable, argnums: Any, has_aux: bool, args: tuple, who: str
) -> tuple[Any, Any]:
    """value_and_grad for arguments that are trees, and for `f` returning `(output, aux)`.

    `core(g, argnums)` is value_and_grad on arrays: the differentiated arguments are flattened
    into their leaves, `core` differentiates a function of the leaves, and each gradient is
    put back into its argument's structure. Returns `(value, grads)`, or `((value, aux), grads)`
    with `has_aux` (JAX's shapes).
    """
    count = len(args)
    single = isinstance(argnums, int) and not isinstance(argnums, bool)
    positions = (argnums,) if single else tuple(argnums)
    if not positions:
        raise ValueError(f"{who}: argnums is empty; name at least one argument to differentiate")
    for p in positions:
        if not isinstance(p, int) or isinstance(p, bool) or not -count <= p < count:
            raise ValueError(f"{who}: argnums={argnums!r} is out of range for {count} positional argument(s)")
    positions = tuple(p % count for p in positions)
    layout: dict[int, tuple[TreeDef, int, int]] = {}
    flat: list[Any] = []
    for p in dict.fromkeys(positions):
        leaves, structure = tree_flatten(args[p])
        layout[p] = (structure, len(flat), len(leaves))
        flat.extend(leaves)
    aux: list[Any] = []

    def of_leaves(*leaves: Any) -> Any:
        call = list(args)
        for p, (structure, start, size) in layout.items():
            call[p] = tree_unflatten(structure, leaves[start : start + size])
        out = f(*call)
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(
                    f"{who}(has_aux=True): the function must return a pair (output, aux), "
                    f"got {type(out).__name__}"
                )
            out, extra = out
            aux.append(extra)
        return out

    if flat:
        value, grads = core(of_leaves, tuple(range(len(flat))))(*flat)
    else:  # nothing to differentiate: empty containers
        value, grads = of_leaves(), ()
    per_argument = {p: tree_unflatten(s, grads[at : at + size]) for p, (s, at, size) in layout.items()}
    result = per_argument[positions[0]] if single else tuple(per_argument[p] for p in positions)
    return ((value, aux[-1]) if has_aux else value), result


def vjp_over_trees(core: Callable, f: Callable, primals: tuple) -> tuple[Any, Callable]:
    """vjp for primals that are trees: `vjp_fn` returns one gradient tree per primal."""
    leaves, structure = tree_flatten(tuple(primals))
    out, flat_vjp = core(lambda *values: f(*tree_unflatten(structure, list(values))), *leaves)
    return out, lambda cotangent: tree_unflatten(structure, list(flat_vjp(cotangent)))


def jvp_over_trees(core: Callable, f: Callable, primals: list, tangents: list) -> tuple[Any, Any]:
    """jvp for primals (and tangents of the same structure) that are trees."""
    leaves, structure = tree_flatten(tuple(primals))
    tangent_leaves, tangent_structure = tree_flatten(tuple(tangents))
    if tangent_structure != structure:
        raise ValueError(f"jvp: tangents {tangent_structure!r} need the primals' structure {structure!r}")
    of_leaves = lambda *values: f(*tree_unflatten(structure, list(values)))  # noqa: E731
    return core(of_leaves, tuple(leaves), tuple(tangent_leaves))
