#!/usr/bin/env python3
"""A scripted worker for the wordcount example: does each task for real, without a model.

``dispatch-kit run examples/wordcount/plan.yaml --worker 'python3 examples/wordcount/worker.py'``
runs the whole mission with it. The runner starts it in the task's folder with
the rendered prompt on stdin and ``DISPATCH_KIT_TASK`` / ``DISPATCH_KIT_ATTEMPT``
in the environment; it writes the files the task asks for and exits.

Modes (``--mode`` or ``WORDCOUNT_WORKER_MODE``):

- ``demo`` (default) shows the loop's failure paths: ``tests`` writes a failing
  test on attempt 1 and fixes it after reading the retry prompt; ``guide``
  writes a guide too short for its criteria on every attempt, so it fails for
  good and ``review`` is skipped.
- ``pass`` does every task right the first time.
- ``fail`` writes nothing useful, so every task fails.

``WORDCOUNT_WORKER_LOG=PATH`` appends ``task attempt pid`` per invocation, so
tests can count how often each task was really dispatched;
``WORDCOUNT_WORKER_DELAY=SECONDS`` makes each task take that long, like a real
worker thinking. ``WORDCOUNT_WORKER_BLOCK=TASK:FIFO`` makes task TASK wait, once it
has logged its start, until it reads a line from the named pipe FIFO: a test holds it
mid-work for exactly as long as it needs, however busy the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# The criteria run this with the first `python3` on PATH, under cron often an older system
# Python than the one running the demo: the annotations below must not need 3.10 to import.
COUNTER = '''\
"""Count the words in a text: the whitespace-separated tokens."""

from __future__ import annotations

import sys


def count_words(text: str) -> int:
    """Number of words in ``text``; any run of whitespace separates two words."""
    return len(text.split())


def main(argv: list[str] | None = None) -> int:
    """Print the word count of the files named in ``argv``, or of standard input."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(count_words(sys.stdin.read()))
        return 0
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            print(count_words(handle.read()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''

TESTS = '''\
"""Unit tests for wordcount.count_words (run with PYTHONPATH=../src)."""

import unittest

from wordcount import count_words


class CountWordsTest(unittest.TestCase):
    def test_empty_input_has_no_words(self):
        self.assertEqual(count_words(""), 0)

    def test_repeated_whitespace_separates_once(self):
        self.assertEqual(count_words("one  two   three"), {repeated})

    def test_multi_line_text(self):
        self.assertEqual(count_words("first line\\nsecond line here\\n"), 5)


if __name__ == "__main__":
    unittest.main()
'''


def log_call(task: str, attempt: int) -> None:
    path = os.environ.get("WORDCOUNT_WORKER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{task} {attempt} {os.getpid()}\n")


def run_counter(path: Path, text: str) -> str:
    """Run the real counter on ``text`` and return what it printed."""
    done = subprocess.run(
        [sys.executable, str(path)], input=text, capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


def do_counter(mode: str, attempt: int, prompt: str) -> str:
    if mode == "fail":
        Path("wordcount.py").write_text("# not written yet\n")
        return "BLOCKED: left a placeholder"
    Path("wordcount.py").write_text(COUNTER)
    return "DONE: wrote wordcount.py"


def do_tests(mode: str, attempt: int, prompt: str) -> str:
    if mode == "fail":
        return "BLOCKED: wrote no tests"
    if mode == "demo" and attempt == 1:
        # A plausible first mistake: counting the gaps of "one  two   three" as words.
        Path("test_wordcount.py").write_text(TESTS.replace("{repeated}", "5"))
        return "DONE: wrote test_wordcount.py (not run)"
    if mode == "demo":
        # Only fix the test when the retry prompt says what went wrong, as a model would.
        wanted = [f"attempt {attempt - 1}/", "unittest"]
        missing = [w for w in wanted if w not in prompt]
        if missing or not re.search(r"AssertionError|FAILED|Error", prompt):
            print(f"retry prompt lacks the error context ({missing})", file=sys.stderr)
            raise SystemExit(3)
    Path("test_wordcount.py").write_text(TESTS.replace("{repeated}", "3"))
    return "DONE: wrote test_wordcount.py"


def do_guide(mode: str, attempt: int, prompt: str) -> str:
    if mode in ("demo", "fail"):
        Path("usage.md").write_text("## Usage\n\nRun the tool.\n")
        return "DONE: wrote usage.md"
    counter = Path("..") / "src" / "wordcount.py"
    sample = "the quick brown fox\njumps over the lazy dog\n"
    count = run_counter(counter, sample)
    Path("usage.md").write_text(
        "# wordcount\n\n"
        "`wordcount.py` counts the words of a text: runs of characters separated by any\n"
        "whitespace (spaces, tabs, new lines).\n\n"
        "## Usage\n\n"
        "On a file: `python3 src/wordcount.py notes.txt` prints one count per file.\n\n"
        "On a pipe: `printf 'one two' | python3 src/wordcount.py` prints `2`.\n\n"
        "## Example\n\n"
        "```\n"
        "$ printf 'the quick brown fox\\njumps over the lazy dog\\n' | python3 src/wordcount.py\n"
        f"{count}\n"
        "```\n"
    )
    return "DONE: wrote usage.md"


def do_review(mode: str, attempt: int, prompt: str) -> str:
    if mode == "fail":
        Path("verdict.md").write_text("VERDICT: FAIL\n")
        return "DONE: nothing reviewed"
    guide = (Path("..") / "docs" / "usage.md").read_text()
    reasons, ok = [], True
    example = re.search(r"\$ printf '(.*?)' \| python3 src/wordcount.py\n(\d+)", guide)
    if example is None:
        ok = False
        reasons.append("- the guide has no worked example to run")
    else:
        text = example.group(1).encode().decode("unicode_escape")
        got = run_counter(Path("..") / "src" / "wordcount.py", text)
        ok = got == example.group(2)
        reasons.append(f"- worked example: guide says {example.group(2)}, the tool prints {got}")
    verdict = "PASS" if ok else "FAIL"
    Path("verdict.md").write_text("# Review\n\n" + "\n".join(reasons) + f"\n\nVERDICT: {verdict}\n")
    return f"DONE: verdict {verdict}"


TASKS = {"counter": do_counter, "tests": do_tests, "guide": do_guide, "review": do_review}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("demo", "pass", "fail"),
                        default=os.environ.get("WORDCOUNT_WORKER_MODE", "demo"))
    args = parser.parse_args(argv)
    task = os.environ.get("DISPATCH_KIT_TASK", "")
    attempt = int(os.environ.get("DISPATCH_KIT_ATTEMPT", "1"))
    prompt = sys.stdin.read()
    log_call(task, attempt)
    if task not in TASKS:
        print(f"unknown task {task!r}; expected one of {', '.join(TASKS)}", file=sys.stderr)
        return 2
    if f"Task `{task}`" not in prompt:
        print("the prompt on stdin is not for this task", file=sys.stderr)
        return 4
    print(f"[worker] {task} attempt {attempt} in {Path.cwd().name}/ ({args.mode} mode)")
    block_task, _, fifo = os.environ.get("WORDCOUNT_WORKER_BLOCK", "").partition(":")
    if fifo and block_task == task:
        sys.stdout.flush()
        with open(fifo) as pipe:  # opens once the test writes to it
            pipe.readline()
    time.sleep(float(os.environ.get("WORDCOUNT_WORKER_DELAY", "0") or 0))
    print(TASKS[task](args.mode, attempt, prompt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
