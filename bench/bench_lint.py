#!/usr/bin/env python3
"""Benchmark ``dispatch-kit lint`` against markdownlint-cli2, agnix and skillsaw in one run.

Why this exists: the linter runs in pre-commit on every commit and in CI on every
push, so its speed is a feature with targets (issue 4, "Speed"): a cold run on one
file in at most 60 ms and 1,000 prompt/skill files in at most 0.25 s on the
project's 2-core machine. Measuring the peers in the same run, on the same files,
on the same busy machine, turns absolute numbers that drift with load into ratios
that mean something.

One command: ``python3 bench/bench_lint.py``. On first run it installs its peers
into throwaway places inside ``bench/`` (``bench/.venv`` for the Python peers,
``bench/node_modules`` for the Node one), never into the project's environment.
A peer that cannot be installed or run is listed with the reason instead of a
number. The targets are reported as PASS or MISS; the script exits 0 either way,
because a benchmark on a shared machine is a report, not a gate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV = BENCH / ".venv"
REQUIREMENTS = BENCH / "requirements.txt"
NODE_LOCK = BENCH / "package-lock.json"
NODE_BIN = BENCH / "node_modules" / ".bin"
DEFAULT_OUT = BENCH / "out" / "lint.md"

TARGET_ONE_FILE_MS = 60.0
TARGET_CORPUS_S = 0.25
TARGET_CORPUS_FILES = 1000
MIN_NODE_MAJOR = 20  # markdownlint-cli2 0.22.1 declares engines.node >= 20
RUN_TIMEOUT_S = 300
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0

sys.path.insert(0, str(BENCH))
import lint_corpus  # noqa: E402 - sits next to this file, not an installed package

# --- installing the peers ------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _installed(stamp: Path, want: str, *needed: Path) -> bool:
    """Whether a previous install of exactly these pins (``want``) is in place."""
    return stamp.is_file() and stamp.read_text().strip() == want and all(
        p.exists() for p in needed
    )


Step = tuple[list[str], "Path | None", float]  # argv, cwd, timeout in seconds


def _install(steps: list[Step], stamp: Path, want: str, failed: str) -> str | None:
    """Run install commands in order; stamp the pins on success, else say why in one line."""
    try:
        for argv, cwd, timeout in steps:
            subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.CalledProcessError as exc:
        return f"{failed}: {_last_line(exc.stderr or exc.stdout or '')}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{failed}: {exc}"
    stamp.write_text(want + "\n")
    return None


NOT_INSTALLED = "not installed (run without --no-install to install it)"


def ensure_python_peers(install: bool) -> str | None:
    """Install the pinned Python peers into bench/.venv; None on success, else why not.

    A stamp holding the requirements' hash makes later runs skip pip entirely,
    and a changed pin reinstalls.
    """
    stamp, want = VENV / ".installed", _digest(REQUIREMENTS)
    if _installed(stamp, want, venv_python()):
        return None
    if not install:
        return NOT_INSTALLED
    print("bench: installing Python peers into bench/.venv ...", file=sys.stderr)
    steps: list[Step] = []
    if not venv_python().is_file():
        steps.append(([sys.executable, "-m", "venv", str(VENV)], None, RUN_TIMEOUT_S))
    steps.append(([str(venv_python()), "-m", "pip", "install", "--quiet",
                   "--disable-pip-version-check", "-r", str(REQUIREMENTS)], None, 900))
    return _install(steps, stamp, want, "pip install failed")


def node_major() -> int | None:
    node = shutil.which("node")
    if not node:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    match = re.match(r"v(\d+)", out.strip())
    return int(match.group(1)) if match else None


def ensure_node_peers(install: bool) -> str | None:
    """Install markdownlint-cli2 into bench/node_modules with ``npm ci``; None or why not."""
    major = node_major()
    if major is None:
        return "Node.js not found"
    if major < MIN_NODE_MAJOR:
        return f"needs Node.js >= {MIN_NODE_MAJOR}, found {major}"
    stamp, want = BENCH / "node_modules" / ".installed", _digest(NODE_LOCK)
    if _installed(stamp, want, NODE_BIN / "markdownlint-cli2"):
        return None
    if not install:
        return NOT_INSTALLED
    npm = shutil.which("npm")
    if not npm:
        return "npm not found"
    print("bench: installing Node peers into bench/node_modules ...", file=sys.stderr)
    return _install([([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], BENCH, 900)],
                    stamp, want, "npm ci failed")


# --- the tools ------------------------------------------------------------------------------


@dataclass
class Tool:
    """How to run one linter: the command prefix, how to aim it, how to read its findings."""

    name: str
    prefix: list[str]
    corpus_args: list[str]  # appended to prefix, run from the corpus root
    single_args: Callable[[str], list[str]]  # file path relative to the corpus root
    # The file of each finding, relative to the corpus root; None when the output is unreadable.
    findings: Callable[[subprocess.CompletedProcess[str]], list[str] | None]
    covers: str
    version: str = "?"
    env: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None
    ok_codes: tuple[int, ...] = (0, 1)

    def corpus_cmd(self) -> list[str]:
        return [*self.prefix, *self.corpus_args]

    def single_cmd(self, rel: str) -> list[str]:
        return [*self.prefix, *self.single_args(rel)]


def _rel(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def _json_findings(
    items: Callable[[Any], list[Any]], key: str | None
) -> Callable[[subprocess.CompletedProcess[str]], list[str] | None]:
    """Read a JSON report: ``items`` picks the list of findings, ``key`` each one's file."""

    def paths(proc: subprocess.CompletedProcess[str]) -> list[str] | None:
        try:
            return [
                _rel(str(item[key] if key else item["path"]))
                for item in items(json.loads(proc.stdout))
            ]
        except (ValueError, KeyError, TypeError):
            return None

    return paths


