"""``dispatch-kit demo``: walk the bundled example mission through the toolkit, step by step.

A new user's first question is "what does this actually do?". The demo answers
with real output: each step prints a heading, the command it runs, and what
that command printed. It works on a copy of the example (``OUT/plan.yaml`` and
``OUT/workspace``) so the repository stays clean however often it runs.

Steps are plain functions ``(ctx) -> None`` listed in :data:`STEPS`; the first
line of a step's docstring is its heading. To add one, write the function and
append it to ``STEPS``. A step that fails raises :class:`StepFailed`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch_kit.errors import InputError
from dispatch_kit.packroot import pack_root

# Written into OUT so a later run knows the folder is the demo's to replace;
# a folder without it is never emptied.
MARKER = ".dispatch-kit-demo"
EXAMPLE = Path("examples") / "wordcount"
VARS = Path("examples") / "vars"
# Prompts rendered from examples/vars/<name>.yaml (the worker prompts come from the plan).
VARS_TEMPLATES = ("executor", "composite-load", "composite-chain", "report")


class StepFailed(Exception):
    """A demo step could not do its job; the message says what and why."""


@dataclass
class DemoContext:
    """What every step needs: where to write, the copied plan, and how to print."""

    out: Path
    plan_path: Path
    pack: Path
    printer: Callable[[str], None] = print
    state: dict[str, Any] = field(default_factory=dict)  # results steps pass on to later ones

    @property
    def workspace(self) -> Path:
        return self.out / "workspace"

    def say(self, text: str = "") -> None:
        self.printer(text)

    def shown(self, path: Path) -> str:
        """``path`` as a user would type it from here: relative when below the current folder."""
        try:
            return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return str(path)

    def cli(self, *args: str, expect: tuple[int, ...] = (0,)) -> int:
        """Run ``dispatch-kit ARGS`` in this process, echoing the command; fail on other codes."""
        from dispatch_kit.cli import main

        self.say("$ dispatch-kit " + " ".join(_quote(a) for a in args))
        sys.stdout.flush()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        sys.stdout.flush()
        sys.stderr.flush()
        if code not in expect:
            raise StepFailed(f"`dispatch-kit {' '.join(args)}` exited {code}")
        return code


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# --------------------------------------------------------------------------- steps


def check_manifests(ctx: DemoContext) -> None:
    """Check that the Claude Code manifests match the root plugin.json."""
    # `manifests` works on the current folder; the pack (a checkout, a plugin
    # folder or an installed package's data) is named when it is elsewhere.
    if ctx.pack.resolve() == Path.cwd().resolve():
        ctx.cli("manifests", "--check")
    else:
        ctx.cli("manifests", "--check", "--root", ctx.shown(ctx.pack))


def render_prompts(ctx: DemoContext) -> None:
    """Render every example prompt into the prompts/ folder."""
    from dispatch_kit.plan.load import load_plan

    prompts = ctx.out / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    plan = load_plan(str(ctx.plan_path))
    for task in plan.order():
        ctx.cli(
            "render", "worker", "--plan", ctx.shown(ctx.plan_path), "--task", task.id,
            "-o", ctx.shown(prompts / f"worker-{task.id}.md"),
        )
    for name in VARS_TEMPLATES:
        ctx.cli(
            "render", name, "--vars", ctx.shown(ctx.pack / VARS / f"{name}.yaml"),
            "-o", ctx.shown(prompts / f"{name}.md"),
        )
    ctx.say()
    ctx.say(f"Wrote {ctx.shown(prompts)}/:")
    for path in sorted(prompts.glob("*.md")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        ctx.say(f"  {path.stat().st_size:>6} bytes  {path.name:<24} {first[:60]}")


def validate_example_plan(ctx: DemoContext) -> None:
    """Validate the example plan: schema, ids, dependencies, vague criteria, working folders."""
    ctx.cli("plan", "validate", ctx.shown(ctx.plan_path))


def check_before_work(ctx: DemoContext) -> None:
    """Check the exit criteria before any worker ran: none can pass yet."""
    import io
    from contextlib import redirect_stdout

    from dispatch_kit.cli import main

    plan = ctx.shown(ctx.plan_path)
    ctx.cli("check", plan, expect=(1,))
    result_path = ctx.out / "check.json"
    ctx.say()
    ctx.say(f"$ dispatch-kit check {plan} --format json > {ctx.shown(result_path)}")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(["check", plan, "--format", "json"])
    if code != 1:
        raise StepFailed(f"expected exit 1 from a check before any work, got {code}")
    result_path.write_text(buffer.getvalue(), encoding="utf-8")
    ctx.state["check_json"] = result_path
    ctx.say(f"exit {code}; the JSON verdicts are in {ctx.shown(result_path)} (the task folders do "
            "not exist until a worker creates them, hence `error`)")


def retry_from_check(ctx: DemoContext) -> None:
    """Render the retry addendum for a failed task, with the check result as its error context."""
    result_path = ctx.state.get("check_json")
    if result_path is None:
        raise StepFailed("no check result; the check step must run first")
    ctx.cli(
        "render", "retry", "--plan", ctx.shown(ctx.plan_path), "--task", "counter",
        "--attempt", "1", "--check", ctx.shown(result_path),
    )


BROKEN_PROMPT = """[Execute] Task `export`: add CSV export to the report page

Use claude-3-5-sonnet for this task.

