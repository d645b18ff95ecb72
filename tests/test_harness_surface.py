"""Every tool, parameter, hook event and frontmatter field the pack names exists in the pinned CLI.

A skill that tells the orchestrator to pass ``timeout`` to the Agent tool, or
an agent file that lists Grep, fails in a way the model cannot see: the
parameter is rejected or the tool is silently missing. So the pack is held to
what the pinned Claude Code really offers:

* tool names and their parameters come from the CLI's own ``sdk-tools.d.ts``,
  parsed here (not from a list someone typed);
* hook events, frontmatter fields and which tools the main loop and a subagent
  are offered come from ``dispatch_kit.harness.claude_code``, which is checked
  against the hook payloads captured in a real session and against the strings
  in the pinned binary.

What the scan reads in skills, references, agents and templates (Markdown code
spans only, so prose stays free): call forms such as ``Agent{name: ...}``,
spans that are a lone identifier (``run_in_background``, ``TaskStop``,
``maxTurns``, ``SubagentStop``), ``key: value`` spans on a line that names a
tool, and agent frontmatter. A tool the CLI defers must be named together with
how to load it (ToolSearch), and no file may send a model to a tool it is not
offered (Glob, Grep) or one the CLI deprecated (TaskOutput).
"""

from __future__ import annotations

import json
import mmap
import os
import re
import shutil
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from dispatch_kit.harness import claude_code as cc

PACKAGE = ROOT / "tools" / "node_modules" / "@anthropic-ai" / "claude-code"
SDK_TYPES = PACKAGE / "sdk-tools.d.ts"
FIXTURES = ROOT / "tests" / "fixtures" / "harness-events"
SHARED_EVENTS = ROOT.parent / "shared" / "harness-events"
SOURCES = ("skills/**/*.md", "agents/*.md", "templates/**/*.j2")

# Tool names of other harnesses that the portable text may name beside Claude Code's.
OTHER_HARNESSES = frozenset(
    {"sessions_spawn", "sessions_yield", "runTimeoutSeconds", "spawn_agent", "invoke_agent"}
)


def need(path: Path) -> Path:
    """A file of the pinned CLI: skipped locally when missing, a failure under CI."""
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path.relative_to(ROOT)} is missing; `make test` installs the pinned CLI")
    pytest.skip(f"{path.relative_to(ROOT)} not installed (run `make test` to set up)")


# --- sdk-tools.d.ts ---------------------------------------------------------------

_INTERFACE = re.compile(r"^export interface (\w+) \{(\}$|.*?^\})", re.M | re.S)
_PROPERTY = re.compile(r'^  (?:"([^"]+)"|(\w+))\??: ', re.M)


def parse_sdk_types(text: str) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """(tool -> input parameters, every property name in the file).

    Input interfaces are named ``<Tool>Input`` except for the file tools, whose
    names :data:`cc.SDK_INTERFACE_TOOL_NAMES` maps. Only top-level properties
    (two-space indent) are parameters; nested object fields are not.
    """
    tools: dict[str, frozenset[str]] = {}
    for name, body in _INTERFACE.findall(text):
        if not name.endswith("Input"):
            continue
        tool = cc.SDK_INTERFACE_TOOL_NAMES.get(name, name[: -len("Input")])
        tools[tool] = frozenset(a or b for a, b in _PROPERTY.findall(body))
    properties = frozenset(m for m in re.findall(r"^\s+\"?(\w+)\"?\??: ", text, re.M))
    return tools, properties


@cache
def sdk() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    return parse_sdk_types(need(SDK_TYPES).read_text(encoding="utf-8"))


def all_tools() -> dict[str, frozenset[str]]:
    return sdk()[0] | cc.TOOLS_OUTSIDE_SDK_TYPES


# --- the scan ---------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_CALL = re.compile(r"^([A-Z][A-Za-z]+)(?:\(\{|\{)(.*)\}\)?$", re.S)
_KWCALL = re.compile(r"^([A-Z][A-Za-z]+)\((\w+)=")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_KEYVALUE = re.compile(r"^([a-z][A-Za-z_]*): \S")
_NEGATION = re.compile(r"\b(?:not|neither|nor|no)\b", re.I)
_PROSE_PARAM = re.compile(
    r"\b([A-Z][A-Za-z]+) tool's `(\w+)`|`(\w+)` (?:parameter|argument|option) (?:of|on|to) "
    r"(?:the |an? )?`?([A-Z][A-Za-z]+)\b"
)


def _top_level_keys(args: str) -> list[str]:
    """Keys of a JS-like object literal's outer level: ``a: 1, b: {c: 2}`` gives a, b."""
    flat, depth, quote = [], 0, ""
    for ch in args:
        if quote:
            quote = "" if ch == quote else quote
            continue
        if ch in "\"'":
            quote = ch
            flat.append(" ")
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif depth == 0:
            flat.append(ch)
    return re.findall(r"(?:^|,)\s*([A-Za-z_][\w-]*)\s*:", "".join(flat))


