"""The stream-safety wording lives in one template; every copy in the pack must match it.

Agent definitions and skill examples cannot import a Jinja macro: an agent's
system prompt is plain Markdown. So they carry the block verbatim, and this test
holds each copy to ``templates/clauses/stream-safety.md.j2`` so that a change to
the clause cannot leave a stale copy behind.
"""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from dispatch_kit.render.templates import render_clause

BLOCK = re.compile(r"^[ \t>]*Stream-safety:\n(?:[ \t>]*\d\. .*\n?){1,5}", re.MULTILINE)
COPIES = sorted(
    path.relative_to(ROOT).as_posix()
    for pattern in ("skills/**/*.md", "agents/*.md")
    for path in ROOT.glob(pattern)
    if "Stream-safety:" in path.read_text(encoding="utf-8")
)


def _normalise(block: str) -> str:
    return "\n".join(line.lstrip(" \t>").rstrip() for line in block.strip().splitlines())


def test_the_pack_carries_copies_to_hold_to_the_clause():
    # Every role agent and the lifecycle skill show the block; if none did,
    # this test would check nothing.
    assert any(p.startswith("agents/") for p in COPIES)
    assert "skills/dispatch-lifecycle/SKILL.md" in COPIES


@pytest.mark.parametrize("rel", COPIES)
def test_every_copy_equals_the_clause_template(rel):
    canonical = _normalise(render_clause("stream-safety"))
    text = (ROOT / rel).read_text(encoding="utf-8")
    blocks = BLOCK.findall(text)
    assert blocks, f"{rel} mentions Stream-safety: but has no numbered block"
    for block in blocks:
        assert _normalise(block) == canonical, (
            f"{rel}: stream-safety block differs from templates/clauses/stream-safety.md.j2;"
            " copy the clause's wording (dispatch-kit render's clause is the one source)"
        )
