"""Reading what a child (or a student's folder) hands back: untrusted bytes, read as such.

The student's code ran with write access to its scratch directory, so every name there may be a
link, a FIFO, a device, a file a thousand times larger than it should be, or a zip whose members
inflate to gigabytes; every string it wrote may hold lone surrogates or terminal escapes; every
JSON tree may be nested thousands deep. Nothing here follows a link, blocks on a pipe, trusts a
declared size, or recurses over a structure the child made. Output is written through a fresh
exclusive temporary file and renamed, so a link planted at the output's name is replaced, never
written through.

    >>> clean_text("ok\\ud800\\x1b[2J")
    'ok\\\\ud800\\\\x1b[2J'
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import stat
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

MAX_ANSWER_BYTES = 64 * 2**20  # a child's answers are small arrays: compressed or not
MAX_MEMBERS = 20_000  # arrays in one .npz
MAX_DEPTH = 32  # nesting of a child's JSON (the grader's own format is 5 deep)
MAX_NAME = 48  # characters of a student's report name
MAX_WALK = 10_000  # entries of a student's folder that one walk looks at


class Untrusted(ValueError):
    """What the child (or a submission) handed back is refused: a link, a pipe, too big, too deep."""


# ---- reading files -------------------------------------------------------------------------------


def read_file(path: Path | str, limit: int = MAX_ANSWER_BYTES, dir_fd: int | None = None) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them: one `open` that follows no
    link and does not wait on a pipe, checked by `fstat` on what was opened.

        >>> read_file("/dev/null")
        Traceback (most recent call last):
        ...
        mytorch.course.untrusted.Untrusted: /dev/null is not a regular file
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as error:  # ELOOP: the name is a link
        raise Untrusted(f"{path} cannot be opened as a file ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Untrusted(f"{path} is not a regular file")
        if info.st_size > limit:
            raise Untrusted(f"{path} holds {info.st_size} bytes, more than {limit}")
        chunks, size = [], 0
        while size <= limit:  # the file may grow after fstat: read at most limit + 1 bytes
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Untrusted(f"{path} holds more than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_npz(data: bytes, limit: int = MAX_ANSWER_BYTES) -> dict[str, np.ndarray]:
    """The arrays of an .npz given as bytes, refusing pickles, more than `limit` inflated bytes in
    all (counted while inflating, not as declared), and headers that promise more than they hold.

        >>> buffer = io.BytesIO(); np.savez(buffer, x=np.arange(3.0))
        >>> load_npz(buffer.getvalue())["x"]
        array([0., 1., 2.])
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise Untrusted(f"the answers are not an .npz: {error}") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise Untrusted(f"the answers hold {len(members)} arrays, more than {MAX_MEMBERS}")
        out: dict[str, np.ndarray] = {}
        budget = limit
        for member in members:
            if member.file_size > budget:
                raise Untrusted(f"{member.filename!r} inflates past {limit} bytes")
            try:
                with archive.open(member) as stream:
                    raw = stream.read(budget + 1)  # inflates at most this much
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as error:
                raise Untrusted(f"{member.filename!r} cannot be read: {error}") from None
            if len(raw) > budget:
                raise Untrusted(f"the answers inflate past {limit} bytes")
            budget -= len(raw)
            key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            out[key] = _npy(raw, member.filename)
        return out


