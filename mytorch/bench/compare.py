"""`bench --compare REV`: this tree's mytorch beside another revision's, in one interleaved run.

A change's effect is smaller than the noise between two runs on a shared machine, so both trees are
timed in the same rounds. Two packages called `mytorch` cannot share a process: REV is exported
with `git archive` into a temporary folder, and each tree gets a worker process
(mytorch.bench.worker) that imports its own mytorch and runs the same workload code (this tree's).
The parent asks for one timed call at a time, each implementation next to its twin of the other
tree (the pair and the pairs' order shuffled every round), so only one worker runs at once and
slow moments of the machine fall on both trees alike. Each row reports the
median of its rounds and its ratio of medians to NumPy; "vs this" is the median over rounds of
REV's time over this tree's in the same round. The REV worker also times the NumPy baseline, as a
control: its "vs this" shows how evenly the two processes were treated (the noise floor).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mytorch.bench.targets import format_time, judge_targets

WORKER = Path(__file__).with_name("worker.py")
WORKLOADS = Path(__file__).with_name("workloads.py")
BASELINE = "NumPy"
PROCESSES = 2  # worker processes per tree, taking the rounds in turn


def this_tree() -> Path:
    """The checkout holding the running mytorch (its working tree, uncommitted changes included)."""
    return Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    """Run git in `repo`; its output, or a RuntimeError with git's message."""
    if shutil.which("git") is None:
        raise RuntimeError("bench --compare needs git, which is not installed")
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def checkout(rev: str, repo: Path) -> Iterator[tuple[Path, str]]:
    """REV's files in a temporary folder (removed on exit), and its commit id.

    `git archive` rather than `git worktree add`: it writes nothing into the repository, which other
    worktrees share.
    """
    commit = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") if rev else ""
    if not commit:
        raise RuntimeError(f"bench --compare: {rev!r} is not a revision of {repo}")
    with tempfile.TemporaryDirectory(prefix="mytorch-compare-") as folder:
        archive = Path(folder) / "rev.tar"
        git(repo, "archive", "--format=tar", "-o", str(archive), commit)
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(Path(folder) / "tree", filter="data")
            else:  # Python < 3.10.12; the archive is our own repository's
                tar.extractall(Path(folder) / "tree")
        archive.unlink()
        if not (Path(folder) / "tree" / "mytorch" / "__init__.py").exists():
            raise RuntimeError(f"bench --compare: {rev} ({commit[:10]}) has no mytorch package")
        yield Path(folder) / "tree", commit


