"""The handout generator's old import path: it is mytorch/course/handout.py now."""

from mytorch.course.handout import (
    HandoutError,
    Plan,
    add_arguments,
    make_handout,
    plan,
    rule_sites,
    run,
    stubbed_sources,
)

__all__ = [
    "HandoutError", "Plan", "add_arguments", "make_handout", "plan", "rule_sites", "run", "stubbed_sources",
]
