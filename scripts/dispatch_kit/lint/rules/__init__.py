"""The rule families, one module each; :data:`RULES` is what the registry reads."""

from __future__ import annotations

from dispatch_kit.lint.rules import (
    async_dispatch,
    bash_chain,
    exit_criteria,
    fire_and_forget,
    hygiene,
    manifests,
    skills_agents,
    stream_safety,
    suppressions,
    templates,
    unmarked,
)

RULES = (
    *stream_safety.RULES,
    *unmarked.RULES,
    *exit_criteria.RULES,
    *fire_and_forget.RULES,
    *bash_chain.RULES,
    *async_dispatch.RULES,
    *hygiene.RULES,
    *skills_agents.RULES,
    *manifests.RULES,
    *templates.RULES,
    *suppressions.RULES,
)
