#!/usr/bin/env python3
"""Benchmark the ledger's backends: claim latency, and the runner's cost per task when 1, 4
and 16 runners share one mission, on PostgreSQL and on SQLite side by side.

Why this exists: a PostgreSQL ledger lets many machines share a mission (issue 16), but
every claim becomes network round trips. Targets: a claim's median latency on loopback
at most 5 ms, and the runner's own cost per task at most 5 ms with 16 runners sharing a
mission. Absolute times drift with a shared machine's load, so each figure comes with a
baseline from the same run: the claim latency as a ratio to a bare ``SELECT 1`` round trip
on the same connection.

What it measures:

1. latency: on one mission of ``--items`` independent tasks, the median (and p90) of
   ``SELECT 1``, ``claim_next`` (the runners' claim: SKIP LOCKED on PostgreSQL),
   ``claim`` of a named task and ``record``, each call timed alone, sequentially;
2. runners: ``--tasks`` independent tasks with an instant worker (``: > done.txt``) run by
   1, 4 and 16 ``Runner`` processes started together on one mission. Per task: wall time
   of the whole mission, and the runners' own CPU time (every runner process's
   ``process_time``, summed, divided by the tasks: claims, prompts, checks, records, lost
   races), which is the overhead the target is about (the workers and the database
   server are not in it).

PostgreSQL is a throwaway server this script starts (tests/pg_server.py; Debian's
``postgresql`` package), on 127.0.0.1 TCP, fsync off, or ``--url`` to use yours. One
command: ``python3 bench/bench_ledger.py``. It exits 0 whatever it finds: on a shared
machine a benchmark is a report, not a gate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

from dispatch_kit.ledger import Ledger  # noqa: E402
from dispatch_kit.plan.model import Criterion, Plan, Task  # noqa: E402

WORKER = ": > done.txt"


def make_plan(folder: Path, count: int) -> Plan:
    criteria = (Criterion(kind="file_exists", path="done.txt"),)
    tasks = tuple(Task(id=f"t{i:04d}", title=f"Task {i}", type="coding", cwd=f"t{i:04d}",
                       exit_criteria=criteria, timeout=60.0, max_retries=0)
                  for i in range(count))
    return Plan(goal="Benchmark the ledger", workspace=folder / "ws", tasks=tasks,
                path=str(folder / "bench.yaml"), timeout=60.0)


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 3),
            "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 3), "n": len(ordered)}


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def latency(target: str, folder: Path, items: int) -> dict:
    """Median latencies of the ledger's calls, one at a time, on a fresh mission."""
    plan = make_plan(folder, items)
    with Ledger.open(target, create=True) as ledger:
        mission = ledger.init_mission(plan, max_tasks=items, force=True).mission
        ledger.reset_mission(mission)
        select = [timed(lambda: ledger.conn.execute("SELECT 1").fetchone())
                  for _ in range(items)]
        claims_next, claims, records = [], [], []
        ids = [t.id for t in plan.tasks]
        half = items // 2
        for _ in range(half):
            got = []
            claims_next.append(timed(lambda got=got: got.append(
                ledger.claim_next(mission, "bench", 600))))
            records.append(timed(lambda c=got[0]: ledger.record(
                mission, c.task_id, {"passed": True, "criteria": []},
                expect_attempt=c.attempt_id)))
        for task_id in ids[half:]:
            claims.append(timed(lambda t=task_id: ledger.claim(mission, t, "bench", 600)))
    out = {"select_1": stats(select), "claim_next": stats(claims_next),
           "claim": stats(claims), "record": stats(records)}
    out["claim_next_vs_select_1"] = round(out["claim_next"]["median_ms"] /
                                          out["select_1"]["median_ms"], 1)
    return out


CHILD = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from dispatch_kit.ledger import Ledger
from dispatch_kit.plan.model import Criterion, Plan, Task
from dispatch_kit.runner import Progress, Runner, RunOptions
target, folder, count, holder = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
from pathlib import Path
crit = (Criterion(kind="file_exists", path="done.txt"),)
tasks = tuple(Task(id=f"t{i:04d}", title=f"Task {i}", type="coding", cwd=f"t{i:04d}",
              exit_criteria=crit, timeout=60.0, max_retries=0) for i in range(count))
plan = Plan(goal="Benchmark the ledger", workspace=Path(folder) / "ws", tasks=tasks,
            path=str(Path(folder) / "bench.yaml"), timeout=60.0)
with Ledger.open(target) as ledger:
    runner = Runner(plan, ledger, "bench", RunOptions(worker=sys.argv[6], wip=1, holder=holder),
                    Progress("quiet"))
    # Warm up as a long-lived runner is: the templates loaded and compiled once.
    from dispatch_kit.runner.prompts import build_prompt
    row = ledger.task("bench", "t0000")
    build_prompt(runner.collector.task_plan(row.id), row, plan.tasks[0], Path(folder))
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()
    cpu = time.process_time()
    runner.run()
    print(json.dumps({"cpu": time.process_time() - cpu, "lost": runner.contended}))
