"""An OpenAI-compatible chat server on loopback, for tests that drive the real LiteLLM HTTP path.

It runs in a background thread (one thread per request), so a slow answer never blocks other
requests and both sync tests (a CLI in a subprocess) and async tests can use it.

    with FakeLLM() as llm:
        model = LiteLLMChatModel(model="openai/fake", api_base=llm.url, ...)
        llm.fail(500, times=1)          # the next request gets a 500
        llm.delay_s = 10                # answers take 10 s from now on
        llm.set_responder(lambda request: "fixed answer")
        llm.requests[-1]["messages"]    # every request body, as JSON
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest

Responder = Callable[[dict[str, Any]], str]

_CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
_MODELS_PATHS = ("/v1/models", "/models")
_PASSAGE_LINE = re.compile(r"^[ \t]*\[1\][ \t:.-]*(.*)$", re.MULTILINE)
# A passage ends at the next numbered passage or at a blank line.
_PASSAGE_END = re.compile(r"^[ \t]*(?:\[\d+\]|$)", re.MULTILINE)
_FOLLOW_UP_LINE = re.compile(
    r"^[ \t]*(?:follow[- ]?up(?:[ \t]+question)?|question)[ \t]*:[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE
)
NOT_FOUND_ANSWER = "I could not find this in the wiki."
# Error bodies as OpenAI sends them: clients (LiteLLM) classify errors by these strings, not only by status.
_ERROR_SHAPES: dict[int, dict[str, str]] = {
    401: {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    },
    404: {"message": "The model does not exist", "type": "invalid_request_error", "code": "model_not_found"},
    429: {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"},
}


def content_text(message: dict[str, Any]) -> str:
    """The text of a chat message, whether `content` is a string or a list of OpenAI content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _collapse(text: str) -> str:
    return " ".join(text.split())


def last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message)
    return ""


def default_responder(request: dict[str, Any]) -> str:
    """A deterministic answer built from the prompt, shaped like what a grounded model would say.

    - A condense request (any message mentions "standalone") gets "STANDALONE: <follow-up>", where the
      follow-up is the last "Follow-up: ..." / "Question: ..." line of the last user message, or that
      whole message.
    - A prompt with numbered passages ("[1] ..." at the start of a line) gets an answer quoting the start
      of passage 1 (up to the next "[n]" or blank line) and citing it: "According to the wiki, <passage 1 start> [1]."
    - Anything else gets NOT_FOUND_ANSWER.
    """
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    everything = "\n".join(content_text(m) for m in messages)
    if "standalone" in everything.lower():
        question = last_user_text(request)
        follow_ups = _FOLLOW_UP_LINE.findall(question)
        return "STANDALONE: " + _collapse(follow_ups[-1] if follow_ups else question)
    # The last "[1]" line: instructions such as "cite as [1]" come before the passages.
    passage = ""
    for text in map(content_text, messages):
        found = list(_PASSAGE_LINE.finditer(text))
        if found:
            rest = text[found[-1].start(1) :]
            # From the second line on: the "[1]" line itself may hold only a title, or nothing.
            following = _PASSAGE_END.search(rest, rest.find("\n") + 1) if "\n" in rest else None
            passage = _collapse(rest[: following.start()] if following else rest)
    if passage:
        return f"According to the wiki, {passage[:160].rstrip(' .')} [1]."
    return NOT_FOUND_ANSWER


@dataclass
class _Failure:
    status: int
    remaining: int
    model: str | None
    retry_after_s: float | None


def _count_tokens(text: str) -> int:
    return len(text.split())


