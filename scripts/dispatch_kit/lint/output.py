"""Findings as text, JSON, SARIF 2.1.0 or GitHub workflow annotations.

- text: ``path:line:col: CODE message``, the shape editors and CI logs link.
- json: an array of ``{path, line, column, code, name, severity, message}``.
- sarif: SARIF 2.1.0 for code-scanning upload; artifact URIs are relative to
  ``%SRCROOT%`` (the directory the linter ran in), so the log carries no
  machine paths and the consumer maps it onto its own checkout.
- github: ``::error file=...,line=...,col=...,title=CODE::message`` lines that
  GitHub Actions turns into annotations on the pull request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from dispatch_kit import __version__
from dispatch_kit.lint.finding import Finding

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
HOMEPAGE = "https://github.com/dispatch-kit/dispatch-kit"


def render(findings: list[Finding], fmt: str) -> str:
    if fmt == "text":
        return "".join(f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}\n" for f in findings)
    import json  # only the json and sarif formats need it: the text report starts faster

    if fmt == "json":
        return _json_array(findings, json.encoder.encode_basestring)
    if fmt == "sarif":
        return json.dumps(sarif(findings), indent=2, ensure_ascii=False) + "\n"
    if fmt == "github":
        return "".join(github_line(f) + "\n" for f in findings)
    raise ValueError(f"unknown format {fmt!r}")


def _json_array(findings: list[Finding], quote: Callable[[str], str]) -> str:
    """``json.dumps([f.to_dict() ...], indent=2, ensure_ascii=False) + "\\n"``, built directly.

    An indent sends ``json.dumps`` down its pure-Python encoder, which was a
    tenth of a thousand-file run; quoting each string with the C quoter and
    laying out the fixed shape by hand gives the same bytes (a test holds the
    two equal).
    """
    if not findings:
        return "[]\n"
    items = [
        f'  {{\n    "path": {quote(f.path)},\n    "line": {int(f.line)},\n'
        f'    "column": {int(f.column)},\n    "code": {quote(f.code)},\n'
        f'    "name": {quote(f.name)},\n    "severity": {quote(f.severity)},\n'
        f'    "message": {quote(f.message)}\n  }}'
        for f in findings
    ]
    return "[\n" + ",\n".join(items) + "\n]\n"


def summary(findings: list[Finding], files: int | None = None, unreadable: int = 0) -> str:
    """The closing line; never "all checks passed" when some input could not be read."""
    if unreadable:
        return (
            f"dispatch-kit lint: {unreadable} input{'s' * (unreadable != 1)} could not be "
            f"linted (above); {len(findings)} finding{'s' * (len(findings) != 1)} in the rest"
        )
    if not findings:
        return "dispatch-kit lint: all checks passed"
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    paths = len({f.path for f in findings})
    parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
    return (
        f"dispatch-kit lint: {len(findings)} finding{'s' * (len(findings) != 1)} "
        f"({', '.join(parts)}) in {paths} file{'s' * (paths != 1)}; "
        "`dispatch-kit rule CODE` explains a rule"
    )


# --------------------------------------------------------------------------- github


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(finding: Finding) -> str:
    level = "error" if finding.severity == "error" else "warning"
    props = ",".join(
        [
            f"file={_escape_property(finding.path)}",
            f"line={finding.line}",
            f"col={finding.column}",
            f"title={_escape_property(finding.code)}",
        ]
    )
    return f"::{level} {props}::{_escape_data(finding.message)}"


# --------------------------------------------------------------------------- sarif


def artifact_uri(path: str) -> str:
    """A relative URI for ``path`` against the directory the run started in."""
    if path == "-":
        return "stdin"
    from urllib.parse import quote  # SARIF only; urllib.parse costs ~3 ms to import

    rel = os.path.relpath(path) if os.path.isabs(path) else os.path.normpath(path)
    return quote(rel.replace(os.sep, "/"), safe="/-._~")


def sarif(findings: Iterable[Finding]) -> dict:
    from dispatch_kit.lint import registry

    rules = registry.all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = []
    for f in findings:
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": "error" if f.severity == "error" else "warning",
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {
                                "uri": artifact_uri(f.path),
                                "uriBaseId": "%SRCROOT%",
                            },
                            "region": {"startLine": f.line, "startColumn": f.column},
                        }
                    }
                ],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dispatch-kit",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": HOMEPAGE,
                        "rules": [_sarif_rule(rule) for rule in rules],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _sarif_rule(rule) -> dict:  # noqa: ANN001 - a registry.Rule
    from dispatch_kit.lint.docs import rule_markdown, rule_text

    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.message},
        "fullDescription": {"text": " ".join(rule.rationale.split())},
        "help": {"text": rule_text(rule), "markdown": rule_markdown(rule)},
        "helpUri": f"{HOMEPAGE}/blob/main/docs/rules.md#{rule.code.lower()}-{rule.name}",
        "defaultConfiguration": {"level": "error" if rule.severity == "error" else "warning"},
        "properties": {"tags": ["dispatch", rule.code[:3] + "xx"]},
    }
