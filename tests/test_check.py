"""`dispatch-kit check`: verdicts from real processes, and no process left behind.

Each test writes a small plan into a temporary workspace and runs the real CLI
as a subprocess. Processes a criterion starts inherit a unique environment
marker, so a test can scan /proc for survivors without guessing at names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, cli_env

SCHEMA = ROOT / "scripts" / "dispatch_kit" / "schemas" / "check-result.schema.json"
MARK = "DK_CHECK_TEST_MARK"


def make_plan(tmp_path: Path, tasks: str, dirs: tuple[str, ...] = ("a", "b")) -> Path:
    """A plan at tmp_path/plan.yaml with workspace ws/ and the given task folders created."""
    for name in dirs:
        (tmp_path / "ws" / name).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "plan.yaml"
    path.write_text("goal: Exercise the checker\nworkspace: ws\ntasks:\n" + tasks, encoding="utf-8")
    return path


def check_json(cli, plan: Path, *args: str, env: dict | None = None) -> tuple[int, dict]:
    result = cli("check", str(plan), "--format", "json", *args, env=env)
    assert result.returncode in (0, 1), result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    return result.returncode, document


def criteria(document: dict) -> list[dict]:
    return [c for task in document["tasks"] for c in task["criteria"]]


def marked(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment carries ``MARK=marker``."""
    needle = f"{MARK}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def survivors(marker: str, wait: float = 30.0) -> list[int]:
    """Marked processes still alive after giving SIGKILL time to land.

    Returns as soon as none is left; ``wait`` only bounds a real failure, so it
    can be generous enough for a machine busy with other work.
    """
    deadline = time.monotonic() + wait
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return marked(marker)


# Generous bounds on waits that normally end in a second: they only stop a test that really
# hangs, and must not fail one that ran on a machine busy with other work.
GUARD = 120.0


