"""The pack as the harnesses see it: Claude Code's validator, the Agent Skills validator,
and the layout rules those validators do not check.

A user installs the repository with ``/plugin install``; if Claude Code's own
validator or the reference skills validator rejects it, nothing else here
matters. The validators are run on a copy holding only what a clone would
ship, so a local virtual environment or node_modules folder cannot hide or
cause a finding. Some rules (no ``permissionMode`` in a plugin agent, no flow
style in a skill's frontmatter for the other harnesses) the Claude Code
validator does not enforce, so they are asserted here directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require_tool

from dispatch_kit.harness import claude_code

SKILLS = {"workspace-dispatch", "fire-and-forget-dispatch", "async-dispatch", "dispatch-lifecycle"}
# Each agent's role is enforced by its tools: (must have, must not have).
AGENT_ROLES = {
    "dispatch-worker": ({"Read", "Write", "Edit", "Bash"}, set()),
    "dispatch-verifier": ({"Read", "Bash"}, {"Write", "Edit"}),
    "dispatch-executor": ({"Bash"}, {"Write", "Edit"}),
    "domain-editor": ({"Read", "Edit"}, {"Bash"}),
    "bash-operator": ({"Bash"}, set()),
}
# Frontmatter that Claude Code, claude.ai, Codex, OpenClaw and the reference validator all accept.
PORTABLE_SKILL_KEYS = {
    "name",
    "description",
    "license",
    "compatibility",
    "metadata",
    "allowed-tools",
}
AGENT_KEYS = {
    "name",
    "description",
    "tools",
    "disallowedTools",
    "model",
    "maxTurns",
    "skills",
    "background",
    "isolation",
    "color",
}
FORBIDDEN_IN_PLUGIN_AGENTS = {"hooks", "mcpServers", "permissionMode"}
# Tools a subagent of the pinned Claude Code is offered (tests/test_harness_surface.py
# holds this list to the CLI): an agent listing another tool silently runs without it.
TOOL_NAMES = set(claude_code.SUBAGENT_TOOLS)
SKILL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SKILL_MAX_LINES = 200
ALWAYS_ON_BUDGET = 40  # tokens per skill or agent, as `claude plugin details` rounds them


def shipped_files() -> list[str]:
    """Files a clone would carry: tracked, plus new files not yet committed but not ignored."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    names = [name for name in listing.stdout.decode().split("\0") if name]
    # A dependency folder nobody has ignored yet is not part of the pack either.
    # Links are kept: plugin/, the folder a marketplace install copies, is links.
    return [
        name
        for name in names
        if not {"node_modules", ".venv"} & set(Path(name).parts)
        and ((ROOT / name).is_file() or (ROOT / name).is_symlink())
    ]


def copy_shipped(dest: Path) -> Path:
    """Copy the files a clone carries (:func:`shipped_files`) into ``dest``, links kept."""
    for name in shipped_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to(os.readlink(ROOT / name))
        else:
            shutil.copy2(ROOT / name, target)
    return dest


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        return ROOT  # an unpacked archive already holds only shipped files
    copy = tmp_path_factory.mktemp("shipped") / "dispatch-kit"
    copy_shipped(copy)
    return copy


def claude_env(home: Path) -> dict[str, str]:
    """Run ``claude`` with a throwaway HOME so it neither reads nor writes the user's config."""
    env = dict(os.environ)
    env["HOME"] = str(home)
    env.pop("CLAUDE_CONFIG_DIR", None)
    return env


