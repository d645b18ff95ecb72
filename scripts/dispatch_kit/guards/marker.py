"""The dispatch line: how a rendered prompt names its plan task, for the hooks to read.

The worker and retry templates end with one line (the ``dispatch-line``
clause)::

    dispatch-kit: mission=wordcount task=counter attempt=2 ledger=work/.dispatch/ledger.db

``attempt`` is the ledger's 1-based attempt number; ``ledger`` is the ledger
file relative to the folder the orchestrator renders from (the session's
working directory). Values are percent-encoded (a space is ``%20``), so the
line splits on spaces. A prompt without the line is no plan dispatch: the
hooks never record, refuse or slow it. When a prompt holds the line twice (a
worker prompt followed by its retry addendum) the last one counts.
"""

from __future__ import annotations

PREFIX = "dispatch-kit: mission="
KEYS = ("mission", "task", "attempt", "ledger")


class Marker:
    """One parsed dispatch line."""

    __slots__ = ("mission", "task", "attempt", "ledger")

    def __init__(self, mission: str, task: str, attempt: int, ledger: str | None) -> None:
        self.mission = mission
        self.task = task
        self.attempt = attempt
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"Marker({self.mission!r}, {self.task!r}, {self.attempt}, {self.ledger!r})"


def find(prompt: object) -> Marker | None:
    """The last well-formed dispatch line in ``prompt``, or None (also for a non-string)."""
    if not isinstance(prompt, str) or PREFIX not in prompt:
        return None
    start = prompt.rfind(PREFIX)
    while start >= 0:
        if start == 0 or prompt[start - 1] == "\n":
            end = prompt.find("\n", start)
            found = parse(prompt[start: end if end >= 0 else len(prompt)])
            if found is not None:
                return found
        start = prompt.rfind(PREFIX, 0, start)
    return None


def parse(line: str) -> Marker | None:
    """``dispatch-kit: mission=M task=T attempt=N [ledger=P]`` → Marker; else None."""
    body = line.strip()[len("dispatch-kit:"):].split()
    values: dict[str, str] = {}
    for token in body:
        key, sep, value = token.partition("=")
        if not sep or key not in KEYS or key in values or not value:
            return None
        values[key] = _unquote(value)
    if not {"mission", "task", "attempt"} <= values.keys() or not values["attempt"].isdigit():
        return None
    return Marker(values["mission"], values["task"], int(values["attempt"]), values.get("ledger"))


def _unquote(value: str) -> str:
    if "%" not in value:
        return value
    from urllib.parse import unquote

    return unquote(value)


def line(mission: str, task: str, attempt: int, ledger: str | None = None) -> str:
    """The line for these values (what the clause template renders)."""
    from urllib.parse import quote

    parts = [f"mission={quote(mission)}", f"task={quote(task)}", f"attempt={attempt}"]
    if ledger:
        parts.append(f"ledger={quote(ledger)}")
    return "dispatch-kit: " + " ".join(parts)
