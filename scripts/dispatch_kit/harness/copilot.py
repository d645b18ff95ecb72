"""GitHub Copilot CLI as the pinned release shows it, offline: plugins and skills only.

Seen with ``@github/copilot`` 1.0.102: ``copilot plugin marketplace add DIR``
reads the Claude marketplace and ``copilot plugin install NAME@MARKETPLACE``
answers "Installed 4 skills", loading the entry's folder in place (links are
followed, nothing is copied). A session needs a GitHub login, so whether its
agents load and whether its hooks run could not be checked here: this pack
claims neither.
"""

from __future__ import annotations

NAME = "copilot"
PINNED_VERSION = "1.0.102"
NPM_PACKAGE = "@github/copilot"
