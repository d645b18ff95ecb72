"""``ledger status --format html``: the mission page, opened in a real headless chromium.

The browser is Debian's ``chromium`` driven over the DevTools protocol by
Playwright (its own browser download is never used), so the test can count what
a screenshot cannot show: console messages and the requests the page makes.
Missions are real runs of the bundled example with its scripted worker.

``python tests/test_report_page.py OUT.png`` writes the README's screenshot of the
demo mission the same way.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "wordcount"
BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
DEMO_TASKS = ("counter", "tests", "guide", "review")
HOSTILE = "</svg></pre><script>alert(1)</script><img src=x onerror=alert(2)> \"q\" 'a' &amp;"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent),
           "PYTHONPATH": str(ROOT / "scripts"), "HOME": str(cwd or ROOT)}
    result = subprocess.run([sys.executable, "-m", "dispatch_kit", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def demo_mission(folder: Path) -> Path:
    """The example mission run with its demo worker: a retry, a failure, a skipped task."""
    shutil.copy(EXAMPLE / "plan.yaml", folder / "plan.yaml")
    shutil.copytree(EXAMPLE / "workspace", folder / "workspace")
    worker = f"{shlex.quote(sys.executable)} {shlex.quote(str(EXAMPLE / 'worker.py'))}"
    assert cli("run", "plan.yaml", "--worker", worker, "--quiet", cwd=folder).returncode == 1
    return folder / "workspace" / ".dispatch" / "ledger.db"


def page_of(db: Path, out: Path) -> Path:
    result = cli("ledger", "status", "--db", str(db), "--format", "html")
    assert result.returncode == 0, result.stderr
    out.write_text(result.stdout, encoding="utf-8")
    return out


def chromium() -> str:
    """The system browser (.ci/run installs Debian's chromium); a failure under CI."""
    if shutil.which("chromium-browser") and not shutil.which("chromium"):
        return require_tool("chromium-browser")
    return require_tool("chromium")


class Visit:
    """What the browser saw: console messages, requests, dialogs, and the page to query."""

    def __init__(self, playwright, page_file: Path, screenshot: Path | None = None,
                 clip_height: int | None = None) -> None:
        self.browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        self.page = self.browser.new_page(viewport={"width": 1040, "height": 900})
        self.console: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.console.append(("pageerror", str(e))))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = page_file.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")
        if screenshot is not None:
            clip = {"x": 0, "y": 0, "width": 1040, "height": clip_height} if clip_height else None
            self.page.screenshot(path=str(screenshot), full_page=clip is None, clip=clip)

    @property
    def own_requests(self) -> list[str]:
        """Requests the page made itself: everything but loading the page."""
        return [url for url in self.requests if url != self.url]

    def close(self) -> None:
        self.browser.close()


@pytest.fixture
def playwright():
    try:
        from playwright import sync_api
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed; `make test` installs it")
        pytest.skip("playwright not installed (run `make test` to set up)")
    with sync_api.sync_playwright() as p:
        yield p


