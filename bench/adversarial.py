#!/usr/bin/env python3
"""Hostile prompts for the linter and the pre-dispatch hook, and how long the slowest takes.

Issue 13 found prompts on which the linter's regular expressions backtracked
for minutes: a line of backticks under "Exit criteria", an unclosed
``<!-- dispatch-kit:``, ``[Execute] ] load aaaa...``. The hook runs before
every subagent dispatch, so a pattern that is not linear in its input can
hang a session. This generator builds the shapes that make a backtracking
engine slow (one token repeated, one token then a long filler, a token
repeated with no closing partner) from the tokens the linter's patterns
look for, at a chosen size; ``tests/test_fuzz_lint.py`` runs them small on
every commit, this script runs them at 1 MB through ``bin/dispatch-kit hook
pre-dispatch`` as a user's session would.

``python3 bench/adversarial.py`` (``--size BYTES``, default 1 MB; ``--limit
SECONDS``, default 1; ``--only TEXT`` to run the cases whose name contains
TEXT). Prints the slowest cases and exits 1 when any took longer than the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "bin" / "dispatch-kit"

# What the linter's patterns key on: markers, labels, comment and template
# openers, list and heading marks, quote and bracket characters, the verbs
# its rules look for. Each is repeated, or followed by a long filler, below.
TOKENS = (
    "`", "``", "```", "~~~", "'", '"', "(", ")", "[", "]", "{", "}", "<", ">", "\\", "/",
    "#", "# ", "-", "- ", "* ", "*", "_", "__", "**", "1. ", ":", ": ", "=", "|", ".", "?",
    "!", ",", ";", " ", "\t", "\n", "\n\n", "\n \n", "\r", "a", "a ", "1", "1 ", "\u2014",
    "[Execute] ", "[Execute] ] load ", "[Plan] ", "[Retry] ", "**[Execute]** ",
    "<!-- dispatch-kit: ", "<!-- ", "-->", "{# dispatch-kit: ", "{#", "#}", "{{ ", "{{", "}}",
    "{% ", "%}", "# dispatch-kit: ", "dispatch-kit: ", "exit criteria: ", "Exit criteria:\n",
    "## Exit criteria\n", "- `", "`a", "a`", "working directory: ", "cwd: ", "task: ",
    "Task 1: ", "stream-safety: ", "attempt 1 ", "1/3 ", "write ", "write to ", "save it in ",
    "claim ", "dispatch ", "spawn ", "start ", "launch ", "then ", "load ", "commit ",
    "git commit ", "server ", "server", "npm run dev ", "python -m http.server ", "poll ", "until ",
    "in parallel ", "wait for ", "at most 3 ", "please ", "you should ", "the worker ",
    "and ", "not ", "whether ", "reads what ", "file_exists: ", "contains: ", "run: ",
    "agent: ", "subagent_type: ", "- id: ", "tasks ", "references/", "](references/",
    "[x] ", "key: ", "key: [", "key: {", "'a'", '"a"', "a, ", "claude-", "gpt-4", "opus ",
    "timeout ", "every 5 ", "errors ", "stderr ", "previous attempt ", "then:", "0x",
)

PREFIXES = (
    ("first-line", "", ""),
    ("execute-line", "[Execute] ", ""),
    ("criteria-item", "[Execute] do it\n\n## Exit criteria\n\n- ", ""),
    ("criteria-label", "[Execute] do it\n\nExit criteria: ", ""),
    ("fenced", "[Execute] do it\n\n```\n", ""),
    ("frontmatter", "---\nname: x\ndescription: ", "\n---\n"),
    ("comment", "[Execute] do it\n<!-- dispatch-kit: ", ""),
    ("retry", "[Retry] attempt 2 of 3\n\nError: ", ""),
)


def cases(size: int) -> Iterator[tuple[str, str]]:
    """(name, prompt) pairs of about ``size`` characters each."""
    for token in TOKENS:
        repeat = max(1, size // max(1, len(token)))
        name = json.dumps(token)[1:-1]
        for where, head, tail in PREFIXES:
            yield f"{where}:{name}*", head + token * repeat + tail
            yield f"{where}:{name}*a", head + token * repeat + "a" + tail
        yield f"{name}+a*", token + "a" * size
        yield f"{name}+space*", token + " " * size
        yield f"({name}a)*", (token + "a") * (size // (len(token) + 1))
        yield f"({name} x)*", (token + " x") * (size // (len(token) + 2))
        yield f"({name}+45 blanks)*", (token + " " * 45) * (size // (len(token) + 45))


def event(prompt: str) -> bytes:
    return json.dumps({
        "session_id": "adversarial", "hook_event_name": "PreToolUse", "tool_name": "Agent",
        "tool_input": {"description": "x", "prompt": prompt,
                       "subagent_type": "dispatch-kit:dispatch-worker"},
        "cwd": str(ROOT),
    }).encode()


def time_hook(prompt: str, limit: float) -> float:
    """Seconds ``bin/dispatch-kit hook pre-dispatch`` took on one prompt (the limit on a hang)."""
    start = time.monotonic()
    try:
        subprocess.run([str(LAUNCHER), "hook", "pre-dispatch"], input=event(prompt),
                       capture_output=True, timeout=limit * 20, check=False)
    except subprocess.TimeoutExpired:
        return limit * 20
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--limit", type=float, default=1.0)
    parser.add_argument("--only", default="")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    if not os.access(LAUNCHER, os.X_OK):
        print(f"no launcher at {LAUNCHER}", file=sys.stderr)
        return 2
    timings = []
    for name, prompt in cases(args.size):
        if args.only in name:
            timings.append((time_hook(prompt, args.limit), name))
    timings.sort(reverse=True)
    print(f"{len(timings)} prompts of {args.size} characters through bin/dispatch-kit hook "
          f"pre-dispatch; slowest:")
    for seconds, name in timings[: args.top]:
        print(f"  {seconds:7.3f} s  {name}")
    worst = timings[0][0] if timings else 0.0
    print(f"worst case {worst:.3f} s (limit {args.limit:g} s): "
          f"{'OK' if worst <= args.limit else 'TOO SLOW'}")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
