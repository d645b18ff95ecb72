"""Find an agent definition by name and tell whether it can run Bash.

A prompt names its target agent (``agent=`` directive, or the hook's
``subagent_type``). The definition is looked up where the harness would find
it: ``agents/`` or ``.claude/agents/`` in the linted file's folder or any
folder above it, then the pack's own ``agents/``. An agent that is not found
is not guessed at: the Bash-chain rule stays silent rather than be wrong.

Other harnesses name their shell tool otherwise (``Shell``, ``run_shell_command``,
``bash``) and keep agents elsewhere (``.qwen/agents``, ``.opencode/agents``,
...). The linter knows none of them: whoever knows the harness (the hook,
given ``--harness``) passes its names in with :func:`recognise`.
"""

from __future__ import annotations

import os
from functools import cache

from dispatch_kit.lint import frontmatter
from dispatch_kit.lint.config import upward
from dispatch_kit.lint.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from dispatch_kit.lint.document import Document


# The tool names that mean "can run a shell", and the folders (relative to each
# folder walked up from the prompt) where agent definitions live.
_SHELL_TOOLS: set[str] = {"Bash"}
_AGENT_FOLDERS: list[str] = ["agents", os.path.join(".claude", "agents")]


def recognise(shell_tools: frozenset[str] | set[str] = frozenset(),
              agent_folders: tuple[str, ...] = ()) -> None:
    """Also count ``shell_tools`` as Bash, and also look for agents in ``agent_folders``."""
    _SHELL_TOOLS.update(shell_tools)
    for folder in agent_folders:
        if folder not in _AGENT_FOLDERS:
            _AGENT_FOLDERS.append(folder)
    find_agent.cache_clear()
    _agents_in.cache_clear()
    _NEAR.clear()


class AgentInfo(Record):
    name: str
    path: str
    tools: tuple[str, ...] | None  # None: no tools field, so every tool is inherited
    disallowed: tuple[str, ...]

    @property
    def has_bash(self) -> bool:
        if any(_base(t) in _SHELL_TOOLS for t in self.disallowed):
            return False
        return self.tools is None or any(_base(t) in _SHELL_TOOLS for t in self.tools)


def _base(tool: str) -> str:
    """``Bash(git:*)`` -> ``Bash``."""
    return tool.split("(", 1)[0].strip()


def tool_list(value: object) -> tuple[str, ...] | None:
    """A ``tools:`` value (comma string, YAML list, or OpenCode's name -> bool) as names.

    None when absent.
    """
    if value is None:
        return None
    if isinstance(value, dict):  # OpenCode: {bash: true, edit: false}
        return tuple(str(name) for name, on in value.items() if on is True)
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list):
        return tuple(str(t).strip() for t in value if str(t).strip())
    return ()


@cache
def find_agent(name: str, start: str | None) -> AgentInfo | None:
    """The definition of agent ``name`` as seen from folder ``start`` (cached per run).

    In each folder ``NAME.md`` wins; only without it is the folder scanned for a
    definition whose frontmatter says ``name: NAME``. Plain ``os.path`` strings:
    pathlib (and the urllib.parse it imports) cost a one-prompt lint ~5 ms.
    """
    folders: list[str] = []
    if start is not None:
        for folder in upward(start):
            folders += [os.path.join(folder, sub) for sub in _AGENT_FOLDERS]
    try:
        from dispatch_kit.packroot import pack_root_dir

        folders.append(os.path.join(pack_root_dir(), "agents"))
    except Exception:  # noqa: BLE001 - no pack root: only the project's agents count
        pass
    for folder in folders:
        # The file named after the agent is almost always its definition: read
        # that one file, and scan the folder only when it is not there.
        at = os.path.join(folder, f"{name}.md")
        info = (_agent_at(at) if _plain_name(name) else None) or _agents_in(folder, name).get(name)
        if info is not None:
            return info
    return None


def _plain_name(name: str) -> bool:
    """Whether ``name`` can only name a file inside the folder (no separators, no dots-only)."""
    return bool(name.strip(".")) and "/" not in name and "\\" not in name


def _stem(path: str) -> str:
    """``Path(path).stem``."""
    return os.path.splitext(os.path.basename(path))[0]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _agent_at(path: str) -> AgentInfo | None:
    """The agent defined in ``path``, or None when it is absent or not a definition."""
    text = _read(path)
    if text is None:
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
        str(data.get("name") or _stem(path)),
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
def _agents_in(folder: str, wanted: str) -> dict[str, AgentInfo]:
    """The agents defined in one folder that could be ``wanted``, by frontmatter name and stem.

    A file whose frontmatter does not contain the wanted name cannot declare it
    (short of a YAML escape, hence the backslash test), so it is not parsed:
    parsing every definition pulled in PyYAML for a one-prompt lint.
    """
    found: dict[str, AgentInfo] = {}
    try:
        names = sorted(entry for entry in os.listdir(folder) if entry.endswith(".md"))
    except OSError:  # absent, or not a folder
        return found
    for entry in names:
        path = os.path.join(folder, entry)
        text = _read(path)
        if text is None:
            continue
        fm = frontmatter.split(text)
        if fm is None:
            continue
        raw = text[: fm.body_offset]
        if _stem(path) != wanted and wanted not in raw and "\\" not in raw:
            continue
        info = _agent_at(path)
        if info is None:
            continue
        found.setdefault(info.name, info)
        found.setdefault(_stem(path), info)
    return found
