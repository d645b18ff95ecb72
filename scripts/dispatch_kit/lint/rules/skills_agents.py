"""DK70x: skills and agents that every harness loads, and that say when to use them.

A skill's frontmatter is read by several harnesses and a reference validator;
only six fields are portable, the name must equal the folder, and the
description is what the model reads to decide whether to load the skill, so
it must say when. The body stays short, with depth in ``references/`` files
that must exist. An agent's ``tools:`` must name tools the harness has, or the
agent silently runs without them.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator

from dispatch_kit.lint import frontmatter
from dispatch_kit.lint.agents import tool_list
from dispatch_kit.lint.document import Document
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.record import TYPE_CHECKING
from dispatch_kit.lint.registry import Example, Hit
from dispatch_kit.lint.rules._shared import family

if TYPE_CHECKING:
    from typing import Any

PORTABLE_SKILL_FIELDS = (
    "name",
    "description",
    "license",
    "compatibility",
    "metadata",
    "allowed-tools",
)
KNOWN_TOOLS = frozenset(
    """Agent Task Bash Read Write Edit Glob Grep WebFetch WebSearch Skill TodoWrite Monitor
    TaskStop NotebookEdit""".split()
)
FORBIDDEN_AGENT_FIELDS = ("hooks", "mcpServers", "permissionMode")
MAX_BODY_LINES = 200
MAX_DESCRIPTION = 1024
_SKILL_NAME = lazy(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_AGENT_NAME = lazy(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_WHEN = lazy(
    r"\b(?:use|invoke|load|apply|run|trigger|call)\w*\b[^.]{0,40}?\b(?:when|whenever|if|before|"
    r"after|while|during)\b|\bwhen (?:you|the user|a user|an?|to|asked|working|writing|"
    r"planning|dispatching)\b",
    re.I,
)
_FLOW = lazy(r"^[ \t]*(?:-[ \t]+)?[\w-]+[ \t]*:[ \t]*[\[{]", re.M)
_LINK = lazy(
    r"\]\([ \t]*<?(?:\./)?(?P<target>(?:references|scripts|assets)/[^)\s#>]+)"
    r"|^[ \t]{0,3}\[[^\]]+\]:[ \t]*<?(?:\./)?(?P<def>(?:references|scripts|assets)/[^\s#>]+)",
    re.M,
)


def parsed(doc: Document) -> tuple[dict[str, Any] | None, list[Hit]]:
    """The frontmatter mapping (None when unusable) and the DK701 problems found, cached."""
    if "frontmatter" in doc.cache:
        return doc.cache["frontmatter"]
    problems: list[Hit] = []
    data: dict[str, Any] | None = None
    fm = doc.frontmatter
    if fm is None:
        problems.append((1, 1, "add YAML frontmatter (--- name, description ---) at the top"))
    else:
        try:
            value = frontmatter.parse(fm)
        except frontmatter.FrontmatterError as exc:
            problems.append((exc.line, exc.column, exc.message))
        else:
            if not isinstance(value, dict):
                problems.append((fm.first_line, 1, "frontmatter must be a mapping of fields"))
            else:
                data = value
                lines = frontmatter.key_lines(fm)
                for key in ("name", "description"):
                    if not isinstance(data.get(key), str) or not data[key].strip():
                        problems.append(
                            (
                                lines.get(key, fm.first_line),
                                1,
                                f"frontmatter needs a non-empty '{key}' string",
                            )
                        )
                desc = data.get("description")
                if (
                    doc.file_kind == "skill"
                    and isinstance(desc, str)
                    and len(desc) > MAX_DESCRIPTION
                ):
                    problems.append(
                        (
                            lines.get("description", 1),
                            1,
                            f"description is {len(desc)} characters; the limit is "
                            f"{MAX_DESCRIPTION}",
                        )
                    )
    doc.cache["frontmatter"] = (data, problems)
    return data, problems


def _line(doc: Document, key: str) -> int:
    fm = doc.frontmatter
    return frontmatter.key_lines(fm).get(key, fm.first_line) if fm else 1


def _check_frontmatter(doc: Document) -> Iterator[Hit]:
    yield from parsed(doc)[1]


def _check_portable(doc: Document) -> Iterator[Hit]:
    data, _ = parsed(doc)
    for key in data or ():
        if key not in PORTABLE_SKILL_FIELDS:
            yield (
                _line(doc, key),
                1,
                (
                    f"field '{key}' is not portable; use only {', '.join(PORTABLE_SKILL_FIELDS)} "
                    "(put extras under metadata)"
                ),
            )


def _check_flow(doc: Document) -> Iterator[Hit]:
    fm = doc.frontmatter
    if fm is None or parsed(doc)[0] is None:
        return
    for match in _FLOW.finditer(fm.text):
        yield fm.first_line + fm.text.count("\n", 0, match.start()), 1, None


def _check_folder(doc: Document) -> Iterator[Hit]:
    data, _ = parsed(doc)
    if not data or doc.fs_name is None or not isinstance(data.get("name"), str):
        return
    folder = os.path.basename(os.path.dirname(os.path.abspath(doc.fs_name)))
    if data["name"] != folder:
        yield (
            _line(doc, "name"),
            1,
            (f"skill name '{data['name']}' differs from its folder '{folder}'; rename one"),
        )


def _check_name(doc: Document) -> Iterator[Hit]:
    data, _ = parsed(doc)
    name = (data or {}).get("name")
    if not isinstance(name, str) or not name:
        return
    pattern = _SKILL_NAME if doc.file_kind == "skill" else _AGENT_NAME
    if len(name) > 64 or not pattern.match(name):
        yield (
            _line(doc, "name"),
            1,
            (
                f"name '{name}' must be 1-64 lowercase letters, digits and single hyphens, "
                "not starting or ending with a hyphen"
            ),
        )


def _check_when(doc: Document) -> Iterator[Hit]:
    data, _ = parsed(doc)
    description = (data or {}).get("description")
    if isinstance(description, str) and description.strip() and not _WHEN.search(description):
        yield _line(doc, "description"), 1, None


def _check_length(doc: Document) -> Iterator[Hit]:
    fm = doc.frontmatter
    body = doc.text[fm.body_offset :] if fm else doc.text
    count = body.count("\n") + (0 if body.endswith("\n") or not body else 1)
    if count > MAX_BODY_LINES:
        first = fm.body_line if fm else 1
        yield (
            first + MAX_BODY_LINES,
            1,
            (
                f"the skill body has {count} lines; keep it under {MAX_BODY_LINES} and move depth "
                "into references/ files"
            ),
        )


def _check_links(doc: Document) -> Iterator[Hit]:
    if doc.fs_name is None:
        return
    folder = os.path.dirname(doc.fs_name)
    for match in _LINK.finditer(doc.text):
        target = match.group("target") or match.group("def")
        if not _exists(folder, target):
            offset = match.start("target") if match.group("target") else match.start("def")
            yield doc.at(offset, f"link target '{target}' does not exist next to this skill")


def _exists(folder: str, target: str) -> bool:
    """``(Path(folder) / target).exists()`` without pathlib (a cold start saves ~4 ms).

    The same path pathlib would build (empty and "." parts dropped, so a
    trailing slash does not count) and the same errors: missing is False,
    anything else stat reports is raised, as ``Path.exists`` does.
    """
    parts = [part for part in target.split("/") if part not in ("", ".")]
    try:
        os.stat(os.path.join(folder, *parts))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise
    except ValueError:
        return False
    return True


def _check_tools(doc: Document) -> Iterator[Hit]:
    data, _ = parsed(doc)
    for key in ("tools", "disallowedTools"):
        tools = tool_list((data or {}).get(key))
        for tool in tools or ():
            base = tool.split("(", 1)[0].strip()
            if base not in KNOWN_TOOLS and not base.startswith("mcp__"):
                yield (
                    _line(doc, key),
                    1,
                    (
                        f"unknown tool '{base}' in {key}; known tools: "
                        f"{', '.join(sorted(KNOWN_TOOLS))}, or mcp__SERVER__TOOL"
                    ),
                )


def _check_forbidden(doc: Document) -> Iterator[Hit]:
    data, _ = parsed(doc)
    for key in FORBIDDEN_AGENT_FIELDS:
        if data and key in data:
            yield (
                _line(doc, key),
                1,
                (
                    f"plugin agents may not set '{key}'; configure it in the plugin's hooks or "
                    "settings instead"
                ),
            )


SKILL = frozenset({"skill"})
AGENT = frozenset({"agent"})
_SKILL_PATH = "skills/release-notes/SKILL.md"
_SKILL_BODY = (
    "\n# Release notes\n\nCollect merged pull requests since the last tag and group them.\n"
)
_GOOD_SKILL = (
    "---\nname: release-notes\ndescription: Drafts release notes from merged pull requests. "
    "Use when preparing a release.\nlicense: MIT\n---\n" + _SKILL_BODY
)
_AGENT_PATH = "agents/changelog-editor.md"
_GOOD_AGENT = (
    "---\nname: changelog-editor\ndescription: Edits CHANGELOG.md. Use for changelog entries.\n"
    "tools: Read, Edit, Grep\n---\n\nYou edit CHANGELOG.md only.\n"
)


def _skill(old: str, new: str) -> Example:
    assert old in _GOOD_SKILL
    return Example(_GOOD_SKILL.replace(old, new), path=_SKILL_PATH)


def _agent(old: str, new: str) -> Example:
    assert old in _GOOD_AGENT
    return Example(_GOOD_AGENT.replace(old, new), path=_AGENT_PATH)


GOOD_SKILL = Example(_GOOD_SKILL, path=_SKILL_PATH)
GOOD_AGENT = Example(_GOOD_AGENT, path=_AGENT_PATH)

# Each file rule's reach, stated once: the docs' wording and the engine's kinds.
_skill_rule = family(applies_to="SKILL.md files", scope="file", kinds=SKILL, good=GOOD_SKILL)
_agent_rule = family(applies_to="agents/*.md", scope="file", kinds=AGENT, good=GOOD_AGENT)
_any_rule = family(applies_to="SKILL.md files and agents/*.md", scope="file", kinds=SKILL | AGENT)

RULES = (
    _any_rule(
        code="DK701",
        name="invalid-frontmatter",
        severity="error",
        message="give the file YAML frontmatter with a non-empty name and description",
        rationale="""\
