#!/usr/bin/env python3
"""What a user pays per subagent dispatch: the pre-dispatch hook through ``bin/dispatch-kit``.

Claude Code runs the plugin's PreToolUse hook before every Agent call, so its
start-up is paid on every dispatch of every session (issue 9: at most 50 ms,
and at most 5 bare Python starts, with a ready environment; at most 60 ms with
PYTHONDONTWRITEBYTECODE=1). This measures the launcher a user really runs, on
an installed copy of the plugin (the files git tracks, copied to a temporary
folder, with its own data folder), never the package alone.

Every figure is a median over rounds in which each case runs once, so a slow
spell of a shared machine slows all cases alike; each is reported in
milliseconds and as a ratio to a bare ``/usr/bin/python3 -c pass`` start
measured in the same rounds. ``PATH`` is fixed per case: a plain one
(``/usr/bin:/bin``), and one with a version-manager shim first (pyenv's, when
pyenv is installed; else a one-line shell shim, which the row says).

One command: ``python3 bench/bench_hook.py`` (``--rounds N``, default 21).
It exits 0 whatever it measures: on a shared machine a benchmark is a report,
not a gate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "out" / "hook.md"
BARE = "/usr/bin/python3"
PLAIN_PATH = "/usr/bin:/bin"
TARGET_MS = 50.0
TARGET_RATIO = 5.0
TARGET_NO_BYTECODE_MS = 60.0
# A clean work order as the pack's templates render it: every prompt rule runs.
PROMPT = (ROOT / "tests" / "golden" / "worker-counter.md").read_text(encoding="utf-8")


def event(prompt: str) -> bytes:
    import json

    return json.dumps(
        {
            "session_id": "bench",
            "hook_event_name": "PreToolUse",
            "tool_name": "Agent",
            "tool_input": {
                "description": "counter",
                "prompt": prompt,
                "subagent_type": "dispatch-kit:dispatch-worker",
                "name": "worker-counter",
            },
        }
    ).encode()


def install_copy(dest: Path) -> Path:
    """The files git tracks, as a plugin install has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def shim_folder(tmp: Path) -> tuple[str, str]:
    """A folder whose ``python3`` is a version-manager shim, and what kind it is."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        shims = Path(root) / "shims"
        if (shims / "python3").exists():
            return str(shims), "pyenv's shims"
    folder = tmp / "shim"
    folder.mkdir()
    (folder / "python3").write_text(f'#!/bin/sh\nexec {BARE} "$@"\n')
    (folder / "python3").chmod(0o755)
    return str(folder), "a one-line sh shim (pyenv not installed)"


def base_env(data: Path, path: str) -> dict[str, str]:
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "PYENV_ROOT", "PYENV_VERSION")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(PATH=path, CLAUDE_PLUGIN_DATA=str(data))
    return env


def timed(argv: list[str], env: dict[str, str], stdin: bytes, cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{argv[0]} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed * 1000


def wait_for_builds(data: Path) -> None:
    """Block until no launcher holds the build lock (a background build started by a hook)."""
    import fcntl

    lock = data / "venvs" / ".lock"
    if lock.exists():
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds of every case (>= 15)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not os.access(BARE, os.X_OK):
        print(f"bench_hook: {BARE} is missing; the baseline needs it", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="dk-bench-hook-") as tmp_name:
        tmp = Path(tmp_name)
        plugin = install_copy(tmp / "plugin")
        launcher = str(plugin / "bin" / "dispatch-kit")
        data = tmp / "data"
        shims, shim_kind = shim_folder(tmp)
        plain = base_env(data, PLAIN_PATH)
        shimmed = base_env(data, f"{shims}:{PLAIN_PATH}")
        hook = [launcher, "hook", "pre-dispatch"]
        stdin = event(PROMPT)

        # First dispatch after install: nothing built yet. The hook must answer
        # without waiting for pip; it starts the build in the background.
        first_ms = timed(hook, plain, stdin, tmp)
        wait_for_builds(data)
        setup = subprocess.run(
            [launcher, "--version"], env=plain, capture_output=True, text=True, cwd=tmp
        )
        if setup.returncode != 0:
            print(f"bench_hook: the environment did not build: {setup.stderr}", file=sys.stderr)
            return 2
        record = data / "python"
        env_python = record.read_text().splitlines()[0]

        no_bytecode = dict(plain, PYTHONDONTWRITEBYTECODE="1")
        no_pattern_cache = dict(plain, DISPATCH_KIT_PATTERN_CACHE="off")
        package_alone = [env_python, "-m", "dispatch_kit", "hook", "pre-dispatch"]
        alone_env = dict(plain, PYTHONPATH=str(plugin / "scripts"))

        def without_record() -> float:
            record.unlink(missing_ok=True)
            return timed(hook, shimmed, stdin, tmp)

        cases: dict[str, Callable[[], float]] = {
            "bare /usr/bin/python3 -c pass": lambda: timed([BARE, "-c", "pass"], plain, b"", tmp),
            "hook, plain PATH": lambda: timed(hook, plain, stdin, tmp),
            "hook, PYTHONDONTWRITEBYTECODE=1": lambda: timed(hook, no_bytecode, stdin, tmp),
            "hook, shim first on PATH": lambda: timed(hook, shimmed, stdin, tmp),
            "hook, shim first, no recorded interpreter": without_record,
            "hook, regex-code cache off": lambda: timed(hook, no_pattern_cache, stdin, tmp),
            "package alone (env python -m dispatch_kit)": lambda: timed(
                package_alone, alone_env, stdin, tmp
            ),
        }
        for measure in cases.values():  # warm-up: bytecode and caches in place
            measure()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(max(args.rounds, 15)):
            for name, measure in cases.items():
                samples[name].append(measure())

    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare = medians["bare /usr/bin/python3 -c pass"]
    lines = [
        f"# Pre-dispatch hook through bin/dispatch-kit ({max(args.rounds, 15)} rounds, median)",
        "",
        f"Shim case: {shim_kind}. Python {sys.version.split()[0]}, {os.cpu_count()} cores.",
        "",
        "| case | ms | × bare start |",
        "|---|---:|---:|",
    ]
    for name, value in medians.items():
        lines.append(f"| {name} | {value:.1f} | {value / bare:.1f} |")
    lines.append(
        f"| first dispatch after install (no environment yet; one run) | {first_ms:.0f} | "
        f"{first_ms / bare:.1f} |"
    )
    hook_ms = medians["hook, plain PATH"]
    shim_ms = medians["hook, shim first on PATH"]
    nbc_ms = medians["hook, PYTHONDONTWRITEBYTECODE=1"]
    verdict = {True: "PASS", False: "MISS"}
    lines += [
        "",
        f"- hook ≤ {TARGET_MS:.0f} ms and ≤ {TARGET_RATIO:.0f}× bare: plain PATH "
        f"{hook_ms:.1f} ms ({hook_ms / bare:.1f}×) "
        f"{verdict[hook_ms <= TARGET_MS and hook_ms / bare <= TARGET_RATIO]}; shim first "
        f"{shim_ms:.1f} ms ({shim_ms / bare:.1f}×) "
        f"{verdict[shim_ms <= TARGET_MS and shim_ms / bare <= TARGET_RATIO]}",
        f"- with PYTHONDONTWRITEBYTECODE=1 ≤ {TARGET_NO_BYTECODE_MS:.0f} ms: {nbc_ms:.1f} ms "
        f"{verdict[nbc_ms <= TARGET_NO_BYTECODE_MS]}",
        f"- the regex-code cache (lint/patterns.py, built on CPython's `_sre` internals) saves "
        f"{medians['hook, regex-code cache off'] - hook_ms:.1f} ms a dispatch",
    ]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
