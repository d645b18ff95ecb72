#!/usr/bin/env python3
"""Benchmark ``dispatch-kit run``: the runner's own cost per task, and how close it schedules
a dependency graph to the best possible makespan.

Why this exists: the runner sits between every pair of worker runs (claim,
render the prompt, start the worker, check the criteria, record the verdict,
all through SQLite), so its cost must vanish next to any real worker (issue 5
target: at most 2 ms per task), and with ``--wip N`` it should keep N workers
busy whenever the dependency graph allows it. Absolute times drift with the
load of a shared machine, so each number is set against a baseline measured in
the same run.

What it measures:

1. overhead: a 1,000-task plan (independent tasks, one ``file_exists``
   criterion each) run at ``--wip 1`` with an instant worker (``: > done.txt``,
   a shell builtin), against the same worker command started directly 1,000
   times the way the runner starts it (own session, prompt on stdin, output
   read from a pipe). (runner time - direct time) / 1,000 is the runner's cost
   per task: ledger transactions, prompt rendering, the check, the bookkeeping;
2. scheduling: a seeded random DAG of ``--dag-tasks`` tasks whose workers each
   sleep ``--duration`` seconds, run at WIP 1, 4 and 16. The lower bound on the
   makespan is max(critical path, total work / WIP); the ratio to it shows what
   dependencies, WIP and the runner's overhead cost.

One command: ``python3 bench/bench_runner.py``. It exits 0 whatever it finds; a
benchmark on a shared machine is a report, not a gate.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from dispatch_kit import runner as runner_module  # noqa: E402
from dispatch_kit.ledger import Ledger  # noqa: E402
from dispatch_kit.plan.model import Criterion, Plan, Task  # noqa: E402
from dispatch_kit.runner import Progress, Runner, RunOptions  # noqa: E402

CHECK_SECONDS = [0.0]  # time spent inside the checker (check_plan) during a run


def _timed_check(original):
    def check(self, task_id):
        started = time.perf_counter()
        try:
            return original(self, task_id)
        finally:
            CHECK_SECONDS[0] += time.perf_counter() - started
    return check


# The runner must call the checker after every worker; time it separately so the
# report can say how much of the overhead is the checker's and how much the runner's.
runner_module.Collector.check = _timed_check(runner_module.Collector.check)

TARGET_MS = 2.0
INSTANT = ": > done.txt"


def make_plan(folder: Path, count: int, deps: dict[str, list[str]] | None = None,
              timeout: float = 60.0) -> Plan:
    criteria = (Criterion(kind="file_exists", path="done.txt"),)
    tasks = tuple(
        Task(id=f"t{i:04d}", title=f"Task {i}", type="coding", cwd=f"t{i:04d}",
             exit_criteria=criteria, depends_on=tuple((deps or {}).get(f"t{i:04d}", ())),
             timeout=timeout, max_retries=0)
        for i in range(count)
    )
    return Plan(goal="Benchmark the runner", workspace=folder / "ws", tasks=tasks,
                path=str(folder / "bench-plan.yaml"), timeout=timeout)


CPU_SECONDS = [0.0]  # CPU time of this process (the runner, not its workers) in the last call


def run_plan(plan: Plan, folder: Path, worker: str, wip: int) -> tuple[float, dict]:
    """Wall time of one full run, and its final status."""
    db = folder / f"ledger-{wip}-{time.monotonic_ns()}.db"
    shutil.rmtree(plan.workspace, ignore_errors=True)
    with Ledger.open(db, create=True) as ledger:
        mission = ledger.init_mission(plan, max_tasks=len(plan.tasks)).mission
        runner = Runner(plan, ledger, mission, RunOptions(worker=worker, wip=wip),
                        Progress("quiet"))
        started, cpu = time.perf_counter(), time.process_time()
        status = runner.run()
        took = time.perf_counter() - started
        CPU_SECONDS[0] = time.process_time() - cpu
    return took, status


def run_direct(plan: Plan, folder: Path, worker: str) -> float:
    """The same worker started by hand the way the runner starts it, once per task."""
    prompt = folder / "prompt.md"
    prompt.write_text("[Execute] Task `x`: instant\n")
    shutil.rmtree(plan.workspace, ignore_errors=True)
    cwds = [plan.task_dir(task) for task in plan.tasks]
    for cwd in cwds:
        cwd.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    for cwd in cwds:
        with open(prompt, "rb") as stdin:
            proc = subprocess.Popen(["/bin/sh", "-c", worker], cwd=cwd, stdin=stdin,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        assert proc.stdout is not None
        proc.stdout.read()
        proc.stdout.close()
        proc.wait()
    CPU_SECONDS[0] = time.process_time() - cpu
    return time.perf_counter() - started


def random_dag(count: int, seed: int) -> dict[str, list[str]]:
    """Each task depends on 0-2 of the 8 tasks before it: chains with some width."""
    rng = random.Random(seed)
    deps: dict[str, list[str]] = {}
    for i in range(count):
        window = list(range(max(0, i - 8), i))
        picks = rng.sample(window, k=min(len(window), rng.choice((0, 1, 1, 2))))
        deps[f"t{i:04d}"] = [f"t{j:04d}" for j in sorted(picks)]
    return deps


def critical_path(deps: dict[str, list[str]]) -> int:
    depth: dict[str, int] = {}
    for task in sorted(deps):  # ids sort in dependency order by construction
        depth[task] = 1 + max((depth[d] for d in deps[task]), default=0)
    return max(depth.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the overhead plan")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the overhead test")
    parser.add_argument("--dag-tasks", type=int, default=40)
    parser.add_argument("--duration", type=float, default=0.2, help="seconds per DAG worker")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"# bench_runner: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, {platform.system()} {platform.release()}")
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        folder = Path(tmp)
        plan = make_plan(folder, args.tasks)
        per_task: list[float] = []
        checker: list[float] = []
        cpu_costs: list[float] = []
        for round_no in range(1, args.repeat + 1):
            direct = run_direct(plan, folder, INSTANT)
            direct_cpu = CPU_SECONDS[0]
            CHECK_SECONDS[0] = 0.0
            took, status = run_plan(plan, folder, INSTANT, wip=1)
            assert status["state"] == "complete", status["counts"]
            cost = (took - direct) / args.tasks * 1000
            cpu_cost = (CPU_SECONDS[0] - direct_cpu) / args.tasks * 1000
            in_check = CHECK_SECONDS[0] / args.tasks * 1000
            per_task.append(cost)
            checker.append(in_check)
            cpu_costs.append(cpu_cost)
            print(f"round {round_no}: runner {took:.2f} s, worker alone {direct:.2f} s "
                  f"-> runner overhead {cost:.2f} ms/task wall ({cpu_cost:.2f} ms CPU), of "
                  f"which {in_check:.2f} ms in the checker")
        median = statistics.median(per_task)
        verdict = "PASS" if median <= TARGET_MS else "MISS"
        print(f"overhead: median {median:.2f} ms per task over {args.tasks} tasks, best round "
              f"{min(per_task):.2f} ms (target <= {TARGET_MS} ms): {verdict}; checker share "
              f"{statistics.median(checker):.2f} ms, the rest "
              f"{median - statistics.median(checker):.2f} ms; runner CPU "
              f"{statistics.median(cpu_costs):.2f} ms per task")

        deps = random_dag(args.dag_tasks, args.seed)
        depth = critical_path(deps)
        plan = make_plan(folder, args.dag_tasks, deps)
        worker = f"sleep {args.duration}; : > done.txt"
        print(f"\nscheduling: {args.dag_tasks} tasks, {args.duration} s each, critical path "
              f"{depth} tasks = {depth * args.duration:.2f} s (seed {args.seed})")
        print("| WIP | makespan | lower bound | makespan / bound |")
        print("|---|---|---|---|")
        for wip in (1, 4, 16):
            took, status = run_plan(plan, folder, worker, wip=wip)
            assert status["state"] == "complete", status["counts"]
            bound = max(depth, args.dag_tasks / wip) * args.duration
            print(f"| {wip} | {took:.2f} s | {bound:.2f} s | {took / bound:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
