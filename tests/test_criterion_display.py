"""The command a worker is shown for a structured criterion agrees with the checker.

Retry prompts and ``dispatch-kit check`` show each criterion as a shell
command the worker can paste. If that command passed where the checker fails
(or the reverse), the worker would retry blind. These tests run the shown
command with the real ``sh`` and ``grep`` and compare its exit status with
the checker's verdict, on hand-picked and on seeded random regexes and texts.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dispatch_kit.check.criteria import _structured
from dispatch_kit.plan.model import Criterion

CONTENT = (
    "# Title\n"
    "## Usage\n"
    "version = 1.2.3\n"
    "count: 42 items\n"
    "tab\there\r\n"
    "a+b=c (x) [y] {z} ^caret$ back\\slash\n"
    "word_boundary wordy\n"
    "last line without newline"
)

REGEXES = [
    r"^## Usage",
    r"^version = [0-9]+\.[0-9]+",
    r"count: [0-9]{2} items$",
    r"\d+ items",  # \d: Python only
    r"\bword\b",  # \b differs from grep's
    r"word(?=y)",  # lookahead: Python only
    r"Usage\nversion",  # spans lines: grep never matches
    r"a\+b=c \(x\) \[y\]",
    r"\{z\}",
    r"[^a-z ]+caret",
    r"[]x]",
    r"back\\slash",
    r"(#|##) Title",
    r"x{1,}",
    r"items?$",
    r"here$",  # the line ends in \r: neither matches
    r"without newline$",
    r"[[:digit:]]",  # a POSIX class: Python reads something else
    r"c.*?z",  # lazy: Python only
    r"(?i)usage",
    r"nothing like this",
]
TEXTS = ["## Usage", "1.2.3", "tab\there", "Usage\nversion", "here\r\n", "missing", "{z}"]


def verdict(tmp: Path, criterion: Criterion) -> bool:
    return _structured(tmp, criterion)[0] == "pass"


def shown_passes(tmp: Path, criterion: Criterion) -> bool:
    proc = subprocess.run(
        ["sh", "-c", criterion.display()], cwd=tmp, capture_output=True, timeout=30
    )
    assert proc.returncode in (0, 1), (criterion.display(), proc.stderr)
    return proc.returncode == 0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder to check files in; the comparison needs the real grep."""
    if not shutil.which("grep"):
        pytest.skip("no grep on this machine")
    return tmp_path


@pytest.fixture
def workdir(folder: Path) -> Path:
    (folder / "doc.md").write_bytes(CONTENT.encode("utf-8"))
    return folder


@pytest.mark.filterwarnings("ignore::FutureWarning")  # Python's note on "[[:digit:]]"
@pytest.mark.parametrize("regex", REGEXES)
def test_shown_regex_check_agrees_with_the_checker(workdir: Path, regex: str) -> None:
    criterion = Criterion("contains", path="doc.md", regex=regex)
    assert shown_passes(workdir, criterion) == verdict(workdir, criterion), criterion.display()


# Files on which grep and Python's re disagree unless the display avoids grep for them.
AWKWARD = [
    (r"version[^0-9]*2", b"version:\n  2\n"),  # [^...] crosses the line break in Python
    (r"^$", b"abc\n"),  # re.M: an empty match after the last newline
    (r"^ *$", b"title\nbody\n"),
    (r"x*", b""),  # grep sees no line in an empty file
    (r"caf.", b"caf\xe9\n"),  # "." and an undecodable byte (U+FFFD in Python)
    (r"q$", b"q\x00x\n"),  # a NUL makes grep treat the file as binary without -a
    (r"x{0,40000}", b"abc\n"),  # grep refuses counts above 32767
    (r"^.{3}$", "\u00e9t\u00e9\n".encode()),  # characters, not bytes
    (r"^## Usage", b"# T\n## Usage\n"),
]


@pytest.mark.parametrize(("regex", "content"), AWKWARD)
def test_shown_regex_check_agrees_on_awkward_files(
    folder: Path, regex: str, content: bytes
) -> None:
    (folder / "doc.md").write_bytes(content)
    criterion = Criterion("contains", path="doc.md", regex=regex)
    assert shown_passes(folder, criterion) == verdict(folder, criterion), criterion.display()


@pytest.mark.parametrize("text", TEXTS)
def test_shown_text_check_agrees_with_the_checker(workdir: Path, text: str) -> None:
    criterion = Criterion("contains", path="doc.md", text=text)
    assert shown_passes(workdir, criterion) == verdict(workdir, criterion), criterion.display()


def test_plain_regexes_are_shown_as_grep() -> None:
    """Readable where that is exact: most criteria are simple patterns."""
    for regex in (r"^## Usage", r"count: [0-9]{2} items$", r"a\+b", r"(#|##) Title"):
        assert Criterion("contains", path="f", regex=regex).display().startswith("grep -qaE ")
    for regex in (r"\d+", r"\bword\b", r"a(?=b)", r"c.*?z", "x\ny", r"[[:digit:]]", "[^a]", "a.c"):
        assert Criterion("contains", path="f", regex=regex).display().startswith("python3 -c ")


TOKENS = [
    "a", "b", "Usage", "word", "item", " ", ".", "^", "$", "*", "+", "?", "|", "(", ")",
    "[a-z]", "[^0-9]", "[]x]", r"\.", r"\+", r"\(", r"\)", r"\d", r"\w", r"\s", r"\b",
    "{2}", "{1,3}", "{2,}", "(?:", "*?", "+?", r"\n", "#", "=", "[.]", "-", "_",
]


def test_random_regexes_agree_with_the_checker(workdir: Path) -> None:
    rng = random.Random(7)
    tried = grep_shown = 0
    while tried < 150:
        regex = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 6)))
        try:
            re.compile(regex, re.MULTILINE)  # what plan validation accepts
        except re.error:
            continue
        criterion = Criterion("contains", path="doc.md", regex=regex)
        shown = criterion.display()
        grep_shown += shown.startswith("grep ")
        assert shown_passes(workdir, criterion) == verdict(workdir, criterion), shown
        tried += 1
    assert grep_shown > 30  # the sample exercises the grep spelling, not only Python's