def test_demo_mission_page_loads_clean_and_shows_every_task(tmp_path, playwright):
    db = demo_mission(tmp_path)
    page_file = page_of(db, tmp_path / "mission.html")
    shot = tmp_path / "mission.png"
    visit = Visit(playwright, page_file, shot)
    try:
        assert visit.console == []  # no error, no warning, nothing logged at all
        assert visit.requests == [visit.url] and visit.own_requests == []
        page = visit.page
        nodes = page.locator("svg.graph g.node")
        rows = page.locator("svg.timeline g.row")
        assert nodes.count() == len(DEMO_TASKS) and rows.count() == len(DEMO_TASKS)
        states = {n.get_attribute("data-task"): n.get_attribute("data-state")
                  for n in nodes.all()}
        assert states == {"counter": "verified", "tests": "verified", "guide": "failed",
                          "review": "skipped"}
        width = page.evaluate("document.documentElement.scrollWidth")
        for locator in (nodes, rows):  # every task drawn inside the screenshot's width
            for element in locator.all():
                box = element.bounding_box()
                assert box and box["width"] > 0 and box["x"] + box["width"] <= width
        # Retries and the failure are on the timeline: tests 2 attempts, guide 4, all failed.
        guide = page.locator('svg.timeline g.row[data-task="guide"] rect.attempt')
        assert guide.count() == 4
        assert {r.get_attribute("data-outcome") for r in guide.all()} == {"failed"}
        tests_row = page.locator('svg.timeline g.row[data-task="tests"] rect.attempt')
        assert [r.get_attribute("data-outcome") for r in tests_row.all()] == ["failed",
                                                                              "verified"]
        text = page.inner_text("body")
        for task in DEMO_TASKS:
            assert task in text
        assert "skipped: depends on guide, which failed" in text
        failure = page.inner_text('.failure[data-task="guide"]')
        assert "usage.md has" in failure and "needs at least 200" in failure  # criterion, why
        assert "AssertionError" in page.inner_text('.failure[data-task="tests"]')  # output tail
        totals = {t.get_attribute("data-total"): t.inner_text().split("\n")[0]
                  for t in page.locator(".total").all()}
        assert (totals["tasks"], totals["verified"], totals["failed"], totals["skipped"],
                totals["attempts"], totals["retries"]) == ("4", "2", "1", "1", "7", "4")
    finally:
        visit.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeout_and_wait_are_visible(tmp_path):
    plan = {"goal": "Show a timeout", "workspace": "ws",
            "defaults": {"max_retries": 1},
            # Only slow has a short limit: its sleep 30 times out, its attempt 2 (one
            # `: > done.txt`) has 5 s, and quick keeps the default, so neither races it.
            "tasks": [{"id": "slow", "title": "Slow", "type": "coding", "cwd": "slow",
                       "timeout": 5, "exit_criteria": [{"file_exists": "done.txt"}]},
                      {"id": "quick", "title": "Quick", "type": "coding", "cwd": "quick",
                       "exit_criteria": [{"file_exists": "done.txt"}]}]}
    (tmp_path / "plan.yaml").write_text(json.dumps(plan))
    worker = ('if [ "$DISPATCH_KIT_TASK" = slow ] && [ "$DISPATCH_KIT_ATTEMPT" = 1 ]; '
              "then exec sleep 30; fi; : > done.txt")
    assert cli("run", "plan.yaml", "--worker", worker, "--quiet", cwd=tmp_path).returncode == 0
    html = page_of(tmp_path / "ws" / ".dispatch" / "ledger.db", tmp_path / "p.html").read_text()
    assert html.count('data-outcome="timeout"') == 1
    assert 'class="wait"' in html  # quick waited for the one worker while slow ran
    assert '<div class="total" data-total="timeouts"><b>1</b>' in html


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        for name, _value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name} on <{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_ledger_text_stays_text(tmp_path, playwright):
    """Titles, goals, criteria and worker output are written by others: never markup."""
    plan = {"goal": f"Goal {HOSTILE}", "workspace": "ws",
            "defaults": {"timeout": 30, "max_retries": 0},
            "tasks": [{"id": "evil", "title": f"Title {HOSTILE}", "type": "coding", "cwd": "evil",
                       "exit_criteria": [f"echo '{HOSTILE}'; echo '{HOSTILE}' >&2; exit 1"]},
                      {"id": "after", "title": "After", "type": "coding", "cwd": "after",
                       "depends_on": ["evil"], "exit_criteria": [{"file_exists": "x"}]}]}
    (tmp_path / "plan.yaml").write_text(json.dumps(plan))
    assert cli("run", "plan.yaml", "--worker", "true", "--quiet", cwd=tmp_path).returncode == 1
    page_file = page_of(tmp_path / "ws" / ".dispatch" / "ledger.db", tmp_path / "evil.html")
    html = page_file.read_text()
    assert "<script" not in html.lower() and "<img" not in html.lower()
    parser = _Tags()
    parser.feed(html)
    assert parser.tags.count("svg") == 2 and parser.tags.count("pre") == html.count("<pre>")
    text = "".join(parser.text)
    assert f"Title {HOSTILE}" in text and f"Goal {HOSTILE}" in text  # shown as written
    visit = Visit(playwright, page_file)
    try:
        assert visit.dialogs == [] and visit.console == [] and visit.own_requests == []
        page = visit.page
        assert page.evaluate("document.querySelectorAll('script, img, [onerror]').length") == 0
        assert page.locator("svg").count() == 2
        assert HOSTILE in page.inner_text('.failure[data-task="evil"]')
        title = page.locator('svg.graph g.node[data-task="evil"] title').text_content()
        assert f"Title {HOSTILE}" in title
    finally:
        visit.close()


def test_in_progress_mission_draws_running_and_waiting_tasks(tmp_path):
    from dispatch_kit.ledger import Ledger
    from dispatch_kit.plan.load import load_plan
    from dispatch_kit.report import mission_page

    shutil.copy(EXAMPLE / "plan.yaml", tmp_path / "plan.yaml")
    shutil.copytree(EXAMPLE / "workspace", tmp_path / "workspace")
    plan = load_plan(str(tmp_path / "plan.yaml"))
    with Ledger.open(tmp_path / "ledger.db", create=True) as ledger:
        mission = ledger.init_mission(plan).mission
        assert ledger.claim(mission, "counter", "me", 600).ok
        html = mission_page(ledger, mission)
    assert 'data-task="counter" data-state="running"' in html
    assert 'data-task="review" data-state="waiting"' in html
    assert 'data-state="in_progress"' in html


def main(argv: list[str]) -> int:
    """Write the README's screenshot of the demo mission to argv[0] (top of the page)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    out = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory(prefix="dk-demo-") as tmp, sync_playwright() as p:
        db = demo_mission(Path(tmp))
        page_file = page_of(db, Path(tmp) / "mission.html")
        visit = Visit(p, page_file, out, clip_height=int(argv[1]) if len(argv) > 1 else 760)
        problems = visit.console + [("request", u) for u in visit.own_requests]
        visit.close()
    print(f"wrote {out} ({out.stat().st_size} bytes); browser problems: {problems or 'none'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "scripts"))
    raise SystemExit(main(sys.argv[1:]))


def test_the_actions_mission_step_writes_the_page_it_attaches(tmp_path):
    """The composite Action's step, run as GitHub runs it: bash, inputs in env, outputs file."""
    import os

    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    steps = {s["name"]: s for s in action["runs"]["steps"]}
    step = steps["Mission page"]
    attach = steps["Attach the mission page"]
    assert attach["uses"].startswith("actions/upload-artifact@")
    assert attach["with"]["path"] == "${{ steps.mission.outputs.report }}"
    db = demo_mission(tmp_path)
    shim = tmp_path / "bin" / "dispatch-kit"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m dispatch_kit "$@"\n')
    shim.chmod(0o755)
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    env = {"PATH": f"{shim.parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT / "scripts"),
           "LEDGER": str(db), "MISSION": "", "REPORT": "mission.html",
           "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
           "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert outputs.read_text() == "report=mission.html\n"
    page = (tmp_path / "mission.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'data-task="review"' in page
    assert os.path.getsize(tmp_path / "mission.html") < 200_000
