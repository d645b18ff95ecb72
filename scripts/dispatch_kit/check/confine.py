"""Where a task may act: inside its plan's workspace, judged at the moment of use.

``plan validate`` rejects a ``cwd`` that leaves the workspace, but a plan is
checked once and a mission runs for hours: a worker of one task can replace
the folder of the next with a symlink to anywhere (issue 13 saw task ``b``'s
worker and criteria write outside the workspace after ``a``'s worker swapped
``../b``). So every start of a worker, every criterion and every structured
check's file resolves its path again right before it is used and refuses it
when it leaves the workspace. What remains is the moment between that check
and the kernel's ``chdir``/``open``: a process racing that window on purpose
can still win it; nothing done in sequence can.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

# Longest mission id: it names a folder of prompts and logs beside the ledger.
MAX_NAME = 128


class Escape(Exception):
    """A path that resolves outside the workspace (or cannot be resolved at all)."""


def realpath(path: str | os.PathLike[str]) -> str:
    """``Path(path).resolve()`` as a string, for the paths resolved on every task.

    The same answer and the same errors as ``Path.resolve`` on Python 3.11 (a symlink
    loop is a RuntimeError, a NUL byte a ValueError), without building the Path objects
    that cost a runner more than the system calls do.
    """
    return realpath_stat(path)[0]


def realpath_stat(path: str | os.PathLike[str]) -> tuple[str, os.stat_result | OSError]:
    """:func:`realpath`, with what ``stat`` said of the resolved path (a result or an error).

    ``Path.resolve`` stats the resolved path anyway (to tell a symlink loop); a caller that
    next asks whether the path is a folder or a regular file uses this answer instead of
    asking the kernel again, the same moment's answer either way.
    """
    real = os.path.realpath(path)
    try:
        return real, os.stat(real)
    except OSError as exc:  # what Path.resolve checks: only a loop is an error
        if exc.errno == errno.ELOOP:
            raise RuntimeError(f"Symlink loop from {exc.filename!r}") from None
        return real, exc


def resolve(path: Path) -> Path:
    """``path`` with every symlink followed, as far as it exists; Escape when unresolvable."""
    return Path(realpath_or_escape(path))


def realpath_or_escape(path: Path | str) -> str:
    """:func:`realpath`, or Escape when ``path`` cannot be resolved (a loop, a NUL byte)."""
    return _real_stat(path)[0]


def _real_stat(path: Path | str) -> tuple[str, os.stat_result | OSError]:
    try:
        return realpath_stat(path)
    except (OSError, RuntimeError, ValueError) as exc:  # a loop, a NUL byte, a name too long
        raise Escape(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None


def within(root: str, real: str) -> bool:
    """Whether the resolved path ``real`` is the resolved folder ``root`` or inside it."""
    return real == root or real.startswith(root if root.endswith(os.sep) else root + os.sep)


def inside(workspace: Path, path: Path, *, what: str = "path") -> Path:
    """``path`` resolved now, if it is the workspace or inside it; else Escape saying where."""
    return Path(confined(realpath_or_escape(workspace), path, what=what)[0])


def confined(root: str, path: Path | str, *,
             what: str = "path") -> tuple[str, os.stat_result | OSError]:
    """``path`` resolved now, with its ``stat`` (:func:`realpath_stat`), if it is inside the
    folder ``root`` (already resolved, by the caller, in this same step); else Escape.

    For a step that confines several paths to one workspace: the workspace is resolved
    once for the step, each path when it is used.
    """
    real, info = _real_stat(path)
    if not within(root, real):
        raise Escape(f"{what} {path} resolves to {real}, outside the workspace {root}")
    return real, info


def task_folder(workspace: Path, cwd: str) -> Path:
    """A task's working folder, resolved and confined right now (see the module doc)."""
    return Path(task_folder_stat(workspace, cwd, realpath_or_escape(workspace))[0])


def task_folder_stat(workspace: Path | str, cwd: str,
                     root: str) -> tuple[str, os.stat_result | OSError]:
    """:func:`task_folder`, the workspace already resolved to ``root`` in this step, with
    the folder's ``stat`` (whether it exists yet and is a folder, without another look)."""
    return confined(root, os.path.join(workspace, cwd), what="working directory")


def safe_name(value: str, option: str) -> str:
    """``value`` if it can name one folder (a mission id): no separator, no ``..``, no NUL."""
    from dispatch_kit.errors import InputError

    bad = (
        not value
        or value in (".", "..")
        or "/" in value
        or (os.sep != "/" and os.sep in value)
        or "\0" in value
        or not value.isprintable()
        or len(value) > MAX_NAME
    )
    if bad:
        raise InputError(
            f"{value!r} cannot name a folder: use at most {MAX_NAME} printable characters "
            "with no '/', not '.' or '..'", path=option)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{value!r} is not valid text", path=option) from None
    return value
