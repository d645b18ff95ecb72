"""The cache of ``[tool.dispatch-kit]`` tables saves a hook tomllib and can never change a result.

An entry is used only for the very bytes it was read from; a changed, damaged
or unwritable cache costs a fresh read of the file and nothing else; a table
that does not read is never kept, so its error is reported every time.
"""

from __future__ import annotations

import os
import re
import sys

import pytest
from conftest import cli_env

from dispatch_kit.errors import InputError
from dispatch_kit.lint import config


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """A cache of this test's own (under a pycache prefix); where the entry of a file is."""
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "pycache"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)

    def entry(toml) -> str:
        return config._Known.path(os.path.realpath(toml))

    return entry


def test_a_table_read_once_comes_back_from_the_cache(cache, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    toml = project / "pyproject.toml"
    toml.write_text('[tool.dispatch-kit]\nselect = ["DK1"]\nignore = ["DK101"]\n',
                    encoding="utf-8")
    first = config.load(start=str(project))
    assert os.path.isfile(cache(toml))

    def no_reading(path, raw):
        raise AssertionError("read again")

    monkeypatch.setattr(config, "read_table", no_reading)
    again = config.load(start=str(project))
    assert again == first and again.select == ("DK1",) and again.ignore == ("DK101",)


def test_a_changed_file_is_read_again(cache, tmp_path):
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.dispatch-kit]\nignore = ["DK101"]\n', encoding="utf-8")
    assert config.load(start=str(tmp_path)).ignore == ("DK101",)
    # Same size, same modification time a coarse clock would give: only the bytes differ.
    stat = toml.stat()
    toml.write_text('[tool.dispatch-kit]\nignore = ["DK102"]\n', encoding="utf-8")
    os.utime(toml, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert config.load(start=str(tmp_path)).ignore == ("DK102",)


def test_a_table_that_does_not_read_is_never_kept(cache, tmp_path):
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.dispatch-kit]\nselect = "DK1"\n', encoding="utf-8")
    for _ in range(2):
        with pytest.raises(InputError, match="select must be a list of strings"):
            config.load(start=str(tmp_path))
    assert not os.path.exists(cache(toml))


@pytest.mark.parametrize("content", ["empty", "garbage", "truncated", "wrong value",
                                     "another file"])
def test_a_damaged_or_foreign_entry_costs_a_fresh_read(cache, tmp_path, content):
    import marshal

    toml = tmp_path / "pyproject.toml"
    raw = b'[tool.dispatch-kit]\nignore = ["DK101"]\n'
    toml.write_bytes(raw)
    source = os.path.realpath(toml)
    data = {
        "empty": b"",
        "garbage": b"garbage",
        "truncated": marshal.dumps((source, raw, {"ignore": ("DK1",)}))[:-3],
        "wrong value": marshal.dumps((source, raw, {"ignore": ["not a tuple"]})),
        "another file": marshal.dumps((source + "x", raw, {"ignore": ("DK1",)})),
    }[content]
    os.makedirs(os.path.dirname(cache(toml)), exist_ok=True)
    with open(cache(toml), "wb") as handle:
        handle.write(data)
    assert config.load(start=str(tmp_path)).ignore == ("DK101",)


def test_no_cache_is_written_when_bytecode_writing_is_off(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.dispatch-kit]\nignore = ["DK101"]\n', encoding="utf-8")
    assert config.load(start=str(tmp_path)).ignore == ("DK101",)
    assert not os.path.exists(cache(toml))


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setattr(sys, "pycache_prefix", str(blocker))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    (tmp_path / "pyproject.toml").write_text('[tool.dispatch-kit]\nignore = ["DK101"]\n',
                                             encoding="utf-8")
    assert config.load(start=str(tmp_path)).ignore == ("DK101",)


def test_the_second_lint_in_a_project_with_a_table_skips_tomllib(cli, tmp_path):
    """End to end, in fresh processes: the first run reads the table, the next does not import
    tomllib, and both lint alike."""
    prefix = tmp_path / "pycache"
    (tmp_path / "pyproject.toml").write_text('[tool.dispatch-kit]\nignore = ["DK101"]\n',
                                             encoding="utf-8")
    (tmp_path / "p.md").write_text("[Execute] Fix the parser.\n", encoding="utf-8")
    env = cli_env(PYTHONPYCACHEPREFIX=str(prefix), PYTHONPROFILEIMPORTTIME="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    runs = [cli("lint", "p.md", cwd=tmp_path, env=env) for _ in range(2)]
    imported = [set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", run.stderr, re.M))
                for run in runs]
    assert "tomllib" in imported[0] and "tomllib" not in imported[1]
    assert runs[0].stdout == runs[1].stdout and "DK101" not in runs[1].stdout
    assert runs[0].returncode == runs[1].returncode == 1
