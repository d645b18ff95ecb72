"""A scripted model: an Anthropic Messages API server that answers from a script.

No model is reachable from the test machines, but the real harness CLIs are,
and each talks to its model over HTTP. Pointing the real ``claude`` binary at
this server (``ANTHROPIC_BASE_URL=http://127.0.0.1:PORT``) lets a test run a
real session offline: plugin loading, hooks, subagents, tools and files are
all the CLI's own; only the model's replies are scripted. A scripted model
proves that a sequence of tool calls works in the harness; it says nothing
about what a real model would choose to do.

The script is a list of :class:`Rule`: each request is answered by the first
rule whose ``when`` matches it and that has replies left. A rule matches on
what the CLI sent: who is asking (:attr:`Request.kind`: the main loop, a
subagent, a workflow subagent, or a side request such as a title), and what
arrived since the model last spoke (tool_results, their text, task
notifications). Each request is recorded,
so a test can assert afterwards which tools were offered and what a tool
(or a hook that blocked it) sent back. A request no rule matches gets a
short ``end_turn`` text so the session ends instead of hanging, and is kept
in :attr:`ScriptedModel.unmatched` for the test to fail on; a rule that
raises is answered the same way and kept in :attr:`ScriptedModel.errors`
(an HTTP error would only make the CLI retry with back-off).

The server binds before :meth:`ScriptedModel.start` returns, so the port is
accepting connections before the CLI starts: no test has to wait for it.

A script for one background dispatch, as ``test_claude_session.py`` uses it::

    rules = [
        Rule(all_of(main_loop, fresh_turn), [call("Agent", {...})], name="dispatch"),
        Rule(all_of(main_loop, notified), [say("done")], name="notified"),
        Rule(all_of(main_loop, after_tool_result), [say("waiting")], name="wait"),
        Rule(subagent, [call("Bash", {...}), say("Status: DONE")], name="worker"),
    ]
    with ScriptedModel(rules) as model:
        ...  # run claude with ANTHROPIC_BASE_URL=model.base_url
    model.turns("subagent")[0].tool_names  # what the worker was offered

What Claude Code 2.1.332 sends, as seen here: every request is a streamed
``POST /v1/messages?beta=true``; a subagent's requests carry its agent id in
the ``x-claude-code-agent-id`` header; mid-conversation ``system`` messages
carry the environment and background-task notifications; with
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` there are no side requests
and no token counts, but both are answered should a version send them.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Claude Code sends this header (lower-cased here) on every request a subagent makes.
AGENT_ID_HEADER = "x-claude-code-agent-id"
# A workflow script's agent() is told so in its system prompt (2.1.330-2.1.332).
WORKFLOW_MARKER = "subagent spawned by a workflow"
# The sentence before the list of tools loaded only through ToolSearch.
DEFERRED_MARKER = "deferred tools are now available via ToolSearch"
IDENTIFIER = re.compile(r"[A-Za-z_][\w.-]*")
NOTIFICATION = re.compile(r"<task-notification>(.*?)</task-notification>", re.S)
FIELD = re.compile(r"<([a-z-]+)>(.*?)</\1>", re.S)
DEFAULT_MODEL = "claude-scripted-1"


# ---------------------------------------------------------------------------
# What the CLI sent


@dataclass
class Request:
    """One HTTP request the CLI made, as the script and the tests see it."""

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    reply: Reply | None = None  # what the scripted model answered (None: not a turn)
    rule: str | None = None  # the name of the rule that answered it

    # -- who is asking ------------------------------------------------------

    @property
    def is_messages(self) -> bool:
        """A model turn (``POST /v1/messages``), not a token count or other call."""
        return self.method == "POST" and self.path.split("?", 1)[0].rstrip("/") == "/v1/messages"

    @property
    def agent_id(self) -> str | None:
        """The subagent this request comes from (Claude Code's ``x-claude-code-agent-id``)."""
        return self.headers.get(AGENT_ID_HEADER)

    @property
    def system_text(self) -> str:
        """The system prompt as one string (the API accepts a string or text blocks)."""
        return _text_of(self.body.get("system", ""))

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered in this request, in the order sent."""
        return [tool.get("name", "") for tool in self.body.get("tools", []) or []]

    @property
    def loaded_tool_names(self) -> list[str]:
        """The tools whose schemas were sent, leaving out ``defer_loading`` placeholders."""
        return [
            tool.get("name", "")
            for tool in self.body.get("tools", []) or []
            if not tool.get("defer_loading")
        ]

    @property
    def deferred_tool_names(self) -> list[str]:
        """Tools the CLI holds back until the model loads them with ToolSearch.

        Claude Code lists them, one a line, after a sentence naming ToolSearch
        (in a system message of the conversation in 2.1.332).
        """
        names: list[str] = []
        for text in (self.system_text, self.all_text()):
            start = text.find(DEFERRED_MARKER)
            if start < 0:
                continue
            for line in text[start:].splitlines()[1:]:
                if not IDENTIFIER.fullmatch(line.strip()):
                    break
                names.append(line.strip())
            break
        return names

    @property
    def kind(self) -> str:
        """``main``, ``subagent``, ``workflow-subagent``, ``side`` or ``other``.

        Claude Code marks each request a subagent makes with the agent's id in
        a header, and the main loop's requests carry none; the system prompt
        alone cannot tell them apart (both open with the same line in print
        mode). A request offered no tools (a title, a summary) is a side
        request; a workflow's ``agent()`` is told about its workflow in the
        system prompt. Anything but ``POST /v1/messages`` is ``other``.
        """
        if not self.is_messages:
            return "other"
        if not self.tool_names:
            return "side"
        if self.agent_id is None:
            return "main"
        if WORKFLOW_MARKER in self.system_text:
            return "workflow-subagent"
        return "subagent"

    # -- what the CLI says since the model last spoke ---------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []) or [])

    @property
    def new_messages(self) -> list[dict[str, Any]]:
        """The messages after the last assistant turn: what this request adds.

        One request can carry several things at once: the tool_result of the
        last call, then a background agent's completion notification (a
        ``system`` message), so rules look at all of them, not the last only.
        """
        messages = self.messages
        for position in range(len(messages) - 1, -1, -1):
            if messages[position].get("role") == "assistant":
                return messages[position + 1 :]
        return messages

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks since the last assistant turn (empty when none)."""
        return [
            block
            for message in self.new_messages
            for block in _blocks(message.get("content"))
            if block.get("type") == "tool_result"
        ]

    def tool_result_text(self) -> str:
        """All tool_result content since the last assistant turn, as one string."""
        return "\n".join(_text_of(block.get("content", "")) for block in self.tool_results)

    @property
    def new_text(self) -> str:
        """All text since the last assistant turn (tool results included), for matching."""
        return "\n".join(_text_of(message.get("content", "")) for message in self.new_messages)

    @property
    def prompt_text(self) -> str:
        """The first user message without its system reminders: a subagent's task."""
        for message in self.messages:
            if message.get("role") == "user":
                return "\n".join(
                    block.get("text", "")
                    for block in _blocks(message.get("content"))
                    if block.get("type") == "text"
                    and not block.get("text", "").lstrip().startswith("<system-reminder>")
                )
        return ""

    def notifications(self) -> list[dict[str, str]]:
        """Background-task notifications since the last assistant turn, one dict each.

        Claude Code reports a finished background agent as a
        ``<task-notification>`` with ``task-id``, ``status``, ``summary`` and
        ``result`` elements, in a ``system`` (or reminder) message.
        """
        found = []
        for match in NOTIFICATION.finditer(self.new_text):
            found.append(dict(FIELD.findall(match.group(1))))
        return found

    def all_text(self) -> str:
        """Every message's text, for a test that wants to find a string anywhere."""
        return "\n".join(_text_of(message.get("content", "")) for message in self.messages)

    def summary(self) -> str:
        """One line per request, for failure messages."""
        new = " ".join(self.new_text.split())
        return (
            f"#{self.index} {self.method} {self.path} kind={self.kind} agent={self.agent_id} "
            f"rule={self.rule} tools={self.tool_names} new={new[:160]!r}"
        )


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A content field as a list of blocks (the API allows a bare string)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _text_of(content: Any) -> str:
    """Text in a content field: a string, or blocks of text / tool_result / tool_use."""
    parts: list[str] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_result":
            parts.append(_text_of(block.get("content", "")))
        elif kind == "tool_use":
            parts.append(json.dumps(block.get("input", {}), sort_keys=True))
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# What the scripted model answers


