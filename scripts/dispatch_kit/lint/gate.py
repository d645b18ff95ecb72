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


def check(prompt: str, agent: str | None, base: str) -> tuple[int, str]:
    """(ALLOW or BLOCK, text to show) for one prompt; raises on a broken configuration."""
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
