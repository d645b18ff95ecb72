"""The root plugin.json is the one place the pack's metadata is edited.

`dispatch-kit manifests` derives what Claude Code reads; `--check` is the CI
gate that catches a hand edit or a forgotten regeneration, naming the field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
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
    assert market["plugins"][0]["source"] == "./plugin"  # marketplace.source in the root
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


def test_network_hosts_reach_the_plugin_manifest(cli, tmp_path):
    # `claude plugin validate` lists them; the launcher reaches PyPI on first use.
    root = pack_copy(tmp_path)
    edit_json(root / "plugin.json", lambda d: d.update(network={"hosts": ["example.org"]}))
    stale = cli("manifests", "--check", "--root", str(root))
    assert stale.returncode == 1
    assert ".claude-plugin/plugin.json: field 'network.hosts' is ['pypi.org'" in stale.stderr
    assert cli("manifests", "--root", str(root)).returncode == 0
    plugin = json.loads((root / ".claude-plugin" / "plugin.json").read_text())
    assert plugin["network"] == {"hosts": ["example.org"]}
    committed = json.loads((ROOT / ".claude-plugin" / "plugin.json").read_text())
    assert {"pypi.org", "files.pythonhosted.org"} <= set(committed["network"]["hosts"])


def install_folder_copy(tmp_path: Path) -> Path:
    """A pack copy with the install folder the marketplace entry names, and the hooks."""
    root = pack_copy(tmp_path)
    (root / "hooks").mkdir()
    shutil.copy(ROOT / "hooks" / "hooks.json", root / "hooks" / "hooks.json")
    (root / "plugin").mkdir()
    return root


def test_the_install_folder_gets_its_manifest_and_hooks_as_real_files(cli, tmp_path):
    root = install_folder_copy(tmp_path)
    stale = cli("manifests", "--check", "--root", str(root))
    assert stale.returncode == 1
    assert "plugin/.claude-plugin/plugin.json: field 'name' is missing" in stale.stderr
    assert "plugin/hooks/hooks.json: field 'hooks' is missing; hooks/hooks.json gives" in (
        stale.stderr
    )
    wrote = cli("manifests", "--root", str(root))
    assert "wrote plugin/hooks/hooks.json" in wrote.stdout
    for rel in (".claude-plugin/plugin.json", "hooks/hooks.json"):
        copy = root / "plugin" / rel
        assert not copy.is_symlink()
        assert json.loads(copy.read_text()) == json.loads((root / rel).read_text())
    assert cli("manifests", "--check", "--root", str(root)).returncode == 0

    # A hook added at the root must reach the copy that an install carries.
    edit_json(root / "hooks" / "hooks.json", lambda d: d["hooks"].update(NewEvent=[]))
    drift = cli("manifests", "--check", "--root", str(root))
    assert drift.returncode == 1
    assert "plugin/hooks/hooks.json: field 'hooks.NewEvent' is missing" in drift.stderr


def test_a_link_in_place_of_a_derived_file_is_refused_not_written_through(cli, tmp_path):
    root = install_folder_copy(tmp_path)
    (root / "plugin" / "hooks").symlink_to("../hooks")
    before = (root / "hooks" / "hooks.json").read_bytes()
    result = cli("manifests", "--root", str(root))
    assert result.returncode == 2
    assert "plugin/hooks/hooks.json is reached through a link; make it a real file" in (
        result.stderr
    )
    assert (root / "hooks" / "hooks.json").read_bytes() == before


def test_an_install_source_outside_the_pack_is_bad_input(cli, tmp_path):
    root = pack_copy(tmp_path)
    edit_json(root / "plugin.json", lambda d: d["marketplace"].update(source="../elsewhere"))
    result = cli("manifests", "--check", "--root", str(root))
    assert result.returncode == 2
    assert "field 'marketplace.source' must be a folder inside the pack" in result.stderr


# --- a malformed plugin.json: one line at file:line:col, exit 2, from every reader ----------

SOURCE_DEFECTS = {
    # defect: (how to make it, the expected line of stderr after the path)
    "folder": (lambda p: p.mkdir(), ": is a directory, expected a file"),
    "duplicate key": (
        lambda p: p.write_text('{"name": "x", "author": {"name": "a"},\n'
                               '  "version": "1.0.0", "name": "y", "description": "d"}\n'),
        ":2:23: invalid JSON: duplicate key 'name'"),
    "bad UTF-8": (
        lambda p: p.write_bytes(b'{"name": "x",\n  "description": "caf\xe9"}\n'),
        ":2:22: not valid UTF-8 (byte 0xe9)"),
}


@pytest.mark.parametrize("check", [False, True], ids=["write", "check"])
@pytest.mark.parametrize("defect", SOURCE_DEFECTS)
def test_a_malformed_root_plugin_json_is_one_line_with_its_position(cli, tmp_path, defect, check):
    root = pack_copy(tmp_path)
    make, expected = SOURCE_DEFECTS[defect]
    (root / "plugin.json").unlink()
    make(root / "plugin.json")
    result = cli("manifests", *(["--check"] if check else []), "--root", str(root))
    assert result.returncode == 2
    assert result.stderr == f"{root / 'plugin.json'}{expected}\n"


@pytest.mark.parametrize("check", [False, True], ids=["write", "check"])
@pytest.mark.parametrize("defect", SOURCE_DEFECTS)
def test_a_malformed_derived_plugin_json_is_one_line_with_its_position(
        cli, tmp_path, defect, check):
    root = pack_copy(tmp_path)
    make, expected = SOURCE_DEFECTS[defect]
    derived = root / ".claude-plugin" / "plugin.json"
    derived.unlink()
    make(derived)
    result = cli("manifests", *(["--check"] if check else []), "--root", str(root))
    if defect == "duplicate key" and not check:
        # Writing replaces the stale copy; it is never read as JSON.
        assert result.returncode == 0 and "wrote .claude-plugin/plugin.json" in result.stdout
        return
    assert result.returncode == 2
    assert result.stderr == f"{derived}{expected}\n"


def test_lint_points_at_the_second_of_two_equal_keys(cli, tmp_path):
    manifest = tmp_path / ".claude-plugin" / "plugin.json"
    manifest.parent.mkdir()
    manifest.write_text('{"name": "a-b", "skills": {"name": 1},\n  "name": "c-d"}\n')
    result = cli("lint", str(manifest), "--format", "json")
    findings = json.loads(result.stdout)
    assert [(f["line"], f["column"], f["message"]) for f in findings] == [
        (2, 3, "invalid JSON: duplicate key 'name'")]


@pytest.mark.parametrize("extra,expected", [
    ('"marketplace": 5', ":3:3: field 'marketplace' must be an object"),
    ('"marketplace": {\n    "source": "../x"}',
     ":4:5: field 'marketplace.source' must be a folder inside the pack written './NAME', "
     "not '../x'"),
])
def test_a_malformed_marketplace_entry_is_named_at_its_place(cli, tmp_path, extra, expected):
    root = pack_copy(tmp_path)
    (root / "plugin.json").write_text(
        '{"name": "x", "version": "1.0.0",\n  "description": "d",\n  ' + extra + "}\n")
    result = cli("manifests", "--check", "--root", str(root))
    assert (result.returncode, result.stderr) == (2, f"{root / 'plugin.json'}{expected}\n")


@pytest.mark.parametrize("agent,expected", [
    (b"---\nname: [a\n---\nbody\n", ":2:9: frontmatter: expected ',' or ']', but got "
                                    "'<stream end>'"),
    (b"---\nname: a\xff\n---\nbody\n", ":2:8: not valid UTF-8 (byte 0xff)"),
    (None, ": is a directory, expected a file"),
], ids=["yaml", "utf-8", "folder"])
def test_a_malformed_agent_file_is_one_line_with_its_place(cli, tmp_path, agent, expected):
    root = pack_copy(tmp_path)
    (root / "harnesses").mkdir()  # a checkout: the other harnesses' files are derived
    target = root / "agents" / "a.md"
    target.parent.mkdir()
    if agent is None:
        target.mkdir()
    else:
        target.write_bytes(agent)
    result = cli("manifests", "--check", "--root", str(root))
    assert (result.returncode, result.stderr) == (2, f"{target}{expected}\n")


@pytest.mark.parametrize("text,expected", [
    ('{"name": "x", "version": "1.0.0", "description": "d",\n  "author": "\\ud800"}\n',
     ":2:3: text holds a lone surrogate (a \\ud800-\\udfff escape not part of a pair); "
     "no manifest can be written with it"),
    ('{"name": "x",\n  "keywords": ' + "[" * 3000 + "]" * 3000 + "}\n",
     ":2:214: nesting deeper than 200 levels"),
], ids=["lone-surrogate", "deep-nesting"])
def test_plugin_json_no_manifest_can_hold_is_named_at_its_place(cli, tmp_path, text, expected):
    """Found by tests/test_fuzz_cli.py: a UnicodeEncodeError while writing, a RecursionError."""
    root = pack_copy(tmp_path)
    (root / "plugin.json").write_text(text)
    result = cli("manifests", "--root", str(root))
    assert (result.returncode, result.stderr) == (2, f"{root / 'plugin.json'}{expected}\n")
