"""Find an agent definition by name and tell whether it can run Bash.

A prompt names its target agent (``agent=`` directive, or the hook's
``subagent_type``). The definition is looked up where the harness would find
it: ``agents/`` or ``.claude/agents/`` in the linted file's folder or any
folder above it, then the pack's own ``agents/``. An agent that is not found
is not guessed at: the Bash-chain rule stays silent rather than be wrong.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import NamedTuple

from dispatch_kit.lint import frontmatter


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
    """The definition of agent ``name`` as seen from folder ``start`` (cached per run)."""
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
        info = _agents_in(folder).get(name)
        if info is not None:
            return info
    return None


@cache
def _agents_in(folder: Path) -> dict[str, AgentInfo]:
    """Every agent defined in one folder, by frontmatter name and by file stem."""
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
        try:
            data = frontmatter.parse(fm)
        except frontmatter.FrontmatterError:
            continue
        if not isinstance(data, dict):
            continue
        name = str(data.get("name") or path.stem)
        info = AgentInfo(
            name,
            path,
            tool_list(data.get("tools")),
            tool_list(data.get("disallowedTools")) or (),
        )
        found.setdefault(name, info)
        found.setdefault(path.stem, info)
    return found