def interrupt_check(
    plan: Path, marker: str, ready: int, sig: signal.Signals, *args: str
) -> tuple[int, bytes]:
    """Run `check` on ``plan``, send ``sig`` once ``ready`` criteria said they are in place.

    Each criterion touches a ``ready.*`` file in the workspace once it has
    started what the test means to stop, so the signal never races their start
    (counting processes did: a fork not yet exec'd counted too). Returns the
    exit code and stderr. The checker is killed if it outlives the test, so a
    failing assertion never leaves it running.
    """
    workspace = plan.parent / "ws"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch_kit", "check", str(plan), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(**{MARK: marker}),
    )
    try:
        deadline = time.monotonic() + GUARD
        while (len(list(workspace.glob("ready.*"))) < ready and proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert len(list(workspace.glob("ready.*"))) >= ready, "criteria did not start"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


@pytest.fixture
def marker():
    token = uuid.uuid4().hex
    yield token
    for pid in marked(token):  # never leave a stray sleep on the machine, even on failure
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


MIXED = """\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - test -f present.txt
      - test -f absent.txt
      - file_exists: present.txt
      - contains: {path: present.txt, text: "hello world"}
      - contains: {path: present.txt, regex: "^second line$"}
      - contains: {path: present.txt, text: goodbye}
      - min_bytes: {path: present.txt, bytes: 1000}
      - run: [sh, -c, "echo out; echo err >&2; exit 3"]
  - id: b
    title: B
    type: review
    cwd: b
    depends_on: [a]
    exit_criteria:
      - "true"
      - file_exists: ../a
"""


def test_mixed_plan_reports_each_verdict_in_plan_order(cli, tmp_path):
    plan = make_plan(tmp_path, MIXED)
    (tmp_path / "ws" / "a" / "present.txt").write_text("hello world\nsecond line\n")
    code, doc = check_json(cli, plan)
    assert code == 1
    assert doc["plan"] == str(plan) and doc["version"] == 1 and doc["passed"] is False
    verdicts = [(c["index"], c["verdict"]) for c in criteria(doc)]
    assert verdicts == [
        (0, "pass"), (1, "fail"), (2, "pass"), (3, "pass"), (4, "pass"), (5, "fail"),
        (6, "fail"), (7, "fail"), (0, "pass"), (1, "fail"),
    ]
    assert doc["summary"] == {"pass": 5, "fail": 5, "timeout": 0, "error": 0}
    task_a, task_b = doc["tasks"]
    assert task_a["cwd"] == str((tmp_path / "ws" / "a").resolve())
    assert task_a["passed"] is False and task_b["passed"] is False
    by_index = task_a["criteria"]
    assert by_index[1]["exit_code"] == 1 and by_index[1]["kind"] == "shell"
    assert by_index[5]["message"] == "present.txt does not contain 'goodbye'"
    assert by_index[6]["message"] == "present.txt has 24 bytes, needs at least 1000"
    assert by_index[7]["exit_code"] == 3
    assert by_index[7]["stdout_tail"] == "out\n" and by_index[7]["stderr_tail"] == "err\n"
    assert by_index[7]["message"] == "exit code 3: err"
    assert by_index[3]["criterion"] == "grep -qaF -- 'hello world' present.txt"
    assert by_index[0]["line"] == 9 and by_index[7]["line"] == 16
    assert all(c["message"] == "" for c in criteria(doc) if c["verdict"] == "pass")
    assert task_b["criteria"][1]["message"] == "../a exists but is not a regular file"


def test_all_pass_exits_0(cli, tmp_path):
    plan = make_plan(tmp_path, MIXED)
    (tmp_path / "ws" / "a" / "present.txt").write_text("hello world\nsecond line\n")
    result = cli("check", str(plan), "--task", "b", "--format", "json")
    assert result.returncode == 1  # b's file_exists on a folder fails
    body = MIXED.replace("file_exists: ../a", "file_exists: ../a/present.txt")
    plan = make_plan(tmp_path, body)
    code, doc = check_json(cli, plan, "--task", "b")
    assert code == 0 and doc["passed"] is True
    assert [t["id"] for t in doc["tasks"]] == ["b"]


def test_text_format_has_one_line_per_criterion_and_a_summary(cli, tmp_path):
    plan = make_plan(tmp_path, MIXED)
    (tmp_path / "ws" / "a" / "present.txt").write_text("hello world\nsecond line\n")
    result = cli("check", str(plan))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    heads = [ln for ln in lines if not ln.startswith("    ")]
    assert len(heads) == 11  # ten criteria and the summary
    assert heads[0].split()[:2] == ["a[0]", "pass"]
    assert heads[0].split()[2].endswith("s")
    assert heads[1].split()[:2] == ["a[1]", "fail"] and heads[1].endswith("test -f absent.txt")
    assert heads[8].split()[:2] == ["b[0]", "pass"]
    assert "    exit code 3: err" in lines
    assert "    stderr| err" in lines and "    stdout| out" in lines
    assert heads[-1].startswith("check: 10 criteria in 2 tasks: 5 pass, 5 fail, 0 timeout")


def test_hanging_criterion_and_its_grandchild_are_killed_at_the_timeout(cli, tmp_path, marker):
    plan = make_plan(tmp_path, """\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - run: [sh, -c, "sleep 1000 & sleep 1000"]
        timeout: 1
      - "true"
  - id: b
    title: B
    type: coding
    cwd: b
    timeout: 1
    exit_criteria:
      - trap '' TERM; (trap '' TERM; sleep 1000) & sleep 1000
""")
    code, doc = check_json(cli, plan, env=cli_env(**{MARK: marker}))
    assert code == 1
    hang, quick, stubborn = criteria(doc)
    assert [c["verdict"] for c in (hang, quick, stubborn)] == ["timeout", "pass", "timeout"]
    for entry in (hang, stubborn):  # the task's 1 s caps the shell criterion's 60 s default
        # stopped at 1 s, not at 60 s; the upper bound leaves room for a busy machine
        assert 1.0 <= entry["duration"] < 15.0
        assert entry["exit_code"] is None
        assert "process group was killed" in entry["message"]
    assert survivors(marker) == []


def test_default_timeout_flag(cli, tmp_path, marker):
    plan = make_plan(tmp_path, """\
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: [sleep 1000]}
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""")  # b must pass under the same 0.5 s: no sleep of its own to race that limit
    code, doc = check_json(cli, plan, "--timeout", "0.5", env=cli_env(**{MARK: marker}))
    assert [c["verdict"] for c in criteria(doc)] == ["timeout", "pass"]
    assert 0.5 <= criteria(doc)[0]["duration"] < 15.0  # 0.5 s, not the 60 s default
    assert survivors(marker) == []


def test_background_leftovers_of_a_passing_criterion_are_killed(cli, tmp_path, marker):
    plan = make_plan(tmp_path, """\
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: ["sleep 1000 & echo started"]}
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["sleep 1000 >/dev/null 2>&1 &"]}
""")
    code, doc = check_json(cli, plan, env=cli_env(**{MARK: marker}))
    assert code == 0
    assert criteria(doc)[0]["stdout_tail"] == "started\n"
    assert survivors(marker) == []


FLOOD_PROBE = """
import json, resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    code = subprocess.run(sys.argv[2:], stdout=out).returncode
print(json.dumps({"code": code,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def test_flood_of_output_keeps_memory_and_tails_bounded(tmp_path):
    plan = make_plan(tmp_path, """\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - (yes | head -c 100000000 >&2) & yes | head -c 200000000; wait
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["head -c 300000000 /dev/zero"]}
""")
    out = tmp_path / "result.json"
    probe = subprocess.run(
        [sys.executable, "-c", FLOOD_PROBE, str(out), sys.executable, "-m", "dispatch_kit",
         "check", str(plan), "--format", "json"],
        capture_output=True, text=True, env=cli_env(), timeout=120,
    )
    stats = json.loads(probe.stdout)
    assert stats["code"] == 0, probe.stderr
    # 600 MB went through the pipes; the checker (the largest child) stayed small.
    assert stats["maxrss_kib"] < 150 * 1024
    flood, zeros = criteria(json.loads(out.read_text()))
    assert flood["verdict"] == "pass" and zeros["verdict"] == "pass"
    assert flood["stdout_tail"] == "y\n" * 2048 and flood["stderr_tail"] == "y\n" * 2048
    assert zeros["stdout_tail"] == "\0" * 4096


def test_command_not_found_is_an_error_and_the_others_still_run(cli, tmp_path):
    plan = make_plan(tmp_path, """\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - no-such-command-dk --version
      - run: [no-such-command-dk, --version]
      - "true"
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: [./not-executable.sh]}
""")
    script = tmp_path / "ws" / "b" / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    code, doc = check_json(cli, plan)
    shell, argv, ok, noexec = criteria(doc)
    assert code == 1
    not_found = ("error", "command not found: no-such-command-dk")
    assert (shell["verdict"], shell["message"]) == not_found
    assert shell["exit_code"] == 127
    assert (argv["verdict"], argv["message"]) == not_found
    assert ok["verdict"] == "pass"
    assert noexec["verdict"] == "error" and "exit 126" in noexec["message"]


def test_missing_cwd_is_an_error_for_that_task_only(cli, tmp_path):
    plan = make_plan(tmp_path, """\
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: ["true"]}
  - id: b
    title: B
    type: coding
    cwd: not-yet
    exit_criteria: [test -f x, {file_exists: x}, {run: ["true"]}]
