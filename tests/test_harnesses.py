"""The pack in the other harnesses: each CLI from npm (pinned in tools/package.json), offline.

For each harness: install the pack the way its README line says, list the
pack's skills (and agents, where the harness has them) through the harness's
own command, and, where the harness has a pre-tool hook, run a real session
against a scripted model on 127.0.0.1 (:mod:`scripted_apis`) in which the
model dispatches a bad prompt (the pack's check must block it, and the model
sees why) and then a good one (it must go through and the subagent run). The
CLIs are the real ones; only the model is scripted, so these tests prove the
wiring, not what a real model would do.

Each CLI runs with a throwaway HOME, from a copy of the pack as a clone
carries it (no .venv, no node_modules), under a guard timeout that kills its
process group. Copilot CLI needs a GitHub login for a session: only its skill
install is tested, and its agents and hooks are claimed nowhere.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Result, require_tool
from scripted_apis import ScriptedAPI, Turn
from scripted_model import Reply, Rule, call, say
from test_claude_session import BAD_PROMPT, GOOD_PROMPT
from test_harness import copy_shipped

sys.path.insert(0, str(ROOT / "scripts"))
from dispatch_kit.harness import codex, copilot, gemini, opencode, qwen  # noqa: E402

GUARD_S = 90  # a guard only: each command here takes 0.5 to 8 seconds
SKILLS = sorted(p.parent.name for p in (ROOT / "skills").glob("*/SKILL.md"))
AGENTS = sorted(p.stem for p in (ROOT / "agents").glob("*.md"))
BLOCKED = "dispatch-kit blocked this dispatch"
GOOD_MARK = "Task `greeting`"
PINS = json.loads((ROOT / "tools" / "package.json").read_text(encoding="utf-8"))["devDependencies"]


def test_the_harness_modules_name_the_pinned_versions() -> None:
    for module in (codex, gemini, qwen, opencode, copilot):
        assert PINS[module.NPM_PACKAGE] == module.PINNED_VERSION, module.NAME


# ---------------------------------------------------------------------------
# Plumbing


@pytest.fixture(scope="session")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pack as a clone carries it: tracked and new files, links kept, no environments."""
    copy = tmp_path_factory.mktemp("clone") / "dispatch-kit"
    copy_shipped(copy)
    return copy


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A throwaway HOME, the pinned CLIs and this venv's python first, no proxy for 127.0.0.1."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CLAUDE_", "CODEX_", "GEMINI_", "GOOGLE_", "OPENAI_", "QWEN_",
                                  "OPENCODE_", "XDG_"))
           and key.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               NO_COLOR="1", CI=env.get("CI", ""))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                   str(ROOT / "tools" / "node_modules" / ".bin"), env["PATH"]])
    env.update(extra)
    return env


