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

from dispatch_kit.errors import InputError
from dispatch_kit.lint.config import Config
from dispatch_kit.lint.record import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

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
    folder, name = os.path.split(os.fspath(path))
    return _classify(folder, name)


def _classify(folder: str, name: str) -> str | None:
    """``classify`` for a file ``name`` in ``folder`` (``os.path.split``'s two halves)."""
    lower = name.lower()
    if name == "SKILL.md":
        return "skill"
    if lower.endswith(TEMPLATE_SUFFIXES):
        return "template"
    if lower.endswith(MARKDOWN_SUFFIXES):
        if lower.split(".")[0] in DOCUMENT_STEMS:
            return "document"
        return _markdown_kind(folder)
    if lower.endswith(".json"):
        if name == "plugin.json" or os.path.basename(folder) == ".claude-plugin":
            return "manifest"
        return None
    if lower in ("plan.yaml", "plan.yml") or lower.endswith((".plan.yaml", ".plan.yml")):
        return "plan"
    return None


@cache
def _markdown_kind(folder: str) -> str:
    """What a Markdown file in ``folder`` is, by the folder alone: once per folder, since
    a thousand files share a few hundred folders."""
    parts = folder.replace("\\", "/").split("/")
    if parts[-1] == "agents":
        return "agent"
    if DOCUMENT_FOLDERS.intersection(parts):
        return "document"
    return "prompt"


_GLOB_CHARS = frozenset("*?[")


@cache
def _matcher(
    patterns: tuple[str, ...],
) -> tuple[frozenset[str], re.Pattern[str] | None, tuple[str, ...], re.Pattern[str] | None]:
    """(literal names, name pattern, literal paths, path pattern) from glob patterns, once per run.

    Most patterns (``.git``, ``node_modules``, ``tests/fixtures``) have no
    wildcard: a set lookup or a prefix test answers for them, and compiling
    their translated globs into one big pattern cost more than the lookups.
    """
    names = [p.rstrip("/") for p in patterns if "/" not in p.rstrip("/")]
    paths = [p.rstrip("/") for p in patterns if "/" in p.rstrip("/")]
    literal_names = frozenset(p for p in names if not _GLOB_CHARS.intersection(p))
    glob_names = [p for p in names if _GLOB_CHARS.intersection(p)]
    literal_paths = tuple(p for p in paths if not _GLOB_CHARS.intersection(p))
    glob_paths = [p for p in paths if _GLOB_CHARS.intersection(p)]
    name_re = re.compile("|".join(translate(p) for p in glob_names)) if glob_names else None
    path_re = (
        re.compile("|".join(f"(?:{translate(p)})|(?:{re.escape(p)}/.*)" for p in glob_paths))
        if glob_paths
        else None
    )
    return literal_names, name_re, literal_paths, path_re


def _excluded(path: str, patterns: tuple[str, ...], root: str, real: str | None = None) -> bool:
    """Whether a pattern matches the file's name, or (with a slash) its path under ``root``.

    ``real`` is the file's resolved path when the caller already knows it: the
    walk resolves each folder once instead of every file (``Path.resolve`` per
    file was a tenth of a thousand-file run).
    """
    if not patterns:
        return False
    literal_names, name_re, literal_paths, path_re = _matcher(patterns)
    name = os.path.basename(path)
    if name in literal_names or (name_re is not None and name_re.match(name)):
        return True
    if path_re is None and not literal_paths:
        return False
    rel = _relative(os.path.realpath(path) if real is None else real, root)
    if rel is None:
        return False
    # A literal glob matches only itself; "PATH/..." covers what lies under it.
    for literal in literal_paths:
        if rel == literal or rel.startswith(literal + "/"):
            return True
    return path_re is not None and path_re.match(rel) is not None


def _relative(real: str, root: str) -> str | None:
    """``real`` relative to ``root`` as ``Path.relative_to`` spells it, or None when outside."""
    if real == root:
        return "."
    prefix = root if root.endswith("/") else root + "/"
    return real[len(prefix) :] if real.startswith(prefix) else None


def collect(
    paths: list[str], config: Config, errors: list[InputError] | None = None
) -> Iterator[tuple[str, str | None, str]]:
    """(display path, file path or None for stdin, file kind) for every file to lint."""
    root = os.fspath(config.root) if config.root else os.path.realpath(os.getcwd())
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
            yield os.path.normpath(arg), arg, kind


def _walk(top: str, root: str, user: tuple[str, ...]) -> Iterator[tuple[str, str | None, str]]:
    """Every lintable file under ``top``, sorted; what ``os.walk`` would visit, found faster.

    ``os.scandir`` entries know whether they are folders or symlinks without a
    further system call, and each folder is resolved once for the exclude
    patterns, not each file.
    """
    found: list[tuple[str, str, str]] = []
    # A stack, not recursion: a tree 1,200 folders deep overflowed Python's stack.
    pending = [(top, os.path.realpath(top) if user else "")]
    while pending:
        folder, real = pending.pop()
        _scan(folder, root, user, found, real, pending)
    found.sort(key=lambda item: item[0])
    yield from found


def _scan(
    folder: str,
    root: str,
    user: tuple[str, ...],
    found: list[tuple[str, str, str]],
    real_folder: str,
    pending: list[tuple[str, str]],
) -> None:
    """Add the lintable files in ``folder`` (resolved: ``real_folder``); queue its subfolders.

    The folder's facts are worked out once, not per file: ``entry.path`` is
    ``os.path.join(folder, entry.name)``, so its ``os.path.split`` head, its
    ``normpath`` and its resolved path differ between entries only by the name.
    A subfolder that is not a symlink resolves to ``real_folder/name``, so only
    the top folder pays for ``os.path.realpath`` (an lstat per component).
    """
    try:
        entries = os.scandir(folder)
    except OSError:
        return  # os.walk skips a folder it cannot list, and so does the linter
    subfolders: list[os.DirEntry[str]] = []
    head = os.path.split(os.path.join(folder, "_"))[0]
    norm = os.path.normpath(folder)
    shown = "" if norm == "." else norm if norm.endswith("/") else norm + "/"
    real_prefix = real_folder if real_folder.endswith("/") else real_folder + "/"
    with entries:
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(entry)
                continue
            name = entry.name
            kind = _classify(head, name)
            if kind is None:
                continue
            path = entry.path
            if user:
                # A symlinked file resolves elsewhere; every other file sits in its real folder.
                real = None if entry.is_symlink() else real_prefix + name
                if _excluded(path, user, root, real):
                    continue
            found.append((shown + name, path, kind))
    for entry in subfolders:
        if _excluded(entry.name, DEFAULT_EXCLUDE, root):
            continue
        if user:
            real = None if entry.is_symlink() else real_prefix + entry.name
            if _excluded(entry.path, user, root, real):
                continue
        if not entry.is_symlink():  # like os.walk: list a linked folder, never enter it
            pending.append((entry.path, real_prefix + entry.name if user else ""))