@dataclass
class ToolCall:
    """A tool_use block: ask the CLI to run tool ``name`` with ``input``."""

    name: str
    input: dict[str, Any]
    id: str | None = None  # filled in when sent, unique per server


@dataclass
class Reply:
    """One assistant turn: optional text, then tool calls (stop_reason tool_use) or none."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_calls else "end_turn"


def call(name: str, tool_input: dict[str, Any], text: str = "") -> Reply:
    """A turn that calls one tool (with an optional sentence before it)."""
    return Reply(text=text, tool_calls=[ToolCall(name, dict(tool_input))])


def say(text: str) -> Reply:
    """A turn that ends with ``text``."""
    return Reply(text=text)


Matcher = Callable[[Request], bool]
Answer = Reply | Callable[[Request], Reply]


@dataclass
class Rule:
    """Answer requests matching ``when`` with ``replies``, one per request, in order.

    A rule is used up after its last reply, so a request the script did not
    foresee falls through to the next rule (or is recorded as unmatched)
    instead of getting a stale answer; ``repeat=True`` keeps answering with
    the last reply, for "answer every title request" style rules.
    """

    when: Matcher
    replies: Sequence[Answer]
    name: str = ""
    repeat: bool = False
    used: int = 0

    def available(self) -> bool:
        return self.repeat or self.used < len(self.replies)

    def answer(self, request: Request) -> Reply:
        answer = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return answer(request) if callable(answer) else answer


def first_rule(rules: Sequence[Rule], request: Any, errors: list[str]) -> tuple[str, Reply] | None:
    """The name and reply of the first rule that is not used up and matches ``request``.

    Every scripted server (this one and those of tests/scripted_apis.py) picks its answer
    this way. A rule that raises answers with a text naming the failure, recorded in
    ``errors``: a broken script must not hang the CLI in its retries.
    """
    for position, rule in enumerate(rules):
        name = rule.name or f"rule{position}"
        try:
            if not (rule.available() and rule.when(request)):
                continue
            return name, rule.answer(request)
        except Exception as exc:
            errors.append(f"{name} on request #{request.index}: {exc!r}")
            return name, say(f"scripted model: rule {name} failed: {exc!r}")
    return None


# Matchers, composable with all_of / any_of.


def main_loop(request: Request) -> bool:
    return request.kind == "main"


def subagent(request: Request) -> bool:
    return request.kind == "subagent"


def workflow_subagent(request: Request) -> bool:
    return request.kind == "workflow-subagent"


def side_request(request: Request) -> bool:
    return request.kind == "side"


def after_tool_result(request: Request) -> bool:
    """The last message carries a tool_result: the CLI reports on a call."""
    return bool(request.tool_results)


def fresh_turn(request: Request) -> bool:
    """Nothing since the last assistant turn is a tool_result: a new prompt or a notification."""
    return not request.tool_results


def notified(request: Request) -> bool:
    """A background task's completion notification arrived since the last assistant turn."""
    return bool(request.notifications())