def frontmatter(path: Path) -> tuple[str, str]:
    """(frontmatter text, body) of a Markdown file that starts with a ``---`` block."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    assert lines and lines[0].strip() == "---", f"{path}: no frontmatter"
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise AssertionError(f"{path}: frontmatter is not closed")


def flow_style_nodes(text: str) -> list[int]:
    """1-based lines of ``[a, b]`` / ``{a: b}`` collections, which some harnesses reject."""
    found: list[int] = []

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.CollectionNode) and node.flow_style:
            found.append(node.start_mark.line + 2)  # +1 for 1-based, +1 for the --- line
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(key)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    root = yaml.compose(text)
    if root is not None:
        walk(root)
    return found


def tool_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    assert isinstance(value, list), f"tools must be a comma list or a YAML list, not {value!r}"
    return [str(item).strip() for item in value]


# --- the validators ----------------------------------------------------------


def test_claude_plugin_validate_strict_directory_profile(
    shipped_copy: Path, tmp_path: Path
) -> None:
    claude = require_tool("claude")
    command = [claude, "plugin", "validate", "--strict", "--profile", "directory"]
    proc = subprocess.run(
        [*command, "--json", str(shipped_copy)],
        capture_output=True,
        text=True,
        env=claude_env(tmp_path),
        timeout=120,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"validator printed no JSON (exit {proc.returncode}): {proc.stderr}")
    problems = [
        f"{part['file']}: {kind}: {item}"
        for part in [report["manifest"], *report.get("contents", [])]
        for kind in ("errors", "warnings")
        for item in part[kind]
    ]
    directory = report["directory"]
    problems += [f"directory: {item}" for item in directory["findings"] + directory["undecided"]]
    if directory["incomplete"]:
        problems.append("directory: checks incomplete")
    if proc.returncode != 0 or problems:
        human = subprocess.run(
            [*command, str(shipped_copy)], capture_output=True, text=True, env=claude_env(tmp_path)
        )
        pytest.fail(f"exit {proc.returncode}; {problems}\n{human.stdout}{human.stderr}")
    assert report["success"] is True

    # The validator saw every component, so its silence means something.
    provides = report["provides"]
    assert {name.split(":", 1)[1] for name in provides["skills"]} == SKILLS
    assert {name.split(":", 1)[1] for name in provides["agents"]} == set(AGENT_ROLES)
    assert "dispatch-kit" in provides["bin"]
    # The plugin monitor, with the command Claude Code runs (${CLAUDE_PLUGIN_ROOT} substituted).
    assert provides["monitors"] == [{
        "name": "mission-events",
        "command": '"${CLAUDE_PLUGIN_ROOT}/bin/dispatch-kit" ledger events --follow --monitor',
    }]
    print(f"claude plugin validate: passed; provides {provides}")


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_agentskills_validate(skill: str, shipped_copy: Path) -> None:
    agentskills = require_tool("agentskills")
    proc = subprocess.run(
        [agentskills, "validate", str(shipped_copy / "skills" / skill)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout.strip())


def test_always_on_cost_per_component_stays_small(tmp_path: Path) -> None:
    """Every session pays each skill's and agent's description; the pack aims at <= 40 tokens.

    The figures are Claude Code's own (``claude plugin details``), gathered by
    the bench script the README quotes, so the script is exercised too.
    """
    require_tool("claude")
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "plugin_cost.sh"), "--max-always-on", str(ALWAYS_ON_BUDGET)],
        capture_output=True,
        text=True,
        env=claude_env(tmp_path),
        timeout=120,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = re.compile(r"^  ([a-z0-9-]+) +~[0-9.]+k? +~[0-9.]+k?$")
    rows = [match[1] for match in map(row.match, proc.stdout.splitlines()) if match]
    assert set(rows) == SKILLS | set(AGENT_ROLES), rows


def test_manifests_in_sync(cli) -> None:
    result = cli("manifests", "--check")
    assert result.returncode == 0, result.output


# --- layout rules the validators leave to us --------------------------------


def test_skills_folder_holds_the_four_skills() -> None:
    folders = {item.name for item in (ROOT / "skills").iterdir() if item.is_dir()}
    assert folders == SKILLS
    for skill in SKILLS:
        assert (ROOT / "skills" / skill / "SKILL.md").is_file(), skill


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_skill_frontmatter_is_portable(skill: str) -> None:
    path = ROOT / "skills" / skill / "SKILL.md"
    text, body = frontmatter(path)
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{path}: frontmatter is not a mapping"
    assert set(data) <= PORTABLE_SKILL_KEYS, f"{path}: {set(data) - PORTABLE_SKILL_KEYS}"
    assert data["name"] == skill
    assert SKILL_NAME.match(skill) and len(skill) <= 64
    description = data["description"]
    assert isinstance(description, str) and 1 <= len(description) <= 1024
    assert "Use when" in description, f"{path}: the description must say when to use it"
    metadata = data.get("metadata", {})
    assert isinstance(metadata, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    flow = flow_style_nodes(text)
    assert flow == [], f"{path}: flow-style YAML (write block style) on lines {flow}"
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < SKILL_MAX_LINES, f"{path}: {lines} lines; move depth to references/"
    assert body.strip(), f"{path}: empty body"


def agent_files() -> list[Path]:
    return sorted((ROOT / "agents").glob("*.md"))


def test_agents_folder_holds_the_roles() -> None:
    assert {path.stem for path in agent_files()} == set(AGENT_ROLES)


@pytest.mark.parametrize("agent", sorted(AGENT_ROLES))
def test_agent_frontmatter_is_allowed_in_a_plugin(agent: str) -> None:
    path = ROOT / "agents" / f"{agent}.md"
    text, body = frontmatter(path)
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{path}: frontmatter is not a mapping"
    assert not FORBIDDEN_IN_PLUGIN_AGENTS & set(data), (
        f"{path}: plugin agents may not set {FORBIDDEN_IN_PLUGIN_AGENTS & set(data)}"
    )
    assert set(data) <= AGENT_KEYS, f"{path}: unknown keys {set(data) - AGENT_KEYS}"
    assert data["name"] == agent
    assert isinstance(data["description"], str) and data["description"].strip()
    assert data.get("model", "inherit") == "inherit", f"{path}: hardcoded model {data['model']}"
    assert body.strip(), f"{path}: empty system prompt"

    tools = tool_list(data.get("tools"))
    assert set(tools) <= TOOL_NAMES, f"{path}: unknown tools {set(tools) - TOOL_NAMES}"
    must_have, must_not = AGENT_ROLES[agent]
    assert must_have <= set(tools), f"{path}: role needs {must_have - set(tools)}"
    assert not must_not & set(tools), f"{path}: role forbids {must_not & set(tools)}"
    if agent == "dispatch-executor":
        # Its workers must outlive it: subagents end with the executor's session.
        assert not {"Agent", "Task"} & set(tools), f"{path}: an executor starts detached workers"


def test_claude_plugin_folder_holds_only_manifests_and_icon() -> None:
    names = {item.name for item in (ROOT / ".claude-plugin").iterdir()}
    assert names == {"plugin.json", "marketplace.json", "icon.png"}


def test_icon_is_a_square_png_the_directory_accepts() -> None:
    data = (ROOT / ".claude-plugin" / "icon.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height and 512 <= width <= 2048, (width, height)
    assert len(data) < 2 * 1024 * 1024


def test_launcher_is_executable_in_git_too() -> None:
    launcher = ROOT / "bin" / "dispatch-kit"
    assert os.access(launcher, os.X_OK)
    if shutil.which("git") and (ROOT / ".git").exists():
        staged = subprocess.run(
            ["git", "ls-files", "--stage", "bin/dispatch-kit"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        if staged:  # once committed, a clone must get the executable bit
            assert staged.startswith("100755"), staged


def test_manifest_paths_stay_inside_the_plugin() -> None:
    """Plugins are copied into a cache on install: ``../`` paths would point nowhere."""
    manifest = json.loads((ROOT / ".claude-plugin" / "plugin.json").read_text())

    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for item in value.values() for s in strings(item)]
        if isinstance(value, list):
            return [s for item in value for s in strings(item)]
        return []

    assert not [s for s in strings(manifest) if "../" in s]