def _npy(raw: bytes, name: str) -> np.ndarray:
    """One .npy's array from its bytes, without pickles, its size checked against its header."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, TypeError, SyntaxError) as error:
        raise Untrusted(f"{name!r} is not an array: {error}") from None
    if dtype.hasobject:
        raise Untrusted(f"{name!r} holds Python objects")
    count = 1
    for n in shape:
        count *= int(n)
    body = raw[stream.tell() :]
    if count * dtype.itemsize != len(body):
        raise Untrusted(f"{name!r} promises {count * dtype.itemsize} bytes and holds {len(body)}")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def json_depth(text: str) -> int:
    """How deep `text`'s brackets nest, in one pass with no recursion (strings skipped).

    >>> json_depth('[1, {"a": "[[["}]')
    2
    """
    depth = deepest = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        found = token.group()
        if found in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif found in "]}":
            depth -= 1
    return deepest


def load_json(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """A child's JSON, refused when it is not UTF-8 or nests deeper than `max_depth`.

    >>> load_json(b'{"reports": [null]}')
    {'reports': [None]}
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Untrusted("the reports are not UTF-8") from None
    if json_depth(text) > max_depth:
        raise Untrusted(f"the reports nest deeper than {max_depth}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise Untrusted(f"the reports are not JSON: {error}") from None


# ---- text from a child, on its way to JSON, CSV and the terminal ------------------------------------


_UNPRINTABLE = ("Cc", "Cf", "Co", "Cn", "Zl", "Zp")  # controls, format, private, unassigned, separators


def clean_text(value: Any, limit: int = 4000) -> str:
    """`value` as text that any UTF-8 writer, CSV reader or terminal takes as it is: lone surrogates
    and control characters (but newlines and tabs) become backslash escapes; at most `limit` characters.

        >>> clean_text("a\\tb\\x07")
        'a\\tb\\\\x07'
    """
    text = value if isinstance(value, str) else str(value)
    text = text[:limit]
    out = []
    for char in text:
        if char in "\n\t":
            out.append(char)
        elif 0xD800 <= ord(char) <= 0xDFFF or unicodedata.category(char) in _UNPRINTABLE:
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every line that holds one of `secrets` (lines of the reference's code) replaced.

        >>> redact("a\\n  return (mul(g, ans),)\\nb", {"return (mul(g, ans),)"})
        "a\\n  [a line of the reference's code, not shown]\\nb"
    """
    secrets = [s for s in secrets if s]
    if not secrets:
        return text
    lines = text.split("\n")
    for k, line in enumerate(lines):
        if any(secret in line for secret in secrets):
            lines[k] = line[: len(line) - len(line.lstrip())] + "[a line of the reference's code, not shown]"
    return "\n".join(lines)


def csv_cell(value: Any, limit: int = 4000) -> str:
    """`clean_text`, and a leading quote where a spreadsheet would read the cell as a formula.

    >>> csv_cell("=HYPERLINK(1)")
    "'=HYPERLINK(1)"
    """
    text = clean_text(value, limit)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def safe_names(paths: Iterable[Path | str]) -> list[str]:
    """One short, unique, file-system-safe report name per student folder, whatever it was called
    (252 characters, not UTF-8, '..', two folders of the same name): letters, digits, '.', '_', '-'.

        >>> safe_names(["class/alice", "other/alice", "x/alice-2", "y/-", "z/é"])
        ['alice', 'alice-3', 'alice-2', 'student', 'e']
    """
    wanted = []
    for path in paths:
        raw = os.fsencode(Path(os.path.abspath(path)).name).decode("utf-8", "replace")
        ascii_name = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")[:MAX_NAME].rstrip("._-")
        wanted.append(name or "student")
    taken = {name.lower() for name in wanted}
    seen: set[str] = set()
    names = []
    for name in wanted:
        unique, k = name, 1
        while unique.lower() in seen or (unique != name and unique.lower() in taken):
            k += 1
            unique = f"{name[: MAX_NAME - 1 - len(str(k))]}-{k}"
        seen.add(unique.lower())
        names.append(unique)
    return names


# ---- writing output -----------------------------------------------------------------------------------


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Write `data` to `path` through a fresh exclusive temporary file in the same folder, then rename
    it over `path`: a link (or FIFO) planted at either name is replaced, never written through.

        >>> folder = Path(tempfile.mkdtemp()); write_atomic(folder / "a.json", "{}")
        >>> (folder / "a.json").read_text()
        '{}'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")  # O_EXCL
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


# ---- a student's folder ---------------------------------------------------------------------------------


def is_plain_dir(path: Path) -> bool:
    """A directory that is not a link (a class entry linked to the reference checkout is refused)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def copy_file(root: Path, name: str, target: Path, limit: int = MAX_ANSWER_BYTES) -> None:
    """Copy `root/name` (a relative path) to `target` without following a link at any step: each
    folder on the way is opened with O_NOFOLLOW, the file read by `read_file`.

        >>> copy_file(Path("/"), "etc/../etc/hostname", Path("/tmp/x"))
        Traceback (most recent call last):
        ...
        mytorch.course.untrusted.Untrusted: etc/../etc/hostname is not a plain relative path
    """
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise Untrusted(f"{name} is not a plain relative path")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, flags)
    except OSError as error:
        raise Untrusted(f"{root} cannot be opened as a folder ({error.strerror})") from None
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as error:
                raise Untrusted(f"{name}: {part} is a link or not a folder ({error.strerror})") from None
            os.close(fd)
            fd = inner
        data = read_file(parts[-1], limit, dir_fd=fd)
    finally:
        os.close(fd)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_bytes(data)


def walk(root: Path, max_entries: int = MAX_WALK, skip: Iterable[str] = ()) -> list[Path]:
    """Every file and folder under `root` (not under links, nor folders named in `skip`), breadth
    first, without recursion, at most `max_entries` of them (a 3,000-deep tree is walked like a
    flat one, and cut off).

        >>> walk(Path("/nonexistent"))
        []
    """
    skip = set(skip)
    found: list[Path] = []
    queue = collections.deque([root])
    while queue and len(found) < max_entries:
        folder = queue.popleft()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if len(found) >= max_entries:
                break
            if entry.is_dir(follow_symlinks=False):
                if entry.name in skip:
                    continue
                queue.append(Path(entry.path))
            found.append(Path(entry.path))
    return found