def new_text_contains(needle: str) -> Matcher:
    return lambda request: needle in request.new_text


def prompt_contains(needle: str) -> Matcher:
    """The first user message (a subagent's task) contains ``needle``."""
    return lambda request: needle in request.prompt_text


def tool_result_contains(needle: str) -> Matcher:
    return lambda request: needle in request.tool_result_text()


def system_contains(needle: str) -> Matcher:
    return lambda request: needle in request.system_text


def all_of(*matchers: Matcher) -> Matcher:
    return lambda request: all(matcher(request) for matcher in matchers)


def any_of(*matchers: Matcher) -> Matcher:
    return lambda request: any(matcher(request) for matcher in matchers)


# ---------------------------------------------------------------------------
# The server


class ScriptedModel:
    """An Anthropic Messages API on 127.0.0.1 that answers from a list of :class:`Rule`.

    Use as a context manager; :attr:`base_url` goes into ``ANTHROPIC_BASE_URL``.
    Side requests (no tools offered: titles, summaries) get a short text
    unless a rule answers them, so scripts only describe the turns that matter.
    """

    def __init__(self, rules: Iterable[Rule] = (), model: str = DEFAULT_MODEL) -> None:
        self.rules: list[Rule] = list(rules)
        self.model = model
        self.requests: list[Request] = []
        self.unmatched: list[Request] = []
        self.errors: list[str] = []  # rules that raised; each such request got a plain text
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------

    def start(self) -> ScriptedModel:
        """Bind a free port and serve in a daemon thread; the port accepts once this returns."""
        handler = type("Handler", (_Handler,), {"model": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name="scripted-model",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the scripted model first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests read -------------------------------------------------------

    def turns(self, kind: str | None = None) -> list[Request]:
        """Recorded ``/v1/messages`` requests, optionally only those of one kind."""
        with self._lock:
            return [r for r in self.requests if r.is_messages and (kind is None or r.kind == kind)]

    def wait_for(self, matcher: Matcher, timeout: float) -> Request | None:
        """The first recorded request matching ``matcher``, waiting up to ``timeout`` for it.

        Woken by each new request, so a test waits for an event, not for time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for request in self.requests:
                    if matcher(request):
                        return request
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)

    def transcript(self) -> str:
        """Every request on one line each, for an assertion message."""
        with self._lock:
            return "\n".join(request.summary() for request in self.requests)

    # -- answering ---------------------------------------------------------------

    def record(self, method: str, path: str, headers: dict[str, str], body: Any) -> Request:
        with self._lock:
            request = Request(
                index=len(self.requests),
                method=method,
                path=path,
                headers={key.lower(): value for key, value in headers.items()},
                body=body if isinstance(body, dict) else {},
                received_at=time.monotonic(),
            )
            self.requests.append(request)
            self._lock.notify_all()
            return request

    def choose(self, request: Request) -> Reply:
        with self._lock:
            found = first_rule(self.rules, request, self.errors)
            if found is not None:
                request.rule, reply = found
            else:
                if request.kind == "side":
                    reply = say("Scripted session")
                    request.rule = "side-default"
                else:
                    reply = say("scripted model: no rule matched this request")
                    request.rule = "unmatched"
                    self.unmatched.append(request)
            for tool_call in reply.tool_calls:
                tool_call.id = tool_call.id or f"toolu_scripted_{next(self._ids):04d}"
            request.reply = reply
            self._lock.notify_all()
            return reply

    def new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_scripted_{next(self._ids):04d}"


def estimate_tokens(body: Any) -> int:
    """A rough input-token count (4 characters a token): the CLI only needs a number."""
    return max(1, len(json.dumps(body)) // 4)


def message_events(reply: Reply, message_id: str, model: str, input_tokens: int) -> list[dict]:
    """The server-sent events of one streamed assistant message, in the API's order."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        },
        {"type": "ping"},
    ]
    index = 0
    if reply.text:
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
        )
        for piece in _pieces(reply.text, 40):
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                }
            )
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    for tool_call in reply.tool_calls:
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": tool_call.id,
                    "name": tool_call.name,
                    "input": {},
                },
            }
        )
        for piece in _pieces(json.dumps(tool_call.input), 64):
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }
            )
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    output_tokens = estimate_tokens([reply.text, *(c.input for c in reply.tool_calls)])
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )
    events.append({"type": "message_stop"})
    return events


