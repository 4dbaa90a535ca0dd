"""The sandbox a grading child runs in, and the untrusted reading of what it hands back (issue 22).

Every defence is shown rejecting its attack: a link, a FIFO, a zip bomb, a lying header, a deep
tree, a lone surrogate, a hostile folder name, a link at an output's name; a grandchild that
escapes its session, a child looking for the teacher's files. The sandbox tests run under bwrap
and under the fallback (a dedicated uid, as root) where each is available here.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mytorch.course import sandbox, untrusted
from mytorch.course.untrusted import Untrusted

REFERENCE = Path(sandbox.__file__).resolve().parents[1]  # the grader's own mytorch package


# ---- reading files --------------------------------------------------------------------------------------


def test_read_file_refuses_links_fifos_devices_and_big_files(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("the key")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(bytes(101))
    assert untrusted.read_file(tmp_path / "secret") == b"the key"
    with pytest.raises(Untrusted, match="cannot be opened"):
        untrusted.read_file(tmp_path / "link")
    finished = []
    reader = threading.Thread(target=lambda: finished.append(_refused(tmp_path / "fifo")), daemon=True)
    reader.start()
    reader.join(5)
    assert finished == [True], "reading a FIFO blocked"
    with pytest.raises(Untrusted, match="not a regular file"):
        untrusted.read_file("/dev/zero")
    with pytest.raises(Untrusted, match="more than 100"):
        untrusted.read_file(tmp_path / "big", limit=100)


def _refused(path: Path) -> bool:
    try:
        untrusted.read_file(path)
    except Untrusted:
        return True
    return False


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def test_load_npz_counts_inflated_bytes_not_compressed_ones() -> None:
    bomb = _npz(x=np.zeros(2_000_000))  # 16 MB of zeros, a few KB compressed
    assert len(bomb) < 100_000
    assert untrusted.load_npz(bomb)["x"].shape == (2_000_000,)
    with pytest.raises(Untrusted, match="inflate"):
        untrusted.load_npz(bomb, limit=1_000_000)


def test_load_npz_refuses_a_member_whose_declared_size_lies() -> None:
    """The zip's directory says 100 bytes; the member inflates to 16 MB: cut off while inflating."""
    payload = io.BytesIO()
    np.save(payload, np.zeros(2_000_000))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", payload.getvalue())
    data = bytearray(buffer.getvalue())
    central = data.rfind(b"PK\x01\x02")  # the central directory's uncompressed size: 100
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    local = data.find(b"PK\x03\x04")
    data[local + 22 : local + 26] = (100).to_bytes(4, "little")
    with pytest.raises(Untrusted):
        untrusted.load_npz(bytes(data), limit=1_000_000)


def test_load_npz_refuses_pickles_and_headers_that_promise_more_than_they_hold() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(Untrusted, match="objects"):
        untrusted.load_npz(buffer.getvalue())
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("x.npy", header.getvalue() + bytes(8))
    with pytest.raises(Untrusted, match="promises"):
        untrusted.load_npz(archive.getvalue())
    with pytest.raises(Untrusted, match="not an .npz"):
        untrusted.load_npz(b"not a zip")


def test_load_json_refuses_deep_trees_without_recursing() -> None:
    assert untrusted.load_json(b'{"reports": [[1], {"a": "[[[["}]}') == {"reports": [[1], {"a": "[[[["}]}
    deep = ("[" * 3000 + "]" * 3000).encode()
    with pytest.raises(Untrusted, match="deeper"):
        untrusted.load_json(deep)
    with pytest.raises(Untrusted, match="UTF-8"):
        untrusted.load_json(b'"\xff"')
    assert untrusted.json_depth('"\\"[[[["') == 0  # brackets inside a string with an escaped quote


# ---- text and names -------------------------------------------------------------------------------------


