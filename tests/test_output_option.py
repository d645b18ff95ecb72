"""``-o PATH`` on the commands that write a file: a slip in PATH is one line and exit 2."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES

PLAN = EXAMPLES / "wordcount" / "plan.yaml"
COMMANDS = {
    "render": ("render", "worker", "--plan", str(PLAN), "--task", "counter"),
    "lint": ("lint", str(PLAN)),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_output_that_is_a_folder_is_refused_in_one_line(cli, tmp_path, command):
    folder = tmp_path / "out"
    folder.mkdir()
    result = cli(*COMMANDS[command], "-o", str(folder))
    assert result.returncode == 2
    assert result.stderr == f"{folder}: is a folder; -o names the file to write\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_output_through_a_file_is_refused_in_one_line(cli, tmp_path, command):
    (tmp_path / "file").write_text("keep me\n")
    target = tmp_path / "file" / "out.md"
    result = cli(*COMMANDS[command], "-o", str(target))
    assert result.returncode == 2
    assert result.stderr == f"{target}: a file stands where a folder of this path should be\n"
    assert (tmp_path / "file").read_text() == "keep me\n"


def test_output_creates_its_folders(cli, tmp_path):
    target = tmp_path / "new" / "sub" / "counter.md"
    result = cli(*COMMANDS["render"], "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text().startswith("[Execute] Task `counter`")