""", dirs=("a",))
    code, doc = check_json(cli, plan)
    assert code == 1
    assert [c["verdict"] for c in criteria(doc)] == ["pass", "error", "error", "error"]
    message = criteria(doc)[1]["message"]
    assert message.startswith("working directory not-yet does not exist")
    assert doc["summary"]["error"] == 3


def test_output_that_is_not_utf8_is_an_error_verdict_with_valid_json(cli, tmp_path):
    # The issue lists non-UTF-8 output beside a missing cwd and a missing command: the
    # criterion gets a clear `error`, its tails stay readable, and the others still run.
    plan = make_plan(tmp_path, r"""
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - printf 'ok \377\376 end'
      - printf '\377bad\n' >&2; exit 4
      - printf 'caf\303\251 ok'
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""".lstrip("\n"))
    code, doc = check_json(cli, plan)
    binary_out, binary_err, accented, other = criteria(doc)
    assert binary_out["verdict"] == "error" and binary_out["stdout_tail"] == "ok \ufffd\ufffd end"
    assert binary_out["message"].startswith("stdout is not valid UTF-8 (exit code 0)")
    assert binary_err["verdict"] == "error" and binary_err["stderr_tail"] == "\ufffdbad\n"
    assert binary_err["message"].startswith("stderr is not valid UTF-8 (exit code 4)")
    assert accented["verdict"] == "pass" and accented["stdout_tail"] == "caf\u00e9 ok"
    assert other["verdict"] == "pass"
    assert code == 1 and doc["summary"]["error"] == 2
    text = cli("check", str(plan))
    assert text.returncode == 1 and "\ufffdbad" in text.stdout


def test_jobs_run_criteria_in_parallel_but_report_in_plan_order(cli, tmp_path):
    # Each criterion waits for the other's flag file, so both can pass only when they run
    # at the same time: no timing assertion needed.
    # How long one waits for the other ($TICKS x 20 ms) is set per run: long when both must
    # meet, however busy the machine; short where waiting in vain is the expected outcome.
    wait_for = 'touch {me}; i=0; while [ ! -f {other} ]; do i=$((i+1)); ' \
               '[ $i -gt "$TICKS" ] && exit 1; sleep 0.02; done; echo {me}'
    body = f"""\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - {json.dumps(wait_for.format(me="first", other="second"))}
      - {json.dumps(wait_for.format(me="second", other="first"))}
  - {{id: b, title: B, type: coding, cwd: b, exit_criteria: ["sleep 0.3; echo slow", "echo fast"]}}
