#!/usr/bin/env python3
"""Generate a seeded corpus of dispatch prompts, skills and agents for the linter benchmark.

Why a generator and not a checked-in corpus: a thousand files would bloat the
repository and still describe only one mix. A seed makes every run reproducible
(the same seed writes byte-identical files), and the mix and the share of
defects are parameters, so the benchmark can also show how a linter behaves
when most files are broken.

The files look like what orchestrators really send and what a plugin ships:

* dispatch prompts under ``prompts/<kind>/`` that start with a kind marker
  (``[Execute]``, ``[Plan]``, ``[Executor]``, ``[Retry]``, ``[Inspect]``, or the
  ``<!-- dispatch-kit: kind=... -->`` comment for some execute prompts);
* skills as ``skills/<name>/SKILL.md`` with frontmatter;
* agents as ``agents/<name>.md`` with frontmatter (the first five are the
  pack's own agent names, so a prompt that names one can be resolved).

A controlled share of the files carries exactly one defect each (a missing
stream-safety block, prose exit criteria, no NO_REPLY, a hardcoded model name,
bad frontmatter, ...). ``--manifest`` writes which file has which defect.

Usage: python3 bench/lint_corpus.py --seed 1 --count 1000 --out DIR [--manifest FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Share of the corpus per kind of file, in percent (sums to 100).
KIND_SHARES: dict[str, int] = {
    "execute": 30,
    "plan": 6,
    "executor": 12,
    "retry": 10,
    "inspect": 7,
    "skill": 20,
    "agent": 15,
}

# Dispatch prompt kinds, each written by the Builder method of the same name.
PROMPT_KINDS = ("execute", "plan", "executor", "retry", "inspect")

# Every defect a kind can carry. A defective file carries exactly one of these.
DEFECTS: dict[str, tuple[str, ...]] = {
    "execute": (
        "no-stream-safety",
        "partial-stream-safety",
        "prose-criteria",
        "no-exit-criteria",
        "no-cwd",
        "hardcoded-model",
        "start-server",
        "bash-to-edit-only-agent",
        "sha-handback",
        "write-outside-cwd",
    ),
    "plan": ("no-stream-safety", "too-many-tasks", "no-wip-limit", "poll-without-stop"),
    "executor": (
        "no-no-reply",
        "no-claim",
        "waits-on-workers",
        "no-cap",
        "no-timeout",
        "hardcoded-model",
    ),
    "retry": ("no-attempt", "no-error"),
    "inspect": ("hardcoded-model",),
    "skill": (
        "name-mismatch",
        "flow-style-list",
        "unknown-field",
        "missing-description",
        "vague-description",
        "broken-yaml",
        "broken-reference",
        "hardcoded-model",
    ),
    "agent": ("hardcoded-model", "unknown-tool", "forbidden-field", "missing-name", "broken-yaml"),
}

DEFAULT_DEFECT_RATE = 0.25

# The pack's own agents: (name, tools). Generated prompts address these by name.
PACK_AGENTS: tuple[tuple[str, str], ...] = (
    ("dispatch-worker", "Read, Write, Edit, Glob, Grep, Bash"),
    ("dispatch-verifier", "Read, Glob, Grep, Bash"),
    ("dispatch-executor", "Read, Glob, Grep, Bash, Agent"),
    ("domain-editor", "Read, Write, Edit, Glob, Grep"),
    ("bash-operator", "Read, Edit, Glob, Grep, Bash"),
)

# Used when the pack's clause template cannot be rendered (no templates yet, or
# the generator runs outside the repository). Same three rules, own wording.
FALLBACK_STREAM_SAFETY = (
    "Stream-safety:\n"
    "1. Before each tool call, print one progress line: a single sentence of at most"
    " 80 characters naming the step, for example `Step 2: reading the parser`.\n"
    "2. Keep every tool call under 60 s; split a long command or a large read into"
    " several short calls.\n"
    "3. When a read returns more than 500 lines, narrow the next read with offset and"
    " limit instead of reading the whole file again.\n"
)

MODELS = ("claude-3-5-sonnet-20241022", "gpt-4o", "claude-opus-4-1", "gemini-2.5-pro", "o3-mini")

MODULES = (
    "parser",
    "tokenizer",
    "config",
    "cache",
    "scheduler",
    "router",
    "exporter",
    "importer",
    "report",
    "ledger",
    "invoice",
    "search",
    "auth",
    "session",
    "metrics",
    "queue",
    "mailer",
    "backup",
    "archive",
    "pricing",
    "catalog",
    "inventory",
    "calendar",
    "diff",
    "renderer",
    "checker",
    "loader",
    "watcher",
    "notifier",
    "migrator",
)
FUNCS = (
    "parse_line",
    "load_config",
    "flush",
    "retry_after",
    "normalize",
    "split_batches",
    "render_row",
    "merge_ranges",
    "validate",
    "to_json",
    "from_csv",
    "resolve_path",
)
LANGS = ("python", "typescript", "go", "shell")
PROJECTS = (
    "a command-line word counter",
    "a CSV to JSON converter",
    "an invoice exporter",
    "a static site builder",
    "a log summariser",
    "a backup rotation tool",
    "a markdown link checker",
    "a timezone-aware scheduler",
    "a small HTTP client library",
    "a changelog generator",
    "a config file migrator",
    "a dependency audit report",
)
QUEUES = ("docs-fixes", "flaky-tests", "lint-cleanup", "dependency-bumps", "triage", "small-bugs")
VERBS = (
    "review",
    "refactor",
    "document",
    "audit",
    "migrate",
    "summarise",
    "test",
    "profile",
    "package",
    "triage",
    "translate",
    "benchmark",
)
NOUNS = (
    "changelog",
    "api-docs",
    "schema",
    "fixtures",
    "release-notes",
    "test-suite",
    "config",
    "pipeline",
    "readme",
    "exports",
    "logs",
    "templates",
)
ROLES = (
    "reviewer",
    "editor",
    "auditor",
    "tester",
    "writer",
    "migrator",
    "profiler",
    "packager",
    "triager",
    "translator",
    "checker",
    "runner",
)
TOOLS_POOL = ("Read", "Write", "Edit", "Glob", "Grep", "Bash", "WebFetch", "WebSearch")
UNKNOWN_TOOLS = ("Shell", "Terminal", "FileSystem", "Browser", "Exec")
TASK_TYPES = ("coding", "research", "review")


@dataclass(frozen=True)
class CorpusFile:
    """One generated file: where it goes, what it is, what is wrong with it."""

    path: str
    kind: str
    defect: str | None
    text: str = field(repr=False)


def stream_safety_block() -> tuple[str, str]:
    """The clause text and where it came from ("pack" or "builtin").

    The pack's own clause is preferred so that the corpus's clean prompts carry
    exactly what rendering and ``--fix`` insert; the built-in wording keeps the
    generator usable before the templates exist.
    """
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    if scripts.is_dir() and str(scripts) not in sys.path:
        sys.path.insert(0, str(scripts))
    try:
        from dispatch_kit.render.templates import render_clause  # type: ignore[import-not-found]

        text = render_clause("stream-safety")
    except Exception:  # any failure means "not available yet"
        return FALLBACK_STREAM_SAFETY, "builtin"
    if not isinstance(text, str) or "Stream-safety:" not in text:
        return FALLBACK_STREAM_SAFETY, "builtin"
    return text.rstrip("\n") + "\n", "pack"


def kind_counts(count: int, shares: dict[str, int] = KIND_SHARES) -> dict[str, int]:
    """Split ``count`` over the kinds by share, exactly (largest remainder)."""
    total = sum(shares.values())
    exact = {k: count * s / total for k, s in shares.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = count - sum(counts.values())
    by_remainder = sorted(shares, key=lambda k: (-(exact[k] - counts[k]), list(shares).index(k)))
    for k in by_remainder[:left]:
        counts[k] += 1
    return counts


def defect_count(n: int, rate: float) -> int:
    """Files of a kind that carry a defect: the rate applied per kind, rounded half up."""
    return int(n * rate + 0.5)


# --- text builders -----------------------------------------------------------------------


class Builder:
    """Builds the text of each kind of file from one seeded random source."""

    def __init__(self, rng: random.Random, clause: str) -> None:
        self.rng = rng
        self.clause = clause

    def pick(self, seq: Sequence[str]) -> str:
        return self.rng.choice(seq)

    def clause_text(self, defect: str | None) -> str:
        if defect == "partial-stream-safety":
            lines = self.clause.rstrip("\n").split("\n")
            rules = [i for i, line in enumerate(lines) if line[:2] in ("1.", "2.", "3.")]
            if rules:
                del lines[self.pick(rules)]
            return "\n".join(lines) + "\n"
        return self.clause

    def criteria(self, mod: str, fn: str, lang: str, prose: bool) -> list[str]:
        ext = {"python": "py", "typescript": "ts", "go": "go", "shell": "sh"}[lang]
        pool = [
            f"`test -f src/{mod}.{ext}`",
            f'`grep -q "{fn}" src/{mod}.{ext}`',
            f"`wc -c < docs/{mod}.md | awk '$1 > 400'`",
            f"`python3 -m pytest tests/test_{mod}.py -q`"
            if lang == "python"
            else f"`test -s build/{mod}.log`",
            f"file_exists: `docs/{mod}.md`",
            f"contains: `src/{mod}.{ext}` has the text `{fn}`",
        ]
        chosen = self.rng.sample(pool, self.rng.randint(2, 4))
        if prose:
            chosen[self.rng.randrange(len(chosen))] = self.pick(
                (
                    f"The {mod} module works correctly and handles edge cases well.",
                    f"Documentation for {fn} is clear and complete.",
                    "Everything looks good and the code is clean.",
                    f"The {mod} change is reasonably fast.",
                )
            )
        return chosen

    def paragraph(self, mod: str, fn: str) -> str:
        sentences = (
            f"The `{fn}` helper in `{mod}` is called from three places and none of them "
            "checks its return value.",
            f"Keep the public interface of `{mod}` unchanged; callers outside this folder "
            "depend on it.",
            f"Add a focused test for `{fn}` that fails before the change and passes after it.",
            "Prefer a small, reviewable diff over a rewrite.",
            f"If `{mod}` already has a helper that does this, reuse it rather than adding one.",
            "Note anything you could not finish in the report instead of guessing.",
            f"Empty input and a missing file are the two cases `{fn}` gets wrong today.",
        )
        return " ".join(self.rng.sample(sentences, self.rng.randint(2, 5)))

    # -- dispatch prompts --

    def execute(self, defect: str | None, comment_marker: bool) -> str:
        mod, fn, lang = self.pick(MODULES), self.pick(FUNCS), self.pick(LANGS)
        project = self.pick(PROJECTS)
        title = f"{self.pick(('Fix', 'Add', 'Refactor', 'Document', 'Test'))} `{fn}` in {mod}"
        cwd = f"workspace/{mod}"
        agent = "bash-operator" if self.rng.random() < 0.2 else "dispatch-worker"
        if defect == "bash-to-edit-only-agent":
            agent = "domain-editor"
        head = (
            f"<!-- dispatch-kit: kind=execute -->\n# {title}\n"
            if comment_marker
            else f"[Execute] {title}\n"
        )
        out = [head, f"Agent: {agent}\n", f"## Mission\n{project[0].upper()}{project[1:]}.\n"]
        out.append(f"## Your task ({self.pick(TASK_TYPES)})\n{self.paragraph(mod, fn)}\n")
        if defect != "no-cwd":
            out.append(f"Working directory: `{cwd}`\n")
        if defect != "no-exit-criteria":
            crit = self.criteria(mod, fn, lang, prose=defect == "prose-criteria")
            out.append("## Exit criteria (all must pass)\n" + "".join(f"- {c}\n" for c in crit))
        rules = [
            "- Do not start servers or long-running processes.",
            "- Change files only inside the working directory.",
            "- Run every exit criterion yourself before you finish.",
            "- Leave changes uncommitted and list the files you changed in your report.",
        ]
        if agent == "bash-operator":
            rules[3] = "- Commit the change with a one-line message once every criterion passes."
        if defect == "start-server":
            rules[0] = "- Start the dev server with `npm run dev` and keep it up while you test."
        if defect == "write-outside-cwd":
            rules[1] = f"- Also update `~/.config/{mod}/settings.toml` and `../shared/{mod}.md`."
        if defect == "bash-to-edit-only-agent":
            rules[3] = "- When the edit is done, run the tests, `git commit` and `git push`."
        if defect == "sha-handback":
            rules[3] = "- Stage the change and tell the main thread the SHA so it can commit."
        if defect == "hardcoded-model":
            rules.append(f"- Use {self.pick(MODELS)} for this task; it is the fastest model.")
        out.append("## Rules\n" + "\n".join(rules) + "\n")
        if defect != "no-stream-safety":
            out.append(self.clause_text(defect))
        return "\n".join(out)

    def plan(self, defect: str | None) -> str:
        project = self.pick(PROJECTS)
        n_tasks = self.rng.randint(8, 10) if defect == "too-many-tasks" else self.rng.randint(2, 6)
        mods = self.rng.sample(MODULES, n_tasks)
        out = [
            f"[Plan] Break down: {project}\n",
            f"## Mission\nBuild {project} in `workspace/`, ready for review.\n",
            "Working directory: `workspace`\n",
            "## Tasks to dispatch\n"
            + "".join(
                f"{n}. `{m}`: {self.pick(VERBS)} the {m} module; cwd `workspace/{m}`; "
                f"exit criterion `test -f workspace/{m}/DONE`\n"
                for n, m in enumerate(mods, 1)
            ),
        ]
        if defect == "no-wip-limit":
            out.append("Dispatch every task at once in the background.\n")
        else:
            out.append(
                f"Dispatch in the background with a WIP limit of {self.rng.randint(2, 3)}: "
                "start the next task only when a slot frees up.\n"
            )
        if defect == "poll-without-stop":
            out.append("Keep polling each task's status and retry failed tasks.\n")
        else:
            minutes = self.pick((10, 20, 30))
            out.append(
                f"Poll each task's status every minute until it finishes, at most 3 retries "
                f"per task; treat a task silent for {minutes} minutes as timed out.\n"
            )
        if defect != "no-stream-safety":
            out.append(self.clause)
        return "\n".join(out)

    def executor(self, defect: str | None) -> str:
        queue, cap, timeout = self.pick(QUEUES), self.rng.randint(3, 6), self.pick((300, 600, 900))
        steps = [
            f"List the items labelled `status:ready` in the {queue} queue, oldest first.",
            f"Take at most {cap} items in this run (cap per run: {cap}).",
            "If there is nothing to take, reply with exactly NO_REPLY and stop.",
            "Claim each item before dispatching it: set its label to `status:in-progress` "
            "first, then spawn.",
            "Spawn one `dispatch-worker` per claimed item, in the background, with the item's "
            "prompt.",
            "Do not wait for the workers or check on them; exit as soon as the last spawn returns.",
        ]
        if defect == "no-cap":
            steps[1] = "Take every ready item."
        if defect == "no-no-reply":
            steps[2] = "If there is nothing to take, post a short note saying the queue is empty."
        if defect == "no-claim":
            steps[3] = "Spawn first; set each item's label to `status:in-progress` afterwards."
        if defect == "waits-on-workers":
            steps[5] = "Wait for every worker to finish, then post a summary of their results."
        if defect == "hardcoded-model":
            steps[4] = f"Spawn one worker per item on {self.pick(MODELS)}, in the background."
        out = [
            f"[Executor] Scheduled run for the {queue} queue\n",
            "You are a fire-and-forget executor: select, claim, spawn, exit.\n",
            "".join(f"{n}. {s}\n" for n, s in enumerate(steps, 1)),
        ]
        if defect != "no-timeout":
            out.append(
                f"Hard timeout: this run is stopped after {timeout} s "
                f"(timeoutSeconds: {timeout}).\n"
            )
        # The pattern's stale-claim sweep (DK306), named the same way in every executor:
        # no random draw, so the rest of the corpus stays what it was.
        out.append(
            "A separate sweep returns items stuck in `status:in-progress` for over 2 hours to "
            "`status:ready`.\n"
        )
        return "\n".join(out)

    def retry(self, defect: str | None) -> str:
        mod, fn = self.pick(MODULES), self.pick(FUNCS)
        attempt, limit = self.rng.randint(1, 2), 3
        header = (
            "[Retry] The previous attempt failed\n"
            if defect == "no-attempt"
            else f"[Retry] The previous attempt failed (attempt {attempt}/{limit})\n"
        )
        out = [header, f"Task: fix `{fn}` in {mod}\n"]
        if defect != "no-error":
            err = self.pick(
                (
                    f"criterion 1 `test -f src/{mod}.py` failed: exit 1 (file not found)",
                    f'criterion 2 `grep -q "{fn}" src/{mod}.py` failed: exit 1, no match',
                    f"criterion 3 `python3 -m pytest tests/test_{mod}.py -q` failed: "
                    "2 failed, 9 passed",
                    f"criterion 1 timed out after 60 s: `python3 -m pytest tests/test_{mod}.py`",
                )
            )
            out.append(f"Error: {err}\n")
            out.append("Fix this specific problem, then run every exit criterion again.\n")
        else:
            out.append("Please try again and be more careful this time.\n")
        return "\n".join(out)

    def inspect(self, defect: str | None) -> str:
        mod, fn = self.pick(MODULES), self.pick(FUNCS)
        question = self.pick(
            (
                f"does `{fn}` handle an empty input?",
                f"which function calls `{fn}` first?",
                f"is `{fn}` covered by a test?",
            )
        )
        text = (
            f"[Inspect] Read `src/{mod}.py` and answer: {question}\n\n"
            "Reply with yes or no and the line number. One read is enough; change nothing.\n"
        )
        if defect == "hardcoded-model":
            text += f"\nRun this on {self.pick(MODELS)}.\n"
        return text

    # -- skills and agents --

    def skill(self, name: str, defect: str | None) -> str:
        verb, noun = name.split("-")[0], name.split("-", 1)[1].rsplit("-", 1)[0]
        tools = self.rng.sample(TOOLS_POOL[:6], self.rng.randint(2, 4))
        desc = (
            f"Use when a task asks to {verb} the {noun.replace('-', ' ')}; it "
            f"{self.pick(('lists the steps', 'gives a checklist', 'shows the commands'))} and "
            "the checks that prove the work is done."
        )
        fm: list[str] = [f"name: {name if defect != 'name-mismatch' else name + '-v2'}"]
        if defect == "vague-description":
            fm.append("description: A helpful skill.")
        elif defect != "missing-description":
            fm.append(f"description: {desc}")
        fm.append("license: MIT")
        fm.append(f"metadata:\n  category: {verb}\n  owner: platform")
        if defect == "flow-style-list":
            fm.append(f"allowed-tools: [{', '.join(tools)}]")
        else:
            fm.append("allowed-tools:\n" + "".join(f"  - {t}\n" for t in tools).rstrip("\n"))
        if defect == "unknown-field":
            fm.append(f"version: 1.{self.rng.randint(0, 9)}.0")
        if defect == "hardcoded-model":
            fm.append(f"model: {self.pick(MODELS)}")
        if defect == "broken-yaml":
            fm.append("metadata: {category: [unclosed")
        title = f"{verb.capitalize()} {noun.replace('-', ' ')}"
        steps = [
            f"Read the current {noun.replace('-', ' ')} and list what is out of date.",
            "Write the plan as a short checklist before you change anything.",
            "Make one change at a time and run the check after each.",
            "Keep every change inside the project's working directory.",
            "Record what you changed and what you left for later.",
            f"Run `grep -rn TODO {noun}/` and resolve or file each hit.",
            "Ask for review only once every check passes.",
        ]
        body = [
            f"# {title}\n",
            self.paragraph(self.pick(MODULES), self.pick(FUNCS)) + "\n",
            "## When to use\n",
            f"- The task mentions the {noun.replace('-', ' ')} by name.\n"
            f"- A reviewer asked for one more {verb} pass before a release.\n",
            "## Steps\n",
            "".join(
                f"{n}. {s}\n"
                for n, s in enumerate(self.rng.sample(steps, self.rng.randint(4, 7)), 1)
            ),
            "## Checks\n",
            f'- `test -f {noun}/CHECKED`\n- `grep -q "{verb}" CHANGES.md`\n',
        ]
        if defect == "broken-reference":
            body.append(f"More detail: [the long guide](references/{noun}-guide.md).\n")
        return "---\n" + "\n".join(fm) + "\n---\n\n" + "\n".join(body)

    def agent(self, name: str, tools: str | None, defect: str | None) -> str:
        if tools is None:
            tools = ", ".join(self.rng.sample(TOOLS_POOL[:6], self.rng.randint(2, 5)))
        if defect == "unknown-tool":
            tools += f", {self.pick(UNKNOWN_TOOLS)}"
        fm: list[str] = []
        if defect != "missing-name":
            fm.append(f"name: {name}")
        role = name.rsplit("-", 1)[0].replace("-", " ")
        fm.append(
            f"description: Use to hand one task to the {role} agent; it works inside the "
            "task's working directory and reports what changed."
        )
        fm.append(f"tools: {tools}")
        if defect == "hardcoded-model":
            fm.append(f"model: {self.pick(MODELS)}")
        elif self.rng.random() < 0.5:
            fm.append("model: inherit")
        if defect == "forbidden-field":
            fm.append(
                self.pick(("permissionMode: bypassPermissions", "mcpServers: {}", "hooks: {}"))
            )
        if defect == "broken-yaml":
            fm.append("description: : broken: [")
        body = (
            f"You are the {name} agent. You receive one task at a time with a working "
            "directory and exit criteria.\n\n"
            "1. Read the task and the files it names; do not guess at paths.\n"
            "2. Change only files inside the working directory.\n"
            "3. Run each exit criterion yourself and quote its result.\n"
            "4. Report the files you changed and anything left undone.\n"
        )
        return "---\n" + "\n".join(fm) + "\n---\n\n" + body


# --- corpus assembly -----------------------------------------------------------------------


def generate(
    seed: int, count: int, defect_rate: float = DEFAULT_DEFECT_RATE, clause: str | None = None
) -> list[CorpusFile]:
    """The corpus as a list of files, in a deterministic order, without touching disk."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if not 0.0 <= defect_rate <= 1.0:
        raise ValueError("defect rate must be between 0 and 1")
    rng = random.Random(seed)
    builder = Builder(rng, clause if clause is not None else FALLBACK_STREAM_SAFETY)
    counts = kind_counts(count)

    # Which files of each kind are defective, and with what; spread evenly over the defects.
    defects_by_kind: dict[str, list[str | None]] = {}
    for kind, n in counts.items():
        n_bad = defect_count(n, defect_rate)
        slots: list[str | None] = [None] * n
        protected = min(len(PACK_AGENTS), n) if kind == "agent" else 0
        candidates = list(range(protected, n))
        bad_idx = rng.sample(candidates, min(n_bad, len(candidates)))
        kinds_defects = list(DEFECTS[kind])
        rng.shuffle(kinds_defects)
        for j, idx in enumerate(sorted(bad_idx)):
            slots[idx] = kinds_defects[j % len(kinds_defects)]
        defects_by_kind[kind] = slots

    order = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(order)
    seen: dict[str, int] = dict.fromkeys(counts, 0)
    files: list[CorpusFile] = []
    for i, kind in enumerate(order):
        k = seen[kind]
        seen[kind] += 1
        defect = defects_by_kind[kind][k]
        if kind == "execute":
            marker_comment = rng.random() < 0.125
            path, text = (
                f"prompts/execute/{i:04d}-worker.md",
                builder.execute(defect, comment_marker=marker_comment),
            )
        elif kind in PROMPT_KINDS:
            path = f"prompts/{kind}/{i:04d}-{kind}.md"
            text = getattr(builder, kind)(defect)
        elif kind == "skill":
            name = f"{rng.choice(VERBS)}-{rng.choice(NOUNS)}-{i:04d}"
            path, text = f"skills/{name}/SKILL.md", builder.skill(name, defect)
        else:
            if k < len(PACK_AGENTS):
                name, tools = PACK_AGENTS[k]
            else:
                name, tools = f"{rng.choice(NOUNS)}-{rng.choice(ROLES)}-{i:04d}", None
            path, text = f"agents/{name}.md", builder.agent(name, tools, defect)
        files.append(CorpusFile(path=path, kind=kind, defect=defect, text=text))
    return files


