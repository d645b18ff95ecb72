"""OpenTelemetry traces of ``dispatch-kit run``, ``run --detach``, ``check`` and ``attempt``.

The CLI runs as a user runs it, with the standard OTLP environment pointing at a
small OTLP/HTTP receiver in this process (the real exporter, the real protocol);
workers are real processes that write down the ``TRACEPARENT`` they were given.
The in-process test uses the SDK's in-memory exporter. Nothing here sleeps: a
process's spans are all delivered before it exits (the exporter flushes at
shutdown), and a blocked worker is released through a named pipe.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import cli_env

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

GUARD = 120.0

# Records the TRACEPARENT it got; task "a" with BLOCK_ON set waits for a line on that pipe.
WORKER = textwrap.dedent("""\
    import os, pathlib, sys
    task, attempt = os.environ["DISPATCH_KIT_TASK"], os.environ["DISPATCH_KIT_ATTEMPT"]
    record = pathlib.Path(os.environ["TP_DIR"]) / f"{task}.{attempt}"
    record.write_text(os.environ.get("TRACEPARENT", "") + "\\n" + os.environ.get("TRACESTATE", ""))
    block = os.environ.get("BLOCK_ON")
    if block and task == "a":
        with open(block) as pipe:
            pipe.readline()
    if attempt != "1" or task not in os.environ.get("FAIL_FIRST", "").split(","):
        pathlib.Path("done.txt").write_text("ok")
    """)


class Collector:
    """An OTLP/HTTP receiver: every span exported to it, as plain dicts."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.resources: list[dict] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in
                            resource_spans.resource.attributes}
                self.resources.append(resource)
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.spans.append({
                            "name": span.name,
                            "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex() or None,
                            "attrs": {kv.key: _value(kv.value) for kv in span.attributes},
                            "error": span.status.code == 2,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                        })

    def named(self, prefix: str) -> list[dict]:
        return [s for s in self.spans if s["name"].startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value):
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
def otlp():
    collector = Collector()
    yield collector
    collector.close()


def scrubbed(**extra: str) -> dict[str, str]:
    env = cli_env()
    for name in list(env):
        if name.startswith("OTEL_") or name in ("TRACEPARENT", "TRACESTATE"):
            del env[name]
    env.update(extra)
    return env


def traced_env(otlp: Collector, tmp_path: Path, **extra: str) -> dict[str, str]:
    tp_dir = tmp_path / "traceparents"
    tp_dir.mkdir(exist_ok=True)
    return scrubbed(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
                    OTEL_SERVICE_NAME="dk-test", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
                    TP_DIR=str(tp_dir), **extra)


def write_plan(tmp_path: Path, tasks: list[dict], retries: int = 1) -> Path:
    doc = {"goal": "Trace a mission", "workspace": "ws",
           "defaults": {"timeout": 60, "max_retries": retries},
           "tasks": [{"id": t["id"], "title": f"Task {t['id']}", "type": "coding", "cwd": t["id"],
                      "depends_on": t.get("depends_on", []),
                      "exit_criteria": [{"file_exists": "done.txt"}, "test -s done.txt"]}
                     for t in tasks]}
    (tmp_path / "worker.py").write_text(WORKER)
    path = tmp_path / "plan.yaml"
    path.write_text(json.dumps(doc))
    return path


def worker_cmd(tmp_path: Path) -> str:
    return f"{sys.executable} {tmp_path / 'worker.py'}"