def _markdownlint_findings(proc: subprocess.CompletedProcess[str]) -> list[str] | None:
    """markdownlint-cli2's default formatter: one ``path:line[:col] error ...`` line each."""
    output = proc.stdout + proc.stderr
    total = re.search(r"Summary: (\d+) error", output)
    found = [_rel(m.group(1)) for m in re.finditer(r"^(\S+?):\d+(?::\d+)? ", output, re.M)]
    if total is None or int(total.group(1)) != len(found):
        return None
    return found


def _version(cmd: list[str], env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(r"(\d+\.\d+\.\d+)", proc.stdout + proc.stderr)
    return match.group(1) if match else "?"


# What the installed ``dispatch-kit`` console script runs (pip's entry-point wrapper), so the
# benchmark times what pre-commit and CI start, without needing an install of this checkout.
ENTRY_POINT = "import re, sys; from dispatch_kit.cli import main; sys.exit(main())"


def dispatch_kit_tool(python: str, dk_cmd: str | None) -> Tool:
    """dispatch-kit from this checkout, run with ``python`` (or a command given by the user)."""
    env = {"PYTHONPATH": str(ROOT / "scripts")}
    prefix = shlex.split(dk_cmd) if dk_cmd else [python, "-c", ENTRY_POINT]
    tool = Tool(
        name="dispatch-kit lint",
        prefix=[*prefix, "lint", "--format", "json"],
        corpus_args=["."],
        single_args=lambda rel: [rel],
        findings=_json_findings(lambda data: data, "path"),
        covers="dispatch prompts, skills, agents (the pack's own rules)",
        env=env,
    )
    tool.version = _version([*prefix, "--version"], env)
    return tool


def pinned_versions() -> dict[str, str]:
    """The versions this benchmark pins, shown even for a peer that could not be installed."""
    pins: dict[str, str] = {}
    for line in REQUIREMENTS.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower()] = version.strip()
    package = json.loads((BENCH / "package.json").read_text())
    pins.update(package.get("devDependencies", {}))
    return pins