class FakeLLM:
    """An OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 and a random free port."""

    def __init__(self, *, responder: Responder | None = None, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        # Streamed answers: the wait before each word after the first, and an error event after that
        # many words (a model dying mid-answer).
        self.word_interval_s = 0.0
        self.cut_stream_after: int | None = None
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        # Streamed answers: each request with the moment (time.perf_counter) its first word was sent.
        self.first_words: list[tuple[dict[str, Any], float]] = []
        self._responder: Responder = responder or default_responder
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # Lifecycle
    def start(self) -> FakeLLM:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        # Requests still sleeping in `delay_s` must not hold up close(); `_stopping` wakes them anyway.
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # What tests configure
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeLLM is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The api_base to give an OpenAI-compatible client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def set_responder(self, responder: Responder | None) -> None:
        """Answer with `responder(request_json)` from now on; None restores the default responder."""
        with self._lock:
            self._responder = responder or default_responder

    def fail(
        self,
        status: int = 500,
        times: int = 1,
        *,
        model: str | None = None,
        retry_after_s: float | None = 0.05,
    ) -> None:
        """The next `times` requests (for `model` only, when given) get an OpenAI-style error `status`.

        `retry_after_s` is sent as `retry-after-ms`, which the OpenAI client honours: it keeps retry tests
        fast. None sends no retry hint.
        """
        with self._lock:
            self._failures.append(_Failure(status, times, model, retry_after_s))

    # What tests read
    @property
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            if not self.requests:
                raise AssertionError("FakeLLM received no request")
            return self.requests[-1]

    @property
    def last_messages(self) -> list[dict[str, Any]]:
        messages = self.last_request.get("messages")
        return list(messages) if isinstance(messages, list) else []

    @property
    def models_seen(self) -> list[str]:
        with self._lock:
            return [str(r.get("model", "")) for r in self.requests]

    # Called from handler threads
    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)

    def _take_failure(self, model: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and failure.model in (None, model):
                    failure.remaining -= 1
                    return failure
            return None

    def _answer(self, body: dict[str, Any]) -> str:
        with self._lock:
            responder = self._responder
        return responder(body)

    def _wait_delay(self) -> None:
        if self.delay_s > 0:
            self._stopping.wait(self.delay_s)

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"chatcmpl-fake-{self._counter}"


def _usage(body: dict[str, Any], answer: str) -> dict[str, int]:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt = sum(_count_tokens(content_text(m)) for m in messages) + 3 * len(messages)
    completion = _count_tokens(answer)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _make_handler(llm: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            error: dict[str, object] = {"message": message, "type": "server_error", "code": None}
            if status in _ERROR_SHAPES:
                error = {
                    **_ERROR_SHAPES[status],
                    "message": f"{_ERROR_SHAPES[status]['message']} ({message})",
                }
            elif 400 <= status < 500:
                error["type"] = "invalid_request_error"
            self._send_json(status, {"error": error}, headers)

        def do_GET(self) -> None:
            if self.path.split("?")[0] in _MODELS_PATHS:
                self._send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._send_error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            # A client that gave up (timeout) has nobody left to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._chat()

        def _chat(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.split("?")[0] not in _CHAT_PATHS:
                self._send_error(404, f"no route {self.path}")
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._send_error(400, "body is not JSON")
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                self._send_error(400, "'messages' is required")
                return
            llm._record(body, {k.lower(): v for k, v in self.headers.items()})
            model = str(body.get("model", ""))
            failure = llm._take_failure(model)
            if failure is not None:
                hint = (
                    {}
                    if failure.retry_after_s is None
                    else {"retry-after-ms": str(int(failure.retry_after_s * 1000))}
                )
                self._send_error(failure.status, f"fake failure {failure.status} for model {model}", hint)
                return
            llm._wait_delay()
            try:
                answer = llm._answer(body)
            except Exception as exc:
                self._send_error(500, f"responder failed: {exc!r}")
                return
            if body.get("stream"):
                self._stream(body, model, answer)
                return
            self._send_json(
                200,
                {
                    "id": llm._next_id(),
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _usage(body, answer),
                },
            )

        def _stream(self, body: dict[str, Any], model: str, answer: str) -> None:
            completion_id = llm._next_id()
            created = int(time.time())

            def chunk(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
                return {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            words = answer.split(" ")
            events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""}, None)]
            events += [chunk({"content": w if i == 0 else " " + w}, None) for i, w in enumerate(words)]
            events.append(chunk({}, "stop"))
            options = body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                events.append({**chunk({}, None), "choices": [], "usage": _usage(body, answer)})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for number, event in enumerate(events):
                if llm.cut_stream_after is not None and number > llm.cut_stream_after:
                    # What OpenAI sends when generation fails mid-answer: an error event, then the end.
                    failure = {"error": {"message": "the model crashed mid-answer", "type": "server_error"}}
                    self.wfile.write(f"data: {json.dumps(failure)}\n\n".encode())
                    self.wfile.flush()
                    return
                if number > 1 and llm.word_interval_s > 0:
                    llm._stopping.wait(llm.word_interval_s)
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                if number == 1:
                    with llm._lock:
                        llm.first_words.append((body, time.perf_counter()))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A fresh FakeLLM per test: no recorded request or scripted failure leaks between tests."""
    with FakeLLM() as llm:
        yield llm