def spans(text: str) -> list[tuple[int, str]]:
    """(line, code) for inline spans and for each line of fenced blocks."""
    found = []
    for match in _FENCE.finditer(text):
        first = text.count("\n", 0, match.start()) + 1
        for offset, line in enumerate(match.group(0).splitlines()[1:-1], start=1):
            stripped = line.strip()
            if _CALL.match(stripped):
                found.append((first + offset, stripped))
    masked = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for match in _SPAN.finditer(masked):
        found.append((masked.count("\n", 0, match.start()) + 1, match.group(1).strip()))
    return found


@cache
def plan_keys() -> frozenset[str]:
    """Every property name in dispatch-kit's plan schema: the pack's own vocabulary."""
    schema = (ROOT / "scripts" / "dispatch_kit" / "schemas" / "plan.schema.json").read_text()
    return frozenset(re.findall(r'"([a-z_]+)":\s*\{', schema))


def _known_identifier(word: str) -> bool:
    tools, properties = sdk()
    return (
        word in plan_keys()
        or word in all_tools()
        or word in cc.HOOK_EVENTS
        or word in properties
        or word in cc.AGENT_FIELDS
        or any(word in fields for fields in cc.HOOK_PAYLOADS.values())
        or word in OTHER_HARNESSES
    )


def _looks_like_harness_name(word: str) -> bool:
    """CamelCase (``TaskStop``), lowerCamel (``maxTurns``) or a lone tool name (``Agent``)."""
    return bool(
        re.fullmatch(r"[A-Z][a-z]+(?:[A-Z][a-z]+)+", word)
        or re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)+", word)
        or word in sdk()[0]
    )


def check_call(tool: str, keys: list[str], args: str = "") -> list[str]:
    tools = all_tools()
    if tool not in tools:
        return [f"`{tool}` is no tool of Claude Code {cc.PINNED_VERSION}"]
    problems = [
        f"`{tool}` has no parameter `{key}` (it takes {', '.join(sorted(tools[tool]))})"
        for key in keys
        if key not in tools[tool]
    ]
    if tool == cc.LOAD_DEFERRED_TOOL:
        for name in re.findall(r"select:([A-Za-z,]+)", args):
            problems += [
                f"ToolSearch selects `{n}`, which is not a deferred tool"
                for n in name.split(",")
                if n not in cc.DEFERRED_TOOLS
            ]
    return problems


def scan(rel: str, text: str) -> list[str]:
    """Problems in one pack file, each as ``path:line: message``."""
    problems: list[str] = []
    tool_word = re.compile(r"\b(?:" + "|".join(sorted(all_tools())) + r")\b")
    lines = text.splitlines()
    for line, code in spans(text):
        found: list[str] = []
        if call := _CALL.match(code):
            found = check_call(call[1], _top_level_keys(call[2]), call[2])
        elif kw := _KWCALL.match(code):
            found = check_call(kw[1], [kw[2]])
        elif _IDENT.match(code):
            if code in cc.DEPRECATED_TOOLS:
                found = [f"`{code}` is deprecated in the pinned CLI; do not send a model to it"]
            elif code in cc.NOT_OFFERED:
                found = [f"`{code}` is not offered to the main loop or a subagent"]
            elif _looks_like_harness_name(code) or "_" in code and tool_word.search(
                lines[line - 1]
            ):
                if not _known_identifier(code):
                    found = [f"`{code}` is no tool, parameter, hook event or field of the CLI"]
        elif (kv := _KEYVALUE.match(code)) and tool_word.search(lines[line - 1]):
            if not _known_identifier(kv[1]):
                found = [f"`{kv[1]}` is no parameter or field of the CLI"]
        problems += [f"{rel}:{line}: {message}" for message in found]
    for match in _PROSE_PARAM.finditer(text):
        tool, param = (match[1], match[2]) if match[1] else (match[4], match[3])
        line = text.count("\n", 0, match.start()) + 1
        problems += [f"{rel}:{line}: {m}" for m in check_call(tool, [param])]
    for tool in sorted(cc.NOT_OFFERED):
        for match in re.finditer(rf"(?<![`\w-]){tool}\b(?!`)", text):
            line = text.count("\n", 0, match.start()) + 1
            if not _NEGATION.search(lines[line - 1]):  # "Glob is not offered" is true
                problems.append(f"{rel}:{line}: {tool} is not offered in the pinned CLI")
    named = sorted(t for t in cc.DEFERRED_TOOLS if re.search(rf"\b{t}\b", text))
    if named and cc.LOAD_DEFERRED_TOOL not in text:
        problems.append(
            f"{rel}: names deferred tool(s) {', '.join(named)} without saying how to load them "
            f"({cc.load_instruction(named[0])})"
        )
    if rel.startswith("agents/"):
        problems += [f"{rel}: {m}" for m in agent_frontmatter_problems(text)]
    return problems


