"""Which files the linter reads, and as what: prompt, template, skill, agent, manifest, plan.

The file kind decides which rules run and which comment syntax carries
directives. Folders are walked in sorted order (stable output) with the usual
build and dependency folders pruned before descending. Paths stay strings
until a rule needs more: at a thousand files, building path objects and
matching glob patterns one by one is a visible share of the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from fnmatch import translate
from functools import cache
from pathlib import Path

from dispatch_kit.errors import InputError
from dispatch_kit.lint.config import Config

DEFAULT_EXCLUDE = (
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "dist",
    "*.egg-info",
    ".dispatch",
)
TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
MARKDOWN_SUFFIXES = (".md", ".markdown")
PROMPT_SUFFIXES = (".txt", ".prompt")  # linted as prompts only when named explicitly
DOCUMENT_STEMS = (
    "readme",
    "changelog",
    "contributing",
    "license",
    "licence",
    "security",
    "code_of_conduct",
    "history",
    "notice",
    "authors",
    "support",
)
DOCUMENT_FOLDERS = frozenset({"docs", "doc", "references", ".github"})


def classify(path: Path | str) -> str | None:
    """The file kind of ``path``, or None when the linter has nothing to say about it."""
    text = os.fspath(path)
    folder, name = os.path.split(text)
    lower = name.lower()
    if name == "SKILL.md":
        return "skill"
    if lower.endswith(TEMPLATE_SUFFIXES):
        return "template"
    if lower.endswith(MARKDOWN_SUFFIXES):
        if lower.split(".")[0] in DOCUMENT_STEMS:
            return "document"
        parts = folder.replace("\\", "/").split("/")
        if parts[-1] == "agents":
            return "agent"
        if DOCUMENT_FOLDERS.intersection(parts):
            return "document"
        return "prompt"
    if lower.endswith(".json"):
        if name == "plugin.json" or os.path.basename(folder) == ".claude-plugin":
            return "manifest"
        return None
    if lower in ("plan.yaml", "plan.yml") or lower.endswith((".plan.yaml", ".plan.yml")):
        return "plan"
    return None


@cache
def _matcher(patterns: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(name pattern, relative-path pattern) compiled from glob patterns, once per run."""
    names = [p.rstrip("/") for p in patterns if "/" not in p.rstrip("/")]
    paths = [p.rstrip("/") for p in patterns if "/" in p.rstrip("/")]
    name_re = re.compile("|".join(translate(p) for p in names)) if names else None
    path_re = (
        re.compile("|".join(f"(?:{translate(p)})|(?:{re.escape(p)}/.*)" for p in paths))
        if paths
        else None
    )
    return name_re, path_re


def _excluded(path: str, patterns: tuple[str, ...], root: Path) -> bool:
    """Whether a pattern matches the file's name, or (with a slash) its path under ``root``."""
    if not patterns:
        return False
    name_re, path_re = _matcher(patterns)
    if name_re is not None and name_re.match(os.path.basename(path)):
        return True
    if path_re is None:
        return False
    try:
        rel = Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return False
    return path_re.match(rel) is not None


def collect(
    paths: list[str], config: Config, errors: list[InputError] | None = None
) -> Iterator[tuple[str, Path | None, str]]:
    """(display path, file path or None for stdin, file kind) for every file to lint."""
    root = config.root or Path.cwd().resolve()
    user = config.exclude
    for arg in paths:
        if arg == "-":
            yield "-", None, "prompt"
            continue
        if os.path.isdir(arg):
            yield from _walk(arg, root, user)
            continue
        if not os.path.exists(arg):
            error = InputError("no such file or directory", path=arg)
            if errors is None:
                raise error
            errors.append(error)
            continue
        if config.force_exclude and (
            _excluded(arg, user, root) or _excluded(arg, DEFAULT_EXCLUDE, root)
        ):
            continue
        kind = classify(arg) or ("prompt" if arg.lower().endswith(PROMPT_SUFFIXES) else None)
        if kind is not None:
            yield os.path.normpath(arg), Path(arg), kind


def _walk(top: str, root: Path, user: tuple[str, ...]) -> Iterator[tuple[str, Path | None, str]]:
    found: list[tuple[str, str, str]] = []
    for folder, dirs, names in os.walk(top):
        dirs[:] = sorted(
            d
            for d in dirs
            if not _excluded(d, DEFAULT_EXCLUDE, root)
            and not _excluded(os.path.join(folder, d), user, root)
        )
        for name in names:
            path = os.path.join(folder, name)
            kind = classify(path)
            if kind is None or _excluded(path, user, root):
                continue
            found.append((os.path.normpath(path), path, kind))
    found.sort(key=lambda item: item[0])
    for display, path, kind in found:
        yield display, Path(path), kind