def peer_tools(python_problem: str | None, node_problem: str | None) -> list[Tool]:
    py_bin = venv_python().parent
    pins = pinned_versions()
    mdl = Tool(
        name="markdownlint-cli2",
        prefix=[str(NODE_BIN / "markdownlint-cli2")],
        corpus_args=["**/*.md"],
        single_args=lambda rel: [rel],
        findings=_markdownlint_findings,
        covers="generic Markdown style (default rules)",
        version=pins.get("markdownlint-cli2", "?"),
        unavailable=node_problem,
    )
    agnix = Tool(
        name="agnix",
        prefix=[str(py_bin / "agnix"), "--format", "json"],
        corpus_args=["."],
        single_args=lambda rel: [rel],
        findings=_json_findings(lambda d: d["diagnostics"], "file"),
        covers="agent configs: skills, agents, CLAUDE.md, hooks, MCP",
        version=pins.get("agnix", "?"),
        unavailable=python_problem,
    )
    skillsaw = Tool(
        name="skillsaw",
        prefix=[
            str(py_bin / "skillsaw"),
            "lint",
            "--format",
            "json",
            "--no-progress",
            "--no-color",
            "--verbose",  # list info-level findings too, as the other tools do
        ],
        corpus_args=["."],
        single_args=lambda rel: [rel],
        findings=_json_findings(lambda d: d["violations"], "file_path"),
        covers="skills and plugins it detects (here: skills/ only)",
        version=pins.get("skillsaw", "?"),
        unavailable=python_problem,
    )
    if node_problem is None:
        package = BENCH / "node_modules" / "markdownlint-cli2" / "package.json"
        try:
            mdl.version = json.loads(package.read_text())["version"]
        except (OSError, ValueError, KeyError):
            mdl.unavailable = "installed but its package.json is unreadable"
    if python_problem is None:
        agnix.version = _version([agnix.prefix[0], "--version"])
        skillsaw.version = _version([skillsaw.prefix[0], "--version"])
        # agnix's wheel bundles a native binary; if it cannot start here, say so rather
        # than let it fetch anything.
        if agnix.version == "?":
            agnix.unavailable = "its bundled binary does not start on this machine"
    return [mdl, agnix, skillsaw]


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Result:
    tool: Tool
    single_ms: list[float] = field(default_factory=list)
    corpus_s: list[float] = field(default_factory=list)
    findings: list[str] | None = None  # the file of each finding
    error: str | None = None


