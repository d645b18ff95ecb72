"""Generate the harness manifests from the root ``plugin.json`` and detect drift.

The root ``plugin.json`` is the single place a maintainer edits the pack's
metadata. Claude Code reads ``.claude-plugin/plugin.json`` and
``.claude-plugin/marketplace.json``; both are derived here, so a version bump
cannot reach one file and miss the other. ``--check`` in CI fails on drift.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch_kit import __version__
from dispatch_kit.errors import InputError
from dispatch_kit.json_positions import DuplicateKey, reject_duplicate_keys

# Fields Claude Code's plugin.json accepts that the root file may set.
CLAUDE_PLUGIN_FIELDS = (
    "name",
    "version",
    "description",
    "author",
    "homepage",
    "repository",
    "license",
    "keywords",
)
CLAUDE_DIR = ".claude-plugin"


@dataclass(frozen=True)
class Drift:
    path: str
    field: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        if self.found is _MISSING:
            return (
                f"{self.path}: field '{self.field}' is missing; "
                f"plugin.json gives {self.expected!r}"
            )
        if self.expected is _MISSING:
            return f"{self.path}: field '{self.field}' is not derived from plugin.json"
        return (
            f"{self.path}: field '{self.field}' is {self.found!r}, "
            f"plugin.json gives {self.expected!r}"
        )


_MISSING = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


def load_json(path: Path) -> Any:
    """Parse a JSON file, turning every defect into an InputError with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 at byte {exc.start}", path=str(path)) from None
    try:
        return json.loads(text, object_pairs_hook=reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", str(path), exc.lineno, exc.colno) from None
    except DuplicateKey as exc:
        raise InputError(f"invalid JSON: {exc}", path=str(path)) from None


def load_source(root: Path) -> dict[str, Any]:
    """The root plugin.json, checked for what every derived file needs."""
    path = root / "plugin.json"
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", str(path), 1, 1)
    for key in ("name", "version", "description"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"field '{key}' must be a non-empty string", str(path), 1, 1)
    return data


def derive(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every derived manifest, keyed by its path relative to the pack root."""
    plugin = {key: source[key] for key in CLAUDE_PLUGIN_FIELDS if key in source}
    market_meta = source.get("marketplace", {})
    entry: dict[str, Any] = {
        "name": source["name"],
        "source": "./",
        "description": source["description"],
        "version": source["version"],
    }
    for key in ("author", "homepage", "repository", "license", "keywords"):
        if key in source:
            entry[key] = source[key]
    if "category" in market_meta:
        entry["category"] = market_meta["category"]
    marketplace = {
        "name": market_meta.get("name", source["name"]),
        "owner": market_meta.get("owner", source.get("author", {"name": source["name"]})),
        "metadata": {"description": source["description"], "version": source["version"]},
        "plugins": [entry],
    }
    return {
        f"{CLAUDE_DIR}/plugin.json": plugin,
        f"{CLAUDE_DIR}/marketplace.json": marketplace,
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write(root: Path) -> list[str]:
    """Write every derived manifest; return the paths that changed."""
    changed = []
    for rel, data in derive(load_source(root)).items():
        target = root / rel
        text = render_json(data)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(rel)
    return changed


def check(root: Path) -> list[Drift]:
    """Every field where a derived manifest (or the package version) differs from plugin.json."""
    source = load_source(root)
    drifts: list[Drift] = []
    for rel, expected in derive(source).items():
        target = root / rel
        found = load_json(target) if target.exists() else {}
        drifts.extend(_diff(rel, expected, found))
    if source["version"] != __version__:
        drifts.append(Drift("scripts/dispatch_kit/__init__.py", "__version__", source["version"],
                            __version__))
    return drifts


def _diff(path: str, expected: Any, found: Any, prefix: str = "") -> Iterator[Drift]:
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in list(expected) + [k for k in found if k not in expected]:
            name = f"{prefix}.{key}" if prefix else key
            yield from _diff(path, expected.get(key, _MISSING), found.get(key, _MISSING), name)
    elif isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        for i, (exp, fnd) in enumerate(zip(expected, found, strict=True)):
            yield from _diff(path, exp, fnd, f"{prefix}[{i}]")
    elif expected != found:
        yield Drift(path, prefix or "<document>", expected, found)