Harnesses index skills and agents by their frontmatter: without a parsable
block carrying a name and a description, the file is skipped or shows up
unnamed, and the model has nothing to decide with. Skill descriptions are
limited to 1024 characters.""",
        bad=_skill("name: release-notes\n", ""),
        good=GOOD_SKILL,
        check=_check_frontmatter,
    ),
    _skill_rule(
        code="DK702",
        name="non-portable-skill-field",
        severity="error",
        message="use only the portable fields: name, description, license, compatibility, "
        "metadata, allowed-tools",
        rationale="""\
One harness's extra fields (model, context, hooks...) are rejected by the
reference validator and ignored or refused by other harnesses. Keeping to the
six portable fields lets one skill folder work everywhere; harness-specific
values go under `metadata` as strings.""",
        bad=_skill("license: MIT\n", "license: MIT\nmodel: inherit\n"),
        check=_check_portable,
    ),
    _skill_rule(
        code="DK703",
        name="flow-style-frontmatter",
        severity="error",
        message="write YAML lists and maps in block style (one `- item` per line), not [a, b] "
        "or {k: v}",
        rationale="""\
The reference skill validator rejects flow-style collections in frontmatter,
and some harnesses parse frontmatter with simplified readers that do not
understand them either. Block style is read the same everywhere.""",
        bad=_skill("license: MIT\n", "license: MIT\nmetadata: {owner: docs}\n"),
        good=_skill("license: MIT\n", "license: MIT\nmetadata:\n  owner: docs\n"),
        check=_check_flow,
    ),
    _skill_rule(
        code="DK704",
        name="skill-name-mismatch",
        severity="error",
        message="make the skill's name equal its folder name",
        rationale="""\
