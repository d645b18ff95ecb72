"""Scripted models for the other harnesses: OpenAI-style and Gemini APIs on 127.0.0.1.

:mod:`scripted_model` stands in for the model behind Claude Code (the
Anthropic Messages API). The other harness CLIs speak other wire formats,
so this server answers three of them from the same kind of script:

* ``POST /v1/responses`` (OpenAI Responses API, streamed): what Codex CLI
  0.171 speaks; it has no chat-completions client any more.
* ``POST /v1/chat/completions`` (streamed or not): what Qwen Code speaks
  (``OPENAI_BASE_URL``), and any OpenAI-compatible client.
* ``POST /v1beta/models/MODEL:streamGenerateContent`` and ``:generateContent``
  (Gemini API): what Gemini CLI speaks (``GOOGLE_GEMINI_BASE_URL``).

Each request is turned into one :class:`Turn` (the tools offered, the tool
results and text since the model last spoke, the first user message), so a
script is written once, whatever the API: the :class:`scripted_model.Rule`,
``call`` and ``say`` of the Claude Code tests answer here as well. As there, a
request no rule answers gets a short text (so the session ends instead of
retrying) and is kept in :attr:`ScriptedAPI.unmatched` for the test to fail on.
A scripted model proves what a sequence of tool calls does in a harness; it
says nothing about what a real model would choose.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from scripted_model import Reply, Rule, first_rule, say

DEFAULT_MODEL = "scripted-1"


@dataclass
class Turn:
    """One model request from any of the APIs, in the shape the rules match on."""

    index: int
    api: str  # "responses", "chat", "gemini"
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    tool_names: list[str] = field(default_factory=list)
    system_text: str = ""
    prompt_text: str = ""  # the first user message: a subagent's task, or the user's prompt
    new_text: str = ""  # everything after the last assistant message, tool results included
    results: list[str] = field(default_factory=list)  # tool results since the model last spoke
    reply: Reply | None = None
    rule: str | None = None

    @property
    def tool_results(self) -> list[str]:
        return self.results

    def tool_result_text(self) -> str:
        return "\n".join(self.results)

    @property
    def kind(self) -> str:
        """``main`` when tools are offered, ``side`` otherwise (titles, checks, summaries)."""
        return "main" if self.tool_names else "side"

    def all_text(self) -> str:
        return json.dumps(self.body)

    def summary(self) -> str:
        new = " ".join(self.new_text.split())
        return (f"#{self.index} {self.api} {self.path} rule={self.rule} "
                f"tools={self.tool_names[:12]} new={new[:200]!r}")


# ---------------------------------------------------------------------------
# Reading each API's request into a Turn


def _text(value: Any) -> str:
    """Text anywhere in a content value: strings, text parts, nested lists."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(item) for item in value)
    if isinstance(value, dict):
        for key in ("text", "output", "content"):
            if key in value:
                return _text(value[key])
        if "response" in value:  # a Gemini functionResponse
            return json.dumps(value["response"])
    return ""


def read_responses(turn: Turn) -> None:
    """Responses API: ``instructions``, ``input`` items, function tools by top-level name."""
    body = turn.body
    turn.system_text = _text(body.get("instructions", ""))
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":  # Codex groups its agent tools in one
            turn.tool_names += [f"{tool.get('name')}.{sub.get('name')}"
                                for sub in tool.get("tools") or [] if isinstance(sub, dict)]
        else:
            turn.tool_names.append(tool.get("name") or tool.get("type", ""))
    items = [item for item in body.get("input") or [] if isinstance(item, dict)]
    last = max((i for i, item in enumerate(items) if item.get("role") == "assistant"
                or item.get("type") in ("function_call", "custom_tool_call")), default=-1)
    for item in items:
        if item.get("role") == "user":
            text = _text(item.get("content"))
            if not text.lstrip().startswith("<"):  # environment and instruction blocks
                turn.prompt_text = turn.prompt_text or text
    for item in items[last + 1:]:
        if item.get("type") in ("function_call_output", "custom_tool_call_output"):
            turn.results.append(_text(item.get("output")))
        turn.new_text += _text(item.get("content") or item.get("output")) + "\n"


