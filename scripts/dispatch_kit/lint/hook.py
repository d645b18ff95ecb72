"""The pre-dispatch hook: lint a subagent prompt at the moment it is sent.

Claude Code runs ``dispatch-kit hook pre-dispatch`` before every Agent (or
Task) tool call, with the event as JSON on stdin. Error-level findings exit 2:
the harness blocks that dispatch and shows stderr to the model, which fixes
the prompt and dispatches again. Warnings pass (they go to stderr too).

The hook must never be the reason a session is stuck, so it fails open: an
unreadable event, a broken configuration or any internal error lets the
dispatch through with a one-line warning. ``DISPATCH_KIT_HOOK=off`` turns it
off entirely.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

ALLOW = 0
BLOCK = 2
LABEL = "dispatch-prompt"
OFF_VALUES = ("off", "0", "false", "no", "disabled")
DISPATCH_TOOLS = ("Agent", "Task")


def pre_dispatch(raw: bytes, environ: Mapping[str, str]) -> tuple[int, str]:
    """(exit code, stderr text) for one hook event."""
    if environ.get("DISPATCH_KIT_HOOK", "").strip().lower() in OFF_VALUES:
        return ALLOW, ""
    try:
        return _check(raw)
    except Exception as exc:  # noqa: BLE001 - fail open: never block on the linter's own failure
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return ALLOW, f"dispatch-kit hook: check skipped, dispatch allowed ({reason})\n"


def _check(raw: bytes) -> tuple[int, str]:
    from dispatch_kit.lint import config, engine, output

    try:
        event = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the hook event is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError("the hook event is not a JSON object")
    if event.get("tool_name") not in DISPATCH_TOOLS:
        return ALLOW, ""  # a matcher that lets other tools through: not ours to judge
    tool_input = event.get("tool_input")
    prompt = tool_input.get("prompt") if isinstance(tool_input, dict) else None
    if not isinstance(prompt, str):
        raise ValueError("the hook event has no tool_input.prompt")
    agent = tool_input.get("subagent_type")
    cwd = event.get("cwd")
    base = cwd if isinstance(cwd, str) and cwd and os.path.isdir(cwd) else os.getcwd()
    conf = config.load(start=base)
    findings = engine.lint_text(
        prompt,
        LABEL,
        conf,
        agent=agent if isinstance(agent, str) and agent else None,
        default_kind="dispatch",
        base_dir=base,
    )
    if not findings:
        return ALLOW, ""
    text = output.render(findings, "text")
    if any(f.severity == "error" for f in findings):
        return BLOCK, (
            text + "dispatch-kit blocked this dispatch: fix the prompt as above and dispatch "
            "again (`dispatch-kit rule CODE` explains a rule; DISPATCH_KIT_HOOK=off disables "
            "this check)\n"
        )
    return ALLOW, text + "dispatch-kit: warnings only, dispatch allowed\n"
