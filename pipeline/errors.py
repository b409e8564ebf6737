"""Errors that end a command with one line saying what to do (exit code 3), and the exit codes."""

from __future__ import annotations

import errno

# 0: done; 2: a bad option or argument (click's own code)
EXIT_REJECTED = 1  # done, but some input was rejected (listed in rejected.jsonl and on stderr)
EXIT_USAGE = 2  # an unknown option or value, checked before any work
EXIT_FAULT = 3  # a missing prerequisite or a fault at run time: nothing half-written


# what to do about an OS error writing or reading a file, by its errno
_ADVICE = {
    errno.EISDIR: "a folder is where that file belongs: move the folder aside and run again",
    errno.EACCES: "no permission: give this user access to the file and its folder, or choose another place",
    errno.EPERM: "no permission: give this user access to the file and its folder, or choose another place",
    errno.EROFS: "a read-only file system: choose another place",
}


class EvidensError(Exception):
    """A missing prerequisite or a broken store; the message is one line that says what to do."""


def one_line(error: BaseException) -> str:
    """A user-facing line for any error: ours as they are, a full disk and other OS errors in words."""
    if isinstance(error, EvidensError):
        return str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" writing {error.filename}" if error.filename else ""
        return f"no space left on device{where}: free some space and run again (no output was half-written)"
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        advice = _ADVICE.get(error.errno or 0, "")
        return f"{error.strerror}{where}" + (f" ({advice})" if advice else "")
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
