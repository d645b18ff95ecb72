"""Find an agent definition by name and tell whether it can run Bash.

A prompt names its target agent (``agent=`` directive, or the hook's
``subagent_type``). The definition is looked up where the harness would find
it: ``agents/`` or ``.claude/agents/`` in the linted file's folder or any
folder above it, then the pack's own ``agents/``. An agent that is not found
is not guessed at: the Bash-chain rule stays silent rather than be wrong.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from dispatch_kit.lint import frontmatter

if TYPE_CHECKING:  # loaded in find_agent: skill rules need only tool_list, not pathlib
    from pathlib import Path

    from dispatch_kit.lint.document import Document


class AgentInfo(NamedTuple):
    name: str
    path: Path
    tools: tuple[str, ...] | None  # None: no tools field, so every tool is inherited
    disallowed: tuple[str, ...]

    @property
    def has_bash(self) -> bool:
        if any(_base(t) == "Bash" for t in self.disallowed):
            return False
        return self.tools is None or any(_base(t) == "Bash" for t in self.tools)


def _base(tool: str) -> str:
    """``Bash(git:*)`` -> ``Bash``."""
    return tool.split("(", 1)[0].strip()


def tool_list(value: object) -> tuple[str, ...] | None:
    """A ``tools:`` value (comma string or YAML list) as names; None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list):
        return tuple(str(t).strip() for t in value if str(t).strip())
    return ()


@cache
def find_agent(name: str, start: Path | None) -> AgentInfo | None:
    """The definition of agent ``name`` as seen from folder ``start`` (cached per run).

    In each folder ``NAME.md`` wins; only without it is the folder scanned for a
    definition whose frontmatter says ``name: NAME``.
    """
    folders: list[Path] = []
    if start is not None:
        here = start.resolve()
        for folder in (here, *here.parents):
            folders += [folder / "agents", folder / ".claude" / "agents"]
    try:
        from dispatch_kit.packroot import pack_root

        folders.append(pack_root() / "agents")
    except Exception:  # noqa: BLE001 - no pack root: only the project's agents count
        pass
    for folder in folders:
        # The file named after the agent is almost always its definition: read
        # that one file, and scan the folder only when it is not there.
        info = (_agent_at(folder / f"{name}.md") if _plain_name(name) else None) or _agents_in(
            folder, name
        ).get(name)
        if info is not None:
            return info
    return None


def _plain_name(name: str) -> bool:
    """Whether ``name`` can only name a file inside the folder (no separators, no dots-only)."""
    return bool(name.strip(".")) and "/" not in name and "\\" not in name


def _agent_at(path: Path) -> AgentInfo | None:
    """The agent defined in ``path``, or None when it is absent or not a definition."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    fm = frontmatter.split(text)
    if fm is None:
        return None
    try:
        data = frontmatter.parse(fm)
    except frontmatter.FrontmatterError:
        return None
    if not isinstance(data, dict):
        return None
    return AgentInfo(
        str(data.get("name") or path.stem),
        path,
        tool_list(data.get("tools")),
        tool_list(data.get("disallowedTools")) or (),
    )


_NEAR: dict[tuple[str, str, str], AgentInfo | None] = {}


def find_agent_near(name: str, doc: Document) -> AgentInfo | None:
    """``find_agent(name, doc.base_dir)``, remembered per agent name and folder.

    A thousand prompts in a few folders name the same few agents; resolving
    each prompt's folder and walking its parents again cost more than the rest
    of the rule. The answer depends only on the name and the folder (its
    lookups are cached per run already), so it is kept under the folder as
    given plus the working directory a relative folder is resolved against.
    """
    fs_name = doc.fs_name
    if fs_name is None or doc.given_base_dir:  # stdin, a hook's prompt: a folder given
        return find_agent(name, doc.base_dir)
    key = (name, os.getcwd(), os.path.dirname(fs_name))
    if key not in _NEAR:
        _NEAR[key] = find_agent(name, doc.base_dir)
    return _NEAR[key]


@cache
def _agents_in(folder: Path, wanted: str) -> dict[str, AgentInfo]:
    """The agents defined in one folder that could be ``wanted``, by frontmatter name and stem.

    A file whose frontmatter does not contain the wanted name cannot declare it
    (short of a YAML escape, hence the backslash test), so it is not parsed:
    parsing every definition pulled in PyYAML for a one-prompt lint.
    """
    found: dict[str, AgentInfo] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        fm = frontmatter.split(text)
        if fm is None:
            continue
        raw = text[: fm.body_offset]
        if path.stem != wanted and wanted not in raw and "\\" not in raw:
            continue
        info = _agent_at(path)
        if info is None:
            continue
        found.setdefault(info.name, info)
        found.setdefault(path.stem, info)
    return found
