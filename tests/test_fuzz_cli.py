"""Property-based fuzzing of every file and stdin reader, and of the pre-dispatch hook.

Issue 13: an adversarial run fed ~840 hostile inputs to every subcommand and
found tracebacks, hangs and messages with no position. These properties are
the promise, checked on inputs hypothesis builds and shrinks:

- the exit status is 0, 1, 2 or 130, and nothing prints a traceback;
- an input with lines that is refused (exit 2) is named with ``file:line``;
- no case takes longer than a hard limit (an alarm in this thread: the regex
  engine and Python code both stop on it).

The readers: plans (file and stdin), ``--vars`` files (with control characters
and retry failures of any verdict), check results, lint targets, ``plugin.json``
(repeated keys, bad UTF-8, any field), a ledger file of any bytes (random, an
SQLite header over noise, a real ledger with bytes overwritten), the hook's event.

The CLI's ``main`` runs in-process with captured output (equivalent to a
subprocess for everything here, and 50x cheaper); a few subprocess cases run
the real thing. CI runs a bounded number of examples (profile ``ci``, the
default); ``DISPATCH_KIT_FUZZ=long`` runs many more (see bench/README.md).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import hard_limit as shared_hard_limit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_kit.cli import main

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile(
    "long", max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("long" if os.environ.get("DISPATCH_KIT_FUZZ") == "long" else "ci")

CASE_LIMIT = 10.0  # seconds: a hang, not a slow machine
EXITS = {0, 1, 2, 130}
LOCATION = re.compile(r":\d+(?::\d+)?: ")


class Timeout(BaseException):
    """Not an Exception: the code under test must not be able to swallow it."""


def hard_limit(seconds: float = CASE_LIMIT):
    return shared_hard_limit(seconds, Timeout)


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)

    def read(self, *args):
        return self.buffer.read(*args).decode("utf-8", "replace")


def invoke(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    """``dispatch-kit ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = _Stdin(stdin)  # type: ignore[assignment]
    try:
        with hard_limit(), redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
            except Exception as exc:  # noqa: BLE001 - what a user would see as a traceback
                return 99, out.getvalue(), f"Traceback: {exc!r}"
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def assert_contract(code: int, err: str, *, lines: bool, path: str | None = None) -> None:
    assert code in EXITS, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    if code == 2 and lines and path is not None:
        first = err.strip().splitlines()[0] if err.strip() else ""
        assert first.startswith(path) and LOCATION.search(first), err[:500]


# --- what hostile input looks like --------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["\ud800", "\0", "a" * 300, "../../etc", ".nan", "-.inf", "1e999",
                     "9" * 5000, "{{ x }}", "${HOME}", "'", "\"", "- ", ": ", "\t"]),
)
JSONISH = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20,
)
KEYS = ["goal", "workspace", "tasks", "defaults", "id", "title", "type", "cwd", "timeout",
        "max_retries", "exit_criteria", "depends_on", "env", "contains", "regex", "path",
        "file_exists", "min_bytes", "run", "passed", "criteria", "verdict", "index", "version",
        "name", "description", "plugins", "source"]


def _mutated_plan(draw_value) -> dict:
    return draw_value


PLAN_LIKE = st.fixed_dictionaries(
    {"goal": SCALARS, "workspace": st.one_of(SCALARS, st.just("ws")),
     "tasks": st.lists(st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=8), max_size=4)},
    optional={"defaults": st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=3)},
)


def serialize(doc, how: str) -> bytes:
    if how == "json":
        return json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    import yaml

    return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")


RAW = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"[" * 5000, b"{" * 5000, b"- " * 3000, b"\t{}", b"\tNaN", b"-Infinity",
                     b"9" * 5000, b"a: " + b"9" * 5000, b"\xef\xbb\xbf{}", b"\x00", b"---\n...",
                     b"&a [*a, *a]", b"!!python/object:os.system x", b"a: !!binary ~"]),
)
DOCUMENT = st.one_of(RAW, st.tuples(PLAN_LIKE, st.sampled_from(["json", "yaml"])).map(
    lambda pair: serialize(*pair)))


