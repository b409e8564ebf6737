"""File output that is never left half-written, and JSON Lines."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename, on error it goes. An
    OSError about the temporary file (a read-only folder, a folder where `path` belongs, a full disk) names
    `path`, the file the user knows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_UMASK)  # mkstemp makes it private; give it a normal file's mode
        os.replace(temporary_path, path)
    except OSError as error:
        if temporary not in (error.filename, error.filename2):
            raise
        raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        if temporary_path.exists():
            temporary_path.unlink()


def special_kind(path: Path) -> str:
    """'' for a regular file; else what it is (reading a FIFO would block, a socket or device is no file)."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return ""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a device or other special file"


class NotAFile(OSError):
    """A path that names a FIFO, socket, device or folder where a regular file is read."""

    def __init__(self, path: Path, kind: str):
        self.kind = kind
        super().__init__(errno.EINVAL, f"{kind}, expected a regular file", str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def read_regular_bytes(path: Path) -> bytes:
    """The bytes of a regular file; NotAFile for anything else (a FIFO would block the reader for ever)."""
    kind = special_kind(path)
    if kind:
        raise NotAFile(path, kind)
    return path.read_bytes()


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a regular file, read in chunks (a batch's report runs to tens of megabytes);
    NotAFile for a FIFO or folder, which would block or fail the read."""
    kind = special_kind(path)
    if kind:
        raise NotAFile(path, kind)
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def atomic_replace_dir(build: Path, target: Path) -> None:
    """Swap a fully written folder into place; an interrupted swap leaves the old folder or the new one."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    build.rename(target)
    if old.exists():
        shutil.rmtree(old)


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, jsonl_text(rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = read_regular_bytes(path).decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]
