"""DK4xx: Bash work goes only to agents that have Bash, and hand-overs are stable artifacts.

Edit-only domain agents cannot commit, push or run anything. A dispatch that
asks one to "edit X and commit" fails silently: the agent edits, then skips
the commit or pretends, and the orchestrator inherits the work. The composite
Bash-chain shapes avoid that: send the whole task to a Bash-capable agent with
the domain context loaded, or chain the Bash agent after the domain agent's
commit. Handing a SHA back to the orchestrator to commit, and running two
agents in parallel where one reads what the other writes, are the failure
modes.
"""

from __future__ import annotations

from collections.abc import Iterator

from dispatch_kit.lint.document import Region
from dispatch_kit.lint.kinds import PROMPT_KINDS
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.prose import find_asked, matches
from dispatch_kit.lint.registry import Example, Hit, Rule
from dispatch_kit.lint.rules._shared import BASH_WORDS, BASH_WORK, BLOCK

# Who would commit in a hand-back: the orchestrating side of the dispatch.
_MAIN_WORDS = (
    r"main(?:[ \t]+(?:thread|agent|session))?|orchestrator|lead(?:[ \t]+agent)?"
    r"|parent(?:[ \t]+agent)?|caller"
)
_MAIN = rf"(?:{_MAIN_WORDS})"
_HAND_BACK = lazy(
    r"\b(?:so|and|then)[ \t]+(?:that[ \t]+)?(?:the[ \t]+)?(?:" + _MAIN_WORDS + r"|i|we)[ \t]+"
    r"(?:can|could|will|may|should|must)[ \t]+(?:then[ \t]+)?"
    r"(?:do[ \t]+the[ \t]+|make[ \t]+the[ \t]+)?commit\b"
    r"|\bfor[ \t]+(?:the[ \t]+)?(?:" + _MAIN_WORDS + r"|me|us)[ \t]+to[ \t]+commit\b"
    r"|\b(?:main[ \t]+(?:thread|agent|session)|orchestrator|lead[ \t]+agent|parent[ \t]+agent)"
    r"[ \t]+(?:will[ \t]+|can[ \t]+|should[ \t]+|must[ \t]+)?"
    r"(?:commits?\b|do(?:es)?[ \t]+the[ \t]+commit|make[ \t]+the[ \t]+commit)"
    r"|\b(?:hand|pass|send|give|return|report|tell)\w*\b[^.]{0,60}?\b(?:sha|hash|diff|patch)\b"
    r"[^.]{0,60}?\b" + _MAIN + r"\b[^.]{0,30}?\bcommit"
    r"|\b(?:hand|pass|send|give|return|report|tell)\w*\b[^.]{0,30}?\b"
    + _MAIN
    + r"\b[^.]{0,40}?\b(?:sha|hash|diff|patch)\b[^.]{0,40}?\bcommit"
)
_PARALLEL = lazy(
    r"\b(?:in parallel|simultaneously|at the same time|concurrently|in the same (?:turn|message))\b"
)
# "B runs the migration that A writes": a consumer verb, its object, then a
# relative clause whose verb produces that object.
_READS_WRITTEN = lazy(
    r"\b(?:reads?|uses?|runs?|loads?|consumes?|builds?|rebuilds?|deploys?|tests?|checks?|"
    r"depends? on|picks? up|starts? from|works? from)\b[^.]{0,60}?\b(?:what|that|which|the|from)\b"
    r"[^.]{0,60}?\b(?:writes?|wrote|written|produces?|produced|creates?|created|edits?|edited|"
    r"generates?|generated|commits?|committed)\b"
)


def _check_bashless(region: Region) -> Iterator[Hit]:
    if not region.agent:
        return
    from dispatch_kit.lint.agents import find_agent_near  # pathlib; most prompts name no agent

    info = find_agent_near(region.agent, region.doc)
    if info is None or info.has_bash:
        return
    tools = ", ".join(info.tools or ())
    for offset, asked in find_asked(region, BASH_WORK, BASH_WORDS, anchored=True):
        yield region.at(
            offset,
            f"agent '{region.agent}' has no Bash (tools: {tools}) but is asked to "
            f"'{asked.strip()}'; dispatch a Bash-capable agent with the domain context loaded, "
            "or chain one after this agent's edit",
        )


def _says_commit(lower: str) -> bool:
    """Whether "commit" starts a word somewhere (every _HAND_BACK match has one).

    "Leave changes uncommitted" is in every worker prompt; without this test
    it made each of them compile the rule's large pattern and search around it.
    """
    found = lower.find("commit")
    while found >= 0:
        before = lower[found - 1] if found else " "
        if not (before.isalnum() or before == "_"):
            return True
        found = lower.find("commit", found + 1)
    return False


