"""``--fix``: insert the canonical stream-safety block where an [Execute]/[Plan] prompt lacks it.

The block comes from ``render_clause("stream-safety")``, the same clause the
templates import, so the wording has one source. It goes after the paragraph
that opens the prompt (the marker line and what follows it up to the first
blank line), and nothing else in the file changes: every other byte, line
ending included, stays as it was. A fixed file no longer needs the fix, so
running it twice changes nothing.
"""

from __future__ import annotations

from dispatch_kit.errors import InputError
from dispatch_kit.lint.document import Document

FIXABLE_FILE_KINDS = ("prompt",)  # templates import the clause instead of pasting it


def canonical_block() -> str:
    try:
        from dispatch_kit.render.templates import render_clause
    except ImportError:
        raise InputError("--fix needs dispatch_kit.render.templates (the shared clause "
                         "templates)") from None
    return render_clause("stream-safety")


def needs_block(doc: Document) -> bool:
    from dispatch_kit.lint.rules.stream_safety import STREAM_KINDS, has_block

    region = doc.region
    return (
        doc.file_kind in FIXABLE_FILE_KINDS
        and region is not None
        and region.kind in STREAM_KINDS
        and not has_block(region)
    )


def insert_block(text: str, anchor_line: int, block: str) -> str:
    """``text`` with ``block`` inserted after the paragraph holding ``anchor_line``."""
    newline = "\r\n" if "\r\n" in text else "\n"
    body = newline.join(block.strip("\n").splitlines()) + newline
    lines = text.splitlines(keepends=True)
    index = max(anchor_line, 1) - 1
    while index < len(lines) and lines[index].strip():
        index += 1
    if index < len(lines):  # lines[index] is the blank line after the paragraph
        head = "".join(lines[: index + 1])
        return head + body + newline + "".join(lines[index + 1 :])
    tail = "" if not text or text.endswith(("\n", "\r")) else newline
    return text + tail + newline + body


def fixed_text(doc: Document) -> str | None:
    """The fixed text of ``doc``, or None when it needs no fix."""
    if not needs_block(doc):
        return None
    assert doc.region is not None
    return insert_block(doc.text, doc.region.anchor_line, canonical_block())
