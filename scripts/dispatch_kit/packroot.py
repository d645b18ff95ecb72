"""Find the pack's own files (templates, manifests) wherever the package runs from.

Three layouts exist: a source checkout or plugin install (``scripts/`` beside
``templates/``), an editable install (same), and a wheel, which carries the
templates as data files under ``<prefix>/share/dispatch-kit``.
``DISPATCH_KIT_ROOT`` overrides all of them for tests and unusual installs.
"""

from __future__ import annotations

import os
import sys
from functools import cache

from dispatch_kit.errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


@cache
def pack_root_dir() -> str:
    """The folder holding ``templates/`` (and, in a checkout, the whole plugin), as a string.

    The linter asks for the pack's agents on a one-prompt run; a string keeps
    pathlib (and the urllib.parse it imports) out of that start-up.
    """
    override = os.environ.get("DISPATCH_KIT_ROOT")
    candidates = [override] if override else []
    candidates += [
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))),
        os.path.join(sys.prefix, "share", "dispatch-kit"),
    ]
    for candidate in candidates:
        if os.path.isdir(os.path.join(candidate, "templates")):
            return candidate
    raise InputError(
        "cannot find the pack's templates/ folder; set DISPATCH_KIT_ROOT to the plugin folder",
        path=candidates[0],
    )


def pack_root() -> Path:
    """:func:`pack_root_dir` as a Path."""
    from pathlib import Path

    return Path(pack_root_dir())


def templates_dir() -> Path:
    return pack_root() / "templates"