class WorkerProcess:
    """One worker (mytorch.bench.worker) timing the mytorch of `root`."""

    def __init__(self, label: str, root: Path, with_peers: bool, preload: list[str] = ()) -> None:
        self.label, self.root = label, root
        env = dict(os.environ)
        # Only the checkout itself on the path (the parent's PYTHONPATH may point at this tree), and
        # one BLAS thread, set before NumPy loads: two cores are shared, and PyTorch runs on one.
        env.update(PYTHONPATH=str(root), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
        self._stderr: IO[str] = tempfile.TemporaryFile("w+")
        command = [sys.executable, str(WORKER), "--root", str(root), "--workloads", str(WORKLOADS)]
        if with_peers:
            command.append("--peers")
        if preload:
            command += ["--preload", ",".join(preload)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, text=True, env=env, cwd=str(root))
        self.description = self._read()
        imported = Path(self.description["mytorch"]).resolve()
        if root.resolve() not in imported.parents:
            self.close()
            raise RuntimeError(f"bench --compare: the {label} worker imported {imported}, not {root}")

    def _read(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read()[-3000:]
            raise RuntimeError(f"bench --compare: the {self.label} worker stopped:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"bench --compare ({self.label}): {reply['error']}\n{reply['traceback']}")
        return reply

    def ask(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one request; its reply."""
        self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the worker (asked first; killed if it does not leave)."""
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self._stderr.close()


def rounds_for(name: str, quick: bool, rounds: int | None) -> int:
    """Interleaved rounds for a row: medians want more than a fastest-of; the 100k chain takes ~1 s."""
    if rounds is not None:
        return rounds
    if name.startswith("B3"):
        return 1 if quick else 3
    return 5 if quick else 15


def compare_row(name: str, this: list[WorkerProcess], other: list[WorkerProcess], suffix: str,
                rounds: int) -> dict[str, Any]:
    """One workload timed in both trees' workers, interleaved call by call; medians per
    implementation. Round r runs on the r-th worker of each tree (cycling): each tree's rows are
    spread over several processes, whose memory layouts differ (a process can be a few percent
    faster or slower at the same code: the NumPy control showed 3%)."""
    meta = this[0].description["rows"][name]
    ours = meta["names"]
    theirs = [n for n in other[0].description["rows"].get(name, {}).get("names", ())
              if n == BASELINE or n.startswith("mytorch")]
    plan = [(0, n, n) for n in ours] + [(1, n, f"{n} {suffix}") for n in theirs]
    grad_diff: dict[str, float] = {}
    errors: dict[str, str] = {}
    for side, workers, names in ((0, this, ours), (1, other, theirs)):
        label = (lambda n: n) if side == 0 else (lambda n: f"{n} {suffix}")
        for worker in workers if names else ():
            setup = worker.ask("setup", workload=name, names=names)
            for n, d in setup["grad_diff"].items():
                grad_diff[label(n)] = max(d, grad_diff.get(label(n), 0.0))
            errors.update({label(n): e for n, e in setup["errors"].items()})
    plan = [step for step in plan if step[2] not in errors]
    times: dict[str, list[float]] = {label: [] for _, _, label in plan}
    # Each implementation beside its twin of the other tree, the pair in a random order and the
    # pairs shuffled every round: a call's predecessor (whose data may still be in the caches)
    # differs from round to round, and both twins run under the same moment's load.
    pairs: dict[str, list[tuple[int, str, str]]] = {}
    for step in plan:
        pairs.setdefault(step[1], []).append(step)
    shuffle = random.Random(0)
    for r in range(rounds):
        workers = (this[r % len(this)], other[r % len(other)])
        order = list(pairs.values())
        shuffle.shuffle(order)
        for pair in order:
            for side, n, label in shuffle.sample(pair, len(pair)):
                times[label].append(workers[side].ask("time", name=n)["seconds"])
    per = meta["per"]
    # REV against this tree, round by round: both calls of a round ran within moments of each other,
    # so the ratio of the pair cancels the machine's slow drifts, which a ratio of medians keeps.
    paired = {
        label: statistics.median(t / o for t, o in zip(times[label], times[label[: -len(suffix) - 1]]))
        for label in times if label.endswith(f" {suffix}") and label[: -len(suffix) - 1] in times
    }
    notes = list(meta["notes"])
    if name not in other[0].description["rows"]:
        notes.append(f"{suffix} has no row {name!r}")
    return {
        "workload": name, "description": meta["description"], "target": meta["target"], "unit": meta["unit"],
        "rounds": rounds,
        "seconds": {label: statistics.median(t) / per for label, t in times.items()},
        "fastest": {label: min(t) / per for label, t in times.items()},
        "versus_this": paired, "grad_diff": grad_diff, "errors": errors, "notes": notes,
    }


def as_rev_row(row: dict[str, Any], suffix: str) -> dict[str, Any]:
    """`row` as REV alone would show it: its mytorch rows under their plain names, with this
    worker's NumPy and peers (so the targets can be judged for REV as well)."""
    seconds = {n: s for n, s in row["seconds"].items() if not n.startswith("mytorch")}
    seconds.pop(f"{BASELINE} {suffix}", None)
    seconds.update({n[: -len(suffix) - 1]: s for n, s in row["seconds"].items()
                    if n.startswith("mytorch") and n.endswith(f" {suffix}")})
    return {**row, "seconds": seconds}


def compare(rev: str, *, quick: bool, rounds: int | None, only: list[str] | None,
            with_peers: bool) -> dict[str, Any]:
    """This tree against `rev`, every selected workload in one interleaved run."""
    repo = this_tree()
    git(repo, "rev-parse", "--show-toplevel")  # a clear error outside a git checkout
    suffix = f"@{rev}"
    results = []
    with checkout(rev, repo) as (root, commit), contextlib.ExitStack() as workers:
        this: list[WorkerProcess] = []
        other: list[WorkerProcess] = []
        for _ in range(PROCESSES):
            ours = WorkerProcess("this tree", repo, with_peers)
            this.append(workers.enter_context(contextlib.closing(ours)))
            # The REV worker imports this worker's peers without timing them: a process that has
            # loaded PyTorch allocates differently.
            theirs = WorkerProcess(suffix, root, False, ours.description["peer_modules"])
            other.append(workers.enter_context(contextlib.closing(theirs)))
        for name in this[0].description["rows"]:
            if only and not any(part in name for part in only):
                continue
            results.append(compare_row(name, this, other, suffix, rounds_for(name, quick, rounds)))
    return {"rev": rev, "commit": commit, "suffix": suffix, "rows": results,
            "targets": {"this": judge_targets(results, None),
                        rev: judge_targets([as_rev_row(r, suffix) for r in results], None)}}


def print_comparison(report: dict[str, Any]) -> None:
    """The rows (medians, ratios to NumPy and to this tree) and the targets for both trees."""
    print(f"this tree vs {report['rev']} ({report['commit'][:10]}): medians of interleaved rounds, "
          "each tree in its own worker process")
    for r in report["rows"]:
        base = r["seconds"].get(BASELINE)
        print(f"\n{r['workload']}: {r['description']}   ({r['rounds']} rounds)")
        print(f"  {'implementation':<34}{'median':>12}{'vs NumPy':>10}{'vs this':>9}{'max |Δgrad|':>13}")
        for name, seconds in r["seconds"].items():
            paired = r["versus_this"].get(name)
            versus_this = "" if paired is None else f"{paired:.3f}x"
            versus_numpy = f"{seconds / base:.2f}x" if base else ""
            diff = r["grad_diff"].get(name)
            diff_text = "" if diff is None else f"{diff:.1e}"
            print(f"  {name:<34}{format_time(seconds, r['unit']):>12}{versus_numpy:>10}{versus_this:>9}"
                  f"{diff_text:>13}")
        for name, error in r["errors"].items():
            print(f"  {name}: not timed ({error})")
        for note in r["notes"]:
            print(f"  note: {note}")
    verdicts = report["targets"]
    print(f"\nTargets (ratios from this run)   this tree | {report['rev']}")
    for ours, theirs in zip(verdicts["this"], verdicts[report["rev"]]):
        unit = ours.get("unit", "x")
        cells = [("" if v["value"] is None else f"{v['value']:.2f}{unit}") + f" {v['verdict']}"
                 for v in (ours, theirs)]
        print(f"  {ours['target']:<58}{cells[0]:>16} |{cells[1]:>16}   (bound {ours['bound']}{unit})")