"""
    plan = make_plan(tmp_path, body)
    code, doc = check_json(cli, plan, "--jobs", "4", env=cli_env(TICKS=str(int(GUARD / 0.02))))
    assert code == 0
    assert [c["stdout_tail"] for c in criteria(doc)] == ["first\n", "second\n", "slow\n", "fast\n"]
    for name in ("first", "second"):
        (tmp_path / "ws" / "a" / name).unlink()
    code, doc = check_json(cli, plan, "--jobs", "1", env=cli_env(TICKS="25"))
    assert code == 1  # one at a time, the first criterion waits in vain
    assert [c["verdict"] for c in criteria(doc)] == ["fail", "pass", "pass", "pass"]


def test_ctrl_c_kills_every_running_criterion_and_exits_130(tmp_path, marker):
    plan = make_plan(tmp_path, """\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - sleep 1000 & touch ../ready.a0; sleep 1000
      - trap '' TERM INT; touch ../ready.a1; sleep 1000
  - id: b
    title: B
    type: coding
    cwd: b
    exit_criteria: [touch ../ready.b0; sleep 1000, touch ../ready.b1; sleep 1000]
""")
    # three run at once (--jobs 3); the fourth waits for a free slot that never comes
    returncode, stderr = interrupt_check(plan, marker, 3, signal.SIGINT, "--jobs", "3")
    assert returncode == 130, stderr
    assert b"Traceback" not in stderr and b"interrupted" in stderr
    assert survivors(marker) == []


def test_sigterm_also_cleans_up(tmp_path, marker):
    plan = make_plan(tmp_path, """\
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria: ["sleep 1000 & touch ../ready.a0; sleep 1000"]
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""")
    returncode, stderr = interrupt_check(plan, marker, 1, signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, stderr
    assert survivors(marker) == []


def test_bad_input_exits_2(cli, tmp_path):
    plan = make_plan(tmp_path, MIXED)
    result = cli("check", str(plan), "--task", "nope")
    assert result.returncode == 2
    assert "unknown task 'nope'; the plan has: a, b" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("goal: x\ntasks: []\n")
    result = cli("check", str(bad))
    assert result.returncode == 2 and f"{bad}:2:1:" in result.stderr
    assert cli("check", str(plan), "--jobs", "0").returncode == 2


def test_check_plan_library_call_matches_the_contract(tmp_path):
    """The runner and the retry renderer call check_plan directly; same document as the CLI."""
    from dispatch_kit.check.criteria import check_plan
    from dispatch_kit.plan.load import load_plan

    plan_path = make_plan(tmp_path, MIXED)
    (tmp_path / "ws" / "a" / "present.txt").write_text("hello world\nsecond line\n")
    document = check_plan(load_plan(str(plan_path)), ["b"], jobs=2)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert list(document) == ["version", "plan", "passed", "summary", "tasks"]
    assert list(document["tasks"][0]) == ["id", "cwd", "passed", "criteria"]
    assert list(document["tasks"][0]["criteria"][0]) == [
        "index", "criterion", "kind", "line", "verdict", "exit_code", "duration",
        "stdout_tail", "stderr_tail", "message"]


def test_task_filter_takes_several_ids_and_keeps_plan_order(cli, tmp_path):
    plan = make_plan(tmp_path, """\
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: ["echo a"]}
  - id: b
    title: B
    type: coding
    cwd: b
    exit_criteria:
      - |
        echo first line
        echo second line
""")
    code, doc = check_json(cli, plan, "--task", "b", "a")
    assert code == 0 and [t["id"] for t in doc["tasks"]] == ["a", "b"]
    text = cli("check", str(plan), "--task", "b")
    assert text.stdout.splitlines()[0].endswith("echo first line ...")