Add a "Download CSV" button to the report page. Start the dev server with
`npm run dev` to try it, and save a copy of the sample export to /srv/exports/report.csv.

## Exit criteria
- The export works and the button looks right.
"""


# A prompt from outside the pack, with none of its markers: the cron executor prompt
# tests/fixtures/wild-prompts/executor-waits-and-summarises.md, written for the
# wild-prompt corpus in a style common elsewhere (issue 14).
UNMARKED_PROMPT = """Cron job (runs hourly, times out after 15 minutes).

Check the `triage:ready` issues. If there are none, reply NO_REPLY. Otherwise take at most 5, move
each to `triage:in-progress`, and spawn a fixer subagent for it. Then wait until all the fixers have
finished and post a summary of what each one did to #eng-bots.
"""


def lint_prompts(ctx: DemoContext) -> None:
    """Lint the rendered prompts (clean), a broken one, and an unmarked one from elsewhere."""
    ctx.cli("lint", ctx.shown(ctx.out / "prompts"))
    broken = ctx.out / "broken-prompt.md"
    broken.write_text(BROKEN_PROMPT, encoding="utf-8")
    ctx.say()
    ctx.cli("lint", ctx.shown(broken), expect=(1,))
    ctx.say()
    ctx.say(
        "`dispatch-kit lint --fix` inserts the missing Stream-safety block; "
        "`dispatch-kit rule DK101` explains a rule."
    )
    unmarked = ctx.out / "cron-prompt.md"
    unmarked.write_text(UNMARKED_PROMPT, encoding="utf-8")
    ctx.say()
    ctx.say("A cron prompt written elsewhere carries no [Executor] marker; the linter reads it as")
    ctx.say("one from its content (a schedule, a queue, workers to spawn) and applies the")
    ctx.say("executor rules:")
    ctx.cli("lint", ctx.shown(unmarked), expect=(1,))
    ctx.say()
    ctx.say(
        "CI reports these at each rule's severity; the pre-dispatch hook reports them as "
        "warnings, since the kind is only a likely reading. A marker settles it."
    )


def run_mission(ctx: DemoContext) -> None:
    """Run the mission end to end with the scripted worker: a retry, a failure, a skip."""
    import shlex
    import shutil as _shutil

    python = "python3" if _shutil.which("python3") else sys.executable
    script = ctx.shown(ctx.pack / EXAMPLE / "worker.py")
    # The worker runs in each task's folder: name the script from where `run` started.
    if not Path(script).is_absolute():
        script = f'"$DISPATCH_KIT_ORIGIN"/{shlex.quote(script)}'
    worker = f"{shlex.quote(python)} {script}"
    ctx.say("The scripted worker (no model) writes each task's files for real. In its demo mode")
    ctx.say("`tests` writes a failing test first and fixes it from the retry prompt, and `guide`")
    ctx.say("stays too short every time, so it fails for good and `review` is skipped.")
    ctx.say()
    plan = ctx.shown(ctx.plan_path)
    ctx.cli("run", plan, "--worker", worker, expect=(1,))
    ctx.say()
    ctx.say("The ledger keeps that state for the next run, a skill or a cron job:")
    ctx.cli("ledger", "status", "--db", ctx.shown(ctx.workspace / ".dispatch" / "ledger.db"))


STEPS: list[Callable[[DemoContext], None]] = [
    check_manifests,
    validate_example_plan,
    render_prompts,
    check_before_work,
    retry_from_check,
    lint_prompts,
    run_mission,
]


# --------------------------------------------------------------------------- runner


def prepare(out: Path) -> DemoContext:
    """Make ``out`` a fresh copy of the example mission, refusing folders the demo did not make."""
    pack = pack_root()
    example = pack / EXAMPLE
    if not (example / "plan.yaml").is_file():
        raise InputError(
            "the bundled example is missing from the pack; reinstall dispatch-kit",
            path=str(example),
        )
    if out.resolve().is_relative_to(example.resolve()):
        raise InputError("the demo cannot write inside the example it copies", path=str(out))
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder; choose another --out", path=str(out))
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise InputError(
                "folder exists and was not made by the demo; choose another --out or empty it",
                path=str(out),
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `dispatch-kit demo`; the next run replaces this folder\n")
    shutil.copy2(example / "plan.yaml", out / "plan.yaml")
    shutil.copytree(example / "workspace", out / "workspace")
    return DemoContext(out=out, plan_path=out / "plan.yaml", pack=pack)


def run(out: Path, steps: list[Callable[[DemoContext], None]] | None = None) -> int:
    """Run every step in order; 0 when all succeed, 1 at the first failure."""
    ctx = prepare(out)
    steps = STEPS if steps is None else steps
    ctx.say(f"dispatch-kit demo: working on a copy of the example mission in {ctx.shown(out)}/")
    for number, step in enumerate(steps, 1):
        title = (step.__doc__ or step.__name__).strip().splitlines()[0].rstrip(".")
        ctx.say()
        ctx.say(f"== {number}/{len(steps)} {title} ==")
        try:
            step(ctx)
        except StepFailed as exc:
            sys.stdout.flush()
            print(f"demo: step {number} ({step.__name__}) failed: {exc}", file=sys.stderr)
            return 1
    ctx.say()
    ctx.say(f"demo: all {len(steps)} steps passed; everything is in {ctx.shown(out)}/")
    return 0
