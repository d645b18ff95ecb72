#!/usr/bin/env python3
"""Benchmark the runner's cost per task with tracing off (no OTEL_ variables) and on.

Why: traces are optional, so with no ``OTEL_`` variables set the runner must
pay nothing measurable for them (issue 17: overhead still at most 2 ms per task,
the issue-5 target), and must not even import the SDK. With traces on, the cost
is reported too (an SDK span per attempt and per criterion, a ledger row per
attempt), with the in-memory exporter so no network is measured.

Each round runs the same plan of ``--tasks`` instant tasks three ways in one
process, so the numbers share the machine's load: the worker started directly
(the baseline), the runner with tracing off, the runner with tracing on.
Overhead = (runner - direct) / tasks. One command: ``python3 bench/bench_telemetry.py``;
it exits 0 whatever it finds (a report, not a gate).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_runner as base  # noqa: E402

from dispatch_kit import telemetry  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    assert not telemetry.enabled()
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        folder = Path(tmp)
        plan = base.make_plan(folder, args.tasks)
        for round_no in range(1, args.repeat + 1):
            direct = base.run_direct(plan, folder, base.INSTANT)
            os.environ.pop("OTEL_TRACES_EXPORTER", None)
            took_off, status = base.run_plan(plan, folder, base.INSTANT, wip=1)
            assert status["state"] == "complete"
            if round_no == 1:  # later rounds follow a traced run in this same process
                assert not any(m.startswith("opentelemetry") for m in sys.modules), \
                    "tracing off imported the SDK"
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )

            from dispatch_kit.telemetry import setup

            exporter = InMemorySpanExporter()
            setup.install(exporter)
            os.environ["OTEL_TRACES_EXPORTER"] = "console"  # any value: the provider is set
            took_on, status = base.run_plan(plan, folder, base.INSTANT, wip=1)
            os.environ.pop("OTEL_TRACES_EXPORTER")
            assert status["state"] == "complete"
            spans = len(exporter.get_finished_spans())
            off.append((took_off - direct) / args.tasks * 1000)
            on.append((took_on - direct) / args.tasks * 1000)
            print(f"round {round_no}: direct {direct:.2f} s, runner tracing off {took_off:.2f} s "
                  f"({off[-1]:.2f} ms/task), tracing on {took_on:.2f} s ({on[-1]:.2f} ms/task, "
                  f"{spans} spans); on/off {took_on / took_off:.2f}")
    m_off, m_on = statistics.median(off), statistics.median(on)
    verdict = "PASS" if m_off <= base.TARGET_MS else "MISS"
    print(f"tracing off: median {m_off:.2f} ms per task over {args.tasks} tasks (target <= "
          f"{base.TARGET_MS} ms): {verdict}; tracing on: median {m_on:.2f} ms per task "
          f"(+{m_on - m_off:.2f} ms for spans)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