def _check_hand_back(region: Region) -> Iterator[Hit]:
    if not _says_commit(region.lower):
        return
    for offset, _ in find_asked(region, _HAND_BACK, ("commit",), reach=(260, 12)):
        yield region.at(offset)


_PARALLEL_WORDS = (
    "parallel",
    "simultaneous",
    "same time",
    "concurrent",
    "same turn",
    "same message",
)


def _check_parallel(region: Region) -> Iterator[Hit]:
    if not region.mentions(_PARALLEL_WORDS):
        return  # matches() would find none of the words either: scan for them once
    sentences = region.sentences
    for sentence, match in matches(region, _PARALLEL, _PARALLEL_WORDS):
        if sentence.negated_at(match.start()):
            continue
        index = region.sentence_index(sentence)
        for other in sentences[index : index + 2]:
            found = _READS_WRITTEN.search(other.text)
            if found and not other.negated_at(found.start()):
                yield region.at(sentence.start + match.start())
                break


_EDITOR_AGENT = """---
name: domain-editor
description: Edits configuration files. Use for edit-only changes.
tools: Read, Edit, Glob, Grep
---

You edit configuration files and nothing else.
"""
_DIRECTIVE = "<!-- dispatch-kit: agent=domain-editor -->\n"
_EDIT = """[Execute] Task `retries`: raise the payment retry limit to 5

Working directory: config

Set `max_retries: 5` under `payments:` in payments.yaml.
"""
_EDIT_CHECK = """
## Exit criteria
1. `grep -q 'max_retries: 5' payments.yaml`

"""

BASHLESS = Rule(
    code="DK401",
    name="bash-task-for-bashless-agent",
    severity="error",
    message="this agent has no Bash: send commit/push/run work to a Bash-capable agent, or "
    "chain one after the edit",
    rationale="""\
An edit-only agent asked to commit, push or run something cannot: it edits,
then fails the step or skips it silently, and the orchestrator redoes it
in the main thread. Decide the chain shape before dispatching: a thin Bash
wrapper (one dry run, one commit, one push) goes to a Bash-capable agent with
the domain context loaded; separate Bash work is chained after the domain
agent's commit. The target agent is named with `agent=NAME` in a
`dispatch-kit:` directive (the pre-dispatch hook uses the dispatch's
subagent_type) and its `tools:` are read from agents/NAME.md.""",
    applies_to="dispatch prompts whose target agent is known and has no Bash",
    bad=Example(
        _DIRECTIVE + _EDIT + "Then commit the change and push it.\n" + _EDIT_CHECK + BLOCK,
        files={"agents/domain-editor.md": _EDITOR_AGENT},
    ),
    good=Example(
        _DIRECTIVE + _EDIT + "Leave the change uncommitted.\n" + _EDIT_CHECK + BLOCK,
        files={"agents/domain-editor.md": _EDITOR_AGENT},
    ),
    kinds=PROMPT_KINDS,
    check=_check_bashless,
)

HAND_BACK = Rule(
    code="DK402",
    name="sha-hand-back",
    severity="error",
    message="do not hand a SHA or diff back for the orchestrator to commit; the agent that "
    "changes the files commits them",
    rationale="""\
"Tell me the SHA so I can commit" pushes Bash work back into the main thread,
whose budget is for orchestration. The agent that makes a change lands it; if
it cannot run Bash, the dispatch had the wrong shape (see DK401).""",
    applies_to="dispatch prompts",
    bad=Example(
        _EDIT
        + "\nReport the diff back to the main thread so the orchestrator can commit it.\n"
        + _EDIT_CHECK
        + BLOCK
    ),
    good=Example(
        _EDIT + "\nCommit the change yourself and report the commit SHA.\n" + _EDIT_CHECK + BLOCK
    ),
    kinds=PROMPT_KINDS,
    check=_check_hand_back,
)

PARALLEL = Rule(
    code="DK403",
    name="parallel-read-after-write",
    severity="warning",
    message="chain these dispatches: the reader must start after the writer's file or commit "
    "exists, not in parallel",
    rationale="""\
Two agents dispatched in the same turn run concurrently: the one that reads
what the other writes may start before that file exists and work from stale
or missing input. Parallel dispatch is for independent work; a dependency is
a chain whose input is a stable artifact (a committed SHA, a written file).""",
    applies_to="dispatch prompts",
    bad=Example(
        """[Plan] Ship the new retry limit.

Dispatch domain-editor and bash-operator in parallel; bash-operator runs the migration that
domain-editor writes.

"""
        + BLOCK
    ),
    good=Example(
        """[Plan] Ship the new retry limit.

Dispatch domain-editor first. When it has committed, dispatch bash-operator with that commit's
SHA as its input.

"""
        + BLOCK
    ),
    kinds=PROMPT_KINDS,
    check=_check_parallel,
)

RULES = (BASHLESS, HAND_BACK, PARALLEL)