Harnesses find a skill by its folder and invoke it by its name; when the two
differ, one harness loads it under a name another cannot resolve, and the
reference validator fails it.""",
        bad=_skill("name: release-notes", "name: release-notes-drafter"),
        check=_check_folder,
    ),
    _any_rule(
        code="DK705",
        name="invalid-name",
        severity="error",
        message="use 1-64 lowercase letters, digits and single hyphens for the name",
        rationale="""\
Skill and agent names become command names and file names in several
harnesses; upper case, spaces, underscores or doubled hyphens are rejected by
some and mangled by others.""",
        bad=_agent("name: changelog-editor", "name: Changelog_Editor"),
        good=GOOD_AGENT,
        check=_check_name,
    ),
    _skill_rule(
        code="DK706",
        name="description-without-when",
        severity="warning",
        message='say when to use the skill in its description ("Use when ...")',
        rationale="""\
The description is all the model sees before it decides to load a skill. A
description that says what the skill is but not when to reach for it gets
the skill loaded at the wrong moments or never.""",
        bad=_skill(" Use when preparing a release.", ""),
        check=_check_when,
    ),
    _skill_rule(
        code="DK707",
        name="skill-body-too-long",
        severity="warning",
        message=f"keep the skill body under {MAX_BODY_LINES} lines; move depth into references/",
        rationale="""\