def read_chat(turn: Turn) -> None:
    """Chat completions: ``messages`` with system/user/assistant/tool roles."""
    body = turn.body
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    turn.tool_names = [(t.get("function") or {}).get("name", "")
                       for t in body.get("tools") or [] if isinstance(t, dict)]
    turn.system_text = "\n".join(_text(m.get("content")) for m in messages
                                 if m.get("role") == "system")
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    turn.prompt_text = users[0] if users else ""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    for message in messages[last + 1:]:
        if message.get("role") == "tool":
            turn.results.append(_text(message.get("content")))
        turn.new_text += _text(message.get("content")) + "\n"


def read_gemini(turn: Turn) -> None:
    """generateContent: ``contents`` of user/model parts, ``functionDeclarations``."""
    body = turn.body
    turn.system_text = _text((body.get("systemInstruction") or {}).get("parts", []))
    turn.tool_names = [decl.get("name", "") for tool in body.get("tools") or []
                       for decl in (tool.get("functionDeclarations") or [])]
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    users = [c for c in contents if c.get("role") == "user"
             and any("text" in p for p in c.get("parts") or [])]
    if users:
        turn.prompt_text = "\n".join(p.get("text", "") for p in users[0].get("parts") or [])
    last = max((i for i, c in enumerate(contents) if c.get("role") == "model"), default=-1)
    for content in contents[last + 1:]:
        for part in content.get("parts") or []:
            if "functionResponse" in part:
                text = json.dumps(part["functionResponse"].get("response"))
                turn.results.append(text)
                turn.new_text += text + "\n"
            elif "text" in part:
                turn.new_text += str(part["text"]) + "\n"


# ---------------------------------------------------------------------------
# Writing a Reply in each API's stream


def responses_events(reply: Reply, response_id: str, model: str) -> list[dict]:
    """The Responses API events of one reply: items, then ``response.completed``."""
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 15}
    events: list[dict] = [{"type": "response.created",
                           "response": {"id": response_id, "model": model}}]
    index = 0
    if reply.text:
        item_id = f"msg_{response_id}"
        events.append({"type": "response.output_item.added", "output_index": index, "item": {
            "type": "message", "id": item_id, "role": "assistant", "status": "in_progress",
            "content": []}})
        events.append({"type": "response.output_text.delta", "item_id": item_id,
                       "output_index": index, "content_index": 0, "delta": reply.text})
        events.append({"type": "response.output_item.done", "output_index": index, "item": {
            "type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": reply.text, "annotations": []}]}})
        index += 1
    for tool_call in reply.tool_calls:
        # A tool inside a namespace tool (Codex's multi_agent_v1) is called as "NAMESPACE.NAME".
        namespace, _, name = tool_call.name.rpartition(".")
        item = {"type": "function_call", "id": f"fc_{tool_call.id}", "status": "completed",
                "call_id": tool_call.id, "name": name, "arguments": json.dumps(tool_call.input)}
        if namespace:
            item["namespace"] = namespace
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        index += 1
    events.append({"type": "response.completed", "response": {
        "id": response_id, "model": model, "status": "completed", "usage": usage}})
    return events


