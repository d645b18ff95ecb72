"""DK6xx: worker hygiene: useful retries, no pinned models, no servers, no stray writes.

A retry that does not say which attempt it is, or what failed, makes the next
worker repeat the same mistake. A pinned model name breaks when the harness or
account offers a different one. A server started inside a task never exits,
so the task never ends. A worker writing outside its working directory steps
on other workers and escapes the exit criteria.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dispatch_kit.lint.document import Document, Region
from dispatch_kit.lint.kinds import PROMPT_KINDS
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.prose import all_negated, matches
from dispatch_kit.lint.registry import Example, Hit, Rule
from dispatch_kit.lint.rules._shared import BLOCK

RETRY = frozenset({"retry"})
# A count in a retry: digits, or a template's placeholder for them.
_COUNT = r"(?:\d+|\{\{[^{}\n]{0,40}\}\}|\{[\w.]{1,40}\}|\$\{?\w{1,40}\}?)"
# Which attempt, out of how many: "attempt 2/3", "Retry 3/3", "attempt 2 of 3", "retry
# attempt {{n}} of {{max}}", "the last attempt". An attempt number alone leaves the budget out.
_ATTEMPT = lazy(
    r"\b(?:attempt|retry|try|run)[ \t]*(?:(?:#|no\.?|number)[ \t]*)?"
    + _COUNT
    + r"[ \t]*(?:/|of|out of)[ \t]*"
    + _COUNT
    + r"|\b\d+[ \t]*(?:/|of)[ \t]*\d+\b[^\n]{0,15}\b(?:attempt|retr|tries|try)"
    r"|\b(?:this is|on|for) (?:the|your) (?:last|final) (?:attempt|retry|try)\b"
    r"|\bfinal (?:attempt|retry|try)\b"
    r"|\b(?:attempts?|retries|tries) (?:left|remaining)\b|\bremaining (?:attempts|retries)\b"
    # in words: "second of three tries", "attempt two of three"
    r"|\b(?:first|second|third|fourth|fifth|one|two|three|four|five) (?:of|out of) "
    r"(?:two|three|four|five|six|\d+)\b"
)
_ERROR = lazy(
    r"\berrors?\b|\bstderr\b|\bstdout\b|\bstandard (?:error|output)\b|\bexit (?:code|status)\b"
    r"|\btraceback\b|\bfail(?:ed|ing)? (?:criteri(?:on|a)|checks?|tests?|with|because)\b"
    r"|\breason:|\boutput:|\bfailure:|\bverdict\b|\bassertion\w*\b|\bexception\b"
    r"|\bexit(?:ed)?[ \t]+(?:with[ \t]+)?(?:code[ \t]+|status[ \t]+)?\d+"
)
_MODEL = lazy(
    r"\bclaude-(?:instant|\d(?:[\w.-]*\w)?|(?:opus|sonnet|haiku)(?:-[\w.]*\w)?)"
    r"|\bgpt-?(?:3\.5|4(?:\.\d+)?|4o|5(?:\.\d+)?)(?:-[\w.]*\w)?\b"
    r"|\b(?:opus|sonnet|haiku)[- ]?\d(?:[.-]\d+)*\b"
    r"|\bgemini-\d(?:\.\d+)?(?:-[\w.]*\w)?|\bgemini[- ](?:\d(?:\.\d+)?[- ])?(?:pro|flash|ultra)\b"
    r"|\bo[134]-(?:mini|pro|preview)\b"
    r"|\b(?:llama|mistral|mixtral|qwen|deepseek|codestral)[- ]?\d(?:[\w.-]*\w)?"
    r"|(?:--model[ \t]*[ =]|\bmodel[ \t]*[:=])[ \t]*[\"'`]?(?:opus|sonnet|haiku)\b",
    re.I,
)
_SERVER_SOURCE = (
    r"\b(?:start|launch|spin up|boot|fire up|bring up|run|keep)[ \t]+"
    r"(?:(?:a|an|the|your|up|local|dev|development|web|http|https|api|backend|frontend|background|new|mock|test|long-running)"
    r"[ \t]+){0,3}(?:servers?|daemons?|watchers?)\b"
    r"|\b(?:npm|pnpm|yarn|bun)[ \t]+(?:run[ \t]+)?(?:start|dev|serve|watch)\b"
    r"|\bpython3?[ \t]+-m[ \t]+http\.server\b|\bflask[ \t]+run\b"
    r"|\b(?:uvicorn|gunicorn|hypercorn)[ \t]+\S"
    r"|\brails[ \t]+(?:s|server)\b|\bdocker[- ]compose[ \t]+up\b{detached}|\bnohup\b"
    r"|\bmanage\.py[ \t]+runserver\b|\bnext[ \t]+dev\b|\bjekyll[ \t]+serve\b|\bhugo[ \t]+server\b"
)
_SERVER = lazy(_SERVER_SOURCE.replace("{detached}", r"(?![^\n]*[ \t]-d\b)"))
# The same pattern without its only look-ahead, for the flattened text: it
# matches wherever _SERVER matches in some sentence, so a prompt where it finds
# nothing (or only prohibitions) needs no sentence splitting.
_SERVER_ANYWHERE = lazy(_SERVER_SOURCE.replace("{detached}", ""))


def _path(group: str) -> str:
    """A path outside the working directory (home, parent, absolute), captured as ``group``."""
    rest = r"[^\s`'\"]*"
    return rf"[`'\"]?(?P<{group}>~/{rest}|\$home\b{rest}|\.\./{rest}|/[a-z0-9_.-]{rest})"


_WRITE_OUT = lazy(
    r"\b(?:write|save|create|put|copy|move|output|store|dump|place|generate|append|log|update"
    r"|edit|modify|change|overwrite|bump|patch)\w*\b"
    r"[^.\n]{0,60}?\b(?:to|into|in|under|at|inside)[ \t]+"
    + _path("target")
    + r"|\b(?:edit|modify|overwrite|change|update|delete|remove|create|write)[ \t]+"
    + _path("object")
)
_WORKDIR_LINE = lazy(
    r"working[ -]dir(?:ectory)?[^:\n]{0,20}:[ \t]*[`'\"]?(?P<dir>[^\s`'\"]+)", re.I
)


def _check_attempt(region: Region) -> Iterator[Hit]:
    if _ATTEMPT.search(region.lower) is None:
        yield region.anchor()


def _check_error(region: Region) -> Iterator[Hit]:
    if _ERROR.search(region.lower) is None:
        yield region.anchor()


_MODEL_WORDS = (
    "claude-",
    "gpt",
    "opus",
    "sonnet",
    "haiku",
    "gemini",
    "o1-",
    "o3-",
    "o4-",
    "llama",
    "mistral",
    "mixtral",
    "qwen",
    "deepseek",
    "codestral",
)
_SERVER_WORDS = (
    "server",
    "daemon",
    "watcher",
    "npm",
    "yarn",
    "bun",
    "flask",
    "corn",
    "rails",
    "compose",
    "nohup",
    "next",
    "jekyll",
    "hugo",
)
_OUTSIDE_WORDS = ("~/", "$home", "../", " /", "`/", "'/", '"/')


def _check_model(region: Region) -> Iterator[Hit]:
    if not region.mentions(_MODEL_WORDS):
        return
    for match in _MODEL.finditer(region.text):
        yield region.at(
            match.start(),
            f"hardcoded model name '{match.group(0)}'; drop it and let the harness use the "
            "model it has",
        )


_QUESTION = lazy(r"\bwhether\b|\?\s*$")


def _server_starts(flat: str, word: int) -> list[int]:
    """Where a _SERVER match holding the key word at ``word`` can start.

    Every alternative starts a word (``\\b`` then a letter), at most five
    blank-separated tokens before the key word: "spin up a local dev server",
    "python3 -m http.server". Blank runs are walked whole (``[ \\t]+`` has no
    bound), but at most _SERVER_REACH other characters: no alternative holds
    more before its key word ("bring up" and three "long-running"s hold 43),
    so a longer walk only costs time. Unbounded, every "server" in a 1 MB
    token of "serverserver..." rescanned the token from its start.

    "next" (in "context", "next step": a third of the corpus's key words) is
    only ever part of ``next dev``, which starts at the word itself; any other
    match holding it also holds "server" or another key word whose own
    starts cover it. So one anchored try replaces a five-token window.
    """
    if flat.startswith("next", word):
        return [word]
    at = word
    floor = word - _SERVER_REACH  # moves back with each blank run: blanks are free
    for _ in range(6):  # the key word's own token, then the five before it
        while at > 0 and at > floor and flat[at - 1] not in " \t":
            at -= 1
        if at <= floor:
            break
        gap = at
        while at > 0 and flat[at - 1] in " \t":
            at -= 1
        floor -= gap - at
    return [match.start() for match in _WORD_START.finditer(flat, max(at, 0), word + 1)]


# Characters other than blanks a _SERVER match can hold before its key word.
_SERVER_REACH = 64


_WORD_START = lazy(r"(?<!\w)\w")


def _check_server(region: Region) -> Iterator[Hit]:
    # Every worker prompt says "do not start servers": settle that without sentences.
    if not region.mentions(_SERVER_WORDS) or all_negated(
        region, _SERVER_ANYWHERE, _SERVER_WORDS, _server_starts
    ):
        return
    for sentence, match in matches(region, _SERVER, _SERVER_WORDS, anchored=True):
        if sentence.negated_at(match.start()) or _QUESTION.search(sentence.text):
            continue  # forbidden, or asked about ("does it start a server?"), not asked for
        yield region.at(sentence.start + match.start())


def _inside(path: str, workdir: str | None) -> bool:
    if workdir is None or not workdir.startswith("/") or not path.startswith("/"):
        return False
    from pathlib import PurePosixPath  # only prompts naming absolute paths get here

    try:
        PurePosixPath(path.rstrip(".,;:)")).relative_to(PurePosixPath(workdir))
    except ValueError:
        return False
    return True


def _mentions_outside(lower: str) -> bool:
    """``region.mentions(_OUTSIDE_WORDS)`` with one scan for "/" instead of seven.

    All but "$home" end in a slash, and prompts hold few slashes; seven
    substring scans of every prompt were a visible share of a large run.
    """
    if "$home" in lower:
        return True
    slash = lower.find("/", 1)
    while slash >= 0:
        before = lower[slash - 1]
        if before in "~ `'\"" or (before == "." and lower[slash - 2 : slash] == ".."):
            return True
        slash = lower.find("/", slash + 1)
    return False


def _check_outside(region: Region) -> Iterator[Hit]:
    if not _mentions_outside(region.lower):
        return
    found = _WORKDIR_LINE.search(region.text)
    workdir = found.group("dir").rstrip(".,;:)") if found else None
    for sentence in region.sentences:
        if "/" not in sentence.text and "$home" not in sentence.text:
            continue
        for match in _WRITE_OUT.finditer(sentence.text):
            if sentence.negated_at(match.start()):
                continue
            group = "target" if match.group("target") else "object"
            offset = sentence.start + match.start(group)
            original = region.text[offset : offset + len(match.group(group))].rstrip(".,;:)")
            if original in ("/",) or _inside(original, workdir):
                continue
            yield region.at(
                offset,
                f"this asks the worker to write to '{original}', outside its working directory; "
                "write inside the working directory and let the orchestrator collect the output",
            )
            break


def _check_agent_model(doc: Document) -> Iterator[Hit]:
    from dispatch_kit.lint import frontmatter
    from dispatch_kit.lint.rules.skills_agents import parsed

    data, _ = parsed(doc)
    model = (data or {}).get("model")
    if model is None or str(model).strip().lower() == "inherit":
        return
    line = frontmatter.key_lines(doc.frontmatter).get("model", 1) if doc.frontmatter else 1
    yield (
        line,
        1,
        (
            f"agent pins model '{model}'; omit model (or write inherit) so the agent runs on the "
            "model the session has"
        ),
    )


_RETRY_HEAD = "[Retry] Task `tokenizer`: accept tabs as whitespace\n\n"

NO_ATTEMPT = Rule(
    code="DK601",
    name="retry-without-attempt",
    severity="error",
    message="say which attempt this is (attempt 2/3) so the worker knows how much retry budget "
    "is left",
    rationale="""\
A retried worker starts from nothing. Telling it which attempt this is, out of
how many, lets it judge how much to change and tells a reader of the
transcript where the task stands; the last attempt is the one to play safe.
An attempt number alone ("attempt 2") leaves the budget out; "attempt 2/3",
"attempt 2 of 3", "retry {{ n }} of {{ max }}" or "the last attempt" say
both.""",
    applies_to="[Retry] prompts and templates",
    bad=Example(
        _RETRY_HEAD + "## Previous attempt failed\nError: `pytest -q` exited 1: "
        "test_tab_is_space failed with AssertionError.\n\nFix this specific issue.\n"
    ),
    good=Example(
        _RETRY_HEAD + "## Previous attempt failed (attempt 2/3)\nError: `pytest -q` exited 1: "
        "test_tab_is_space failed with AssertionError.\n\nFix this specific issue.\n"
    ),
    kinds=RETRY,
    check=_check_attempt,
)

NO_ERROR = Rule(
    code="DK602",
    name="retry-without-error",
    severity="error",
    message="include what failed: the failing criterion, its exit code and output",
    rationale="""\
"Try again" without the evidence makes the next attempt repeat the last one.
The retry carries the failing exit criterion, its exit code and the tail of
its output, so the worker fixes that specific issue instead of starting
over.""",
    applies_to="[Retry] prompts and templates",
    bad=Example(
        _RETRY_HEAD + "## Previous attempt failed (attempt 2/3)\n\nPlease have another go.\n"
    ),
    good=Example(
        _RETRY_HEAD + "## Previous attempt failed (attempt 2/3)\nError: `pytest -q` exited 1: "
        "test_tab_is_space failed with AssertionError.\n\nFix this specific issue.\n"
    ),
    kinds=RETRY,
    check=_check_error,
)

_WORK = """[Execute] Task `docs`: document the CLI flags

Working directory: docs

Write cli.md with one section per flag of `tool --help`.

## Exit criteria
1. `grep -q '^## --verbose' cli.md`

"""

HARDCODED_MODEL = Rule(
    code="DK603",
    name="hardcoded-model",
    severity="warning",
    message="drop the model name; let the harness use the model it has",
    rationale="""\
Which models exist depends on the harness, the account and the month. A
prompt or template that names one breaks or silently degrades elsewhere, and
goes stale when the model is retired. Dispatch with the default model and
choose capability through the task, not a name.""",
    applies_to="every dispatch prompt",
    bad=Example(_WORK.replace("Write cli.md", "Use claude-3-5-sonnet. Write cli.md") + BLOCK),
    good=Example(_WORK + BLOCK),
    kinds=PROMPT_KINDS,
    check=_check_model,
)

STARTS_SERVER = Rule(
    code="DK604",
    name="starts-server",
    severity="warning",
    message="do not ask a worker to start a server or other long-running process; every "
    "command must finish on its own",
    rationale="""\
A task that starts a dev server, a watcher or a daemon never ends: the
worker waits on it, hits its timeout, or leaves a process behind that holds a
port for the next worker. Exit criteria run one-shot commands; tests that need
a server start and stop it themselves.""",
    applies_to="every dispatch prompt",
    bad=Example(
        _WORK.replace("Write cli.md", "Start the dev server with `npm run dev`, then write cli.md")
        + BLOCK
    ),
    good=Example(_WORK + "Do not start servers or watchers.\n\n" + BLOCK),
    kinds=PROMPT_KINDS,
    check=_check_server,
)

WRITES_OUTSIDE = Rule(
    code="DK605",
    name="writes-outside-workdir",
    severity="warning",
    message="keep the worker's writes inside its working directory",
    rationale="""\
Each worker owns its working directory; the exit criteria run there and the
orchestrator checks only there. A write to a system folder such as /srv, to a home folder or through
../ lands where no criterion looks, can overwrite another worker's files and
survives a retry that should have started clean.""",
    applies_to="every dispatch prompt",
    bad=Example(
        _WORK.replace(
            "Write cli.md", "Write cli.md and save a copy to /srv/share/cli.md.\n\nWrite it"
        )
        + BLOCK
    ),
    good=Example(_WORK + BLOCK),
    kinds=PROMPT_KINDS,
    check=_check_outside,
)

_AGENT = """---
name: changelog-editor
description: Edits CHANGELOG.md. Use for changelog entries.
tools: Read, Edit, Grep
model: inherit
---

You edit CHANGELOG.md only.
"""

PINNED_AGENT_MODEL = Rule(
    code="DK606",
    name="pinned-agent-model",
    severity="warning",
    message="omit the agent's model (or write inherit) so it runs on the session's model",
    rationale="""\
An agent definition that pins a model is a hardcoded model name in a file
every dispatch to that agent reuses: it fails where that model is not
offered and keeps using a retired one long after the session moved on.
Without a model field (or with inherit) the agent runs on whatever the
session has.""",
    applies_to="agents/*.md",
    bad=Example(
        _AGENT.replace("model: inherit", "model: claude-3-opus-20240229"),
        path="agents/changelog-editor.md",
    ),
    good=Example(_AGENT, path="agents/changelog-editor.md"),
    scope="file",
    kinds=frozenset({"agent"}),
    check=_check_agent_model,
)

RULES = (NO_ATTEMPT, NO_ERROR, HARDCODED_MODEL, STARTS_SERVER, WRITES_OUTSIDE, PINNED_AGENT_MODEL)
