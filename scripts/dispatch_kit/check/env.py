"""The environment of the commands dispatch-kit starts: exit criteria and workers.

A verdict must not depend on the shell the checker happens to run from. The
same plan is checked in a terminal, by CI, by a cron job (``env -i``-like:
no ``LANG``, no ``HOME``) and inside an agent's session; each of those once
gave the same criterion a different verdict. So both criteria and workers
start from the caller's environment with these gaps filled:

- no locale chosen at all (``LC_ALL``, ``LC_CTYPE`` and ``LANG`` unset or
  empty, as under cron): ``LC_CTYPE=C.UTF-8``, so ``wc -m``, ``grep``, ``tr``
  and Python read text as UTF-8 the way a terminal does. A locale the user
  set, even ``C``, is kept: that is a choice, not a gap;
- no ``HOME``: the home folder of the user in the password database, as a
  login would set it (git, pip, npm and ``claude`` all read it).

Criteria additionally run with the **bytecode guard**: ``PYTHONDONTWRITEBYTECODE=1``
and ``PYTHONPYCACHEPREFIX`` set to a fresh, private, empty folder that is
removed when the criterion ends. Python accepts a cached ``.pyc`` when the
source's mtime (in whole seconds) and size match the cache, so a worker that
rewrites a file within the same second at the same size makes ``python -m
unittest`` run the *old* code: a correct task fails. ``python -B`` or
``PYTHONDONTWRITEBYTECODE`` alone only stop writing; a stale ``__pycache__``
is still read. With the prefix Python ignores every ``__pycache__`` in the
tree (and writes nothing there), so each criterion compiles what it imports
from the sources as they are now. The price is compile time: a bare
``python3 -c 'import unittest'`` takes about 0.25 s instead of 0.06 s,
``import pytest`` about 1.5 s instead of 0.35 s, per Python process a
criterion starts.

Plans can change any of it with ``env`` mappings (``defaults.env``, a task's
``env``, a ``run`` criterion's ``env``), applied last: a string sets a
variable, ``null`` removes it. ``PYTHONDONTWRITEBYTECODE: null`` lets the
Python processes of one criterion share their bytecode (still in the fresh
folder, so never stale across attempts); ``PYTHONPYCACHEPREFIX: null`` goes
back to the tree's own ``__pycache__`` and its stale-cache risk.

Workers get the filled gaps and their task's ``env`` (so a worker running the
criteria itself sees what the checker sees), but not the bytecode guard: the
verdict never reads what a worker caches, a worker is often a Python program
itself and runs test suites many times per attempt, and compiling everything
on every start would cost it seconds each time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

UTF8_LOCALE = "C.UTF-8"
LOCALE_VARIABLES = ("LC_ALL", "LC_CTYPE", "LANG")
PYCACHE_FOLDER_PREFIX = "dispatch-kit-pycache-"

EnvOverrides = tuple[tuple[str, str | None], ...]


def filled(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) with no locale and no HOME filled in."""
    env = dict(os.environ if environ is None else environ)
    if not any(env.get(name) for name in LOCALE_VARIABLES):
        env["LC_CTYPE"] = UTF8_LOCALE
    if not env.get("HOME"):
        home = _password_home()
        if home:
            env["HOME"] = home
    return env


def _password_home() -> str | None:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir or None
    except (ImportError, KeyError, OSError):
        return None


def apply(env: dict[str, str], overrides: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Apply a plan's ``env`` entries in order: a string sets a variable, None removes it."""
    for name, value in overrides:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class NoPrivateFolder(OSError):
    """The temp folder refused the bytecode guard's folder (full, read-only, missing)."""


@contextmanager
def criterion_env(*layers: Iterable[tuple[str, str | None]]) -> Iterator[dict[str, str]]:
    """The environment of one criterion run: filled gaps, the bytecode guard, then ``layers``.

    The guard's folder is made private (mode 0700, a fresh name) because
    Python would execute whatever bytecode it finds there, and removed on
    exit, with whatever a criterion that re-enabled writing left in it.
    """
    try:
        folder = tempfile.mkdtemp(prefix=PYCACHE_FOLDER_PREFIX)
    except OSError as exc:
        raise NoPrivateFolder(f"cannot create a private bytecode folder in "
                              f"{tempfile.gettempdir()}: {exc.strerror or exc}") from exc
    try:
        env = filled()
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = folder
        for layer in layers:
            apply(env, layer)
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)
