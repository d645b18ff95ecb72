"""The environment criteria and workers run in: the same verdict from a terminal, CI or cron.

A stale ``__pycache__`` once failed a correct task on every machine without
PYTHONDONTWRITEBYTECODE, and cron's bare environment (no LANG, no HOME) can
change what a command prints. These tests build each situation on purpose
rather than hoping a timing reproduces it.
"""

from __future__ import annotations

import json
import os
import py_compile
import sys
from pathlib import Path

import pytest
from conftest import SCRIPTS, cli_env

from dispatch_kit.ledger.fingerprint import plan_fingerprint
from dispatch_kit.plan.load import load_plan

PY = json.dumps(sys.executable)  # the cache tag of the stale .pyc must be this Python's
IMPORT_NEW = f'run: [{PY}, -c, "import mod, sys; sys.exit(mod.X != 3)"]'


def write_plan(tmp_path: Path, body: str) -> Path:
    for name in ("a", "b"):
        (tmp_path / "ws" / name).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "plan.yaml"
    path.write_text("goal: Exercise the criteria environment\nworkspace: ws\n" + body)
    return path


def stale_bytecode(folder: Path) -> None:
    """mod.py says X = 3; its __pycache__ holds X = 5 with the same mtime (seconds) and size.

    That is what a worker leaves when it rewrites a file within a second of a
    run that cached it: Python's check (mtime, size) accepts the old code.
    """
    source = folder / "mod.py"
    source.write_text("X = 5\n")
    cached = folder / "__pycache__" / f"mod.{sys.implementation.cache_tag}.pyc"
    py_compile.compile(str(source), cfile=str(cached), doraise=True)
    stamp = source.stat().st_mtime
    source.write_text("X = 3\n")
    os.utime(source, (stamp, stamp))


def check(cli, plan: Path, env: dict | None = None) -> tuple[int, dict]:
    result = cli("check", str(plan), "--format", "json", env=env)
    assert result.returncode in (0, 1), result.output
    return result.returncode, json.loads(result.stdout)


def verdicts(document: dict) -> list[str]:
    return [c["verdict"] for t in document["tasks"] for c in t["criteria"]]


def bytecode_written() -> dict[str, str]:
    """The environment of most users: Python writes and reads __pycache__ beside the sources."""
    env = cli_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def test_stale_bytecode_in_the_tree_cannot_fail_a_correct_task(cli, tmp_path):
    shell = f'{sys.executable} -c "import mod, sys; sys.exit(mod.X != 3)"'
    plan = write_plan(tmp_path, f"""tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria: [{json.dumps(shell)}, {{{IMPORT_NEW}}}]
  - {{id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}}
""")
    stale_bytecode(tmp_path / "ws" / "a")
    code, document = check(cli, plan, env=bytecode_written())
    assert verdicts(document) == ["pass", "pass", "pass"], document
    assert code == 0
    # Nothing was written beside the sources, and the private folder is gone.
    assert [p.name for p in (tmp_path / "ws" / "a" / "__pycache__").iterdir()] == [
        f"mod.{sys.implementation.cache_tag}.pyc"]


def test_the_guard_can_be_turned_off_per_task_and_per_criterion(cli, tmp_path):
    plan = write_plan(tmp_path, f"""tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    env: {{PYTHONPYCACHEPREFIX: null}}
    exit_criteria:
      - {{{IMPORT_NEW}}}
  - id: b
    title: B
    type: coding
    cwd: b
    exit_criteria:
      - {{{IMPORT_NEW}, env: {{PYTHONPYCACHEPREFIX: null}}}}
      - {{{IMPORT_NEW}}}
""")
    for name in ("a", "b"):
        stale_bytecode(tmp_path / "ws" / name)
    _, document = check(cli, plan, env=bytecode_written())
    # Without the prefix, Python reads the tree's stale cache: the old behaviour, on request.
    assert verdicts(document) == ["fail", "fail", "pass"]


