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


def test_markdown_prompt_imports_nothing_heavy(cli, tmp_path):
    (tmp_path / "p.md").write_text("[Execute] Fix the parser.\n", encoding="utf-8")
    modules = top_level(imported(cli, "lint", "p.md", cwd=tmp_path))
    assert "dispatch_kit" in modules  # the measurement works
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_simple_skill_frontmatter_needs_no_yaml_library(cli, tmp_path):
    skill = tmp_path / "skills" / "notes" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text(
        "---\nname: notes\ndescription: Takes notes. Use when a meeting ends.\n"
        "metadata:\n  owner: docs\n---\n\n# Notes\n",
        encoding="utf-8",
    )
    modules = top_level(imported(cli, "lint", str(skill), cwd=tmp_path))
    assert not modules & set(HEAVY)


def test_templates_and_complex_frontmatter_load_what_they_need(cli, tmp_path):
    (tmp_path / "t.md.j2").write_text("{# Variables:\n  x  str #}\n{{ x }}\n", encoding="utf-8")
    assert "jinja2" in top_level(imported(cli, "lint", "t.md.j2", cwd=tmp_path))
    agent = tmp_path / "agents" / "a.md"
    agent.parent.mkdir()
    agent.write_text("---\nname: a\ndescription: 'Quoted.'\n---\n", encoding="utf-8")
    assert "yaml" in top_level(imported(cli, "lint", str(agent), cwd=tmp_path))
