"""Generate the harness manifests from the root ``plugin.json`` and detect drift.

The root ``plugin.json`` is the single place a maintainer edits the pack's
metadata. Claude Code reads ``.claude-plugin/plugin.json`` and
``.claude-plugin/marketplace.json``; both are derived here, so a version bump
cannot reach one file and miss the other. ``--check`` in CI fails on drift.

The marketplace entry may install a subfolder of the checkout (``marketplace.source``
in the root file, e.g. ``./plugin``) instead of the checkout itself: Claude Code
copies an entry's folder whole into its plugin cache, so installing the checkout
from a local clone would copy ``.venv/``, ``tools/node_modules/`` and the like.
That folder links to the pack's folders (the copy materialises links that stay
inside the marketplace), but the validator reads no link for the manifest and
the hooks, so those two are real files there, derived here as well. A wheel or
an installed plugin has no such folder and derives only the two manifests.

In a checkout, the other harnesses' manifests, hooks and agent files are
derived too (:mod:`dispatch_kit.harness.writers`): Codex's, Gemini CLI's,
Qwen Code's and OpenCode's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch_kit import __version__
from dispatch_kit.errors import InputError

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
    # Shown by `claude plugin validate`: the hosts the plugin reaches ({"hosts": [...]}).
    "network",
)
CLAUDE_DIR = ".claude-plugin"
HOOKS = "hooks/hooks.json"
TEXT = "<text>"  # the field of a Drift in a generated text file (no fields to compare)


@dataclass(frozen=True)
class Drift:
    path: str
    field: str
    expected: Any
    found: Any
    source: str = "plugin.json"  # the file the expected value comes from

    def __str__(self) -> str:
        if self.field == TEXT:
            state = "is missing" if self.found is _MISSING else "differs from what"
            return (f"{self.path}: {state}{' from what' if self.found is _MISSING else ''} "
                    f"{self.source} generates; run `dispatch-kit manifests`")
        if self.found is _MISSING:
            return (
                f"{self.path}: field '{self.field}' is missing; "
                f"{self.source} gives {self.expected!r}"
            )
        if self.expected is _MISSING:
            return f"{self.path}: field '{self.field}' is not derived from {self.source}"
        return (
            f"{self.path}: field '{self.field}' is {self.found!r}, "
            f"{self.source} gives {self.expected!r}"
        )


_MISSING = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


def load_json(path: Path) -> Any:
    """Parse a JSON file, turning every defect into an InputError at ``file:line:col``.

    Read like every input: a regular file (a folder or a FIFO named
    ``plugin.json`` is refused), UTF-8 (a bad byte is named by line and
    column), strict JSON (a duplicate key at its second occurrence).
    """
    from dispatch_kit.readers.json_positions import read_json

    return read_json(str(path))


def read_derived_text(path: Path) -> str:
    """A derived file's text, through the same reader (a folder or bad UTF-8: one line)."""
    from dispatch_kit.readers.yamlfile import read_text

    return read_text(str(path))