"""


def runners(target: str, folder: Path, tasks: int, count: int) -> dict:
    """``count`` runner processes on one mission of ``tasks`` instant tasks."""
    plan = make_plan(folder, tasks)
    with Ledger.open(target, create=True) as ledger:
        ledger.init_mission(plan, mission_id="bench", max_tasks=tasks, force=True)
        ledger.reset_mission("bench")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT / "scripts"), target,
                               str(folder), str(tasks), f"runner-{k}", WORKER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for k in range(count)]
    for proc in procs:  # every runner has opened the ledger and built its state
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.communicate(timeout=600)[0].strip().splitlines()[-1])
               for proc in procs]
    wall = time.perf_counter() - started
    with Ledger.open(target) as ledger:
        status = ledger.status("bench")
    assert status["counts"]["verified"] == tasks, status["counts"]
    return {"runners": count, "tasks": tasks,
            "wall_per_task_ms": round(wall / tasks * 1000, 2),
            "runner_cpu_per_task_ms": round(sum(r["cpu"] for r in results) / tasks * 1000, 2),
            "runners_that_lost_a_race": sum(bool(r["lost"]) for r in results)}


def spawn_cpu(folder: Path, count: int = 200) -> float:
    """CPU seconds this process spends starting the worker the way the runner does (own
    session, prompt on stdin, output through a pipe), per start: the part of a runner's
    CPU per task that is the operating system's, not the runner's."""
    prompt = folder / "prompt.md"
    prompt.write_text("[Execute] Task `x`: instant\n")
    cwd = folder / "direct"
    cwd.mkdir(parents=True, exist_ok=True)
    cpu = time.process_time()
    for _ in range(count):
        with open(prompt, "rb") as stdin:
            proc = subprocess.Popen(["/bin/sh", "-c", WORKER], cwd=cwd, stdin=stdin,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        assert proc.stdout is not None
        proc.stdout.read()
        proc.stdout.close()
        proc.wait()
    return (time.process_time() - cpu) / count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing PostgreSQL database (default: start one)")
    parser.add_argument("--items", type=int, default=2000, help="tasks for the latency runs")
    parser.add_argument("--tasks", type=int, default=320, help="tasks for the runner runs")
    parser.add_argument("--runners", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of runner runs")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "ledger.md"))
    args = parser.parse_args()
    counts = [int(n) for n in args.runners.split(",")]
    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                    f"Python {platform.python_version()}"}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        url = args.url
        if url is None:
            from pg_server import running_cluster, server_bindir

            bindir = server_bindir()
            if bindir is None:
                print("bench_ledger: no PostgreSQL server binaries; SQLite only",
                      file=sys.stderr)
            else:
                cluster = stack.enter_context(running_cluster(bindir, tcp_port=free_port()))
                url = cluster.url(tcp=True)
        backends = [("sqlite", lambda name: str(Path(tmp) / f"{name}.db"))]
        if url:
            import psycopg

            def schema(name: str) -> str:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                    conn.execute(f"CREATE SCHEMA {name}")
                sep = "&" if "?" in url else "?"
                return f"{url}{sep}options=-c%20search_path%3D{name}"

            backends.insert(0, ("postgresql", schema))
        report["spawn_cpu_ms"] = round(spawn_cpu(Path(tmp)) * 1000, 2)
        for backend, target_for in backends:
            folder = Path(tmp) / backend
            folder.mkdir()
            report[backend] = {"latency": latency(target_for("latency"), folder / "lat",
                                                  args.items), "rounds": []}
        # Rounds alternate the backends and runner counts, so a burst of load from elsewhere
        # on a shared machine lands on all of them alike; medians and ranges are reported.
        for round_no in range(args.rounds):
            for count in counts:
                for backend, target_for in backends:
                    sub = Path(tmp) / backend / f"run{count}-{round_no}"
                    sub.mkdir()
                    report[backend]["rounds"].append(runners(
                        target_for(f"run{count}_{round_no}"), sub, args.tasks, count))
    lines = ["# Ledger backends", "", report["machine"], "",
             "| backend | SELECT 1 | claim_next | claim | record | claim_next / SELECT 1 |",
             "|---|---|---|---|---|---|"]
    for backend in ("postgresql", "sqlite"):
        if backend in report:
            lat = report[backend]["latency"]
            lines.append(f"| {backend} | {lat['select_1']['median_ms']} ms | "
                         f"{lat['claim_next']['median_ms']} ms | {lat['claim']['median_ms']} ms "
                         f"| {lat['record']['median_ms']} ms | {lat['claim_next_vs_select_1']} |")
    spawn = report["spawn_cpu_ms"]
    lines += ["", f"Starting one worker costs the starting process {spawn} ms of CPU (measured "
              "alone); overhead = runner CPU per task - that. Medians of "
              f"{args.rounds} alternating rounds, [lowest-highest].", "",
              "| backend | runners | wall per task | runner CPU per task | overhead per task "
              "| target (<= 5 ms at 16) |", "|---|---|---|---|---|---|"]

    def spread(values: list[float]) -> str:
        return (f"{statistics.median(values):.2f} ms [{min(values):.2f}-{max(values):.2f}]"
                if len(values) > 1 else f"{values[0]:.2f} ms")

    for backend in ("postgresql", "sqlite"):
        for count in counts:
            rows = [r for r in report.get(backend, {}).get("rounds", []) if r["runners"] == count]
            if not rows:
                continue
            for row in rows:
                row["overhead_per_task_ms"] = round(row["runner_cpu_per_task_ms"] - spawn, 2)
            overheads = [r["overhead_per_task_ms"] for r in rows]
            verdict = ("PASS" if statistics.median(overheads) <= 5 else "MISS") \
                if count == 16 else ""
            lines.append(f"| {backend} | {count} | "
                         f"{spread([r['wall_per_task_ms'] for r in rows])} | "
                         f"{spread([r['runner_cpu_per_task_ms'] for r in rows])} | "
                         f"{spread(overheads)} | {verdict} |")
    if "postgresql" in report:
        med = report["postgresql"]["latency"]["claim_next"]["median_ms"]
        lines += ["", f"Claim latency target (median <= 5 ms on loopback): "
                  f"{'PASS' if med <= 5 else 'MISS'} ({med} ms)"]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