def agent_frontmatter_problems(text: str) -> list[str]:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    if not match:
        return ["no frontmatter"]
    data = yaml.safe_load(match.group(1)) or {}
    problems = [
        f"frontmatter field `{key}` is not one a plugin agent may use"
        for key in data
        if key not in cc.PLUGIN_AGENT_FIELDS
    ]
    tools = data.get("tools", "")
    names = [t.strip() for t in tools.split(",")] if isinstance(tools, str) else list(tools)
    problems += [
        f"tools: lists `{name}`, which a subagent is not offered "
        f"(offered: {', '.join(sorted(cc.SUBAGENT_TOOLS))})"
        for name in names
        if name and name not in cc.SUBAGENT_TOOLS
    ]
    return problems


def pack_files() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for pattern in SOURCES
        for path in sorted(ROOT.glob(pattern))
    }


# --- tests: the pinned CLI and the vendored surface -------------------------------


def test_the_pinned_package_is_the_version_the_surface_describes() -> None:
    package = json.loads(need(PACKAGE / "package.json").read_text())
    assert package["version"] == cc.PINNED_VERSION, (
        f"the pin moved to {package['version']}: re-read sdk-tools.d.ts, re-run a scripted-model "
        "session, update dispatch_kit/harness/claude_code.py, then this test shows stale text"
    )


def test_sdk_types_parse_into_the_facts_the_skills_rely_on() -> None:
    tools, _ = sdk()
    agent = tools["Agent"]
    assert {"description", "prompt", "subagent_type", "name", "run_in_background",
            "isolation"} <= agent
    assert "timeout" not in agent, "Agent gained a timeout: the skills' TaskStop advice is stale"
    assert tools["TaskStop"] >= {"task_id"}
    assert tools["CronCreate"] >= {"cron", "prompt", "recurring", "durable"}
    assert tools["Monitor"] >= {"description", "timeout_ms", "command"}
    assert tools["Read"] >= {"file_path", "offset", "limit"}
    text = SDK_TYPES.read_text(encoding="utf-8")
    assert "Agents run in the background by default" in text
    assert "named background agents are also accepted by agent ID or name" in text


def test_every_tool_the_session_offered_exists() -> None:
    tools, _ = sdk()
    missing = sorted(cc.offered_tools() - set(tools) - set(cc.TOOLS_OUTSIDE_SDK_TYPES))
    assert not missing, f"offered in the session but in no schema: {missing}"
    assert cc.NOT_OFFERED <= set(tools), "the d.ts describes Glob and Grep; were they removed?"
    assert not cc.NOT_OFFERED & cc.offered_tools()
    assert cc.LOAD_DEFERRED_TOOL in cc.MAIN_LOOP_TOOLS
    assert cc.LOAD_DEFERRED_TOOL not in cc.PLUGIN_SUBAGENT_OBSERVED


def fixture_events() -> dict[str, set[str]]:
    fields: dict[str, set[str]] = {}
    for path in sorted(FIXTURES.glob("claude-code-*.json")):
        payload = json.loads(path.read_text())
        fields.setdefault(payload["hook_event_name"], set()).update(payload)
    return fields


def test_hook_payloads_match_the_captured_events() -> None:
    fields = fixture_events()
    assert fields, f"no captured events in {FIXTURES.relative_to(ROOT)}"
    assert {event: frozenset(f) for event, f in fields.items()} == cc.HOOK_PAYLOADS
    post = json.loads((FIXTURES / "claude-code-2.1.328-PostToolUse-Agent.json").read_text())
    response = post["tool_response"]
    assert response["status"] == "async_launched"
    assert cc.AGENT_ASYNC_RESULT_FIELDS - {"isAsync", "canReadOutputFile"} <= set(response)
    assert set(post["tool_input"]) <= sdk()[0]["Agent"]
    workflow = json.loads(
        (FIXTURES / "claude-code-2.1.330-workflow-SubagentStart.json").read_text()
    )
    assert workflow["agent_type"] == cc.WORKFLOW_AGENT_TYPE


def test_vendored_events_equal_the_shared_captures() -> None:
    """CI keeps the captured originals beside the clone; the fixtures must not drift from them."""
    if not SHARED_EVENTS.is_dir():
        pytest.skip("no ../shared/harness-events beside this clone; the fixtures stand alone")
    for path in sorted(FIXTURES.glob("*.json")):
        original = SHARED_EVENTS / path.name
        assert original.is_file(), f"{path.name} is not among the shared captures"
        assert json.loads(path.read_text()) == json.loads(original.read_text()), path.name