def write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


# --- the readers --------------------------------------------------------------------------

@settings(max_examples=40)
@given(data=DOCUMENT, suffix=st.sampled_from(["yaml", "json"]))
def test_plan_validate_any_file(tmp_path_factory, data: bytes, suffix: str) -> None:
    path = write(tmp_path_factory.mktemp("p"), f"plan.{suffix}", data)
    code, _, err = invoke(["plan", "validate", path])
    assert_contract(code, err, lines=b"\n" in data.strip(), path=path)


@given(data=DOCUMENT)
def test_plan_validate_stdin(data: bytes) -> None:
    code, _, err = invoke(["plan", "validate", "-"], stdin=data)
    assert_contract(code, err, lines=False)


def assert_located(code: int, err: str) -> None:
    """Exit 2 names a place: the vars file's ``file:line:col``, or the template line its
    values broke (a vars file is refused at 1:1 at least, even on one line)."""
    assert code in EXITS and "Traceback" not in err, (code, err[-2000:])
    if code == 2:
        first = err.strip().splitlines()[0] if err.strip() else ""
        assert LOCATION.search(first), err[:500]


RETRY_VARS = st.fixed_dictionaries(
    {"failures": st.one_of(SCALARS, st.lists(st.one_of(SCALARS, st.fixed_dictionaries(
        {"verdict": st.one_of(SCALARS, st.sampled_from(["fail", "timeout", "error", "pass"]))},
        optional={"number": SCALARS, "criterion": SCALARS, "exit_code": SCALARS,
                  "duration": SCALARS, "message": SCALARS})), max_size=3))},
    optional={"task_id": SCALARS, "attempt": SCALARS, "max_retries": SCALARS,
              "criteria_total": SCALARS, "dispatch": JSONISH})
CONTROL = st.sampled_from([chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127, 0x85,
                                              0xFFFE)])


def with_control(doc: bytes, where: int, char: str) -> bytes:
    """``doc`` with a control character inserted (a YAML reader refuses most of them)."""
    at = where % (len(doc) + 1)
    return doc[:at] + char.encode("utf-8", "surrogatepass") + doc[at:]


VARS = st.one_of(
    DOCUMENT,
    st.tuples(RETRY_VARS, st.sampled_from(["json", "yaml"])).map(lambda p: serialize(*p)),
    st.builds(with_control, st.tuples(RETRY_VARS, st.sampled_from(["json", "yaml"])).map(
        lambda p: serialize(*p)), st.integers(0, 400), CONTROL),
)


@given(data=VARS, template=st.sampled_from(["worker", "retry", "executor", "report"]),
       suffix=st.sampled_from(["yaml", "json"]))
def test_render_any_vars_file(tmp_path_factory, data: bytes, template: str, suffix: str) -> None:
    path = write(tmp_path_factory.mktemp("v"), f"vars.{suffix}", data)
    code, _, err = invoke(["render", template, "--vars", path])
    assert_located(code, err)
    if code == 2 and not err.startswith(path):  # a template line, not the file: it parsed
        assert ".j2:" in err.splitlines()[0], err[:500]


CHECK_RESULT = st.fixed_dictionaries({
    "version": SCALARS, "plan": SCALARS, "passed": SCALARS,
    "tasks": st.lists(st.fixed_dictionaries(
        {"id": st.sampled_from(["a", "b", "x"]), "passed": SCALARS,
         "criteria": st.lists(st.dictionaries(st.sampled_from(
             ["index", "criterion", "kind", "verdict", "exit_code", "duration", "stdout_tail",
              "stderr_tail", "message", "line"]), SCALARS, max_size=10), max_size=3)}),
        max_size=2),
})


def example_plan(tmp: Path) -> str:
    doc = {"goal": "g", "workspace": "ws", "tasks": [
        {"id": t, "title": t, "type": "coding", "cwd": t,
         "exit_criteria": [{"file_exists": "done.txt"}]} for t in ("a", "b")]}
    return write(tmp, "plan.yaml", json.dumps(doc).encode())


