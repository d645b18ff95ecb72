"""`dispatch-kit lint --fix`: the canonical stream-safety block goes in, nothing else moves.

The expected block is read from `render_clause("stream-safety")`, the clause
the templates import, so these tests also prove the fix and the templates
share one source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch_kit.render.templates import render_clause

BLOCK = render_clause("stream-safety")

PROMPT = (
    "[Execute] Task `docs`: document the CLI flags\n"
    "Write cli.md; one section per flag.\n"
    "\n"
    "Working directory: docs\n"
    "\n"
    "## Exit criteria\n"
    "1. `grep -q '^## --verbose' cli.md`\n"
)


def fix(cli, tmp_path: Path, text: str | bytes, name: str = "p.md"):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    result = cli("lint", "--fix", name, cwd=tmp_path)
    return result, path.read_bytes()


def test_block_inserted_after_the_opening_paragraph(cli, tmp_path):
    result, data = fix(cli, tmp_path, PROMPT)
    text = data.decode()
    head = "[Execute] Task `docs`: document the CLI flags\nWrite cli.md; one section per flag.\n\n"
    assert text == head + BLOCK + "\n" + PROMPT[len(head) :]
    assert result.returncode == 0  # nothing left to report
    assert "fixed 1 file" in result.stderr


def test_every_other_byte_is_unchanged(cli, tmp_path):
    original = PROMPT.encode()
    _, data = fix(cli, tmp_path, original)
    inserted = (BLOCK + "\n").encode()
    assert data.count(inserted) == 1
    assert data.replace(inserted, b"", 1) == original


def test_crlf_files_stay_crlf(cli, tmp_path):
    original = PROMPT.replace("\n", "\r\n").encode()
    _, data = fix(cli, tmp_path, original)
    inserted = (BLOCK.replace("\n", "\r\n") + "\r\n").encode()
    assert data.replace(inserted, b"", 1) == original
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_a_utf8_bom_survives(cli, tmp_path):
    original = b"\xef\xbb\xbf" + PROMPT.encode()
    _, data = fix(cli, tmp_path, original)
    assert data.startswith(b"\xef\xbb\xbf[Execute]")
    assert data.replace((BLOCK + "\n").encode(), b"", 1) == original


def test_one_paragraph_prompt_gets_the_block_at_the_end(cli, tmp_path):
    original = "[Execute] Fix the typo in README.md."  # no trailing newline
    _, data = fix(cli, tmp_path, original)
    assert data.decode() == original + "\n\n" + BLOCK


def test_fix_is_idempotent(cli, tmp_path):
    _, once = fix(cli, tmp_path, PROMPT)
    result, twice = fix(cli, tmp_path, once)
    assert twice == once
    assert "fixed" not in result.stderr


def test_marker_after_a_comment_line(cli, tmp_path):
    original = (
        "<!-- dispatch-kit: ignore-next-line DK203 -->\n[Plan] Split the migration.\n\nMore.\n"
    )
    _, data = fix(cli, tmp_path, original)
    assert data.decode() == (
        "<!-- dispatch-kit: ignore-next-line DK203 -->\n[Plan] Split the migration.\n\n"
        + BLOCK
        + "\n"
        + "More.\n"
    )


def test_other_findings_remain_and_set_the_exit_code(cli, tmp_path):
    result, _ = fix(cli, tmp_path, "[Execute] Use gpt-4o to fix the parser.\n")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert all(" DK101 " not in line for line in lines)
    assert any(" DK603 " in line for line in lines)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("inspect.md", "[Inspect] Read setup.cfg and list the linters.\n"),
        ("notes.md", "Just notes.\n"),
        ("executor.md", "[Executor] Dispatch the queue.\n"),  # the rule is for execute/plan
        ("t.md.j2", "{# dispatch-kit: kind=execute #}\n[Execute] {{ task }}\n"),  # templates import
    ],
)
def test_nothing_else_is_touched(cli, tmp_path, name, text):
    _, data = fix(cli, tmp_path, text, name)
    assert data.decode() == text


def test_stdin_fix_prints_the_fixed_prompt(cli, tmp_path):
    result = cli("lint", "--fix", "-", input=PROMPT, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.replace(BLOCK + "\n", "", 1) == PROMPT
    assert BLOCK in result.stdout