def message_json(reply: Reply, message_id: str, model: str, input_tokens: int) -> dict:
    """The same assistant message, whole, for a request that did not ask for a stream."""
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for tool_call in reply.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": tool_call.id,
                "name": tool_call.name,
                "input": tool_call.input,
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }


def _pieces(text: str, size: int) -> list[str]:
    """Split into chunks, as a real stream delivers a block in several deltas."""
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the CLI's client expects; streams use chunked encoding."""

    protocol_version = "HTTP/1.1"
    model: ScriptedModel  # set on the subclass made by ScriptedModel.start

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the requests are recorded instead."""

    # -- plumbing --------------------------------------------------------------

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", self.model.new_id("req"))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, events: list[dict]) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", self.model.new_id("req"))
        self.end_headers()
        for event in events:
            chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _error(self, status: int, kind: str, message: str) -> None:
        self._send_json(status, {"type": "error", "error": {"type": kind, "message": message}})

    # -- routes ----------------------------------------------------------------

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        request = self.model.record("POST", self.path, dict(self.headers.items()), body)
        if path == "/v1/messages/count_tokens":
            self._send_json(HTTPStatus.OK, {"input_tokens": estimate_tokens(body)})
            return
        if path != "/v1/messages":
            self._error(HTTPStatus.NOT_FOUND, "not_found_error", f"no route {path}")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(HTTPStatus.BAD_REQUEST, "invalid_request_error", "messages: required")
            return
        reply = self.model.choose(request)
        message_id = self.model.new_id("msg")
        model = str(body.get("model") or self.model.model)
        tokens = estimate_tokens(body)
        if body.get("stream"):
            self._send_stream(message_events(reply, message_id, model, tokens))
        else:
            self._send_json(HTTPStatus.OK, message_json(reply, message_id, model, tokens))

    def do_GET(self) -> None:
        self.model.record("GET", self.path, dict(self.headers.items()), {})
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._send_json(
                HTTPStatus.OK,
                {
                    "data": [
                        {
                            "type": "model",
                            "id": self.model.model,
                            "display_name": "Scripted model",
                            "created_at": "2026-01-01T00:00:00Z",
                        }
                    ],
                    "has_more": False,
                    "first_id": self.model.model,
                    "last_id": self.model.model,
                },
            )
            return
        self._error(HTTPStatus.NOT_FOUND, "not_found_error", f"no route {path}")

    def do_HEAD(self) -> None:
        self.model.record("HEAD", self.path, dict(self.headers.items()), {})
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _other(self) -> None:
        self._read_body()
        self.model.record(self.command, self.path, dict(self.headers.items()), {})
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_request_error", "method not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other
