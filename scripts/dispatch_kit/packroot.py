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
from pathlib import Path

from dispatch_kit.errors import InputError


@cache
def pack_root() -> Path:
    """The folder holding ``templates/`` (and, in a checkout, the whole plugin)."""
    override = os.environ.get("DISPATCH_KIT_ROOT")
    candidates = [Path(override)] if override else []
    candidates += [
        Path(__file__).resolve().parents[2],
        Path(sys.prefix) / "share" / "dispatch-kit",
    ]
    for candidate in candidates:
        if (candidate / "templates").is_dir():
            return candidate
    raise InputError(
        "cannot find the pack's templates/ folder; set DISPATCH_KIT_ROOT to the plugin folder",
        path=str(candidates[0]),
    )


def templates_dir() -> Path:
    return pack_root() / "templates"
