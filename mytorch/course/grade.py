"""`python -m mytorch grade`: grade a handout's items; a table, Gradescope's JSON, Autolab's line.

    python -m mytorch grade                                   # a student, inside their handout
    python -m mytorch grade --config hw/grading.json --submission alice/     # a teacher
    python -m mytorch grade --config hw/grading.json --submissions class/ --out grades/
    python -m mytorch grade --self-test                       # can every item fail?

Where the verdict is made. This process (the parent) never imports the student's code. For each
item it draws inputs (hypothesis, with a seed: the config's visible seed for a student's own run,
a fresh one for a teacher's `--submission`), starts one child process (a fresh interpreter with
the student's copy first on its path; see mytorch.course.child) with a hard wall-clock limit
(killed, with its process group), a memory limit (setrlimit) and a temporary directory removed
whatever happens, and reads back raw arrays only (an .npz, allow_pickle=False). It compares them
with what it computes itself:

- a rule (`exp.vjp`, `exp.jvp`): the forward must be the reference's; the first-order rule must
  match central finite differences of the reference's forward (mytorch.gradcheck), each input's
  gradient a part of the credit; and, as rules are written with primitives, the rule recorded and
  walked back once more must give the second-order quantities (∂⟨b, x̄⟩/∂(ȳ, x) for a backward
  rule, ∂⟨ȳ, ẏ⟩/∂(x, ẋ) for a tangent rule), again against finite differences;
- a layer (`nn.Conv2d`): in several configurations (constructor arguments) and batch sizes, its
  output, the gradients of its inputs and parameters for a walk back from the output, and its
  buffers must match the reference layer's. While a layer or rule is graded, the other rules that
  are items are replaced, in the child, by central differences of their forward, so an item's
  grade does not depend on the others.

The exit code and the JSON are written here, from these comparisons only. When this process's
mytorch is itself a handout (a student grading their own work), there is no reference layer to
compare a stubbed layer's output with: its gradients are checked against finite differences of
the student's own forward, and the output by the teacher's grader.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mytorch.course import sandbox
from mytorch.course.assignment import CONFIG_NAME, LAYERS, split_item
from mytorch.course.grader import Grader, _package_root, find_config
from mytorch.course.jobs import _reference_is_here
from mytorch.course.judge import Result
from mytorch.course.klass import grade_class, submissions_in
from mytorch.course.report import _write_json, scores_line, table, to_json
from mytorch.course.selftest import _self_test_report, self_test
from mytorch.course.submission import SubmissionError, handout_of, prepare_submission

# ---- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as Gradescope's results.json"
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help=f"the {CONFIG_NAME} to use (default: the handout's)"
    )
    parser.add_argument(
        "--items", metavar="A,B", help="grade these items instead of the config's (e.g. matmul.vjp,nn.Linear)"
    )
    parser.add_argument("--examples", type=int, help="drawn examples per rule (default: the config's)")
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the draws (default: the config's visible seed for "
        "your own work; a fresh one with --submission(s))",
    )
    parser.add_argument(
        "--time-limit", type=float, metavar="S", help="seconds per item (default: the config's)"
    )
    parser.add_argument(
        "--jobs", type=int, metavar="N", help="children at once (default: the machine's cores)"
    )
    parser.add_argument(
        "--submission",
        type=Path,
        metavar="DIR",
        help="grade a submission: a folder holding the files students edit (the config's 'files'), at "
        "their paths in the handout or flat (core.py, as Gradescope keeps uploads); they are put into a "
        "fresh copy of the handout and graded there by this (the reference) mytorch",
    )
    parser.add_argument(
        "--submissions",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="grade many submissions (or folders of them) in parallel",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        metavar="DIR",
        help="with --submissions: where grades.csv and one JSON per student go (default grades)",
    )
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="grade a class even where no sandbox holds (no bubblewrap, not root): the students' "
        "code then runs as this user",
    )
    parser.add_argument(
        "--handout",
        type=Path,
        metavar="DIR",
        help="the handout folder submissions go into (default: the config's 'handout', else its folder)",
    )
    parser.add_argument(
        "--fail-under",
        type=fail_under,
        metavar="SCORE",
        help="exit 1 when a score is below SCORE: points (7.5) or a share of the maximum (75%%); "
        "without it grade exits 0 whenever grading ran",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="a progress bar on stderr for --submissions and --self-test (default: when a terminal)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that known-wrong rules fail every item (the config's, or --items, or all)",
    )


def fail_under(text: str) -> Callable[[float, float], bool]:
    """`--fail-under`: points (`7.5`) or a share of the maximum (`75%`); True when a score is below.

    >>> fail_under("75%")(7.0, 10.0), fail_under("7")(7.0, 10.0)
    (True, False)
    """
    try:
        share = text.endswith("%")
        bound = float(text[:-1] if share else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write points (7.5) or a share (75%)") from None
    if share:
        return lambda score, maximum: score < bound / 100 * maximum - 1e-9
    return lambda score, maximum: score < bound - 1e-9


def run(args: argparse.Namespace) -> int:
    """Exit 0 when grading ran, whatever the marks; 2 on a usage or setup error; 1 only when a
    score is below `--fail-under`."""
    if args.self_test:
        return _run_self_test(args)
    try:
        config = find_config(args.config)
        if args.handout:
            config.handout = str(args.handout.resolve())
        items = dict(config.items)
        if args.items:
            names = [name.strip() for name in args.items.split(",") if name.strip()]
            for name in names:
                split_item(name)
            items = {name: config.items.get(name, 1.0) for name in names}
    except (OSError, ValueError) as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    if args.examples:
        config.examples = args.examples
    if args.time_limit:
        config.time_limit = args.time_limit
    teacher = bool(args.submission or args.submissions)
    if teacher and not _reference_is_here():
        print(
            "grade: --submission grades against the reference, but this mytorch is a handout's copy "
            f"({_package_root()}): run it where the teacher's mytorch is imported, e.g. "
            f"cd elsewhere && python -m mytorch grade --config {config.directory / CONFIG_NAME} ...",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else (secrets.randbits(31) if teacher else config.seed)
    # A teacher's run sandboxes the student's code; a student's own run is their own code anyway.
    isolation = (
        sandbox.choose(secrets=[_package_root() / "mytorch", *(args.submissions or [args.submission])])
        if teacher
        else sandbox.Isolation("none", "a student's own run")
    )
    if args.submissions and not isolation.holds and not args.unsafe:
        print(
            f"grade: no sandbox holds here ({isolation.describe()}): the students' code could read "
            "the reference, each other's work or change the grades. Install bubblewrap "
            "(apt-get install bubblewrap), or run as root, or pass --unsafe to grade anyway.",
            file=sys.stderr,
        )
        return 2
    grader = Grader(config, items, seed, isolation)
    below = args.fail_under or (lambda score, maximum: False)
    try:
        if teacher:
            handout_of(config)  # a teacher's config kept apart from its handout must say where it is
        if args.submissions:
            submissions = submissions_in(args.submissions, config)
            if not submissions:
                raise SubmissionError(f"no submissions in {', '.join(map(str, args.submissions))}")
            rows = grade_class(grader, submissions, args.out, args.jobs, args.progress)
            return 1 if any(below(row["score"], row["max_score"]) for row in rows) else 0
        started = time.perf_counter()
        notes: list[str] = []
        if args.submission:
            with tempfile.TemporaryDirectory(prefix="mytorch-submission-") as scratch:
                try:
                    handed_in = prepare_submission(config, args.submission, Path(scratch))
                except SubmissionError as error:
                    return _nothing_handed_in(args, items, str(error))
                notes = handed_in.notes
                results = grader.grade(handed_in.root, args.jobs)
        else:
            results = grader.grade(_package_root(), args.jobs)
    except SubmissionError as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(table(results, notes))
    print(f"\ngraded {len(results)} items in {seconds:.1f} s; isolation {isolation.describe()}")
    if args.json:
        report = to_json(results, seconds, seed if teacher else None, notes, isolation.describe())
        _write_json(args.json, report)
    print(scores_line(results))
    return 1 if below(sum(r.points for r in results), sum(r.max_points for r in results)) else 0


def _nothing_handed_in(args: argparse.Namespace, items: dict[str, float], problem: str) -> int:
    """A submission that cannot be graded: zero points said in every output (a Gradescope or Autolab
    run shows the student why), and exit 2."""
    print(f"grade: {problem}", file=sys.stderr)
    results = [Result(item, 0.0, points, "not graded", problem) for item, points in items.items()]
    if args.json:
        _write_json(args.json, to_json(results, 0.0, notes=[problem]))
    print(scores_line(results))
    return 2


def _run_self_test(args: argparse.Namespace) -> int:
    if not _reference_is_here():
        print(
            "grade --self-test: run it with the teacher's mytorch (this one is a handout's copy)",
            file=sys.stderr,
        )
        return 2
    if args.items:
        items = [name.strip() for name in args.items.split(",") if name.strip()]
    elif args.config:
        items = list(find_config(args.config).items)
    else:
        from mytorch.testing import all_primitives

        items = [f"{op}.{rule}" for op in sorted(all_primitives()) for rule in ("vjp", "jvp")]
        items += [f"nn.{name}" for name in LAYERS]
    outcomes = self_test(
        items,
        examples=args.examples or 8,
        seed=args.seed or 0,
        time_limit=args.time_limit or 120.0,
        jobs=args.jobs,
        progress=args.progress,
    )
    report, missed = _self_test_report(outcomes)
    print(report)
    return 1 if missed else 0
