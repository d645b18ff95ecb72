"""Run the enabled rules over files or text and return findings, suppressions applied.

One process, no threads: the work per file is small, and starting workers
would cost more than it saves at the sizes pre-commit and CI see. What keeps
it fast is elsewhere: rules are grouped once per run by the file kind and
prompt kind they apply to, so a file only meets the rules that can fire on it,
and heavy imports (jinja2, YAML) happen only for files that need them.
"""

from __future__ import annotations

import os
import stat
from functools import cache, partial

from dispatch_kit.errors import InputError
from dispatch_kit.lint import registry
from dispatch_kit.lint.config import Config
from dispatch_kit.lint.document import Document
from dispatch_kit.lint.finding import Finding
from dispatch_kit.lint.kinds import LIKELY
from dispatch_kit.lint.record import TYPE_CHECKING, Record
from dispatch_kit.lint.registry import Rule

if TYPE_CHECKING:
    from pathlib import Path

UNUSED = "DK901"
_SCOPE = {"ignore-next-line": "on the next line", "ignore-file": "in this file"}
INVALID = "DK902"


class RuleSet(Record):
    """The enabled rules, indexed by where they run."""

    enabled: frozenset[str]
    by_file_kind: dict[str, tuple[Rule, ...]]
    by_prompt_kind: dict[str, tuple[Rule, ...]]


@cache
def rule_set(enabled: frozenset[str]) -> RuleSet:
    by_file: dict[str, list[Rule]] = {}
    by_prompt: dict[str, list[Rule]] = {}
    for rule in registry.all_rules():
        if rule.code not in enabled:
            continue
        target = by_file if rule.scope == "file" else by_prompt if rule.scope == "prompt" else None
        if target is None:
            continue
        for kind in rule.kinds:
            target.setdefault(kind, []).append(rule)
    return RuleSet(
        enabled,
        {k: tuple(v) for k, v in by_file.items()},
        {k: tuple(v) for k, v in by_prompt.items()},
    )


def lint_document(doc: Document, rules: RuleSet, *, soften_inferred: bool = False) -> list[Finding]:
    """The document's findings, suppressions applied.

    A finding of a rule that runs only because the prompt's kind was inferred
    from a likely reading (not a marker, not a shape only one kind has) says
    so in its message; with ``soften_inferred`` (the pre-dispatch hook) an
    error among them is reported as a warning, so a misread prompt never
    blocks a session. CI keeps each rule's own severity.
    """
    findings: list[Finding] = []
    for rule in rules.by_file_kind.get(doc.file_kind, ()):
        for line, column, message in rule.check(doc):  # type: ignore[misc]
            findings.append(_finding(doc, rule, line, column, message))
    region = doc.region
    if region is not None:
        likely = region.confidence == LIKELY  # else no rule rests on a likely reading
        for rule in rules.by_prompt_kind.get(region.kind, ()):
            inferred = likely and region.rests_on_inference(rule.kinds)
            for line, column, message in rule.check(region):  # type: ignore[misc]
                finding = _finding(doc, rule, line, column, message)
                if inferred:
                    finding = _inferred(finding, region.kind, soften_inferred)
                findings.append(finding)
    if doc.directives:
        findings = _apply_directives(doc, findings, rules.enabled)
    findings.sort()
    return findings


def _finding(doc: Document, rule: Rule, line: int, column: int, message: str | None) -> Finding:
    return Finding(
        doc.path, line, column, rule.code, rule.name, rule.severity, message or rule.message
    )


def _inferred(finding: Finding, kind: str, soften: bool) -> Finding:
    """A finding that rests on a likely kind: the message names the reading and how to
    overrule it; softened (in the hook), an error becomes a warning."""
    message = (
        f"{finding.message} (read as a likely [{kind.capitalize()}] prompt; "
        "a kind marker overrules that)"
    )
    severity = "warning" if soften else finding.severity
    return finding._replace(message=message, severity=severity)


def _apply_directives(
    doc: Document, findings: list[Finding], enabled: frozenset[str]
) -> list[Finding]:
    """Drop suppressed findings, then report suppressions that did nothing and bad directives."""
    whole_file = [d for d in doc.directives if d.action == "ignore-file"]
    next_line: dict[int, list] = {}
    for directive in doc.directives:
        if directive.action == "ignore-next-line":
            next_line.setdefault(directive.line + 1, []).append(directive)
    kept: list[Finding] = []
    for finding in findings:
        suppressed = False
        for directive in whole_file + next_line.get(finding.line, []):
            if directive.covers(finding.code):
                directive.used.add(finding.code)
                suppressed = True
        if not suppressed:
            kept.append(finding)
    extra: list[Finding] = []
    unused_rule = registry.get(UNUSED)
    invalid_rule = registry.get(INVALID)
    for directive in doc.directives:
        if INVALID in enabled:
            for problem in directive.problems:
                extra.append(_finding(doc, invalid_rule, directive.line, directive.column, problem))
        if UNUSED not in enabled or directive.action == "set":
            continue
        # Only the message differs between a bare and a coded suppression that is unused.
        if directive.codes is None:
            unused = (
                None
                if directive.used
                else f"remove this {directive.action} suppression: it suppresses nothing"
            )
        else:
            idle = [c for c in directive.codes if c in enabled and c not in directive.used]
            unused = (
                f"unused suppression of {', '.join(idle)}: nothing to suppress "
                f"{_SCOPE[directive.action]}; remove it"
                if idle
                else None
            )
        if unused is not None:
            extra.append(_finding(doc, unused_rule, directive.line, directive.column, unused))
    for finding in extra:  # a whole-file suppression may silence these too
        if not any(d.covers(finding.code) for d in whole_file if d.codes is not None):
            kept.append(finding)
    return kept


