"""The command line: `python -m mytorch {demo,check,bench,handout,grade} [options]`.

Each subcommand lives in its own module, which provides `add_arguments(parser)` and
`run(args) -> int` (the exit code); it is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("mytorch.demo", "the lecture's traces, an MLP trained on Iris, the tape as a graph"),
    "bench": ("mytorch.bench", "time mytorch beside hand-written NumPy and installed peers"),
    "check": ("mytorch.check", "property-check every primitive against finite differences and PyTorch"),
    "handout": ("mytorch.course.handout", "write a student copy with chosen rules and layers left as stubs"),
    "grade": ("mytorch.course.grade", "grade a handout's items or a class, "
              "student code isolated; table, JSON, CSV"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mytorch", description="A tape-based reverse-mode autodiff engine for NumPy."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    >>> main(["--help"])  # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return importlib.import_module(args.module_name).run(args)
