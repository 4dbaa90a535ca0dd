"""Grading a submission: one child per item, the jobs shared across submissions."""

from __future__ import annotations

import functools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mytorch.course import untrusted
from mytorch.course.assignment import CONFIG_NAME, LAYERS, Config, split_item
from mytorch.course.jobs import Job, layer_job, rule_job
from mytorch.course.judge import Result, judge
from mytorch.course.launch import run_child
from mytorch.course.sandbox import Isolation

# ---- grading a submission ---------------------------------------------------------------------------------


class Grader:
    """Grades items of one config for any number of submissions; each item's inputs and expected
    numbers are computed once per run (the same draws for every submission)."""

    def __init__(
        self, config: Config, items: dict[str, float], seed: int, isolation: Isolation | None = None
    ) -> None:
        self.config, self.items, self.seed = config, items, seed
        self.isolation = isolation or Isolation("none", "the grader's own user (no sandbox)")
        rules = [split_item(item) for item in config.items]
        self.graded_rules = [[op, rule] for kind, op, rule in rules if kind == "rule"]
        self._jobs: dict[str, Job | Exception] = {}
        self._locks = {item: threading.Lock() for item in items}

    def job(self, item: str) -> Job:
        with self._locks[item]:
            if item not in self._jobs:
                kind, name, rule = split_item(item)
                try:
                    if kind == "rule":
                        others = [r for r in self.graded_rules if r != [name, rule]]
                        self._jobs[item] = rule_job(name, rule, self.config.examples, self.seed, others)
                    else:
                        if name not in LAYERS:
                            raise ValueError(f"no grading spec for nn.{name} (gradable: {', '.join(LAYERS)})")
                        self._jobs[item] = layer_job(
                            name, self.seed, self.graded_rules, item in self.config.items
                        )
                except Exception as error:  # noqa: BLE001 - the teacher's setup, reported per item
                    self._jobs[item] = error
            found = self._jobs[item]
        if isinstance(found, Exception):
            raise found
        return found

    def grade_item(self, root: Path, item: str, env: dict | None = None) -> Result:
        started = time.perf_counter()
        points = self.items.get(item, 1.0)
        visibility = self.config.visibility.get(item, "visible")
        try:
            job = self.job(item)
            run = run_child(
                root,
                {"tasks": job.tasks, "modules": _primitive_modules()},
                job.arrays,
                self.config.time_limit,
                self.config.memory_limit,
                env,
                meanwhile=job.ready,
                isolation=self.isolation,
            )
            result = judge(job, run, points, visibility)
        except Exception as error:  # noqa: BLE001 - the grader's own failure, reported per item
            result = Result(
                item,
                0.0,
                points,
                "error",
                f"cannot grade {item}: {type(error).__name__}: {error}",
                0.0,
                {},
                visibility,
            )
        # Feedback goes to the student: no reference source in it, no text a writer chokes on.
        hidden = reference_lines(item, self.config.directory)
        result.detail = untrusted.clean_text(untrusted.redact(result.detail, hidden), 20_000)
        result.seconds = time.perf_counter() - started
        return result

    def grade(self, root: Path, jobs: int | None = None) -> list[Result]:
        with ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
            return list(pool.map(lambda item: self.grade_item(root, item), self.items))


def _primitive_modules() -> list[str]:
    """The modules that define the primitives (where their rules are), for the child to import."""
    from mytorch.testing import all_primitives

    found = {getattr(p, "defined_in", None) or getattr(getattr(p, "vjp", None), "__module__", None)
             for p in all_primitives().values()}
    return sorted(name for name in found if name and name.startswith("mytorch"))


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def grade_item(item: str, config: Config, points: float | None = None, seed: int | None = None) -> Result:
    """Grade one item of the handout this process runs in (a student's own check: the visible seed)."""
    items = {item: config.items.get(item, 1.0) if points is None else points}
    grader = Grader(config, items, config.seed if seed is None else seed)
    return grader.grade_item(_package_root(), item)


def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]  # mytorch/course/grader.py -> the root holding mytorch


@functools.cache
def reference_lines(item: str, handout: Path | None = None) -> frozenset[str]:
    """The lines of the reference's code for `item` (its rule, or its layer's class) that the
    `handout` does not hold: feedback never shows them, however the student's code got hold of
    them (lines the handout gives every student, e.g. an unchanged `__init__`, stay visible)."""
    import inspect

    from mytorch import nn
    from mytorch.testing import all_primitives

    kind, name, rule = split_item(item)
    try:
        if kind == "rule":
            source = getattr(all_primitives()[name], rule)
            sources = [s for s in (source if isinstance(source, (tuple, list)) else [source]) if s]
        else:
            sources = [getattr(nn, name)]
        text = "\n".join(inspect.getsource(s) for s in sources)
        files = {Path(inspect.getsourcefile(s) or "").resolve() for s in sources}
    except (KeyError, AttributeError, TypeError, OSError):
        return frozenset()
    lines = {line.strip() for line in text.splitlines() if len(line.strip()) >= 12}
    package = Path(__file__).resolve().parents[1]
    for file in files:
        copy = handout / file.relative_to(package.parent) if handout and package in file.parents else None
        if copy is not None and copy.is_file():
            given = copy.read_text(encoding="utf-8", errors="replace").splitlines()
            lines -= {line.strip() for line in given}
    return frozenset(lines)


def find_config(path: Path | None = None) -> Config:
    """grading.json: `path`, else in the current directory, else beside the mytorch package."""
    beside_package = _package_root() / CONFIG_NAME
    candidates = [path] if path else [Path.cwd() / CONFIG_NAME, beside_package]
    for candidate in candidates:
        if candidate.is_file():
            return Config.load(candidate)
    raise FileNotFoundError(
        f"no {CONFIG_NAME} found ({', '.join(map(str, candidates))}): run grade inside a "
        "handout made by `python -m mytorch handout`, or pass --config"
    )