@given(result=st.one_of(CHECK_RESULT.map(lambda d: serialize(d, "json")), RAW))
def test_render_retry_any_check_result(tmp_path_factory, result: bytes) -> None:
    tmp = tmp_path_factory.mktemp("r")
    plan = example_plan(tmp)
    check = write(tmp, "check.json", result)
    code, _, err = invoke(["render", "retry", "--plan", plan, "--task", "a", "--check", check])
    assert_contract(code, err, lines=False)


@given(result=st.one_of(CHECK_RESULT.map(lambda d: serialize(d, "json")), RAW))
def test_ledger_record_any_check_result(tmp_path_factory, result: bytes) -> None:
    tmp = tmp_path_factory.mktemp("l")
    plan = example_plan(tmp)
    db = str(tmp / "ledger.db")
    assert invoke(["ledger", "init", plan, "--db", db])[0] == 0
    check = write(tmp, "check.json", result)
    code, _, err = invoke(["ledger", "record", "a", "--db", db, "--check", check])
    assert_contract(code, err, lines=False)


@given(data=st.one_of(RAW, st.text(max_size=400).map(str.encode)),
       name=st.sampled_from(["prompt.md", "x.md.j2", "plan.yaml", "SKILL.md", "a.json"]))
def test_lint_any_file(tmp_path_factory, data: bytes, name: str) -> None:
    tmp = tmp_path_factory.mktemp("t")
    path = write(tmp, name, data)
    code, _, err = invoke(["lint", path, "--format", "json"])
    assert_contract(code, err, lines=False)


PLUGIN_KEYS = ["name", "version", "description", "marketplace", "author", "keywords",
               "homepage", "repository", "license", "skills", "hooks", "agents"]
MARKETPLACE = st.fixed_dictionaries({}, optional={
    "source": st.one_of(SCALARS, st.sampled_from(["./", "./plugin", "../x", "./a/../..", "x"])),
    "name": SCALARS, "owner": JSONISH, "category": JSONISH})


def json_object_text(pairs: list[tuple[str, object]]) -> bytes:
    """A JSON object one member a line, keys free to repeat (json.dumps cannot write that)."""
    members = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, allow_nan=True)}" for k, v in pairs)
    return ("{\n" + members + "\n}\n").encode("utf-8", "surrogatepass")


PLUGIN_PAIRS = st.lists(st.tuples(st.sampled_from(PLUGIN_KEYS), st.one_of(
    st.sampled_from(["x", "1.0.0", "a plugin"]), SCALARS, JSONISH, MARKETPLACE)), max_size=8)
BASE = [("name", "x"), ("version", "1.0.0"), ("description", "d")]
PLUGIN_JSON = st.one_of(
    RAW,
    JSONISH.map(lambda d: json.dumps(d, indent=1, allow_nan=True).encode("utf-8",
                                                                        "surrogatepass")),
    PLUGIN_PAIRS.map(json_object_text),
    PLUGIN_PAIRS.map(lambda pairs: json_object_text(BASE + pairs)),  # duplicates likely
    st.builds(lambda doc, at, bad: doc[:at % (len(doc) + 1)] + bad + doc[at % (len(doc) + 1):],
              PLUGIN_PAIRS.map(lambda pairs: json_object_text(BASE + pairs)),
              st.integers(0, 300), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])),
)


@given(data=PLUGIN_JSON, check=st.booleans())
def test_manifests_any_plugin_json(tmp_path_factory, data: bytes, check: bool) -> None:
    tmp = tmp_path_factory.mktemp("m")
    path = write(tmp, "plugin.json", data)
    code, _, err = invoke(["manifests", *(["--check"] if check else []), "--root", str(tmp)])
    assert_contract(code, err, lines=b"\n" in data.strip(), path=path)


# --- a ledger file of any bytes ------------------------------------------------------------

LEDGER_CACHE: dict[str, bytes] = {}


