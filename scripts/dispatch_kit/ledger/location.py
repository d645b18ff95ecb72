"""Where the ledger is: an explicit path or URL, ``$DISPATCH_KIT_LEDGER``, or a search upwards.

Every subcommand but ``init`` runs from somewhere inside a project, like git does, so
finding ``.dispatch/ledger.db`` in a parent folder spares the user a ``--db`` each time.
A ``postgresql://`` URL (in ``--db`` or the variable) is returned as the string it is:
a path would fold its ``//``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.backends import is_url
from dispatch_kit.plan.model import Plan

DEFAULT_DB = Path(".dispatch") / "ledger.db"
ENV_DB = "DISPATCH_KIT_LEDGER"


def as_target(value: str) -> Path | str:
    """A ``--db`` value or ``$DISPATCH_KIT_LEDGER`` as ``Ledger.open`` takes it."""
    return value if is_url(value) else Path(value)


def default_db_for(plan: Plan) -> Path | str:
    env = os.environ.get(ENV_DB)
    if env:
        return as_target(env)
    return Path(plan.workspace) / DEFAULT_DB


def find_db(start: Path | None = None) -> Path | str:
    """``$DISPATCH_KIT_LEDGER``, else ``.dispatch/ledger.db`` in the current folder or a parent."""
    env = os.environ.get(ENV_DB)
    if env:
        return as_target(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_DB
        if candidate.is_file():
            return candidate
    raise InputError(
        "no ledger found in this folder or its parents; pass --plan PLAN or --db FILE (or set "
        f"{ENV_DB}), or create one with `dispatch-kit ledger init PLAN`",
        path=str(here / DEFAULT_DB),
    )