BOM = b"\xef\xbb\xbf"
MAX_FILE_BYTES = 16 * 1024 * 1024  # the shared reader's limit (dispatch_kit.readers.yamlfile)


def read_text(path: str | Path | None) -> str:
    """A file's (or, for None, stdin's) text: UTF-8, BOM dropped; unreadable is an InputError."""
    if path is not None:  # the common case, read directly: a tenth of a file's lint time
        try:
            text = _read_bytes(path).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            text = None  # the shared reader below words the error
        if text is not None:
            return text[1:] if text.startswith("\ufeff") else text
    from dispatch_kit.readers.yamlfile import read_text as read

    text = read("-" if path is None else str(path))
    return text[1:] if text.startswith("\ufeff") else text


def _read_bytes(path: str | Path) -> bytes:
    """A file's bytes through the raw descriptor.

    ``open(path, "rb")`` builds a buffered reader per file and asks the file's
    size first; over a thousand small prompts that was half the reading time.
    Two ``os.read`` calls read a typical prompt (the second finds the end).
    A FIFO or a device is refused (OSError; the shared reader words it):
    ``O_NONBLOCK`` keeps the open of a FIFO from waiting for a writer, and only
    a regular file is read, at most MAX_FILE_BYTES of it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        chunks = []
        size = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise OSError("too large")
    finally:
        os.close(fd)
    return b"".join(chunks)


def lint_text(
    text: str,
    path: str = "-",
    config: Config | None = None,
    *,
    file_kind: str = "prompt",
    agent: str | None = None,
    default_kind: str = "unknown",
    base_dir: str | Path | None = None,
    soften_inferred: bool = False,
) -> list[Finding]:
    """Lint text that is not (or not yet) a file: stdin, a hook's prompt, a rendered template.

    ``agent`` is the target agent; ``default_kind`` is the prompt kind when no
    marker says otherwise (the hook passes "dispatch": whatever it sees is one);
    ``soften_inferred``: see :func:`lint_document`.
    """
    rules = rule_set((config or Config()).enabled())
    doc = Document(
        text,
        path,
        file_kind,
        agent=agent,
        default_kind=default_kind,
        base_dir=base_dir or os.getcwd(),
    )
    return lint_document(doc, rules, soften_inferred=soften_inferred)


def lint_paths(
    paths: list[str],
    config: Config | None = None,
    errors: list[InputError] | None = None,
    *,
    fix: bool = False,
    fixed: list[tuple[str, str]] | None = None,
    stdin_name: str | None = None,
    agent: str | None = None,
) -> list[Finding]:
    """Lint files and folders (``-`` is stdin); the findings, suppressions applied.

    Unreadable input raises InputError, or is appended to ``errors`` when a
    list is given (the CLI reports it and goes on with the other files). With
    ``fix``, fixable files are rewritten first and the findings are those of
    the fixed text; ``fixed`` receives (path, new text) for each file fixed,
    and stdin's text, fixed or not. ``stdin_name`` names stdin (its file kind
    follows the name); ``agent`` is the target agent of a prompt on stdin.
    """
    from dispatch_kit.lint.files import classify, collect

    config = config or Config()
    rules = rule_set(config.enabled())
    findings: list[Finding] = []
    for display, fs_path, file_kind in collect(paths, config, errors):
        try:
            text = read_text(fs_path)
        except InputError as exc:
            if errors is None:
                raise
            exc.path = display
            errors.append(exc)
            continue
        stdin_agent = None
        if fs_path is None:
            display = stdin_name or display
            file_kind = (classify(stdin_name) if stdin_name else None) or "prompt"
            stdin_agent = agent

        document = partial(
            Document,
            path=display,
            file_kind=file_kind,
            fs_path=fs_path,
            base_dir=None if fs_path else os.getcwd(),
            agent=stdin_agent,
        )
        doc = document(text)
        if fix:
            new = _fix(doc, fs_path)
            if new is not None:
                doc = document(new)
            if fixed is not None and (new is not None or fs_path is None):
                fixed.append((display, doc.text))
        findings.extend(lint_document(doc, rules))
    return findings


def _fix(doc: Document, fs_path: str | None) -> str | None:
    """Write the fixed text back (a BOM the file had is kept); the new text, or None."""
    from dispatch_kit.lint.fix import fixed_text

    new = fixed_text(doc)
    if new is not None and fs_path is not None:
        with open(fs_path, "rb") as handle:
            bom = BOM if handle.read(len(BOM)) == BOM else b""
        with open(fs_path, "wb") as handle:
            handle.write(bom + new.encode("utf-8"))
    return new
