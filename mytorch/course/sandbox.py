"""How a grading child is started: in a sandbox, so that the student's code sees nothing of the
teacher's, can write only its own scratch folder, cannot signal the grader, and leaves nothing
running after its item.

Three isolations, the strongest available is chosen once per run (`choose`):

- ``bwrap``: bubblewrap (Debian's `bubblewrap`, Flatpak's sandbox) builds the child's world. New
  user, pid, mount, network, IPC and UTS namespaces (`--unshare-all`); a new session (no TIOCSTI
  into the grader's terminal); the child dies with its parent (`--die-with-parent`), and as the
  pid namespace's init ends with it, so does everything it started, double-forked or not. Its file
  system is a private tmpfs holding only the interpreter and its libraries (read-only), the
  student's copy at /student (read-only) and the scratch folder at /work (the one writable place);
  the reference package, the teacher's files, other students' folders, the grader's /proc and
  environment are absent.
- ``uid`` (no usable bwrap, the grader runs as root): each child runs as a dedicated unprivileged
  uid with no supplementary groups, RLIMIT_NPROC, its own copy of the student's files in a
  scratch folder only it may enter; afterwards every process of that uid is killed (a process
  running as the uid sends kill(-1): that reaches exactly the uid's processes, wherever they went).
  It cannot write or signal anything of root's, nor read /proc/<grader>/environ; it can read
  files that any user may read, which `exposed` lists (the report says so; chmod them o-rwx).
- ``none``: the grader's own user, as before (a student grading their own copy). A class is not
  graded this way unless `--unsafe`.

`MYTORCH_SANDBOX=bwrap|uid|none` forces one (tests use it to run the fallback).

    >>> choose("none").kind
    'none'
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

FORCE = "MYTORCH_SANDBOX"
KINDS = ("bwrap", "uid", "none")
STUDENT, WORK = "/student", "/work"  # where the child sees its copy and its scratch folder (bwrap)
MAX_PROCESSES = 64  # RLIMIT_NPROC of a child under its own uid: threads count too
UID_BASE = 1_500_000_000  # far above any account; each grader process takes a block of 256


@dataclass(frozen=True)
class Isolation:
    """Which sandbox the children run in, and what the report says about it."""

    kind: str  # "bwrap", "uid" or "none"
    detail: str
    exposed: tuple[str, ...] = field(default=())  # teacher's paths a child could still read

    @property
    def holds(self) -> bool:
        """Whether a class may be graded this way without --unsafe."""
        return self.kind == "bwrap" or (self.kind == "uid" and not self.exposed)

    def describe(self) -> str:
        text = f"{self.kind}: {self.detail}"
        if self.exposed:
            text += "; readable by any user (chmod -R o-rwx them): " + ", ".join(self.exposed)
        return text


# ---- choosing --------------------------------------------------------------------------------------------


def choose(force: str | None = None, secrets: Iterable[Path] = ()) -> Isolation:
    """The strongest isolation that works here (or `force`, or $MYTORCH_SANDBOX). `secrets` are the
    teacher's paths (reference package, class folders) checked for other users' read access when
    the fallback is used.

        >>> choose("bwrap").kind in ("bwrap", "none")
        True
    """
    wanted = force or os.environ.get(FORCE) or None
    if wanted is not None and wanted not in KINDS:
        raise ValueError(f"{FORCE}={wanted!r}: expected one of {', '.join(KINDS)}")
    if wanted in (None, "bwrap"):
        problem = _bwrap_problem()
        if problem is None:
            return Isolation("bwrap", "bubblewrap: namespaces, read-only interpreter, only /work writable")
        if wanted == "bwrap":
            return Isolation("none", f"bwrap was asked for but does not run here: {problem}")
    if wanted in (None, "uid"):
        problem = _uid_problem()
        if problem is None:
            return Isolation(
                "uid",
                "a dedicated uid per child, its processes killed after its item (no bwrap)",
                tuple(str(p) for p in exposed(secrets)),
            )
        if wanted == "uid":
            return Isolation("none", f"a dedicated uid was asked for but cannot be used: {problem}")
    return Isolation("none", "the children run as the grader's own user (no sandbox)")


@functools.lru_cache(maxsize=1)
def _bwrap_problem() -> str | None:
    """None when bwrap starts this interpreter in the sandbox we use; else why not."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="mytorch-probe-") as scratch:
        command = bwrap_argv(Path(scratch), Path(scratch), {}) + [_python(), "-I", "-c", "import numpy"]
        try:
            done = subprocess.run(command, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
    if done.returncode:
        return done.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit code {done.returncode}"
    return None


@functools.lru_cache(maxsize=1)
def _uid_problem() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the grader does not run as root"
    try:
        done = subprocess.run(
            [_python(), "-I", "-c", "import numpy"],
            user=UID_BASE - 1,
            group=UID_BASE - 1,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode:
        return f"another user cannot run {_python()} with numpy (is its folder private?)"
    return None


def _python() -> str:
    return os.path.realpath(sys.executable)


def exposed(paths: Iterable[Path]) -> list[Path]:
    """Those of `paths` that any user can reach and read (every folder above them searchable).

    >>> exposed([Path("/")])
    [PosixPath('/')]
    """
    found = []
    for path in paths:
        path = Path(path).resolve()
        try:
            chain = [path, *path.parents]
            searchable = all(os.stat(p).st_mode & stat.S_IXOTH for p in chain[1:])
            if searchable and os.stat(path).st_mode & stat.S_IROTH:
                found.append(path)
        except OSError:
            continue
    return found


# ---- the bwrap command ------------------------------------------------------------------------------------


def bwrap_argv(root: Path, work: Path, env: dict[str, str], hide: Iterable[Path] = ()) -> list[str]:
    """bwrap's arguments up to the command: `root` read-only at /student, `work` writable at /work,
    the interpreter and its libraries read-only, `hide` (and the reference mytorch) replaced by
    empty folders, the environment exactly `env`.

        >>> "--unshare-all" in bwrap_argv(Path("/tmp"), Path("/tmp"), {})
        True
    """
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
    argv += ["--tmpfs", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    bound = []
    for folder in _interpreter_folders():
        if not any(_inside(folder, b) for b in bound):
            argv += ["--ro-bind", str(folder), str(folder)]
            bound.append(folder)
    for secret in (_reference_package(), *hide):
        secret = Path(secret).resolve()
        if any(_inside(secret, b) for b in bound) and secret.is_dir():
            argv += ["--tmpfs", str(secret)]  # an empty folder in its place
    argv += ["--ro-bind", str(root), STUDENT, "--bind", str(work), WORK, "--chdir", WORK, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


def _interpreter_folders() -> list[Path]:
    """The interpreter's prefixes and site folders, outermost first; never the grader's sys.path
    (PYTHONPATH, the working directory, an editable checkout: the teacher's code)."""
    import numpy

    folders = {Path(sys.prefix), Path(sys.base_prefix), Path(_python()).parent, Path(numpy.__file__).parent}
    folders.update(Path(p) for p in site.getsitepackages() if os.path.isdir(p))
    resolved = sorted({f.resolve() for f in folders}, key=lambda f: len(f.parts))
    return [f for f in resolved if not any(_inside(f, top) for top in (Path("/usr"),))]


def _reference_package() -> Path:
    return Path(__file__).resolve().parent.parent


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


# ---- running a child ------------------------------------------------------------------------------------


_UIDS = threading.Lock()
_free_slots = list(range(256))


@dataclass
class Child:
    """A started child: `wait` for it, then `end` it, which kills everything it started."""

    process: subprocess.Popen
    isolation: Isolation
    uid: int | None = None

    def wait(self, timeout: float) -> bool:
        """True when the child exited within `timeout` seconds."""
        try:
            self.process.wait(timeout=max(0.0, timeout))
            return True
        except subprocess.TimeoutExpired:
            return False

    def end(self) -> None:
        """Kill the child and all it started (bwrap: its pid namespace; uid: every process of the
        uid; none: its process group), then release its uid."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.uid is not None:
            kill_uid(self.uid)
            with _UIDS:
                _free_slots.append(self.uid - _uid_block())
            self.uid = None


def _uid_block() -> int:
    return UID_BASE + (os.getpid() % 2_000_000) * 256


def _as_uid(uid: int) -> list[str]:
    """A command prefix that runs the rest as `uid` with no groups (util-linux's setpriv): the
    grader then starts it with vfork, not by copying its own large memory as `user=` would."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def kill_uid(uid: int) -> None:
    """Kill every process running as `uid`: a helper takes the uid and sends kill(-1), which on
    Linux reaches exactly the processes that uid may signal, and never the helper; again, until
    none is left (a fork bomb refills).

        >>> kill_uid(UID_BASE - 2) if os.geteuid() == 0 else None
    """
    if shutil.which("setpriv") and shutil.which("sh"):
        sweep = "n=0; while kill -9 -1 2>/dev/null && [ $n -lt 1000 ]; do n=$((n+1)); done"
        subprocess.run([*_as_uid(uid), "sh", "-c", sweep], env={"PATH": "/usr/bin:/bin"}, check=False)
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the helper; only system calls until _exit
        code = 0
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(1000):  # a fork bomb refills: until nothing is left to kill
                os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except BaseException:
            code = 1
        os._exit(code)
    os.waitpid(pid, 0)


def scratch(isolation: Isolation) -> Path:
    """A fresh scratch folder (mode 0700) for one child. Under a uid of its own the child must be
    able to reach it, so it goes where every folder above is searchable ($TMPDIR, else /tmp).

        >>> folder = scratch(choose("none")); folder.is_dir()
        True
    """
    base = tempfile.gettempdir()
    if isolation.kind == "uid" and not all(
        os.stat(p).st_mode & stat.S_IXOTH for p in [Path(base).resolve(), *Path(base).resolve().parents]
    ):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="mytorch-grade-", dir=base))


def start(
    isolation: Isolation,
    script: str,
    root: Path,
    work: Path,
    args: list[str],
    env: dict[str, str],
    log: int,
    hide: Iterable[Path] = (),
) -> Child:
    """Start `python -I work/script ROOT WORK *args` in `isolation`; its output goes to the file
    descriptor `log` (a file the child cannot reach by name). ROOT and WORK are the paths the
    child sees (/student and /work under bwrap)."""
    common = dict(stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if isolation.kind == "bwrap":
        inside = [_python(), "-I", f"{WORK}/{script}", STUDENT, WORK, *args]
        command = [*bwrap_argv(root, work, env, hide), *inside]
        outside = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # bwrap's own; the child's is `env`
        return Child(subprocess.Popen(command, env=outside, **common), isolation)
    if isolation.kind == "uid":
        with _UIDS:
            slot = _free_slots.pop(0)
        uid = _uid_block() + slot  # this grader's own block: no other run's processes hold it
        try:
            own = work / "student"  # the child's own copy: no other uid can enter `work`
            shutil.copytree(root, own, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            for folder, dirs, files in os.walk(work):
                for name in [*dirs, *files]:
                    os.lchown(os.path.join(folder, name), uid, uid)
            os.chown(work, uid, uid)
            os.chmod(work, 0o700)
            command = [_python(), "-I", str(work / script), str(own), str(work), *args, str(MAX_PROCESSES)]
            if shutil.which("setpriv"):
                process = subprocess.Popen([*_as_uid(uid), *command], cwd=work, env=env, **common)
            else:
                process = subprocess.Popen(
                    command, cwd=work, env=env, user=uid, group=uid, extra_groups=[], **common
                )
        except BaseException:
            with _UIDS:
                _free_slots.append(slot)
            raise
        return Child(process, isolation, uid)
    command = [_python(), "-I", str(work / script), str(root), str(work), *args]
    return Child(subprocess.Popen(command, cwd=work, env=env, **common), isolation)
