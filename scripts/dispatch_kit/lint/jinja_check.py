"""Static checks of Jinja templates: syntax, unknown filters, undefined variables, missing files.

A template renders with ``StrictUndefined``, so a variable nobody passes is a
render-time failure, typically in an orchestrator far from the template's
author. The linter finds it earlier: every variable a template (or what it
extends or includes, which share its context) reads must be set in the
template, be a macro argument or loop variable, or be documented under
``Variables:`` in a header comment, which is where the renderer's callers look.
An ``import`` without context shares nothing, so what an imported template
reads must be documented there. jinja2 is imported only when a template is
linted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch_kit.lint.document import Document

_COMMENT = re.compile(r"\{#-?(.*?)-?#\}", re.S)
_SECTION = re.compile(
    r"^[ \t]*(?:variables|vars|inputs|parameters|context)\b[^:\n]*:[ \t]*(.*)$", re.I
)
_ENTRY = re.compile(r"[-*]?[ \t]*`?([A-Za-z_]\w*)`?")
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


@dataclass
class Analysis:
    syntax: tuple[int, str] | None = None
    undefined: list[tuple[str, int, str]] = field(default_factory=list)  # name, line, message
    missing: list[tuple[str, int]] = field(default_factory=list)  # template name, line


@dataclass
class _Facts:
    required: dict[str, int]  # variable -> first line that reads it
    documented: set[str]
    references: list[tuple[str, int, bool, bool]]  # name, line, shares context, ignore missing


def documented_names(source: str) -> set[str]:
    """Names listed under a ``Variables:`` heading in the template's comments."""
    names: set[str] = set()
    for comment in _COMMENT.finditer(source):
        lines = comment.group(1).splitlines()
        i = 0
        while i < len(lines):
            head = _SECTION.match(lines[i])
            i += 1
            if head is None:
                continue
            names.update(_IDENT.findall(head.group(1)))
            base: int | None = None
            while i < len(lines) and lines[i].strip():
                line = lines[i]
                indent = len(line) - len(line.lstrip())
                if base is None:
                    base = indent
                if indent < base:
                    break
                if indent == base:
                    entry = _ENTRY.match(line.strip())
                    if entry:
                        names.add(entry.group(1))
                i += 1
    return names


def _environment(search: tuple[str, ...]) -> Any:
    from jinja2 import Environment, FileSystemLoader

    env = Environment(
        loader=FileSystemLoader(list(search)),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    try:  # the renderer's own filters (code, fence, duration...), so templates see the same names
        from dispatch_kit.render.templates import environment

        pack = environment()
        env.filters.update(pack.filters)
        env.tests.update(pack.tests)
        env.globals.update(pack.globals)
    except Exception:  # noqa: BLE001 - no renderer or pack: lint with Jinja's built-ins
        pass
    return env


def search_path(doc: Document) -> tuple[str, ...]:
    """Where ``import``/``include`` names resolve.

    The templates root the file lives in, the file's own folder, then the pack.
    """
    paths: list[Path] = []
    if doc.fs_path is not None:
        here = doc.fs_path.resolve().parent
        for folder in (here, *here.parents):
            if folder.name == "templates":
                paths.append(folder)
                break
        paths.append(here)
    elif doc.base_dir is not None:
        paths.append(Path(doc.base_dir))
    try:
        from dispatch_kit.packroot import templates_dir

        paths.append(templates_dir())
    except Exception:  # noqa: BLE001 - outside a pack checkout
        pass
    unique: list[str] = []
    for path in paths:
        if str(path) not in unique:
            unique.append(str(path))
    return tuple(unique)


def _facts(env: Any, source: str, name: str | None, filename: str | None) -> _Facts:
    """Parse and compile ``source``; raises TemplateSyntaxError (incl. unknown filters)."""
    from jinja2 import meta, nodes

    ast = env.parse(source, name, filename)
    env.compile(ast, name, filename, raw=True)  # code generation rejects unknown filters/tests
    # Jinja's own analysis treats a block as a separate scope, so a name set or
    # imported at the top of a child template (which its blocks do see) comes
    # back as undeclared: every name assigned anywhere in the file counts.
    names = meta.find_undeclared_variables(ast) - set(env.globals) - _assigned(ast)
    required: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in names:
            line = node.lineno or 1
            required[node.name] = min(required.get(node.name, line), line)
    references: list[tuple[str, int, bool, bool]] = []
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        target = node.template
        if not isinstance(target, nodes.Const):
            continue  # a computed name: nothing to follow statically
        values = target.value if isinstance(target.value, (list, tuple)) else [target.value]
        shares = isinstance(node, nodes.Extends) or bool(getattr(node, "with_context", False))
        ignore_missing = bool(getattr(node, "ignore_missing", False))
        for value in values:
            if isinstance(value, str):
                references.append((value, node.lineno or 1, shares, ignore_missing))
    return _Facts(required, documented_names(source), references)


def _assigned(ast: Any) -> set[str]:
    from jinja2 import nodes

    names: set[str] = set()
    for node in ast.find_all((nodes.Assign, nodes.AssignBlock, nodes.For)):
        names.update(n.name for n in node.target.find_all(nodes.Name))
        if isinstance(node.target, nodes.Name):
            names.add(node.target.name)
    for node in ast.find_all(nodes.Import):
        names.add(node.target)
    for node in ast.find_all(nodes.FromImport):
        names.update(n if isinstance(n, str) else n[1] for n in node.names)
    for node in ast.find_all(nodes.Macro):
        names.add(node.name)
    return names


def analyze(doc: Document) -> Analysis:
    """Everything DK801-DK803 report for one template (computed once per document)."""
    if "jinja" in doc.cache:
        return doc.cache["jinja"]
    from jinja2 import TemplateNotFound, TemplateSyntaxError

    result = Analysis()
    doc.cache["jinja"] = result
    env = _environment(search_path(doc))
    try:
        facts = _facts(env, doc.text, None, doc.path)
    except TemplateSyntaxError as exc:
        result.syntax = (exc.lineno or 1, exc.message or "invalid template")
        return result
    required = dict(facts.required)
    via: dict[str, str] = {}
    documented = set(facts.documented)
    pending = [(ref, ref[1]) for ref in facts.references]
    seen: set[str] = set()
    while pending:
        (name, line, shares, ignore_missing), at_line = pending.pop(0)
        try:
            source, filename, _ = env.loader.get_source(env, name)
        except TemplateNotFound:
            if not ignore_missing:
                result.missing.append((name, at_line))
            continue
        if filename in seen:
            continue
        seen.add(filename)
        try:
            sub = _facts(env, source, name, filename)
        except TemplateSyntaxError:
            continue  # reported when that template is linted itself
        if shares:
            documented |= sub.documented
            for var in sub.required:
                if var not in required:
                    required[var] = at_line
                    via[var] = name
            pending.extend((ref, at_line) for ref in sub.references)
        else:
            for var in sorted(set(sub.required) - sub.documented):
                result.undefined.append(
                    (
                        var,
                        at_line,
                        f"imported template '{name}' reads '{var}', which an import without "
                        "context cannot see; pass it as a macro argument or document it there",
                    )
                )
    for var, line in sorted(required.items(), key=lambda item: (item[1], item[0])):
        if var in documented:
            continue
        where = f" (read by '{via[var]}')" if var in via else ""
        result.undefined.append(
            (
                var,
                line,
                f"variable '{var}'{where} is not documented: list it under 'Variables:' in the "
                "template's header comment, or set it in the template",
            )
        )
    result.undefined.sort(key=lambda item: (item[1], item[0]))
    return result