def received(tmp_path: Path) -> dict[tuple[str, str], str]:
    """(task, attempt) → the TRACEPARENT that worker got."""
    return {tuple(p.name.split(".")): p.read_text().splitlines()[0]
            for p in (tmp_path / "traceparents").iterdir()}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dispatch_kit", *args], env=env,
                          capture_output=True, text=True, timeout=GUARD)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def read_until(proc: subprocess.Popen, needle: str) -> str:
    """Read the runner's progress lines (stderr) until one contains ``needle``."""
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + GUARD
    while needle.encode() not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise AssertionError(f"no {needle!r}; the runner said {seen.decode()!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"the runner ended before {needle!r}: {seen.decode()!r}")
        seen += chunk
    return seen.decode()


def attempt_spans(otlp: Collector) -> dict[tuple[str, int], dict]:
    found: dict[tuple[str, int], dict] = {}
    for span in otlp.named("invoke_agent "):
        key = (span["attrs"]["dispatch_kit.task.id"], span["attrs"]["dispatch_kit.attempt"])
        assert key not in found, f"attempt {key} has two spans"
        found[key] = span
    return found


# ------------------------------------------------------------------------------- tests


def test_run_traces_workflow_attempts_and_criteria_and_hands_workers_their_span(tmp_path, otlp):
    plan = write_plan(tmp_path, [{"id": "a"}, {"id": "b", "depends_on": ["a"]}])
    env = traced_env(otlp, tmp_path, FAIL_FIRST="b")
    result = run("run", str(plan), "--worker", worker_cmd(tmp_path), env=env)
    assert result.returncode == 0, result.stderr

    traces = {span["trace"] for span in otlp.spans}
    assert len(traces) == 1, "the whole mission is one trace"
    (workflow,) = otlp.named("invoke_workflow ")
    assert workflow["name"] == "invoke_workflow plan" and workflow["parent"] is None
    assert workflow["attrs"]["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow["attrs"]["dispatch_kit.tasks.verified"] == 2
    assert {"service.name": "dk-test"}.items() <= otlp.resources[0].items()

    attempts = attempt_spans(otlp)
    assert set(attempts) == {("a", 1), ("b", 1), ("b", 2)}  # every attempt has its span
    for span in attempts.values():
        assert span["parent"] == workflow["id"]
        assert span["attrs"]["gen_ai.operation.name"] == "invoke_agent"
        assert span["attrs"]["gen_ai.agent.name"] == Path(sys.executable).name
        assert "worker.py" in span["attrs"]["dispatch_kit.worker.command"]
    failed = attempts[("b", 1)]
    assert failed["error"] and failed["attrs"]["error.type"] == "criteria_failed"
    assert failed["attrs"]["dispatch_kit.verdict"] == "failed"
    assert attempts[("b", 2)]["attrs"]["dispatch_kit.verdict"] == "verified"
    assert not attempts[("b", 2)]["error"]

    # Each worker got TRACEPARENT = its own attempt's span: a worker's spans nest under it.
    for (task, attempt), header in received(tmp_path).items():
        span = attempts[(task, int(attempt))]
        assert header == f"00-{span['trace']}-{span['id']}-01"

    criteria = otlp.named("execute_tool ")
    assert len(criteria) == 2 * len(attempts)
    by_parent: dict[str, list[dict]] = {}
    for span in criteria:
        by_parent.setdefault(span["parent"], []).append(span)
    assert set(by_parent) == {s["id"] for s in attempts.values()}
    failing = {s["attrs"]["dispatch_kit.criterion.verdict"] for s in by_parent[failed["id"]]}
    assert failing == {"fail"}
    tool = by_parent[failed["id"]][0]
    assert tool["attrs"]["gen_ai.operation.name"] == "execute_tool"
    assert tool["attrs"]["error.type"] == "fail" and tool["error"]


def test_killed_run_resumed_continues_the_same_trace(tmp_path, otlp):
    plan = write_plan(tmp_path, [{"id": "a"}, {"id": "b", "depends_on": ["a"]}])
    go = tmp_path / "go.pipe"
    os.mkfifo(go)
    env = traced_env(otlp, tmp_path, BLOCK_ON=str(go))
    first = subprocess.Popen([sys.executable, "-m", "dispatch_kit", "run", str(plan), "--worker",
                              worker_cmd(tmp_path)], env=env, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL)
    read_until(first, "dispatched a")
    first.send_signal(signal.SIGKILL)  # no chance to close or export anything
    first.wait()
    killed_spans = len(otlp.spans)

    second = subprocess.Popen([sys.executable, "-m", "dispatch_kit", "run", str(plan),
                               "--worker", worker_cmd(tmp_path)], env=env,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    read_until(second, "adopted a")
    with open(go, "w") as pipe:  # opens once the worker waits on it; then lets it finish
        pipe.write("go\n")
    _, err = second.communicate(timeout=GUARD)
    assert second.returncode == 0, err.decode()

    assert killed_spans == 0
    assert len({span["trace"] for span in otlp.spans}) == 1, "one trace across both runs"
    workflows = {s["attrs"]["dispatch_kit.holder"]: s for s in otlp.named("invoke_workflow ")}
    assert len(workflows) == 2
    root = next(s for s in workflows.values() if s["parent"] is None)
    resumed = next(s for s in workflows.values() if s["parent"] is not None)
    assert resumed["parent"] == root["id"]
    assert root["error"] and root["attrs"]["error.type"] == "killed"  # emitted by the next run
    assert str(first.pid) in next(h for h, s in workflows.items() if s is root)

    attempts = attempt_spans(otlp)
    assert set(attempts) == {("a", 1), ("b", 1)}
    adopted = attempts[("a", 1)]
    assert adopted["parent"] == root["id"]  # started by the killed run, ended under the next
    assert attempts[("b", 1)]["parent"] == resumed["id"]
    tp = received(tmp_path)
    assert tp[("a", "1")] == f"00-{adopted['trace']}-{adopted['id']}-01"
    assert tp[("b", "1")] == f"00-{adopted['trace']}-{attempts[('b', 1)]['id']}-01"


def test_detached_worker_stays_in_the_mission_trace(tmp_path, otlp):
    plan = write_plan(tmp_path, [{"id": "a"}, {"id": "b", "depends_on": ["a"]}])
    env = traced_env(otlp, tmp_path)
    detached = run("run", str(plan), "--worker", worker_cmd(tmp_path), "--detach", env=env)
    assert detached.returncode == 0 and "dispatched a" in detached.stdout, detached.stderr
    (detach_span,) = otlp.named("invoke_workflow ")
    assert detach_span["attrs"]["dispatch_kit.run.kind"] == "detach"
    assert not otlp.named("invoke_agent ")  # still running, or not collected yet

    collect = run("run", str(plan), "--worker", worker_cmd(tmp_path), env=env)
    assert collect.returncode == 0, collect.stderr
    header = received(tmp_path)[("a", "1")]
    attempts = attempt_spans(otlp)
    span = attempts[("a", 1)]
    assert header == f"00-{span['trace']}-{span['id']}-01"
    assert span["parent"] == detach_span["id"] and span["trace"] == detach_span["trace"]
    collector_run = next(s for s in otlp.named("invoke_workflow ") if s is not detach_span)
    assert collector_run["parent"] == detach_span["id"]  # the mission's root
    assert attempts[("b", 1)]["parent"] == collector_run["id"]
    assert {s["parent"] for s in otlp.named("execute_tool ")} == {span["id"],
                                                                  attempts[("b", 1)]["id"]}


def test_workflow_attempt_start_and_finish_are_traced(tmp_path, otlp):
    plan = write_plan(tmp_path, [{"id": "a"}, {"id": "b"}])
    env = traced_env(otlp, tmp_path)
    assert run("ledger", "init", str(plan), env=env).returncode == 0
    for task in ("a", "b"):
        started = run("attempt", "start", str(plan), "--task", task, env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        (tmp_path / "ws" / task).mkdir(parents=True, exist_ok=True)
        (tmp_path / "ws" / task / "done.txt").write_text("ok")
        if task == "a":
            assert not otlp.named("invoke_agent ")  # not ended yet
        finished = run("attempt", "finish", str(plan), "--task", task, env=env)
        assert json.loads(finished.stdout)["outcome"] == "verified", finished.stdout
        if task == "a":
            assert not otlp.named("invoke_workflow ")  # the mission is not over
    attempts = attempt_spans(otlp)
    assert set(attempts) == {("a", 1), ("b", 1)}
    assert {s["name"] for s in attempts.values()} == {"invoke_agent dispatch-worker"}
    (workflow,) = otlp.named("invoke_workflow ")  # emitted when the mission finished
    assert workflow["parent"] is None and workflow["attrs"]["dispatch_kit.run.kind"] == "workflow"
    assert {s["parent"] for s in attempts.values()} == {workflow["id"]}
    assert {s["parent"] for s in otlp.named("execute_tool ")} == {s["id"] for s in
                                                                  attempts.values()}


def test_no_otel_environment_imports_no_opentelemetry_and_sets_no_traceparent(tmp_path):
    plan = write_plan(tmp_path, [{"id": "a"}, {"id": "b"}])
    (tmp_path / "traceparents").mkdir()
    env = scrubbed(PYTHONPROFILEIMPORTTIME="1", TP_DIR=str(tmp_path / "traceparents"))
    for args in (("run", str(plan), "--worker", worker_cmd(tmp_path)), ("check", str(plan))):
        result = run(*args, env=env)
        assert result.returncode == 0, result.stderr
        modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", result.stderr, re.M))
        assert "dispatch_kit.runner" in modules or "dispatch_kit.check.criteria" in modules
        assert not {m for m in modules if m.split(".")[0] == "opentelemetry"}
        assert "dispatch_kit.telemetry.mission" not in modules
    assert received(tmp_path) == {("a", "1"): "", ("b", "1"): ""}
    assert run("run", str(plan), "--worker", "true", env=scrubbed(
        OTEL_TRACES_EXPORTER="none", PYTHONPROFILEIMPORTTIME="1")).stderr.count(
        "opentelemetry") == 0


def test_check_in_process_nests_under_the_callers_traceparent(tmp_path, monkeypatch):
    """``dispatch-kit check`` run by a worker: its spans join the worker's attempt."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from dispatch_kit.cli import main
    from dispatch_kit.telemetry import setup

    plan = write_plan(tmp_path, [{"id": "a"}, {"id": "b"}])
    (tmp_path / "ws" / "a").mkdir(parents=True)
    (tmp_path / "ws" / "a" / "done.txt").write_text("ok")
    exporter = InMemorySpanExporter()
    setup.install(exporter)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("TRACEPARENT", parent)
    monkeypatch.setenv("TRACESTATE", "vendor=x")
    assert main(["check", str(plan), "--format", "json"]) == 1
    spans = exporter.get_finished_spans()
    (check,) = [s for s in spans if s.name == "check plan"]
    assert check.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert check.parent.span_id == 0xB7AD6B7169203331
    assert check.attributes["error.type"] == "criteria_failed"
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    assert len(tools) == 4 and {s.parent.span_id for s in tools} == {check.context.span_id}
    verdicts = sorted((s.attributes["gen_ai.tool.call.id"],
                       s.attributes["dispatch_kit.criterion.verdict"]) for s in tools)
    assert verdicts == [("a[0]", "pass"), ("a[1]", "pass"), ("b[0]", "error"), ("b[1]", "error")]
    assert all(s.context.trace_state.get("vendor") == "x" for s in tools)
