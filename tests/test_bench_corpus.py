"""The benchmark's corpus generator: same seed, same files; the mix and defects asked for.

The linter benchmark compares tools on this corpus, so a number is only worth
something if the corpus can be regenerated exactly and really contains the kinds
of files and defects the README says it does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "bench" / "lint_corpus.py"

# count=200 split by the documented shares (30/6/12/10/7/20/15 %), and a quarter of each
# kind defective, rounded half up.
EXPECTED_FILES = {
    "execute": 60,
    "plan": 12,
    "executor": 24,
    "retry": 20,
    "inspect": 14,
    "skill": 40,
    "agent": 30,
}
EXPECTED_DEFECTIVE = {
    "execute": 15,
    "plan": 3,
    "executor": 6,
    "retry": 5,
    "inspect": 4,
    "skill": 10,
    "agent": 8,
}
MARKERS = {
    "execute": "[Execute]",
    "plan": "[Plan]",
    "executor": "[Executor]",
    "retry": "[Retry]",
    "inspect": "[Inspect]",
}


def generate(out: Path, seed: int, count: int = 200) -> tuple[subprocess.CompletedProcess, dict]:
    manifest = out.parent / f"{out.name}.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--seed",
            str(seed),
            "--count",
            str(count),
            "--out",
            str(out),
            "--manifest",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(manifest.read_text())


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def frontmatter(text: str) -> str:
    assert text.startswith("---\n")
    return text.split("---\n", 2)[1]


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=7)
    generate(tmp_path / "c", seed=8)
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert len(a) == 200
    assert a == b
    assert a != c


def test_mix_and_defect_share_are_as_requested(tmp_path):
    out = tmp_path / "corpus"
    _, manifest = generate(out, seed=3)
    files = manifest["files"]
    assert {k: v["files"] for k, v in manifest["summary"].items()} == EXPECTED_FILES
    assert {k: v["defective"] for k, v in manifest["summary"].items()} == EXPECTED_DEFECTIVE
    # The manifest describes what is on disk, in the layouts the linters look for.
    assert sorted(tree(out)) == sorted(f["path"] for f in files)
    for f in files:
        if f["kind"] in MARKERS:
            assert re.fullmatch(rf"prompts/{f['kind']}/\d{{4}}-\w+\.md", f["path"]), f
        elif f["kind"] == "skill":
            assert re.fullmatch(r"skills/[a-z0-9-]+/SKILL\.md", f["path"]), f
        else:
            assert re.fullmatch(r"agents/[a-z0-9-]+\.md", f["path"]), f
    # Each kind's defects are spread over its defect types, not all of one type.
    execute_defects = {f["defect"] for f in files if f["kind"] == "execute" and f["defect"]}
    assert len(execute_defects) >= 8


def test_prompts_carry_their_kind_marker(tmp_path):
    out = tmp_path / "corpus"
    _, manifest = generate(out, seed=5)
    comment_markers = 0
    for f in manifest["files"]:
        if f["kind"] not in MARKERS:
            continue
        head = (out / f["path"]).read_text().splitlines()
        if head[0].startswith(MARKERS[f["kind"]]):
            continue
        assert f"<!-- dispatch-kit: kind={f['kind']} -->" in head[:5], f
        comment_markers += 1
    assert comment_markers > 0  # the comment form is exercised too


def test_defects_are_really_in_the_text(tmp_path):
    out = tmp_path / "corpus"
    _, manifest = generate(out, seed=11, count=400)
    seen = set()
    for f in manifest["files"]:
        text = (out / f["path"]).read_text()
        kind, defect = f["kind"], f["defect"]
        seen.add((kind, defect))
        if kind in ("execute", "plan"):
            assert ("Stream-safety:" in text) == (defect != "no-stream-safety"), f
        if kind == "executor":
            assert ("NO_REPLY" in text) == (defect != "no-no-reply"), f
            assert ("timeoutSeconds" in text) == (defect != "no-timeout"), f
        if kind == "execute" and defect == "prose-criteria":
            section = text.split("## Exit criteria")[1].split("##")[0]
            assert any(line.startswith("- ") and "`" not in line for line in section.splitlines())
        if kind == "retry":
            assert bool(re.search(r"attempt \d+/\d+", text)) == (defect != "no-attempt"), f
            assert ("Error:" in text) == (defect != "no-error"), f
        if defect == "hardcoded-model":
            assert re.search(r"claude-|gpt-|gemini-|o3-", text), f
        if kind in ("skill", "agent"):
            body = frontmatter(text)
            if defect == "broken-yaml":
                try:
                    yaml.safe_load(body)
                except yaml.YAMLError:
                    continue
                raise AssertionError(f"broken-yaml file parses: {f}")
            data = yaml.safe_load(body)
            folder = f["path"].split("/")[1] if kind == "skill" else Path(f["path"]).stem
            if defect is None:
                assert data["name"] == folder, f
                assert data["description"].startswith("Use "), f
                if kind == "skill":
                    assert isinstance(data["allowed-tools"], list), f
            if defect == "name-mismatch":
                assert data["name"] != folder
            if defect == "missing-name":
                assert "name" not in data
    for kind in EXPECTED_FILES:
        assert (kind, None) in seen  # every kind also has clean files


def test_refuses_a_non_empty_output_folder(tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "keep.md").write_text("mine\n")
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--seed", "1", "--count", "10", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "not empty" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [p.name for p in out.iterdir()] == ["keep.md"]


def test_the_linter_flags_exactly_the_defective_files(tmp_path, monkeypatch):
    """The benchmark's precision line (251 / 0 at seed 1): every planted defect is found and
    no clean file gets a finding. A rule that starts to fire on the pack's own style, as
    DK306 did on executors that named no sweep, shows up here before it shows in the bench."""
    from dispatch_kit.lint.engine import lint_paths

    out = tmp_path / "corpus"
    _, manifest = generate(out, seed=1, count=300)
    monkeypatch.chdir(out)
    flagged = {f.path for f in lint_paths(["."])}
    defective = {f["path"] for f in manifest["files"] if f["defect"]}
    assert flagged == defective