def test_clean_text_makes_any_child_text_writable() -> None:
    nasty = "bad \ud800 news \x1b[2J\x00 é ok\n\tnext"
    with pytest.raises(UnicodeEncodeError):
        nasty.encode("utf-8")
    cleaned = untrusted.clean_text(nasty)
    cleaned.encode("utf-8")
    assert "\\ud800" in cleaned and "\\x1b" in cleaned and "\x1b" not in cleaned
    assert "é ok\n\tnext" in cleaned
    assert len(untrusted.clean_text("x" * 10_000, limit=100)) == 100
    assert untrusted.csv_cell("=1+1") == "'=1+1" and untrusted.csv_cell("alice") == "alice"


def test_safe_names_are_unique_short_and_safe() -> None:
    paths = [
        Path("a") / ("x" * 252),
        Path("a") / "alice",
        Path("b") / "alice",
        Path("a") / "alice-2",
        Path("a") / "ALICE",
        Path(os.fsdecode(b"a/\xff\xfe-bob")),
        Path("a") / "..",
        Path("a") / "=cmd|' /C calc'!A0",
    ]
    names = untrusted.safe_names(paths)
    assert len({n.lower() for n in names}) == len(paths), names
    for name in names:
        assert 0 < len(name) <= untrusted.MAX_NAME and name.isascii(), name
        assert all(c.isalnum() or c in "._-" for c in name) and name[0] not in ".-", name
        assert len((name + ".json").encode()) < 255
    assert names[1] == "alice" and names[3] == "alice-2"


