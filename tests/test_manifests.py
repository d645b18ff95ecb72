"""The root plugin.json is the one place the pack's metadata is edited.

`dispatch-kit manifests` derives what Claude Code reads; `--check` is the CI
gate that catches a hand edit or a forgotten regeneration, naming the field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import ROOT


def pack_copy(tmp_path: Path) -> Path:
    root = tmp_path / "pack"
    (root / ".claude-plugin").mkdir(parents=True)
    shutil.copy(ROOT / "plugin.json", root / "plugin.json")
    for name in ("plugin.json", "marketplace.json"):
        shutil.copy(ROOT / ".claude-plugin" / name, root / ".claude-plugin" / name)
    return root


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_drift_in_a_derived_field_fails_naming_it(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / ".claude-plugin" / "plugin.json",
              lambda d: d.update(description="edited by hand"))
    result = cli("manifests", "--check", "--root", str(root))
    assert result.returncode == 1
    assert ".claude-plugin/plugin.json: field 'description' is 'edited by hand'" in result.stderr
    assert "run `dispatch-kit manifests`" in result.stderr


def test_a_bump_in_the_root_reaches_both_manifests_after_regenerating(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / "plugin.json", lambda d: d.update(keywords=["one", "two"]))
    stale = cli("manifests", "--check", "--root", str(root))
    assert stale.returncode == 1
    assert ".claude-plugin/plugin.json: field 'keywords'" in stale.stderr
    assert ".claude-plugin/marketplace.json: field 'plugins[0].keywords'" in stale.stderr

    wrote = cli("manifests", "--root", str(root))
    assert wrote.returncode == 0
    assert "wrote .claude-plugin/plugin.json" in wrote.stdout
    assert "wrote .claude-plugin/marketplace.json" in wrote.stdout
    market = json.loads((root / ".claude-plugin" / "marketplace.json").read_text())
    assert market["plugins"][0]["keywords"] == ["one", "two"]
    assert market["plugins"][0]["source"] == "./"
    assert cli("manifests", "--check", "--root", str(root)).returncode == 0


def test_a_field_added_by_hand_to_a_derived_manifest_is_drift(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / ".claude-plugin" / "plugin.json", lambda d: d.update(icon="x.png"))
    result = cli("manifests", "--check", "--root", str(root))
    assert result.returncode == 1
    assert "field 'icon' is not derived from plugin.json" in result.stderr


def test_a_version_bump_must_reach_the_package_too(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / "plugin.json", lambda d: d.update(version="9.9.9"))
    assert cli("manifests", "--root", str(root)).returncode == 0
    result = cli("manifests", "--check", "--root", str(root))
    assert result.returncode == 1
    assert "__version__" in result.stderr and "'9.9.9'" in result.stderr


def test_malformed_root_manifest_is_one_line_with_its_position(cli, tmp_path):
    root = pack_copy(tmp_path)
    (root / "plugin.json").write_text('{\n  "name": "dispatch-kit",\n  "version": 1.0.0\n}\n')
    result = cli("manifests", "--check", "--root", str(root))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"{root / 'plugin.json'}:3:")
    assert "invalid JSON" in result.stderr


def test_root_manifest_without_a_name_is_bad_input(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / "plugin.json", lambda d: d.pop("name"))
    result = cli("manifests", "--root", str(root))
    assert result.returncode == 2
    assert "field 'name' must be a non-empty string" in result.stderr


def test_the_committed_manifests_are_exactly_what_the_root_derives(cli, tmp_path):
    # Regenerating into a copy must not change a byte of what is committed.
    root = pack_copy(tmp_path)
    assert cli("manifests", "--root", str(root)).stdout.strip() == "manifests: already in sync"
    for name in ("plugin.json", "marketplace.json"):
        assert (root / ".claude-plugin" / name).read_bytes() == (
            ROOT / ".claude-plugin" / name
        ).read_bytes()


def test_a_folder_without_plugin_json_is_not_a_pack_in_one_line(cli, tmp_path):
    result = cli("manifests", "--check", "--root", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"{tmp_path}: not a plugin pack (no plugin.json); "
        "run in the pack's folder or pass --root DIR\n"
    )


def test_the_current_folder_is_the_default_when_it_is_a_pack(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / ".claude-plugin" / "plugin.json", lambda d: d.update(license="edited"))
    result = cli("manifests", "--check", cwd=root)
    assert result.returncode == 1  # this copy's drift, not the checkout's clean state
    assert ".claude-plugin/plugin.json: field 'license' is 'edited'" in result.stderr
