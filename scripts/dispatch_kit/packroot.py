"""Find the pack's own files (templates, agents, the example, manifests) wherever the package runs.

One rule, relative to this file: a built package (wheel, sdist) carries the
pack's files as package data in ``dispatch_kit/pack/`` (setup.py copies them
there); a checkout, a plugin folder and an editable install run from
``scripts/dispatch_kit`` and the pack is the folder above ``scripts/``. Nothing
depends on the install scheme (venv, ``--user``, system), so nothing searches
prefixes. ``DISPATCH_KIT_ROOT`` overrides both, for tests and unusual layouts.

The lint hook asks for the pack's agents on every dispatch, so this module
imports only ``os`` and ``functools``: no pathlib, no typing, no
importlib.resources (each costs milliseconds of the hook's start-up).
"""

from __future__ import annotations

import os
from functools import cache

from dispatch_kit.errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

# The package-data folder; setup.py's build step names the same folder.
PACK = "pack"
MARKER = "templates"  # every pack root has it; render needs it


def package_dir() -> str:
    """The ``dispatch_kit`` package's folder, symlinks resolved."""
    return os.path.dirname(os.path.realpath(__file__))


def bundled_dir() -> str:
    """Where a built package keeps the pack's files (absent in a checkout)."""
    return os.path.join(package_dir(), PACK)


@cache
def pack_root_dir() -> str:
    """The folder holding ``templates/``, ``agents/``, ``examples/`` and ``plugin.json``.

    A string, not a Path: the linter asks for the pack's agents on a one-prompt
    run, and pathlib (with the urllib.parse it imports) costs that start-up ~5 ms.
    """
    override = os.environ.get("DISPATCH_KIT_ROOT")
    if override:
        if os.path.isdir(os.path.join(override, MARKER)):
            return override
        raise InputError(
            f"DISPATCH_KIT_ROOT names no pack (no {MARKER}/ folder); "
            "point it at the plugin folder or unset it",
            path=override,
        )
    checkout = os.path.dirname(os.path.dirname(package_dir()))
    for candidate in (bundled_dir(), checkout):
        if os.path.isdir(os.path.join(candidate, MARKER)):
            return candidate
    raise InputError(
        f"the pack's files are missing: no {PACK}/ package data and no checkout around the "
        "package; reinstall dispatch-kit or set DISPATCH_KIT_ROOT to the plugin folder",
        path=bundled_dir(),
    )


def is_bundled() -> bool:
    """Whether the pack is the package data of an installed build, not a checkout or plugin."""
    return pack_root_dir() == bundled_dir()


def pack_root() -> Path:
    """:func:`pack_root_dir` as a Path."""
    from pathlib import Path

    return Path(pack_root_dir())


def templates_path() -> str:
    """The pack's templates folder as a string: the runner renders a prompt per task, and
    building a Path to find it cost more than looking the template up."""
    return os.path.join(pack_root_dir(), "templates")


def templates_dir() -> Path:
    """:func:`templates_path` as a Path."""
    from pathlib import Path

    return Path(templates_path())