def test_write_atomic_replaces_links_and_never_writes_through_them(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    (tmp_path / "out.json").symlink_to(notes)  # at the output's own name
    (tmp_path / "out.json.tmp").symlink_to(notes)  # at the old fixed temporary name
    untrusted.write_atomic(tmp_path / "out.json", "{}")
    assert notes.read_text() == "keep me"
    assert not (tmp_path / "out.json").is_symlink() and (tmp_path / "out.json").read_text() == "{}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_copy_file_refuses_links_anywhere_on_the_path(tmp_path: Path) -> None:
    student, secret = tmp_path / "student", tmp_path / "reference"
    (secret / "mytorch").mkdir(parents=True)
    (secret / "mytorch" / "rules.py").write_text("the answers")
    (student / "pkg").mkdir(parents=True)
    (student / "pkg" / "rules.py").symlink_to(secret / "mytorch" / "rules.py")
    (student / "mytorch").symlink_to(secret / "mytorch")
    (student / "own.py").write_text("mine")
    untrusted.copy_file(student, "own.py", tmp_path / "out" / "own.py")
    assert (tmp_path / "out" / "own.py").read_text() == "mine"
    for name in ("pkg/rules.py", "mytorch/rules.py", "../reference/mytorch/rules.py"):
        with pytest.raises(Untrusted):
            untrusted.copy_file(student, name, tmp_path / "out" / "x.py")
    assert not (tmp_path / "out" / "x.py").exists()


def test_walk_is_iterative_and_bounded(tmp_path: Path) -> None:
    deep = tmp_path
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for _ in range(3000):  # 3000 levels: relative to the previous one (paths grow past PATH_MAX)
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    found = untrusted.walk(deep, max_entries=500)
    assert len(found) == 500
    assert untrusted.is_plain_dir(tmp_path / "d") and not untrusted.is_plain_dir(tmp_path / "nothing")
    _remove_deep(tmp_path)  # pytest's own clean-up recurses, and would stop at this depth


def _remove_deep(top: Path) -> None:
    fds = [os.open(top, os.O_RDONLY)]
    try:
        while True:
            try:
                fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
        for parent in reversed(fds[:-1]):
            os.rmdir("d", dir_fd=parent)
    finally:
        for fd in fds:
            os.close(fd)


# ---- the sandbox ----------------------------------------------------------------------------------------


def _available(kind: str) -> bool:
    return sandbox.choose(kind).kind == kind


KINDS = [
    pytest.param(k, marks=pytest.mark.skipif(not _available(k), reason=f"no {k} isolation here"))
    for k in ("bwrap", "uid")
]


def _run(kind: str, code: str, tmp_path: Path, wait: float = 30) -> tuple[str, Path, sandbox.Child]:
    """Run `code` as a child script in `kind`; (its output, its scratch folder, the child)."""
    root, work = tmp_path / "root", sandbox.scratch(sandbox.choose(kind))
    root.mkdir(exist_ok=True)
    (work / "script.py").write_text(code)
    with tempfile.TemporaryFile() as log:
        child = sandbox.start(
            sandbox.choose(kind), "script.py", root, work, [], {"PATH": "/usr/bin:/bin"}, log.fileno()
        )
        assert child.wait(wait)
        child.end()
        log.seek(0)
        return log.read().decode(), work, child


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_a_child_starts_outlives_it(kind: str, tmp_path: Path) -> None:
    """A grandchild in its own session keeps writing a heartbeat: after `end`, it has stopped."""
    code = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            with open(os.path.join(sys.argv[2], "beat"), "a") as beat:
                beat.write(".")
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
"""
    _, work, _ = _run(kind, code, tmp_path)
    beat = work / "beat"
    assert beat.exists()
    time.sleep(0.3)
    size = beat.stat().st_size
    time.sleep(1.0)
    assert beat.stat().st_size == size, "a grandchild outlived its item"
    shutil.rmtree(work)


@pytest.mark.parametrize("kind", KINDS)
def test_a_child_sees_nothing_of_the_teachers_and_writes_only_its_scratch(kind: str, tmp_path: Path) -> None:
    code = f"""
import os, sys
GRADER = {os.getpid()}
found = []
for path in ({str(REFERENCE / "__init__.py")!r}, {str(Path.cwd())!r}):
    try:
        open(path, "rb").read(1) if not os.path.isdir(path) else os.listdir(path)
        found.append("read " + path)
    except OSError:
        pass
try:  # under bwrap the parent is the sandbox's init, whose environment is bwrap's PATH only
    environ = open(f"/proc/{{os.getppid()}}/environ", "rb").read().split(bytes(1))
    found += [e.decode() for e in environ if e and not e.startswith(b"PATH=")]
except OSError:
    pass
for path in ({str(tmp_path / "planted")!r}, "/usr/planted", {str(Path(sys.prefix) / "planted")!r}):
    try:
        open(path, "w").write("x")
        found.append("wrote " + path)
    except OSError:
        pass
for pid in {{os.getppid(), GRADER}} - {{1}}:  # pid 1: the sandbox's own init, not the grader
    try:
        os.kill(pid, 0)
        found.append(f"may signal {{pid}}")
    except OSError:
        pass
open(os.path.join(sys.argv[2], "mine"), "w").write("ok")
print("FOUND", found)
"""
    if kind == "uid":  # only what other users may not read is hidden (the rest is `exposed`)
        code = code.replace(repr(str(REFERENCE / "__init__.py")), repr(str(tmp_path / "root")))
        code = code.replace(repr(str(Path.cwd())), repr(str(tmp_path)))
    output, work, _ = _run(kind, code, tmp_path)
    assert "FOUND []" in output, output
    assert (work / "mine").read_text() == "ok"
    assert not (tmp_path / "planted").exists()
    shutil.rmtree(work)


@pytest.mark.skipif(not _available("bwrap"), reason="no bwrap here")
def test_the_bwrap_sandbox_hides_the_reference_even_where_it_is_installed(tmp_path: Path) -> None:
    hidden = (Path(sys.prefix) / "lib").resolve()  # inside a folder the sandbox binds
    argv = sandbox.bwrap_argv(tmp_path, tmp_path, {"A": "1"}, hide=[hidden])
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    pairs = list(zip(argv, argv[1:]))
    assert ("--tmpfs", str(hidden)) in pairs
    assert [b for a, b in pairs if a == "--bind"] == [str(tmp_path)]  # the scratch folder, only
    assert str(REFERENCE.parent) not in argv[argv.index("--clearenv") :]


def test_choose_honours_the_force_and_says_what_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.choose("none").kind == "none" and not sandbox.choose("none").holds
    monkeypatch.setenv(sandbox.FORCE, "none")
    assert sandbox.choose().kind == "none"
    monkeypatch.setenv(sandbox.FORCE, "chroot")
    with pytest.raises(ValueError, match="chroot"):
        sandbox.choose()
    exposed = sandbox.Isolation("uid", "a uid", ("/ref",))
    assert not exposed.holds and "/ref" in exposed.describe()
    assert sandbox.Isolation("bwrap", "bubblewrap").holds


def test_exposed_lists_what_any_user_can_read(tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:  # pytest's own folders are private
        top = Path(scratch)
        os.chmod(top, 0o755)
        private, public, inside = top / "private", top / "public", top / "private" / "public"
        private.mkdir(mode=0o700)
        public.mkdir(mode=0o755)
        inside.mkdir(mode=0o755)
        assert sandbox.exposed([private, public, inside]) == [public.resolve()]


# ---- the grader's command line ----------------------------------------------------------------------


def test_a_class_is_refused_without_a_sandbox_unless_unsafe(tmp_path: Path) -> None:
    from mytorch.handout import make_handout

    hw = tmp_path / "hw"
    make_handout(hw, ops=["exp"], layers=[])
    (tmp_path / "class" / "alice").mkdir(parents=True)  # hands in nothing: no child runs
    env = {**os.environ, "PYTHONPATH": str(REFERENCE.parent), sandbox.FORCE: "none"}
    command = [sys.executable, "-m", "mytorch", "grade", "--config", str(hw / "grading.json")]
    command += ["--submissions", str(tmp_path / "class"), "--out", str(tmp_path / "grades")]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--unsafe" in refused.stderr, refused.stderr
    assert not (tmp_path / "grades" / "grades.csv").exists()
    done = subprocess.run([*command, "--unsafe"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (tmp_path / "grades" / "grades.csv").exists(), done.stderr
    assert "isolation none" in done.stdout


@pytest.mark.skipif(not _available("bwrap"), reason="no bwrap here")
def test_the_report_says_which_isolation_ran(tmp_path: Path) -> None:
    from mytorch.handout import make_handout

    hw = tmp_path / "hw"
    make_handout(hw, ops=["exp"], layers=[])
    env = {**os.environ, "PYTHONPATH": str(REFERENCE.parent)}
    command = [sys.executable, "-m", "mytorch", "grade", "--config", str(hw / "grading.json")]
    command += ["--submission", str(hw), "--examples", "2", "--items", "exp.vjp"]
    command += ["--json", str(tmp_path / "r.json")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["isolation"].startswith("bwrap"), report
    assert "isolation bwrap" in done.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_the_readmes_container_recipe(kind: str, tmp_path: Path) -> None:
    """The README's "Grade in a container" lines, run as written (but apt-get and pip: the reference
    is a copy on PYTHONPATH): the sandbox holds and the results say which ran."""
    import re

    from mytorch.handout import make_handout

    readme = (REFERENCE.parent / "README.md").read_text(encoding="utf-8")
    recipe = readme[readme.index("**Grade in a container.**") :]
    block = re.search(r"```bash\n(.*?)```", recipe, re.DOTALL).group(1)
    lines = [line for line in block.splitlines() if line.startswith(("chmod", "python -m mytorch grade"))]
    assert len(lines) == 2, block
    teacher = tmp_path / "teacher"
    shutil.copytree(REFERENCE, teacher / "mytorch", ignore=shutil.ignore_patterns("__pycache__"))
    hw = tmp_path / "hw"
    make_handout(hw, ops=["exp"], layers=[])
    results = tmp_path / "results.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(teacher),
        sandbox.FORCE: kind,
        "HW": str(hw),
        "SUBMISSION": str(hw),
        "RESULTS": str(results),
    }
    script = "set -e\n" + "\n".join(lines) + " --items exp.vjp --examples 2\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    report = json.loads(results.read_text(encoding="utf-8"))
    assert report["isolation"].startswith(kind) and "readable by any user" not in report["isolation"], report
    assert report["score"] == 0 and done.returncode == 0, done.stdout + done.stderr  # a blank handout
