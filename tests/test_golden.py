"""Golden files: every template rendered for the bundled example, compared byte for byte.

A golden is a prompt an agent will receive. Changing a template changes it, and
that change should be read by a person, as a diff, before it ships. To accept
a change:

    DISPATCH_KIT_UPDATE_GOLDENS=1 python3 -m pytest tests/test_golden.py
    git diff tests/golden/        # read every changed prompt
    python3 -m pytest tests/test_golden.py

The update run rewrites the files and still FAILS, so a CI job that sets the
variable can never turn green by regenerating what it should compare.
"""

from __future__ import annotations

import difflib
import os
import re

import pytest
from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("DISPATCH_KIT_UPDATE_GOLDENS") == "1"
PLAN = "examples/wordcount/plan.yaml"
CHECK = "tests/fixtures/check-counter-failed.json"

# golden name -> the render arguments, run from the repository root.
CASES: dict[str, tuple[str, ...]] = {
    **{
        f"worker-{task}": ("worker", "--plan", PLAN, "--task", task)
        for task in ("counter", "tests", "guide", "review")
    },
    "retry-counter": (
        "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1", "--check", CHECK,
    ),
    **{
        name: (name, "--vars", f"examples/vars/{name}.yaml")
        for name in ("report", "executor", "composite-load", "composite-chain")
    },
}
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:home|root|tmp|work|Users|var|private)/")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(cli, name):
    result = cli("render", *CASES[name], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    path = GOLDEN / f"{name}.md"
    if UPDATE:
        old = path.read_text(encoding="utf-8") if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.stdout, encoding="utf-8")
        state = "unchanged" if old == result.stdout else "REWRITTEN"
        pytest.fail(
            f"{state}: tests/golden/{name}.md. DISPATCH_KIT_UPDATE_GOLDENS=1 never passes: "
            "read `git diff tests/golden/`, then run the tests again without it.",
            pytrace=False,
        )
    assert path.exists(), f"no golden {path.name}; create it with DISPATCH_KIT_UPDATE_GOLDENS=1"
    expected = path.read_text(encoding="utf-8")
    if result.stdout != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                result.stdout.splitlines(keepends=True),
                fromfile=f"tests/golden/{name}.md",
                tofile=f"dispatch-kit render {' '.join(CASES[name])}",
            )
        )
        pytest.fail(f"rendered prompt differs from its golden:\n{diff}", pytrace=False)


def test_every_template_has_a_golden():
    templates = {p.name[: -len(".md.j2")] for p in (ROOT / "templates").glob("*.md.j2")}
    covered = {args[0] for args in CASES.values()}
    assert templates == covered


def test_no_stray_goldens():
    """A golden nobody renders any more would rot unnoticed."""
    assert {p.stem for p in GOLDEN.glob("*.md")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_has_no_machine_paths(name):
    path = GOLDEN / f"{name}.md"
    if not path.exists():
        pytest.skip("golden not written yet")
    text = path.read_text(encoding="utf-8")
    assert str(ROOT) not in text
    assert not ABSOLUTE_PATH.search(text), ABSOLUTE_PATH.search(text)