def run(command: list[str], *, env: dict[str, str], cwd: Path) -> Result:
    """Run one CLI command to its end, killing its whole process group past the guard."""
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{command[:3]} still ran after {GUARD_S} s:\n{err.decode()[-2000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return Result(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def tool(name: str) -> str:
    return require_tool(name)


# ---------------------------------------------------------------------------
# The script every session runs: a bad dispatch, then a good one, then the end


def main_turn(turn: Turn) -> bool:
    return turn.kind == "main" and GOOD_MARK not in turn.prompt_text


def worker_turn(turn: Turn) -> bool:
    return turn.kind == "main" and GOOD_MARK in turn.prompt_text


def dispatch_script(dispatch: object, worker: list[Reply] | None = None) -> list[Rule]:
    """Rules for: dispatch BAD, read the refusal, dispatch GOOD, read its result, end.

    ``dispatch(prompt)`` makes the harness's subagent call for a prompt.
    """
    return [
        Rule(worker_turn, worker or [say("Status: DONE")], name="worker", repeat=True),
        Rule(lambda t: main_turn(t) and not t.tool_results, [dispatch(BAD_PROMPT)],  # type: ignore[operator]
             name="bad"),
        Rule(lambda t: main_turn(t) and BLOCKED in t.tool_result_text(),
             [dispatch(GOOD_PROMPT)], name="good"),  # type: ignore[operator]
        Rule(lambda t: main_turn(t) and bool(t.tool_results), [say("All dispatched.")],
             name="end", repeat=True),
        # A harness that runs subagents in the background tells the model when one ends.
        Rule(main_turn, [say("Noted.")], name="notified", repeat=True),
    ]


def check_session(api: ScriptedAPI, result: Result) -> None:
    """The bad dispatch was blocked with the linter's reasons, the good one went through."""
    detail = f"{result.output[-3000:]}\n--- requests:\n{api.transcript()}"
    assert not api.unmatched and not api.errors, detail
    refused = [t for t in api.turns if t.rule == "good"]
    assert refused, f"the bad dispatch was not refused by the pack's check\n{detail}"
    assert "DK201" in refused[0].tool_result_text(), detail  # the model is told why
    after = [t for t in api.turns if t.rule == "end"]
    assert after, f"the good dispatch never came back\n{detail}"
    assert BLOCKED not in after[0].tool_result_text(), detail
    assert any(t.rule == "worker" for t in api.turns), f"no subagent ran\n{detail}"


# ---------------------------------------------------------------------------
# Codex CLI


@pytest.fixture(scope="session")
def codex_home(pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("codex-home")
    env = base_env(home)
    for command in (["plugin", "marketplace", "add", str(pack)],
                    ["plugin", "add", "dispatch-kit@dispatch-kit"]):
        result = run([tool("codex"), *command], env=env, cwd=home)
        assert result.returncode == 0, result.output
    return home


def test_codex_installs_the_pack_and_lists_its_skills(codex_home: Path) -> None:
    result = run([tool("codex"), "debug", "prompt-input"], env=base_env(codex_home),
                 cwd=codex_home)
    assert result.returncode == 0, result.output
    listed = sorted(set(re.findall(r"dispatch-kit:([a-z-]+)", result.stdout)))
    assert listed == SKILLS, result.stdout[-2000:]
    cache = codex_home / ".codex" / "plugins" / "cache" / "dispatch-kit" / "dispatch-kit"
    installed = next(cache.iterdir())
    assert (installed / "bin" / "dispatch-kit").is_file()  # real files: Codex drops links


def test_codex_session_blocks_a_bad_dispatch_and_lets_a_good_one_through(
    codex_home: Path, tmp_path: Path
) -> None:
    def spawn(prompt: str) -> Reply:
        return call("multi_agent_v1.spawn_agent", {"message": prompt})

    project = tmp_path / "project"
    project.mkdir()
    rules = dispatch_script(spawn)
    with ScriptedAPI(rules, side=say("ok")) as api:
        # `codex exec` ends with its main turn and takes its subagents with it: answer the
        # turn after the good dispatch only once the subagent's first request has come in
        # (a signal, not a sleep), or the subagent may be gone before it asks anything.
        end = next(rule for rule in rules if rule.name == "end")
        ends_turn = end.when
        end.when = lambda t: ends_turn(t) and api.wait_for(
            lambda: any(turn.rule == "worker" for turn in api.turns), 60)
        config = codex_home / ".codex" / "config.toml"
        text = re.sub(r"(?s)^# scripted.*?# end scripted\n", "", config.read_text())
        config.write_text(
            "# scripted\nmodel = \"scripted-1\"\nmodel_provider = \"scripted\"\n"
            "[model_providers.scripted]\nname = \"scripted\"\n"
            f"base_url = \"{api.base_url}/v1\"\nwire_api = \"responses\"\n"
            "env_key = \"SCRIPTED_API_KEY\"\n# end scripted\n" + text)
        result = run([tool("codex"), "exec", "--skip-git-repo-check",
                      "--dangerously-bypass-approvals-and-sandbox",
                      "--dangerously-bypass-hook-trust", "Dispatch the greeting task."],
                     env=base_env(codex_home, SCRIPTED_API_KEY="dummy"), cwd=project)
    assert result.returncode == 0, result.output
    assert "hook: PreToolUse Blocked" in result.stderr, result.stderr[-2000:]
    check_session(api, result)


# ---------------------------------------------------------------------------
# Gemini CLI


def test_gemini_validates_the_extension(pack: Path, tmp_path: Path) -> None:
    result = run([tool("gemini"), "extensions", "validate", str(pack / gemini.ROOT)],
                 env=base_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "successfully validated" in result.output, result.output


@pytest.fixture(scope="session")
def gemini_home(pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gemini-home")
    (home / ".gemini").mkdir()
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    trusted = {str(pack / gemini.ROOT): "TRUST_FOLDER", str(home): "TRUST_FOLDER"}
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps(trusted))
    result = run([tool("gemini"), "extensions", "install", str(pack / gemini.ROOT), "--consent"],
                 env=base_env(home), cwd=home)
    assert result.returncode == 0 and "installed successfully" in result.output, result.output
    return home


def test_gemini_lists_the_packs_skills(gemini_home: Path) -> None:
    result = run([tool("gemini"), "extensions", "list"], env=base_env(gemini_home),
                 cwd=gemini_home)
    assert result.returncode == 0, result.output
    for skill in SKILLS:
        assert f"{skill}:" in result.output, result.output
    listed = run([tool("gemini"), "skills", "list"], env=base_env(gemini_home), cwd=gemini_home)
    assert all(skill in listed.output for skill in SKILLS), listed.output


def test_gemini_session_offers_the_packs_agents_and_checks_each_dispatch(
    gemini_home: Path
) -> None:
    def invoke(prompt: str) -> Reply:
        agent = "dispatch-worker" if GOOD_MARK in prompt else "domain-editor"
        return call("invoke_agent", {"agent_name": agent, "prompt": prompt})

    worker = [call("complete_task", {"result": "Status: DONE"})]
    with ScriptedAPI(dispatch_script(invoke, worker), side=say('{"next_speaker": "user"}')) as api:
        env = base_env(gemini_home, GEMINI_API_KEY="dummy", GOOGLE_GEMINI_BASE_URL=api.base_url)
        result = run([tool("gemini"), "--yolo", "-p", "Dispatch the greeting task."],
                     env=env, cwd=gemini_home)
    assert result.returncode == 0, result.output
    check_session(api, result)
    offered = json.dumps(api.turns[[t.rule for t in api.turns].index("bad")].body)
    for agent in AGENTS:  # the model is told of every pack agent
        assert agent in offered, agent


# ---------------------------------------------------------------------------
# Qwen Code


@pytest.fixture(scope="session")
def qwen_home(pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("qwen-home")
    (home / ".qwen").mkdir()
    (home / ".qwen" / "settings.json").write_text(
        json.dumps({"security": {"auth": {"selectedType": "openai"}}}))
    result = run([tool("qwen"), "extensions", "install", str(pack / qwen.ROOT), "--consent"],
                 env=base_env(home), cwd=home)
    assert result.returncode == 0 and "installed successfully" in result.output, result.output
    return home


def test_qwen_lists_the_packs_skills_and_agents(qwen_home: Path) -> None:
    result = run([tool("qwen"), "extensions", "list"], env=base_env(qwen_home), cwd=qwen_home)
    assert result.returncode == 0, result.output
    listed = result.output.split("Skills:", 1)[-1]
    skills, _, agents = listed.partition("Agents:")
    assert sorted(re.findall(r"^\s+([a-z-]+)$", skills, re.M)) == SKILLS, result.output
    assert sorted(re.findall(r"^\s+([a-z-]+)$", agents, re.M)) == AGENTS, result.output


def test_qwen_session_blocks_a_bad_dispatch_and_lets_a_good_one_through(
    qwen_home: Path, tmp_path: Path
) -> None:
    def agent(prompt: str) -> Reply:
        kind = "dispatch-worker" if GOOD_MARK in prompt else "domain-editor"
        return call("agent", {"description": "greeting", "subagent_type": kind,
                              "prompt": prompt})

    with ScriptedAPI(dispatch_script(agent), side=say("ok")) as api:
        env = base_env(qwen_home, OPENAI_API_KEY="dummy", OPENAI_BASE_URL=f"{api.base_url}/v1",
                       OPENAI_MODEL="scripted-1", QWEN_CODE_SUPPRESS_YOLO_WARNING="1")
        result = run([tool("qwen"), "--yolo", "-p", "Dispatch the greeting task."],
                     env=env, cwd=tmp_path)
    assert result.returncode == 0, result.output
    check_session(api, result)


# ---------------------------------------------------------------------------
# OpenCode


@pytest.fixture(scope="session")
def opencode_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HOME for the OpenCode tests: its first run sets up a database (~10 s)."""
    return tmp_path_factory.mktemp("opencode-home")


def opencode_env(home: Path, pack: Path, **extra: str) -> dict[str, str]:
    return base_env(home, OPENCODE_CONFIG_DIR=str(pack / opencode.ROOT),
                    OPENCODE_DISABLE_AUTOUPDATE="1", PWD=str(home), **extra)


def test_opencode_lists_the_packs_skills_and_agents(opencode_home: Path, pack: Path) -> None:
    env = opencode_env(opencode_home, pack)
    agents = run([tool("opencode"), "agent", "list"], env=env, cwd=opencode_home)
    assert agents.returncode == 0, agents.output
    for agent in AGENTS:
        assert f"{agent} (subagent)" in agents.stdout, agents.output
    skills = run([tool("opencode"), "debug", "skill"], env=env, cwd=opencode_home)
    assert skills.returncode == 0, skills.output
    names = {entry["name"] for entry in json.loads(skills.stdout[skills.stdout.index("["):])}
    assert set(SKILLS) <= names, names


def test_opencode_session_blocks_a_bad_dispatch_and_lets_a_good_one_through(
    opencode_home: Path, pack: Path
) -> None:
    def task(prompt: str) -> Reply:
        kind = "dispatch-worker" if GOOD_MARK in prompt else "domain-editor"
        return call("task", {"description": "greeting", "subagent_type": kind, "prompt": prompt})

    with ScriptedAPI(dispatch_script(task), side=say("Greeting")) as api:
        config = {"provider": {"scripted": {
            "npm": "@ai-sdk/openai-compatible", "name": "Scripted",
            "options": {"baseURL": f"{api.base_url}/v1", "apiKey": "dummy"},
            "models": {"scripted-1": {"name": "Scripted"}}}},
            "model": "scripted/scripted-1", "small_model": "scripted/scripted-1",
            "autoupdate": False, "share": "disabled"}
        env = opencode_env(opencode_home, pack, OPENCODE_CONFIG_CONTENT=json.dumps(config))
        result = run([tool("opencode"), "run", "Dispatch the greeting task."], env=env,
                     cwd=opencode_home)
    assert result.returncode == 0, result.output
    check_session(api, result)


# ---------------------------------------------------------------------------
# GitHub Copilot CLI: skills only (a session needs a login)


def test_copilot_installs_the_packs_skills(pack: Path, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    added = run([tool("copilot"), "plugin", "marketplace", "add", str(pack)], env=env,
                cwd=tmp_path)
    assert added.returncode == 0, added.output
    installed = run([tool("copilot"), "plugin", "install", "dispatch-kit@dispatch-kit"],
                    env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.output
    assert f"Installed {len(SKILLS)} skills" in installed.output, installed.output
    listed = run([tool("copilot"), "plugin", "list"], env=env, cwd=tmp_path)
    assert "dispatch-kit" in listed.output, listed.output


# ---------------------------------------------------------------------------
# The adapters, on the events captured from real sessions


EVENTS = ROOT / "tests" / "fixtures" / "harness-events"
CAPTURED = {
    "codex": "codex-0.171.0-PreToolUse-spawn_agent.json",
    "gemini": "gemini-0.61.0-BeforeTool-invoke_agent.json",
    "qwen": "qwen-0.24.4-PreToolUse-agent.json",
}


def hook(event: dict, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "bin" / "dispatch-kit"), "hook", "pre-dispatch", *args],
                          input=json.dumps(event), capture_output=True, text=True, cwd=cwd,
                          env=base_env(cwd), timeout=GUARD_S)


@pytest.mark.parametrize("harness", sorted(CAPTURED))
@pytest.mark.parametrize("named", [True, False], ids=["--harness", "detected"])
def test_each_captured_dispatch_is_read_and_blocked(harness: str, named: bool,
                                                    tmp_path: Path) -> None:
    event = json.loads((EVENTS / CAPTURED[harness]).read_text(encoding="utf-8"))
    event["cwd"] = str(tmp_path)
    done = hook(event, *(["--harness", harness] if named else []), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "DK201" in done.stderr and BLOCKED in done.stderr


def test_a_tool_that_is_no_dispatch_passes_and_an_unknown_harness_fails_open(
    tmp_path: Path
) -> None:
    shell = {"tool_name": "run_shell_command", "hook_event_name": "BeforeTool",
             "tool_input": {"command": "ls"}}
    assert hook(shell, "--harness", "gemini", cwd=tmp_path).returncode == 0
    event = json.loads((EVENTS / CAPTURED["codex"]).read_text(encoding="utf-8"))
    done = hook(event, "--harness", "no-such-harness", cwd=tmp_path)
    assert done.returncode == 0 and "skipped" in done.stderr


@pytest.mark.parametrize(("harness", "folder", "tools"), [
    ("qwen", ".qwen/agents", "tools:\n  - ReadFile\n  - Shell\n"),
    ("gemini", ".gemini/agents", "tools:\n  - read_file\n  - run_shell_command\n"),
    ("opencode", ".opencode/agents", "tools:\n  read: true\n  bash: true\n"),
])
def test_dk401_reads_each_harness_shell_tool(harness: str, folder: str, tools: str,
                                             tmp_path: Path) -> None:
    """An agent of the harness's own format with its shell tool may commit; without it not."""
    prompt = ("[Inspect] Task `look`: edit config/app.yaml, then commit the change.\n")
    tool_name = {"qwen": "agent", "gemini": "invoke_agent", "opencode": "task"}[harness]
    key = "agent_name" if harness == "gemini" else "subagent_type"
    for name, body in (("shell-agent", tools), ("edit-agent", tools.replace(
            "Shell", "Edit").replace("run_shell_command", "replace").replace("bash", "edit"))):
        path = tmp_path / folder / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"---\nname: {name}\ndescription: d\n{body}---\nDo it.\n")
    results = {}
    for name in ("shell-agent", "edit-agent"):
        event = {"tool_name": tool_name, "cwd": str(tmp_path),
                 "tool_input": {key: name, "prompt": prompt}}
        results[name] = hook(event, "--harness", harness, cwd=tmp_path)
    assert "DK401" not in results["shell-agent"].stderr, results["shell-agent"].stderr
    assert "DK401" in results["edit-agent"].stderr, results["edit-agent"].stderr
