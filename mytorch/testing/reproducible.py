"""Seeded hypothesis runs that depend on their seed alone (the grader's draws, `check_primitive(seed=)`,
`check_layer(seed=)`, `python -m mytorch check --seed`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def history_free() -> Iterator[None]:
    """Hypothesis draws made here depend on their seed alone, not on what the process did before.

    Hypothesis (6.131 and later) sometimes draws a number from the constants found in the source
    of the process's "local" modules (outside site-packages and the standard library: mytorch, a
    student's submission, the course's scripts). Which of those are in `sys.modules` when a draw is
    made depends on what ran before, and the constants drawn from, and how many random choices a draw
    takes, changed with it: the same seed gave other examples after other tests or imports had run.
    Here the local constants are empty (hypothesis's built-in constants stay), and the cache of the
    constants each kind of draw may take is emptied on the way in (it may hold local ones) and out
    (it holds none)."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # a hypothesis from before local constants: its draws depend on the seed alone
        yield
        return
    if not hasattr(providers, "_get_local_constants"):
        yield
        return
    found, cache = providers._get_local_constants, providers.CONSTANTS_CACHE.cache
    providers._get_local_constants = Constants
    cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = found
        cache.clear()