def test_env_sets_and_removes_variables_in_layers(cli, tmp_path):
    show = f'run: [{PY}, -c, "import os, sys; print(os.environ.get(sys.argv[1], \'-\'))", NAME]'
    plan = write_plan(tmp_path, f"""defaults:
  env: {{LAYER: plan, ONLY_PLAN: "yes", GONE: x}}
tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    env: {{LAYER: task, GONE: null}}
    exit_criteria:
      - {{{show.replace("NAME", "LAYER")}}}
      - {{{show.replace("NAME", "LAYER")}, env: {{LAYER: criterion}}}}
      - {{{show.replace("NAME", "ONLY_PLAN")}}}
      - {{{show.replace("NAME", "GONE")}}}
      - {{{show.replace("NAME", "FROM_CALLER")}, env: {{FROM_CALLER: null}}}}
      - {{{show.replace("NAME", "PYTHONDONTWRITEBYTECODE")}}}
  - {{id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}}
""")
    _, document = check(cli, plan, env=cli_env(GONE="caller", FROM_CALLER="caller"))
    outputs = [c["stdout_tail"].strip() for c in document["tasks"][0]["criteria"]]
    assert outputs == ["task", "criterion", "yes", "-", "-", "1"]
    shown = [c["criterion"] for c in document["tasks"][0]["criteria"]]
    assert shown[1].startswith("env LAYER=criterion ")  # what a worker is told to run
    assert shown[4].startswith("env -u FROM_CALLER ")


def test_the_private_bytecode_folder_is_fresh_and_removed(cli, tmp_path):
    plan = write_plan(tmp_path, """tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - 'echo "$PYTHONPYCACHEPREFIX" > first; ls -A "$PYTHONPYCACHEPREFIX" | wc -l > count'
      - 'echo "$PYTHONPYCACHEPREFIX" > second'
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""")
    code, _ = check(cli, plan)
    assert code == 0
    folder = tmp_path / "ws" / "a"
    first, second = ((folder / n).read_text().strip() for n in ("first", "second"))
    assert first != second and Path(first).is_absolute()
    assert (folder / "count").read_text().strip() == "0"
    assert not Path(first).exists() and not Path(second).exists()


def cron_env(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SCRIPTS), **extra}


@pytest.mark.parametrize(("caller", "expected"), [
    # Python's own C-locale coercion off, so the checker's filling is what is tested.
    ({"PYTHONCOERCECLOCALE": "0"}, "LC_ALL=- LC_CTYPE=C.UTF-8 LANG=-"),
    ({"PYTHONCOERCECLOCALE": "0", "LC_ALL": "C"}, "LC_ALL=C LC_CTYPE=- LANG=-"),
    ({"PYTHONCOERCECLOCALE": "0", "LANG": "C"}, "LC_ALL=- LC_CTYPE=- LANG=C"),
])
def test_criteria_get_a_utf8_locale_only_when_none_was_chosen(cli, tmp_path, caller, expected):
    plan = write_plan(tmp_path, """tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    exit_criteria:
      - 'echo "LC_ALL=${LC_ALL:--} LC_CTYPE=${LC_CTYPE:--} LANG=${LANG:--}"'
      - 'printf "caf\\303\\251" | wc -m'
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""")
    _, document = check(cli, plan, env=cron_env(**caller))
    locale, chars = document["tasks"][0]["criteria"]
    assert locale["stdout_tail"].strip() == expected
    # "café" is 4 characters in UTF-8 and 5 in the C locale: `wc -m` criteria depend on it.
    assert chars["stdout_tail"].strip() == ("4" if "C.UTF-8" in expected else "5")


