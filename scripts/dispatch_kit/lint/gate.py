"""The dispatch gate: lint one subagent prompt at the moment it is sent.

Whatever delivers the prompt (a harness's pre-tool hook, see
:mod:`dispatch_kit.guards.handlers`) calls :func:`check` with the prompt, the
agent it goes to and the folder to read the project's configuration from.
Error-level findings mean "block": the caller shows the text to the model,
which fixes the prompt and dispatches again. Warnings pass, with the text.
This module knows nothing of any harness's events or answers.
"""

from __future__ import annotations

ALLOW = 0
BLOCK = 2
LABEL = "dispatch-prompt"
# The most characters of one prompt the gate lints: its first HEAD and last TAIL.
# The hook runs before every dispatch and must answer in about a second on any
# input; every rule is linear, but a megabyte still costs seconds. A prompt
# this long is itself a defect (the worker reads a file faster than a
# transcript carries one), so the gate says what it skipped.
HEAD = 192 * 1024
TAIL = 64 * 1024
# Line breaks of the skipped middle kept, so findings in the tail keep their
# line numbers; past this many, blank lines would cost what the cut saved.
_KEPT_BREAKS = 4096
# Longer prompts are shortened; a shortened one is never longer than this.
MAX_PROMPT = HEAD + TAIL + _KEPT_BREAKS


def _shorten(prompt: str) -> tuple[str, str]:
    """(the prompt's head and tail, the warning that says what was not linted).

    The tail is kept because prompts end with their Stream-safety block and
    exit criteria: a head alone would report both missing. Cuts fall on line
    breaks when one is near, and the middle becomes its line breaks, so the
    tail's findings point at the prompt's own lines.
    """
    head_end = prompt.rfind("\n", HEAD // 2, HEAD) + 1 or HEAD
    tail_start = len(prompt) - TAIL
    found = prompt.find("\n", tail_start, tail_start + TAIL // 2)
    tail_start = found + 1 if found >= 0 else tail_start
    breaks = prompt.count("\n", head_end, tail_start)
    first = prompt.count("\n", 0, head_end) + 1
    kept = min(breaks, _KEPT_BREAKS)
    filler = "\n" * kept if kept else " "
    note = (
        f"{LABEL}:{first}:1: warning: this prompt is {len(prompt)} characters; dispatch-kit lints "
        f"the first {HEAD} and the last {TAIL} characters of a prompt this long and did not "
        f"check lines {first}-{first + breaks} "
        f"({tail_start - head_end} characters)"
        + ("" if kept == breaks else f"; lines below {first + kept} are numbered from the cut")
        + ". Put long material in a file the worker reads and keep the prompt to the task\n"
    )
    return prompt[:head_end] + filler + prompt[tail_start:], note


def check(prompt: str, agent: str | None, base: str) -> tuple[int, str]:
    """(ALLOW or BLOCK, text to show) for one prompt; raises on a broken configuration."""
    if len(prompt) > MAX_PROMPT:
        shortened, note = _shorten(prompt)
        code, text = check(shortened, agent, base)
        return code, note + text
    from dispatch_kit.lint import config, engine, output

    conf = config.load(start=base)
    # A likely reading of an unmarked prompt must not block: errors that rest on it warn.
    findings = engine.lint_text(
        prompt,
        LABEL,
        conf,
        agent=agent,
        default_kind="dispatch",
        base_dir=base,
        soften_inferred=True,
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
