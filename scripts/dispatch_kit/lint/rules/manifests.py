"""DK711-DK712: plugin manifests the harness accepts, in sync with their single source.

Manifests are read by the harness at install time, when a mistake is
expensive to diagnose: a component path with ``../`` breaks once the plugin is
copied into the cache, a bad name fails installation. The drift check is the
one ``dispatch-kit manifests --check`` runs (this pack derives
``.claude-plugin/*.json`` from a root ``plugin.json``).
"""

from __future__ import annotations

from collections.abc import Iterator

from dispatch_kit.lint.document import Document
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.record import TYPE_CHECKING
from dispatch_kit.lint.registry import Example, Hit, Rule

if TYPE_CHECKING:
    from typing import Any

_KEBAB = lazy(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SEMVER = lazy(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
COMPONENT_FIELDS = (
    "skills",
    "agents",
    "commands",
    "hooks",
    "mcpServers",
    "outputStyles",
    "lspServers",
)


def _key_line(doc: Document, key: str) -> tuple[int, int]:
    from dispatch_kit.readers.json_positions import key_position

    return key_position(doc.text, key)


def _load(doc: Document) -> tuple[Any, Hit | None]:
    if "json" not in doc.cache:
        from dispatch_kit.errors import InputError
        from dispatch_kit.readers.json_positions import parse_json  # only manifests need it

        try:
            doc.cache["json"] = (parse_json(doc.text, doc.path), None)
        except InputError as exc:
            doc.cache["json"] = (None, (exc.line or 1, exc.column or 1, exc.message))
    return doc.cache["json"]


def _check_manifest(doc: Document) -> Iterator[Hit]:
    from pathlib import Path  # manifests only; a Markdown-only lint never loads pathlib

    data, error = _load(doc)
    if error:
        yield error
        return
    if not isinstance(data, dict):
        yield 1, 1, "a manifest must be a JSON object"
        return
    name = Path(doc.path).name
    if name == "marketplace.json":
        yield from _check_marketplace(doc, data)
        return
    if not isinstance(data.get("name"), str) or not _KEBAB.match(data["name"]):
        yield *_key_line(doc, "name"), "'name' is required and must be kebab-case (my-plugin)"
    version = data.get("version")
    if version is not None and (not isinstance(version, str) or not _SEMVER.match(version)):
        yield *_key_line(doc, "version"), f"'version' must be semver (1.2.3), found {version!r}"
    for key in COMPONENT_FIELDS:
        value = data.get(key)
        paths = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for path in paths:
            if isinstance(path, str) and (not path.startswith("./") or ".." in Path(path).parts):
                yield (
                    *_key_line(doc, key),
                    (
                        f"component path '{path}' must start with ./ and stay inside the plugin "
                        "(installed plugins are copied, so ../ breaks)"
                    ),
                )


def _check_marketplace(doc: Document, data: dict[str, Any]) -> Iterator[Hit]:
    if not isinstance(data.get("name"), str) or not data["name"]:
        yield *_key_line(doc, "name"), "marketplace 'name' is required"
    owner = data.get("owner")
    if not isinstance(owner, dict) or not isinstance(owner.get("name"), str):
        yield *_key_line(doc, "owner"), "marketplace 'owner' needs a 'name'"
    plugins = data.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        yield *_key_line(doc, "plugins"), "marketplace 'plugins' must list at least one plugin"
        return
    for entry in plugins:
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("source"):
            yield *_key_line(doc, "plugins"), "each marketplace plugin needs 'name' and 'source'"


def _check_drift(doc: Document) -> Iterator[Hit]:
    """Delegate to :mod:`dispatch_kit.harness.manifests`: a root plugin.json feeding
    .claude-plugin/."""
    if doc.fs_path is None or doc.fs_path.name != "plugin.json":
        return
    root = doc.fs_path.resolve().parent
    if root.name == ".claude-plugin" or not (root / ".claude-plugin").is_dir():
        return
    if _load(doc)[1] is not None:
        return  # DK711 reports the syntax error
    from dispatch_kit.errors import InputError
    from dispatch_kit.harness import manifests

    try:
        drifts = manifests.check(root)
    except InputError:
        return  # a malformed source: DK711 says why
    for drift in drifts:
        if drift.path.startswith(manifests.CLAUDE_DIR):
            yield 1, 1, f"{drift}; run `dispatch-kit manifests` to regenerate"


_GOOD = """{
  "name": "release-tools",
  "version": "1.2.0",
  "description": "Release helpers.",
  "skills": "./skills/"
}
"""

_SOURCE = '{"name": "release-tools", "version": "1.2.0", "description": "Release helpers."}\n'
_DERIVED = {
    ".claude-plugin/plugin.json": _SOURCE,
    ".claude-plugin/marketplace.json": """{
  "name": "release-tools",
  "owner": {"name": "release-tools"},
  "metadata": {"description": "Release helpers.", "version": "1.2.0"},
  "plugins": [{"name": "release-tools", "source": "./", "description": "Release helpers.",
               "version": "1.2.0"}]
}
""",
}

RULES = (
    Rule(
        code="DK711",
        name="invalid-manifest",
        severity="error",
        message="fix the plugin manifest: valid JSON, a kebab-case name, semver version, "
        "./-relative component paths",
        rationale="""\
The harness reads the manifest when the plugin is installed. Invalid JSON or
a bad name fails the install; a component path outside the plugin folder
(../) works in a checkout and breaks once the plugin is copied into the
harness's cache.""",
        applies_to="plugin.json and .claude-plugin/*.json",
        bad=Example(
            _GOOD.replace('"./skills/"', '"../shared/skills/"'), path=".claude-plugin/plugin.json"
        ),
        good=Example(_GOOD, path=".claude-plugin/plugin.json"),
        scope="file",
        kinds=frozenset({"manifest"}),
        check=_check_manifest,
    ),
    Rule(
        code="DK712",
        name="manifest-drift",
        severity="error",
        message="regenerate .claude-plugin/ from plugin.json with `dispatch-kit manifests`",
        rationale="""\
When the harness manifests are derived from one root plugin.json, a version
bump or description edit made in only one place ships two different plugins
to two harnesses. This is the same comparison `dispatch-kit manifests
--check` makes.""",
        applies_to="a root plugin.json next to a .claude-plugin/ folder",
        bad=Example(_SOURCE.replace("1.2.0", "1.3.0"), path="plugin.json", files=_DERIVED),
        good=Example(_SOURCE, path="plugin.json", files=_DERIVED),
        scope="file",
        kinds=frozenset({"manifest"}),
        check=_check_drift,
    ),
)