def chat_chunks(reply: Reply, chunk_id: str, model: str) -> list[dict]:
    """The ``chat.completion.chunk`` objects of one reply, usage last."""
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": reply.text or ""})]
    for position, tool_call in enumerate(reply.tool_calls):
        chunks.append(chunk({"tool_calls": [{
            "index": position, "id": tool_call.id, "type": "function",
            "function": {"name": tool_call.name, "arguments": json.dumps(tool_call.input)}}]}))
    chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    chunks.append({"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": model, "choices": [],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
    return chunks


def chat_json(reply: Reply, chunk_id: str, model: str) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": json.dumps(c.input)}} for c in reply.tool_calls]
    return {"id": chunk_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if reply.tool_calls
                                         else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


def gemini_response(reply: Reply, model: str) -> dict:
    parts: list[dict] = []
    if reply.text:
        parts.append({"text": reply.text})
    for tool_call in reply.tool_calls:
        parts.append({"functionCall": {"name": tool_call.name, "args": tool_call.input,
                                       "id": tool_call.id}})
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                              "totalTokenCount": 15},
            "modelVersion": model}


# ---------------------------------------------------------------------------
# The server


class ScriptedAPI:
    """One server for the three APIs, answering from a list of :class:`scripted_model.Rule`.

    ``side`` (a callable of the Turn, or a Reply) answers requests that offer
    no tools and that no rule answered: harnesses ask their model for titles,
    routing decisions and "who speaks next" checks, which a test need not script.
    """

    def __init__(self, rules: list[Rule] = (), side: Any = None,  # type: ignore[assignment]
                 model: str = DEFAULT_MODEL) -> None:
        self.rules = list(rules)
        self.side = side
        self.model = model
        self.turns: list[Turn] = []
        self.other: list[str] = []  # requests that were no model turn: "GET /v1/models"
        self.unmatched: list[Turn] = []
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> ScriptedAPI:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="scripted-api", daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "enter the ScriptedAPI first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_scripted_{next(self._ids):04d}"

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds for the recorded turns (checked under the lock,
        again after each answer), or ``timeout`` passes. Safe inside a rule: the wait lets
        the lock go, so other requests are answered meanwhile."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    def transcript(self) -> str:
        with self._lock:
            return "\n".join([t.summary() for t in self.turns] + self.other)

    def answer(self, turn: Turn) -> Reply:
        with self._lock:
            turn.index = len(self.turns)
            self.turns.append(turn)
            found = first_rule(self.rules, turn, self.errors)
            if found is not None:
                turn.rule, reply = found
            else:
                if turn.kind == "side" and self.side is not None:
                    reply = self.side(turn) if callable(self.side) else self.side
                    turn.rule = "side-default"
                else:
                    reply = say("scripted model: no rule matched this request")
                    turn.rule = "unmatched"
                    self.unmatched.append(turn)
            for tool_call in reply.tool_calls:
                tool_call.id = tool_call.id or f"call_scripted_{next(self._ids):04d}"
            turn.reply = reply
            self._lock.notify_all()
            return reply


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: ScriptedAPI

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the requests are recorded instead."""

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip" and raw:
            import gzip

            raw = gzip.decompress(raw)
        elif self.headers.get("Content-Encoding") == "zstd" and raw:
            raise ValueError("zstd request bodies are not supported")
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, dict | str]]) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            payload = data if isinstance(data, str) else json.dumps(data)
            chunk = (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"
            raw = chunk.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _turn(self, api: str, body: Any) -> Turn:
        return Turn(index=-1, api=api, path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body if isinstance(body, dict) else {})

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?", 1)[0].rstrip("/")
        model = str((body or {}).get("model") or self.api.model)
        if path.endswith("/responses"):
            turn = self._turn("responses", body)
            read_responses(turn)
            reply = self.api.answer(turn)
            rid = self.api.new_id("resp")
            self._sse([(e["type"], e) for e in responses_events(reply, rid, model)])
        elif path.endswith("/chat/completions"):
            turn = self._turn("chat", body)
            read_chat(turn)
            reply = self.api.answer(turn)
            cid = self.api.new_id("chatcmpl")
            if body.get("stream"):
                self._sse([(None, c) for c in chat_chunks(reply, cid, model)] + [(None, "[DONE]")])
            else:
                self._json(HTTPStatus.OK, chat_json(reply, cid, model))
        elif ":countTokens" in path:
            self.api.other.append(f"POST {path}")
            self._json(HTTPStatus.OK, {"totalTokens": max(1, len(json.dumps(body)) // 4)})
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            turn = self._turn("gemini", body)
            read_gemini(turn)
            reply = self.api.answer(turn)
            gmodel = path.rsplit("/", 1)[-1].split(":", 1)[0]
            response = gemini_response(reply, gmodel)
            if ":streamGenerateContent" in path:
                self._sse([(None, response)])
            else:
                self._json(HTTPStatus.OK, response)
        else:
            self.api.other.append(f"POST {path}")
            self._json(HTTPStatus.NOT_FOUND, {"error": {"message": f"no route {path}"}})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        self.api.other.append(f"GET {path}")
        if path.endswith("/models"):
            self._json(HTTPStatus.OK, {"object": "list", "data": [
                {"id": self.api.model, "object": "model", "created": 0, "owned_by": "scripted"}],
                "models": []})
            return
        self._json(HTTPStatus.NOT_FOUND, {"error": {"message": f"no route {path}"}})
