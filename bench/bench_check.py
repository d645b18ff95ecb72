#!/usr/bin/env python3
"""Benchmark ``dispatch-kit check``: cost per criterion, and what ``--jobs`` buys.

Why this exists: the orchestrator runs the checker after every worker and every
retry, so its own cost must vanish next to the criteria it runs (issue 3
target: at most 5 ms of overhead per criterion over running the same command
with ``sh -c``), and ``--jobs`` must actually shorten a task whose criteria
are slow. Absolute times drift with the load of a shared machine, so every
number here is set against a baseline measured in the same run, and the
script prints ratios.

What it measures (median of ``--repeat`` rounds):

1. overhead: N x ``true`` as shell criteria through ``check_plan`` with
   ``--jobs 1``, against N x ``subprocess.run(["/bin/sh", "-c", "true"])``
   and against a shell loop running ``sh -c true`` N times. The same N
   criteria through the CLI add the start-up cost, reported separately;
2. structured checks: N x ``file_exists`` in-process against N x
   ``sh -c 'test -f x'``;
3. parallelism: M x ``sleep S`` at ``--jobs`` 1, 2, 4 and 8.

One command: ``python3 bench/bench_check.py``. It exits 0 whatever it finds; a
benchmark on a shared machine is a report, not a gate.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from dispatch_kit.check.criteria import check_plan  # noqa: E402
from dispatch_kit.plan.load import load_plan  # noqa: E402

TARGET_MS = 5.0


def write_plan(folder: Path, name: str, criteria: list[str], tasks: int = 2) -> Path:
    """A plan whose criteria are spread over ``tasks`` tasks sharing one cwd."""
    (folder / "ws" / "cwd").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "cwd" / "present.txt").write_text("x\n")
    lines = [f"goal: benchmark {name}", "workspace: ws", "tasks:"]
    per_task = -(-len(criteria) // tasks)
    for t in range(tasks):
        chunk = criteria[t * per_task:(t + 1) * per_task]
        lines += [f"  - id: t{t}", f"    title: Task {t}", "    type: coding", "    cwd: cwd",
                  "    timeout: 600", "    exit_criteria:"]
        lines += [f"      - {c}" for c in chunk]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def median_time(action: Callable[[], object], repeat: int) -> float:
    return interleaved([action], repeat)[0]


def interleaved(actions: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of each action over ``repeat`` rounds, each round running all of them."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, bucket in zip(actions, times, strict=True):
            start = time.perf_counter()
            action()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def all_passed(document: dict) -> dict:
    if not document["passed"]:
        raise SystemExit(f"benchmark plan did not pass: {document['summary']}")
    return document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="criteria for the overhead rows")
    parser.add_argument("--slow", type=int, default=16, help="slow criteria for the jobs rows")
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds each slow one sleeps")
    parser.add_argument("--repeat", type=int, default=7, help="rounds per measurement")
    args = parser.parse_args()
    n = args.n

    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        folder = Path(tmp)
        cwd = folder / "ws" / "cwd"
        shell_plan = load_plan(str(write_plan(folder, "true", ['"true"'] * n)))
        file_plan = load_plan(str(write_plan(folder, "file", ["file_exists: present.txt"] * n)))
        slow_path = write_plan(folder, "slow", [f"sleep {args.sleep}"] * args.slow)
        slow_plan = load_plan(str(slow_path))
        shell_path = folder / "true.yaml"

        def direct() -> None:
            for _ in range(n):
                subprocess.run(["/bin/sh", "-c", "true"], cwd=cwd, check=True)

        def shell_loop() -> None:
            loop = f'i=0; while [ $i -lt {n} ]; do sh -c true; i=$((i+1)); done'
            subprocess.run(["/bin/sh", "-c", loop], cwd=cwd, check=True)

        def direct_test() -> None:
            for _ in range(n):
                subprocess.run(["/bin/sh", "-c", "test -f present.txt"], cwd=cwd, check=True)

        def cli(plan: Path, *extra: str) -> None:
            subprocess.run([sys.executable, "-m", "dispatch_kit", "check", str(plan), *extra],
                           check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})

        rows = []
        # Rounds interleave the variants, so load from other processes hits all of them alike.
        t_direct, t_loop, t_check, t_cli, t_direct_test, t_file = interleaved(
            [
                direct,
                shell_loop,
                lambda: all_passed(check_plan(shell_plan, jobs=1)),
                lambda: cli(shell_path, "--jobs", "1"),
                direct_test,
                lambda: all_passed(check_plan(file_plan, jobs=1)),
            ],
            args.repeat,
        )
        overhead_ms = (t_check - t_direct) / n * 1000
        startup_ms = (t_cli - t_check) * 1000
        rows.append((f"{n} x `true`, subprocess.run(sh -c) loop", t_direct, 1.0, ""))
        rows.append((f"{n} x `true`, shell loop of sh -c", t_loop, t_loop / t_direct, ""))
        rows.append((f"{n} x `true`, check_plan --jobs 1", t_check, t_check / t_direct,
                     f"{overhead_ms:+.2f} ms/criterion vs subprocess.run"))
        rows.append((f"{n} x `true`, dispatch-kit check --jobs 1 (CLI)", t_cli, t_cli / t_direct,
                     f"start-up {startup_ms:.0f} ms once"))
        rows.append((f"{n} x `test -f`, subprocess.run(sh -c) loop", t_direct_test, 1.0, ""))
        rows.append((f"{n} x file_exists, check_plan --jobs 1", t_file, t_file / t_direct_test,
                     "in-process, no shell"))

        base = median_time(lambda: all_passed(check_plan(slow_plan, jobs=1)), 1)
        rows.append((f"{args.slow} x `sleep {args.sleep}`, --jobs 1", base, 1.0, ""))
        for jobs in (2, 4, 8):
            took = median_time(lambda j=jobs: all_passed(check_plan(slow_plan, jobs=j)), 1)
            ideal = min(jobs, args.slow)
            rows.append((f"{args.slow} x `sleep {args.sleep}`, --jobs {jobs}", took, took / base,
                         f"speed-up {base / took:.2f}x (ideal {ideal}x)"))

    print(f"dispatch-kit check benchmark; {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"median of {args.repeat} rounds (jobs rows: 1 round)")
    print()
    print("| measurement | seconds | ratio to its baseline | note |")
    print("|---|---:|---:|---|")
    for name, seconds, ratio, note in rows:
        print(f"| {name} | {seconds:.3f} | {ratio:.2f} | {note} |")
    print()
    verdict = "PASS" if overhead_ms <= TARGET_MS else "MISS"
    print(f"overhead per criterion: {overhead_ms:.2f} ms (target <= {TARGET_MS:g} ms): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