def run_once(
    cmd: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    full_env = {**os.environ, "NO_COLOR": "1", **env}
    # An installed linter has its bytecode cached (pip compiles it; a checkout writes it on
    # the first run). A shell that forbids .pyc files would time the compiler instead.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    return time.perf_counter() - start, proc


def _warm_up(result: Result, corpus: Path, single: str) -> bool:
    """One corpus run (which also reads the findings) and one one-file run; False on failure."""
    tool = result.tool
    try:
        _, proc = run_once(tool.corpus_cmd(), corpus, tool.env)
        if proc.returncode not in tool.ok_codes:
            if "invalid choice: 'lint'" in proc.stderr:
                result.error = "this checkout has no `dispatch-kit lint` yet"
            else:
                result.error = f"exit {proc.returncode}: {_last_line(proc.stderr or proc.stdout)}"
            return False
        result.findings = tool.findings(proc)
        run_once(tool.single_cmd(single), corpus, tool.env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        result.error = str(exc)
        return False
    return True


def measure(
    tools: list[Tool], corpus: Path, single: str, reps: int, single_reps: int,
    prompt: str | None = None,
) -> tuple[list[Result], list[float]]:
    """Warm every tool up (caches, .pyc files), then time fresh processes in rounds.

    Each round runs every tool once, so a slow spell of a shared machine
    slows all of them alike and the ratios stay fair; timing one tool's runs
    back to back and then the next tool's would charge the spell to whichever
    tool it fell on. ``prompt``: also time dispatch-kit on this one file in
    each one-file round. Returns the results and those prompt timings (ms).
    """
    results = [Result(tool) for tool in tools]
    live = []
    for result in results:
        if result.tool.unavailable:
            print(f"bench: {result.tool.name}: not run: {result.tool.unavailable}", file=sys.stderr)
        else:
            print(f"bench: warming up {result.tool.name} ...", file=sys.stderr)
            if _warm_up(result, corpus, single):
                live.append(result)
    dk = next((r for r in live if r.tool.name == "dispatch-kit lint"), None)
    prompt_ms: list[float] = []

    def timed(result: Result, cmd: list[str]) -> float | None:
        try:
            elapsed, _ = run_once(cmd, corpus, result.tool.env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            result.error = str(exc)
            live.remove(result)
            return None
        return elapsed

    print(f"bench: {single_reps} one-file rounds, {reps} corpus rounds ...", file=sys.stderr)
    for _ in range(single_reps):
        for result in list(live):
            elapsed = timed(result, result.tool.single_cmd(single))
            if elapsed is not None:
                result.single_ms.append(elapsed * 1000)
        if dk is not None and prompt and dk in live:
            elapsed = timed(dk, dk.tool.single_cmd(prompt))
            if elapsed is not None:
                prompt_ms.append(elapsed * 1000)
    for _ in range(reps):
        for result in list(live):
            elapsed = timed(result, result.tool.corpus_cmd())
            if elapsed is not None:
                result.corpus_s.append(elapsed)
    return results, prompt_ms


def floor_ms(cmd: list[str], reps: int) -> float | None:
    """Median start-up of a bare interpreter: the part of a cold run no linter can remove."""
    times = []
    try:
        for _ in range(reps + 1):
            elapsed, _ = run_once(cmd, ROOT, {})
            times.append(elapsed * 1000)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return statistics.median(times[1:])


# --- reporting ------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(results: list[Result], count: int) -> list[str]:
    base = next((r for r in results if r.tool.name == "dispatch-kit lint" and r.corpus_s), None)
    base_s = statistics.median(base.corpus_s) if base else None
    rows = [
        "| tool | version | files/s | 1-file ms | 1000-file s | ratio | findings |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    if count != 1000:
        rows[0] = rows[0].replace("1000-file s", f"{count}-file s")
    for r in results:
        if r.tool.unavailable or r.error:
            why = r.tool.unavailable or r.error
            rows.append(f"| {r.tool.name} | {r.tool.version} | — | — | — | — | not run: {why} |")
            continue
        corpus = statistics.median(r.corpus_s)
        single = statistics.median(r.single_ms)
        ratio = "n/a" if not base_s else f"{corpus / base_s:.{2 if corpus < base_s else 1}f}×"
        findings = "?" if r.findings is None else str(len(r.findings))
        rows.append(
            f"| {r.tool.name} | {r.tool.version} | {count / corpus:,.0f} | {single:.0f} | "
            f"{corpus:.3f} | {ratio} | {findings} |"
        )
    return rows


def detection(results: list[Result], corpus_info: dict) -> list[str]:
    """Files flagged, split by whether the generator put a defect in them.

    A raw findings count mixes style nits with real problems; this shows how many of
    the seeded defects each tool catches and how much it says about clean files.
    """
    defective = {f["path"] for f in corpus_info["files"] if f["defect"]}
    clean = {f["path"] for f in corpus_info["files"] if not f["defect"]}
    rows = [
        f"| tool | defective files flagged (of {len(defective)}) | "
        f"clean files flagged (of {len(clean)}) |",
        "|---|---:|---:|",
    ]
    for r in results:
        if r.findings is None:
            continue
        flagged = set(r.findings)
        rows.append(f"| {r.tool.name} | {len(flagged & defective)} | {len(flagged & clean)} |")
    return rows


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def report(
    results: list[Result],
    targets: list[tuple[str, float, float, str]],
    args: argparse.Namespace,
    corpus_info: dict,
    single: str,
    floors: dict[str, float | None],
    commands: list[str],
    alone: Result | None = None,
) -> str:
    summary = corpus_info["summary"]
    mix = ", ".join(f"{kind} {s['files']}" for kind, s in summary.items())
    defective = sum(s["defective"] for s in summary.values())
    lines = [
        "# dispatch-kit lint benchmark",
        "",
        f"Corpus: {corpus_info['count']} files from `bench/lint_corpus.py --seed {args.seed}` "
        f"({mix}; {defective} with one defect each). "
        f"One-file runs lint `{single}`. Times are medians of {args.reps} corpus runs and "
        f"{args.single_reps} one-file runs, each a fresh process after one warm-up run, "
        "taken in rounds that run every tool once (a slow spell of the machine hits all "
        "alike); ratio = the tool's corpus time / dispatch-kit's.",
        "",
        *table(results, corpus_info["count"]),
        "",
        "## dispatch-kit speed targets",
        "",
        "Measured before the peers' rounds, dispatch-kit alone and back to back, the way "
        "pre-commit runs it (medians of the same numbers of runs).",
        "",
    ]
    if targets:
        lines += [
            f"- {label}: {value:.{3 if unit == 's' else 0}f} {unit} "
            f"(target ≤ {target:g} {unit}) **{verdict(value, target)}**"
            for label, value, target, unit in targets
        ]
    else:
        lines.append("- not measured: dispatch-kit lint did not run (see the table)")
    py_floor = floors.get("python")
    if targets and py_floor:
        lines.append(
            f"- for scale: a bare start of the same Python took {py_floor:.0f} ms just before "
            "these runs; the machine's speed varies, so compare runs by that number too"
        )
    if args.count != TARGET_CORPUS_FILES:
        lines.append(
            f"- note: the corpus target is for {TARGET_CORPUS_FILES} files; this run "
            f"used {args.count}"
        )
    lines += ["", "## Which files the findings are in", ""]
    lines += detection(results, corpus_info)
    lines += ["", "## What each tool checks", ""]
    lines += [f"- {r.tool.name}: {r.tool.covers}" for r in results]
    lines += ["", "## Run details", ""]
    base_floor = floors.get("python-base")
    node_floor = floors.get("node")
    lines.append(
        f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, Node {node_major() or 'absent'}"
    )
    if hasattr(os, "getloadavg"):
        # Other work on a shared machine inflates every number; say how busy it was.
        lines.append(
            f"- 1-minute load average: {LOAD_AT_START:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end ({os.cpu_count()} cores)"
        )
    lines.append(
        f"- interpreter floor (bare start, no work): python {fmt(py_floor, '.0f')} ms, "
        f"node {fmt(node_floor, '.0f')} ms"
    )
    if base_floor is not None:
        lines.append(
            f"- the Python running this script starts in {base_floor:.0f} ms; dispatch-kit and the "
            "Python peers ran from bench/.venv instead, so start-up hooks of one machine's "
            "site-packages (`.pth` files) are not counted"
        )
    timed = [(r.tool.name + " (in the rounds)", r) for r in results]
    if alone is not None:
        timed.append(("dispatch-kit lint (alone, for the targets)", alone))
    for name, r in timed:
        if r.corpus_s:
            lines.append(
                f"- {name}: corpus min {min(r.corpus_s):.3f} s / "
                f"max {max(r.corpus_s):.3f} s; one file min {min(r.single_ms):.0f} ms / "
                f"max {max(r.single_ms):.0f} ms"
            )
    lines += ["", "Commands (run from the corpus root):", ""]
    lines += [f"    {c}" for c in commands]
    lines += [
        "",
        f"Reproduce: `python3 bench/bench_lint.py --seed {args.seed} --count {args.count}`",
    ]
    return "\n".join(lines) + "\n"


def display(cmd: list[str]) -> str:
    """A command as a reader would type it: no machine paths."""
    if len(cmd) > 2 and cmd[1:3] == ["-c", ENTRY_POINT]:
        return display(["dispatch-kit", *cmd[3:]]) + (
            f"  # the console script's entry point, run by {display(cmd[:1])} "
            "with PYTHONPATH=scripts"
        )
    out = []
    for part in cmd:
        if part.startswith(str(ROOT)):
            part = os.path.relpath(part, ROOT)
        elif os.path.isabs(part) and Path(part).name.startswith("python"):
            part = "python3"
        out.append(shlex.quote(part))
    return " ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument(
        "--count",
        type=int,
        default=TARGET_CORPUS_FILES,
        help=f"corpus size (default {TARGET_CORPUS_FILES})",
    )
    parser.add_argument(
        "--reps", type=int, default=5, help="timed corpus runs per tool (default 5)"
    )
    parser.add_argument(
        "--single-reps", type=int, default=10, help="timed one-file runs per tool (default 10)"
    )
    parser.add_argument(
        "--tools",
        default="all",
        help="comma list from: dispatch-kit, markdownlint-cli2, agnix, skillsaw",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not install missing peers; report them as not installed",
    )
    parser.add_argument(
        "--dk-cmd",
        help="command that stands for `dispatch-kit` (default: "
        "python -m dispatch_kit from this checkout, in bench/.venv)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where to write the Markdown report (default bench/out/lint.md)",
    )
    parser.add_argument("--keep-corpus", type=Path, help="write the corpus here and keep it")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.single_reps < 1 or args.count < 1:
        parser.error("--count, --reps and --single-reps must be at least 1")
    wanted = {t.strip() for t in args.tools.split(",")}

    python_problem = ensure_python_peers(not args.no_install)
    node_problem = (
        ensure_node_peers(not args.no_install) if wanted & {"all", "markdownlint-cli2"} else None
    )
    # dispatch-kit runs from the same clean venv as the Python peers when it exists, so
    # no tool pays for start-up hooks that one machine's base interpreter happens to carry.
    dk_python = str(venv_python()) if python_problem is None else sys.executable
    tools = [dispatch_kit_tool(dk_python, args.dk_cmd), *peer_tools(python_problem, node_problem)]
    if "all" not in wanted:
        tools = [t for t in tools if t.name.split()[0] in wanted]

    tmp = Path(tempfile.mkdtemp(prefix="dk-bench-"))
    try:
        corpus = args.keep_corpus or tmp / "corpus"
        clause, source = lint_corpus.stream_safety_block()
        files = lint_corpus.generate(args.seed, args.count, clause=clause)
        lint_corpus.write_corpus(files, corpus)
        info = lint_corpus.manifest(files, args.seed, lint_corpus.DEFAULT_DEFECT_RATE, source)
        clean = [f for f in files if f.defect is None]
        single = next((f.path for f in clean if f.kind == "skill"), files[0].path)
        prompt = next((f.path for f in clean if f.kind == "execute"), None)

        # Interpreter start-up, measured first like the targets: the scale they are read in.
        floors = {
            "python": floor_ms([dk_python, "-c", "pass"], args.single_reps),
            "python-base": floor_ms([sys.executable, "-c", "pass"], args.single_reps)
            if dk_python != sys.executable
            else None,
            "node": floor_ms(["node", "-e", "0"], args.single_reps)
            if shutil.which("node")
            else None,
        }
        # The targets are for dispatch-kit as pre-commit runs it: on its own, on a
        # machine that is not already busy. So it is measured first. After peers
        # have kept both cores busy for seconds, this kind of machine runs every
        # process up to half again slower for a while: the rounds below spread
        # that over all tools for the ratios, but it is no property of any.
        alone: Result | None = None
        prompt_ms: list[float] = []
        dk_tool = next((t for t in tools if t.name == "dispatch-kit lint"), None)
        if dk_tool is not None and not dk_tool.unavailable:
            (alone,), prompt_ms = measure(
                [dk_tool], corpus, single, args.reps, args.single_reps, prompt
            )
        results, _ = measure(tools, corpus, single, args.reps, args.single_reps)

        targets: list[tuple[str, float, float, str]] = []
        if alone and alone.corpus_s:
            if prompt_ms:
                targets.append(
                    (
                        f"cold run, one dispatch prompt (`{prompt}`)",
                        statistics.median(prompt_ms),
                        TARGET_ONE_FILE_MS,
                        "ms",
                    )
                )
            targets.append(
                (
                    f"cold run, one skill file (`{single}`)",
                    statistics.median(alone.single_ms),
                    TARGET_ONE_FILE_MS,
                    "ms",
                )
            )
            targets.append(
                (
                    f"{args.count} files, one process",
                    statistics.median(alone.corpus_s),
                    TARGET_CORPUS_S,
                    "s",
                )
            )
        commands = [display(t.corpus_cmd()) for t in tools if not t.unavailable]
        text = report(results, targets, args, info, single, floors, commands, alone)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.flush()
    print(f"bench: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