def a_real_ledger(tmp: Path) -> bytes:
    """The bytes of a ledger that ran a mission (made once), for damage done to a real one."""
    if "db" not in LEDGER_CACHE:
        plan = example_plan(tmp)
        db = str(tmp / "ledger.db")
        assert invoke(["ledger", "init", plan, "--db", db])[0] == 0
        assert invoke(["ledger", "claim", "a", "--db", db, "--by", "fuzz"])[0] == 0
        import sqlite3

        conn = sqlite3.connect(db)  # everything into the one file, whatever WAL still holds
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        LEDGER_CACHE["db"] = Path(db).read_bytes()
    return LEDGER_CACHE["db"]


SQLITE_HEADER = b"SQLite format 3\x00"


@given(kind=st.sampled_from(["random", "header", "damaged"]), noise=st.binary(max_size=600),
       spots=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=40),
       argv=st.sampled_from([["ledger", "status"], ["ledger", "events"],
                             ["ledger", "status", "--format", "json"], ["ledger", "next"]]))
def test_any_ledger_file(tmp_path_factory, kind, noise, spots, argv) -> None:
    tmp = tmp_path_factory.mktemp("db")
    if kind == "random":
        data = noise
    elif kind == "header":
        data = SQLITE_HEADER + noise
    else:
        page = bytearray(a_real_ledger(tmp_path_factory.mktemp("real")))
        for offset, value in spots:
            page[offset % len(page)] = value
        data = bytes(page)
    db = write(tmp, "ledger.db", data)
    code, _, err = invoke([*argv, "--db", db])
    assert code in EXITS and "Traceback" not in err, (code, err[-2000:])
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err[:2000]


EVENT = st.fixed_dictionaries({
    "tool_name": st.one_of(st.just("Agent"), st.just("Task"), SCALARS),
    "tool_input": st.one_of(JSONISH, st.fixed_dictionaries({
        "prompt": st.one_of(st.text(max_size=2000), SCALARS),
        "subagent_type": st.one_of(st.text(max_size=30), SCALARS)})),
    "cwd": st.one_of(st.just("/"), SCALARS),
})


@given(event=st.one_of(EVENT.map(lambda e: serialize(e, "json")), RAW))
def test_hook_pre_dispatch_any_event(event: bytes) -> None:
    code, _, err = invoke(["hook", "pre-dispatch"], stdin=event)
    assert code in (0, 2), err  # a hook only allows (0) or blocks (2)
    assert "Traceback" not in err


# --- special files: read only regular files, never block ----------------------------------

@pytest.mark.parametrize("argv", [
    ["plan", "validate", "{}"],
    ["render", "worker", "--vars", "{}"],
    ["lint", "{}"],
])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_special_files_are_refused_not_read(tmp_path, argv, special):
    target = "/dev/zero"
    if special == "fifo":
        target = str(tmp_path / "x.md")
        os.mkfifo(target)
    code, _, err = invoke([a.replace("{}", target) for a in argv])
    assert code in (0, 1, 2) if argv[0] == "lint" else code == 2, err
    assert "Traceback" not in err


def test_lint_folder_holding_a_fifo_named_md_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "stuck.md")
    (tmp_path / "ok.md").write_text("[Execute] x\n")
    code, _, err = invoke(["lint", str(tmp_path)])
    assert code in (0, 1, 2) and "Traceback" not in err


# --- a few real processes: what the in-process cases stand for ---------------------------

@pytest.mark.parametrize("argv,stdin", [
    (["plan", "validate", "-"], b"\t{\"goal\": NaN}"),
    (["plan", "validate", "-"], b"[" * 100_000),
    (["hook", "pre-dispatch"], b"{\"tool_name\": \"Agent\", \"tool_input\": {\"prompt\": \""
     + b"<!-- dispatch-kit: " * 20_000 + b"\"}}"),
])
def test_real_process_keeps_the_contract(argv, stdin):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "scripts"))
    proc = subprocess.run([sys.executable, "-m", "dispatch_kit", *argv], input=stdin,
                          capture_output=True, timeout=60, env=env)
    assert proc.returncode in EXITS and b"Traceback" not in proc.stderr, proc.stderr[-2000:]
