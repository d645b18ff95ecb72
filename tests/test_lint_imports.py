"""Linting stays cheap to start: heavy libraries load only for the files that need them.

Pre-commit runs the linter on every commit, usually on one or two Markdown
files. Those must not pay for Jinja, PyYAML, ruamel.yaml or jsonschema.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import cli_env

HEAVY = ("jinja2", "yaml", "ruamel", "jsonschema", "tomllib")


def imported(cli, *args: str, cwd: Path) -> set[str]:
    result = cli(*args, cwd=cwd, env=cli_env(PYTHONPROFILEIMPORTTIME="1"))
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", result.stderr, re.M))


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_prompt_imports_nothing_heavy(cli, tmp_path):
    (tmp_path / "p.md").write_text("[Execute] Fix the parser.\n", encoding="utf-8")
    modules = top_level(imported(cli, "lint", "p.md", cwd=tmp_path))
    assert "dispatch_kit" in modules  # the measurement works
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_one_prompt_naming_its_agent_imports_neither_typing_nor_pathlib(cli, tmp_path):
    """Together ~10 ms of a ~50 ms cold start on the project's machine; the lint needs neither."""
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "reader.md").write_text(
        "---\nname: reader\ndescription: Use to read code.\ntools: Read, Grep\n---\nRead.\n",
        encoding="utf-8",
    )
    (tmp_path / "p.md").write_text(
        "[Execute] Run the tests and commit.\nAgent: reader\n", encoding="utf-8"
    )
    result_modules = imported(cli, "lint", "p.md", cwd=tmp_path)
    assert "dispatch_kit.lint.agents" in result_modules  # the agent lookup ran
    assert not top_level(result_modules) & {"typing", "pathlib"}


def test_the_hook_on_a_pack_agent_imports_nothing_heavy(cli, tmp_path):
    """The pre-dispatch hook runs before every dispatch: a rendered work order for the pack's
    own worker (whose agent file caps ``maxTurns``) must not load PyYAML, dataclasses or
    typing (together ~20 ms of a ~35 ms hook)."""
    import json

    from conftest import ROOT

    event = json.dumps({
        "hook_event_name": "PreToolUse", "tool_name": "Agent", "cwd": str(tmp_path),
        "tool_input": {"prompt": (ROOT / "tests" / "golden" / "worker-counter.md").read_text(),
                       "subagent_type": "dispatch-kit:dispatch-worker"},
    })
    result = cli("hook", "pre-dispatch", input=event, cwd=tmp_path,
                 env=cli_env(PYTHONPROFILEIMPORTTIME="1"))
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", result.stderr, re.M))
    assert "dispatch_kit.lint.agents" in modules  # the agent lookup ran
    assert not top_level(modules) & {*HEAVY, "dataclasses", "typing"}, modules
    # hooks.json's argument shapes skip argparse (with gettext and shutil, ~5 ms a hook)
    assert not top_level(modules) & {"argparse", "gettext", "shutil"}, modules


def test_simple_skill_frontmatter_needs_no_yaml_library(cli, tmp_path):
    skill = write(
        tmp_path,
        "skills/notes/SKILL.md",
        "---\nname: notes\ndescription: Takes notes. Use when a meeting ends.\n"
        "metadata:\n  owner: docs\n---\n\n# Notes\n",
    )
    modules = top_level(imported(cli, "lint", str(skill), cwd=tmp_path))
    assert not modules & set(HEAVY)


def test_quoted_and_flow_frontmatter_needs_no_yaml_library(cli, tmp_path):
    skill = write(
        tmp_path,
        "skills/notes/SKILL.md",
        "---\nname: notes\ndescription: 'Takes notes: use when a meeting ends.'\n"
        "allowed-tools: [Read, Grep]\n---\n\n# Notes\n",
    )
    agent = write(
        tmp_path,
        "agents/a.md",
        '---\nname: a\ndescription: "Use for one task; it reports what changed."\n'
        "tools: Read, Grep # read-only\n---\n\nYou are the a agent.\n",
    )
    # the benchmark corpus's broken skill: the fast reader reports PyYAML's error itself
    broken = write(
        tmp_path,
        "skills/broken/SKILL.md",
        "---\nname: broken\ndescription: Use when a test needs a broken skill.\n"
        "metadata: {category: [unclosed\n---\n\n# Broken\n",
    )
    paths = (str(skill), str(agent), str(broken))
    modules = top_level(imported(cli, "lint", *paths, cwd=tmp_path))
    assert "dispatch_kit" in modules  # the measurement works
    assert not modules & set(HEAVY), modules & set(HEAVY)
    output = cli("lint", str(broken), cwd=tmp_path).output
    assert "frontmatter is not valid YAML: did not find expected ',' or ']'" in output


def test_templates_and_complex_frontmatter_load_what_they_need(cli, tmp_path):
    (tmp_path / "t.md.j2").write_text("{# Variables:\n  x  str #}\n{{ x }}\n", encoding="utf-8")
    assert "jinja2" in top_level(imported(cli, "lint", "t.md.j2", cwd=tmp_path))
    agent = tmp_path / "agents" / "a.md"
    agent.parent.mkdir()
    # a block scalar is beyond the fast frontmatter reader: PyYAML reads it
    agent.write_text("---\nname: a\ndescription: |\n  Block text.\n---\n", encoding="utf-8")
    assert "yaml" in top_level(imported(cli, "lint", str(agent), cwd=tmp_path))