A skill's body is loaded whole into the context every time the skill is
used. A short body with the decision rules, linking to reference files read
only when needed, costs a fraction of the tokens and keeps the essentials in
view.""",
        bad=_skill(_SKILL_BODY, _SKILL_BODY + "\n".join(f"- step {n}" for n in range(200)) + "\n"),
        check=_check_length,
    ),
    _skill_rule(
        code="DK708",
        name="broken-reference-link",
        severity="error",
        message="fix the link: the references/, scripts/ or assets/ file it names does not exist",
        rationale="""\
A skill defers depth to its references/ files; a link to a file that is not
there leaves the model without the detail the body promised, usually at the
moment it needs it.""",
        bad=_skill(
            _SKILL_BODY,
            _SKILL_BODY + "\nGrouping rules: [references/groups.md](references/groups.md)\n",
        ),
        good=Example(
            _GOOD_SKILL + "\nGrouping rules: [references/groups.md](references/groups.md)\n",
            path=_SKILL_PATH,
            files={"skills/release-notes/references/groups.md": "# Groups\n"},
        ),
        check=_check_links,
    ),
    _agent_rule(
        code="DK709",
        name="unknown-agent-tool",
        severity="error",
        message="name only real tools in tools: (Read, Edit, Bash, ... or mcp__SERVER__TOOL)",
        rationale="""\
A misspelt tool name is not an error to the harness: the agent simply runs
without that tool, and a dispatch that relies on it fails in a way that looks
like the agent's fault. The Bash-chain rule (DK401) also reads this list.""",
        bad=_agent("tools: Read, Edit, Grep", "tools: Read, Edit, Grep, Shell"),
        check=_check_tools,
    ),
    _agent_rule(
        code="DK710",
        name="forbidden-agent-field",
        severity="error",
        message="remove hooks, mcpServers and permissionMode from plugin agents",
        rationale="""\
Plugin agents may not carry their own hooks, MCP servers or permission mode:
the harness refuses or ignores them, so an agent that depends on them behaves
differently once installed from the plugin.""",
        bad=_agent(
            "tools: Read, Edit, Grep\n", "tools: Read, Edit, Grep\npermissionMode: acceptEdits\n"
        ),
        check=_check_forbidden,
    ),
)