def test_criteria_and_workers_get_a_home_when_cron_gives_none(cli, tmp_path):
    plan = write_plan(tmp_path, """tasks:
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: ['test -d "$HOME"', file_exists: home]}
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""")
    result = cli("run", str(plan), "--worker", 'echo "$HOME" > home', "--quiet", "--format",
                 "json", env=cron_env())
    assert result.returncode == 0, result.output
    import pwd

    expected = pwd.getpwuid(os.getuid()).pw_dir
    assert (tmp_path / "ws" / "a" / "home").read_text().strip() == expected


def test_workers_get_their_task_env_but_not_the_bytecode_guard(cli, tmp_path):
    plan = write_plan(tmp_path, """defaults:
  env: {SHARED: plan}
tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    env: {OWN: task-a}
    exit_criteria: ['test "$SHARED $OWN" = "plan task-a"', file_exists: seen]
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: [file_exists: seen]}
""")
    worker = 'echo "${SHARED:--} ${OWN:--} ${PYTHONPYCACHEPREFIX:--}" > seen'
    env = cli_env()
    env.pop("PYTHONPYCACHEPREFIX", None)
    result = cli("run", str(plan), "--worker", worker, "--quiet", env=env)
    assert result.returncode == 0, result.output
    assert (tmp_path / "ws" / "a" / "seen").read_text().split() == ["plan", "task-a", "-"]
    assert (tmp_path / "ws" / "b" / "seen").read_text().split() == ["plan", "-", "-"]


def test_bad_env_entries_are_reported_with_their_position(cli, tmp_path):
    plan = write_plan(tmp_path, """defaults:
  env: {"bad-name": x, DISPATCH_KIT_TASK: y}
tasks:
  - id: a
    title: A
    type: coding
    cwd: a
    env:
      PYTHONDONTWRITEBYTECODE: 1
      LIST: [x]
    exit_criteria:
      - file_exists: out.txt
        env: {X: "1"}
  - {id: b, title: B, type: coding, cwd: b, env: [x], exit_criteria: ["true"]}
""")
    result = cli("plan", "validate", str(plan))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{plan}:4:9: defaults.env: invalid variable name 'bad-name': use letters, digits and _, "
        "not starting with a digit",
        f"{plan}:4:24: defaults.env: DISPATCH_KIT_TASK is reserved: dispatch-kit sets "
        "DISPATCH_KIT_* variables for each worker",
        f"{plan}:11:7: tasks[0].env.PYTHONDONTWRITEBYTECODE: must be a string or null (to remove "
        'the variable); got 1 (a number): quote it, as in PYTHONDONTWRITEBYTECODE: "1"',
        f"{plan}:12:7: tasks[0].env.LIST: must be a string or null (to remove the variable); "
        "got a list",
        f"{plan}:15:9: task 'a': env applies to a run criterion only; file_exists is checked "
        "in-process and starts no command",
        f"{plan}:16:45: tasks[1].env: must be a mapping, got a list",
    ], result.stderr


def test_env_is_part_of_a_task_but_absent_env_keeps_old_fingerprints(tmp_path):
    plan_path = write_plan(tmp_path, """tasks:
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: ["true", {run: ["true"]}]}
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: ["true"]}
""")
    whole, before = plan_fingerprint(load_plan(str(plan_path)))
    # The hash of this plan before `env` existed: a ledger made then still matches it.
    assert whole == "3b68814fdbd82af4cd1c6382c7a1c94ae47441043bb1b5173f4913a97ab2d9b3"
    text = plan_path.read_text()
    plan_path.write_text(text.replace('{run: ["true"]}', '{run: ["true"], env: {A: "1"}}'))
    _, with_criterion_env = plan_fingerprint(load_plan(str(plan_path)))
    plan_path.write_text(text.replace("cwd: b,", "cwd: b, env: {B: null},"))
    _, with_task_env = plan_fingerprint(load_plan(str(plan_path)))
    assert with_criterion_env["a"] != before["a"] and with_criterion_env["b"] == before["b"]
    assert with_task_env["b"] != before["b"] and with_task_env["a"] == before["a"]