def load_source(root: Path) -> dict[str, Any]:
    """The root plugin.json, checked for what every derived file needs.

    A defect is named at the field's line and column (the text is read again,
    with positions, only then).
    """
    from dispatch_kit.readers.json_positions import parse_json
    from dispatch_kit.readers.yamlfile import read_text

    path = str(root / "plugin.json")
    text = read_text(path)
    data = parse_json(text, path)

    def refuse(message: str, *keys: str) -> InputError:
        from dispatch_kit.readers.json_positions import load_json as positioned
        from dispatch_kit.readers.yamlfile import locate

        return InputError(message, path, *locate(positioned(text, path), keys))

    if not isinstance(data, dict):
        raise InputError("expected a JSON object", path, 1, 1)
    for key in ("name", "version", "description"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise refuse(f"field '{key}' must be a non-empty string", key)
    unwritable = _lone_surrogate(data, [])
    if unwritable is not None:
        raise refuse("text holds a lone surrogate (a \\ud800-\\udfff escape not part of a "
                     "pair); no manifest can be written with it", *unwritable)
    if not isinstance(data.get("marketplace", {}), dict):
        raise refuse("field 'marketplace' must be an object", "marketplace")
    try:
        install_folder(data)
    except InputError as exc:
        raise refuse(exc.message, "marketplace", "source") from None
    return data


def _lone_surrogate(data: Any, keys: list[Any]) -> list[Any] | None:
    """Where a JSON escape left half a surrogate pair (UTF-8 cannot encode it), or None."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return keys
        return None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(
        data, list) else ()
    for key, value in items:
        found = _lone_surrogate(key, [*keys, key]) if isinstance(key, str) else None
        found = found if found is not None else _lone_surrogate(value, [*keys, key])
        if found is not None:
            return found
    return None


def install_folder(source: dict[str, Any]) -> str | None:
    """The folder the marketplace entry installs, relative to the root; None for the root.

    Checked here because Claude Code resolves it against the marketplace folder
    and refuses a path that leaves it, which would surface only at install time.
    """
    entry_source = source.get("marketplace", {}).get("source", "./")
    parts = entry_source.split("/") if isinstance(entry_source, str) else []
    if not parts or parts[0] != "." or ".." in parts or "\\" in entry_source:
        raise InputError(
            f"field 'marketplace.source' must be a folder inside the pack written './NAME', "
            f"not {entry_source!r}",
            path="plugin.json",
        )
    folder = "/".join(part for part in parts[1:] if part not in ("", "."))
    return folder or None


def derive(source: dict[str, Any], root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every derived file, keyed by its path relative to the pack root.

    With ``root``, and when the entry installs a subfolder that exists there (a
    checkout), that folder's manifest and hooks copy are derived too.
    """
    plugin = {key: source[key] for key in CLAUDE_PLUGIN_FIELDS if key in source}
    market_meta = source.get("marketplace", {})
    folder = install_folder(source)
    entry: dict[str, Any] = {
        "name": source["name"],
        "source": f"./{folder}" if folder else "./",
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
    derived = {
        f"{CLAUDE_DIR}/plugin.json": plugin,
        f"{CLAUDE_DIR}/marketplace.json": marketplace,
    }
    if root is not None and folder is not None and (root / folder).is_dir():
        derived[f"{folder}/{CLAUDE_DIR}/plugin.json"] = plugin
        if (root / HOOKS).is_file():
            derived[f"{folder}/{HOOKS}"] = load_json(root / HOOKS)
    if root is not None:
        from dispatch_kit.harness import writers as harness_manifests

        if harness_manifests.applies(root):
            derived.update(harness_manifests.derive(source, root))  # type: ignore[arg-type]
    return derived


def origin(rel: str) -> str:
    """The file a derived file's content comes from, for drift messages."""
    if rel.startswith("harnesses/") and "/agents/" in rel:
        return f"agents/{rel.rsplit('/', 1)[1]}"
    if rel.startswith("harnesses/") and not rel.endswith(("-extension.json", "marketplace.json")):
        return "scripts/dispatch_kit/harness/"
    return HOOKS if rel.endswith(HOOKS) and rel != HOOKS else "plugin.json"


def _real_target(root: Path, rel: str) -> Path:
    """``root / rel``, refused when a link stands on the way.

    The validator reads no link for these files, and writing through a link
    (say ``plugin/hooks`` pointing at ``../hooks``) would rewrite the original.
    """
    path = root
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink():
            raise InputError(
                f"{rel} is reached through a link; make it a real file "
                "(Claude Code's validator does not read links)",
                path=str(path),
            )
    return path


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write(root: Path) -> list[str]:
    """Write every derived manifest; return the paths that changed."""
    changed = []
    for rel, data in derive(load_source(root), root).items():
        target = _real_target(root, rel)
        text = data if isinstance(data, str) else render_json(data)
        if not target.exists() or read_derived_text(target) != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(rel)
    return changed


def check(root: Path) -> list[Drift]:
    """Every field where a derived manifest (or the package version) differs from plugin.json."""
    source = load_source(root)
    drifts: list[Drift] = []
    for rel, expected in derive(source, root).items():
        target = _real_target(root, rel)
        if isinstance(expected, str):  # generated text (an agent file, a plugin script)
            found_text = read_derived_text(target) if target.exists() else None
            if found_text != expected:
                drifts.append(Drift(rel, TEXT, "the generated text",
                                    _MISSING if found_text is None else "other text",
                                    source=origin(rel)))
            continue
        found = load_json(target) if target.exists() else {}
        drifts.extend(_diff(rel, expected, found, source=origin(rel)))
    if source["version"] != __version__:
        drifts.append(Drift("scripts/dispatch_kit/__init__.py", "__version__", source["version"],
                            __version__))
    return drifts


def _diff(
    path: str, expected: Any, found: Any, prefix: str = "", source: str = "plugin.json"
) -> Iterator[Drift]:
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in list(expected) + [k for k in found if k not in expected]:
            name = f"{prefix}.{key}" if prefix else key
            yield from _diff(
                path, expected.get(key, _MISSING), found.get(key, _MISSING), name, source
            )
    elif isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        for i, (exp, fnd) in enumerate(zip(expected, found, strict=True)):
            yield from _diff(path, exp, fnd, f"{prefix}[{i}]", source)
    elif expected != found:
        yield Drift(path, prefix or "<document>", expected, found, source)