def write_corpus(files: list[CorpusFile], out: Path) -> None:
    """Write the files under ``out`` (which must be empty or absent)."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: output folder is not empty")
    for f in files:
        target = out / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.text.encode("utf-8"))


def manifest(files: list[CorpusFile], seed: int, defect_rate: float, clause_source: str) -> dict:
    """What was generated: per-file kind and defect, and totals per kind."""
    summary: dict[str, dict[str, int]] = {}
    for f in files:
        s = summary.setdefault(f.kind, {"files": 0, "defective": 0})
        s["files"] += 1
        s["defective"] += f.defect is not None
    return {
        "seed": seed,
        "count": len(files),
        "defect_rate": defect_rate,
        "stream_safety_clause": clause_source,
        "summary": summary,
        "files": [{"path": f.path, "kind": f.kind, "defect": f.defect} for f in files],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--count", type=int, default=1000, help="number of files (default 1000)")
    parser.add_argument("--out", required=True, type=Path, help="empty or new output folder")
    parser.add_argument(
        "--defect-rate",
        type=float,
        default=DEFAULT_DEFECT_RATE,
        help=f"share of files with one defect (default {DEFAULT_DEFECT_RATE})",
    )
    parser.add_argument("--manifest", type=Path, help="write the per-file manifest JSON here")
    parser.add_argument(
        "--builtin-clause",
        action="store_true",
        help="use the built-in stream-safety wording, not the pack's template",
    )
    args = parser.parse_args(argv)
    if args.builtin_clause:
        clause, source = FALLBACK_STREAM_SAFETY, "builtin"
    else:
        clause, source = stream_safety_block()
    try:
        files = generate(args.seed, args.count, args.defect_rate, clause)
        write_corpus(files, args.out)
    except (ValueError, FileExistsError) as exc:
        print(f"lint_corpus: {exc}", file=sys.stderr)
        return 2
    data = manifest(files, args.seed, args.defect_rate, source)
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    parts = ", ".join(
        f"{k} {v['files']} ({v['defective']} defective)" for k, v in data["summary"].items()
    )
    print(
        f"wrote {len(files)} files to {args.out} (seed {args.seed}, "
        f"stream-safety clause: {source}): {parts}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