@pytest.fixture(scope="module")
def binary() -> mmap.mmap:
    claude = shutil.which("claude")
    path = Path(os.path.realpath(claude)) if claude else PACKAGE / "bin" / "claude.exe"
    with need(path).open("rb") as handle:
        yield mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def test_vendored_names_are_in_the_pinned_binary(binary: mmap.mmap) -> None:
    """Hook events, agent fields and the tools the d.ts lacks are strings the CLI holds."""
    wanted = (
        cc.HOOK_EVENTS
        | cc.AGENT_FIELDS - {"color"}
        | set(cc.TOOLS_OUTSIDE_SDK_TYPES)
        | {cc.MAX_CONCURRENT_SUBAGENTS_ENV, cc.PRINT_BG_WAIT_ENV}
    )
    missing = sorted(name for name in wanted if binary.find(f'"{name}"'.encode()) < 0
                     and binary.find(f"{name}:".encode()) < 0)
    assert not missing, f"not in the pinned binary: {missing}"
    assert binary.find(f"SGt={cc.MAX_CONCURRENT_SUBAGENTS_DEFAULT};".encode()) >= 0 or (
        binary.find(b"CLAUDE_CODE_MAX_CONCURRENT_SUBAGENTS??") >= 0
    )
    assert binary.find(b"Do NOT ") >= 0 and binary.find(b"or tail this file") >= 0
    assert binary.find(b'Use "select:<tool_name>" for direct selection') >= 0


# --- tests: the pack against the surface ------------------------------------------


def test_the_pack_names_only_what_the_pinned_cli_has() -> None:
    files = pack_files()
    assert len(files) > 20, "the scan found too few files; is SOURCES stale?"
    problems = [p for rel, text in files.items() for p in scan(rel, text)]
    assert not problems, "\n".join(problems)


def test_the_scan_sees_the_calls_the_skills_prescribe() -> None:
    """If the call forms stopped matching, the test above would pass on anything."""
    text = (ROOT / "skills" / "workspace-dispatch" / "SKILL.md").read_text(encoding="utf-8")
    calls = [code for _, code in spans(text) if _CALL.match(code)]
    assert any(c.startswith("Agent{") and "run_in_background" in c for c in calls), calls
    assert any(c.startswith("TaskStop{") for c in calls), calls


@pytest.mark.parametrize(
    ("injected", "expected"),
    [
        ('Spawn it: `Agent{subagent_type: "dispatch-kit:dispatch-worker", timeout: 600}`.',
         "`Agent` has no parameter `timeout`"),
        ("Stop it with `TaskStop(agent=worker-counter)`.", "`TaskStop` has no parameter `agent`"),
        ("Pass the Agent tool's `deadline` too.", "`Agent` has no parameter `deadline`"),
        ("Read its progress with `TaskOutput`.", "`TaskOutput` is deprecated"),
        ("A hook on `SubagentFinish` records it.", "`SubagentFinish` is no tool"),
        ("Set `maxTurn` on the worker.", "`maxTurn` is no tool"),
        ("Find the file with Grep first.", "Grep is not offered"),
        ('Then `Spawn{prompt: "x"}`.', "`Spawn` is no tool"),
    ],
)
def test_the_scan_fails_on_a_made_up_name(tmp_path: Path, injected: str, expected: str) -> None:
    rel = "skills/workspace-dispatch/SKILL.md"
    copy = tmp_path / "SKILL.md"
    copy.write_text((ROOT / rel).read_text(encoding="utf-8") + "\n" + injected + "\n")
    problems = scan(rel, copy.read_text(encoding="utf-8"))
    assert any(expected in p for p in problems), problems


def test_a_deferred_tool_needs_its_loading_named(tmp_path: Path) -> None:
    text = "# Notes\n\nCancel a late worker with `TaskStop{task_id: \"worker-a\"}`.\n"
    (problem,) = scan("skills/x/references/y.md", text)
    assert "without saying how to load them" in problem and "select:TaskStop" in problem
    loaded = text + 'Load it: `ToolSearch{query: "select:TaskStop"}`.\n'
    assert scan("skills/x/references/y.md", loaded) == []
    bad = 'Load it: `ToolSearch{query: "select:Grep"}`.\n'
    assert any("not a deferred tool" in p for p in scan("skills/x/references/y.md", bad))


def test_an_agent_listing_a_tool_no_subagent_gets_fails() -> None:
    text = (ROOT / "agents" / "dispatch-worker.md").read_text(encoding="utf-8")
    broken = text.replace("tools: ", "tools: Grep, ", 1)
    assert broken != text
    assert any("`Grep`, which a subagent is not offered" in p
               for p in scan("agents/dispatch-worker.md", broken))
    broken = text.replace("tools: ", "permissionMode: acceptEdits\ntools: ", 1)
    assert any("`permissionMode`" in p for p in scan("agents/dispatch-worker.md", broken))
