"""A real OpenAI-compatible HTTP server on loopback with scripted replies and injectable faults.

Tests and benchmarks start and stop it themselves::

    with LoopbackLLMServer() as server:
        server.push("```python\\ndef compute_reward(...): ...\\n```", Fault.rate_limit(retry_after=0.1))
        client = LLMClient(LLMSettings(base_url=server.url, model="test"))
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Fault", "LoopbackLLMServer"]


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering one request."""

    kind: str
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0

    @staticmethod
    def rate_limit(retry_after: float = 0.05) -> Fault:
        return Fault("status", 429, retry_after=retry_after)

    @staticmethod
    def server_error(status: int = 500) -> Fault:
        return Fault("status", status)

    @staticmethod
    def not_found() -> Fault:
        return Fault("status", 404)

    @staticmethod
    def unauthorized() -> Fault:
        return Fault("status", 401)

    @staticmethod
    def hang(seconds: float = 5.0) -> Fault:
        """Answer nothing for ``seconds`` (past the client's timeout), then close."""
        return Fault("hang", seconds=seconds)

    @staticmethod
    def drop() -> Fault:
        """Close the connection without a reply."""
        return Fault("drop")

    @staticmethod
    def malformed() -> Fault:
        return Fault("malformed")

    @staticmethod
    def empty_choices() -> Fault:
        return Fault("empty")


Reply = "str | list[str] | Fault"


class LoopbackLLMServer:
    """A chat-completions server on 127.0.0.1 (a free port).

    Replies come from a queue (:meth:`push`: a ``str`` is one choice, a ``list`` the choices of
    one request, a :class:`Fault` replaces one request's answer) or from ``responder(request)``.
    ``supports_n=False`` answers one choice whatever ``n`` asks, like servers without ``n``.
    ``latency_s`` delays every answer. ``requests`` records every request body received.
    """

    def __init__(
        self,
        responder: Callable[[dict[str, Any]], Any] | None = None,
        supports_n: bool = True,
        latency_s: float = 0.0,
    ):
        self.responder = responder
        self.supports_n = supports_n
        self.latency_s = latency_s
        self.requests: list[dict[str, Any]] = []
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -----------------------------------------------------------------------------

    def push(self, *replies: Any) -> None:
        with self._lock:
            self._queue.extend(replies)

    def _next(self, request: dict[str, Any]) -> Any:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                first = self._queue.popleft()
                if isinstance(first, Fault | list) or not self.supports_n:
                    return first
                n = int(request.get("n") or 1)
                texts = [first]
                while len(texts) < n and self._queue and isinstance(self._queue[0], str):
                    texts.append(self._queue.popleft())
                return texts
        if self.responder is not None:
            return self.responder(request)
        return Fault("status", 500)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LoopbackLLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(
                        200,
                        json.dumps(
                            {
                                "object": "list",
                                "data": [
                                    {
                                        "id": "loopback",
                                        "object": "model",
                                        "created": 0,
                                        "owned_by": "rewardgen",
                                    }
                                ],
                            }
                        ).encode(),
                    )
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, b'{"error": {"message": "bad json"}}')
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "unknown path"}}')
                    return
                reply = server._next(request)
                if server.latency_s:
                    time.sleep(server.latency_s)
                if isinstance(reply, Fault):
                    self._fault(reply)
                    return
                texts = [reply] if isinstance(reply, str) else list(reply)
                if not server.supports_n:
                    texts = texts[:1]
                self._send(200, json.dumps(_completion(request, texts)).encode())

            def _fault(self, fault: Fault) -> None:
                if fault.kind == "status":
                    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                    message = {
                        404: "The model does not exist",
                        401: "Incorrect API key provided",
                        429: "Rate limit reached",
                    }.get(fault.status, "internal error")
                    self._send(fault.status, json.dumps({"error": {"message": message}}).encode(), headers)
                elif fault.kind == "hang":
                    time.sleep(fault.seconds)
                    self.close_connection = True
                elif fault.kind == "drop":
                    self.close_connection = True
                    self.connection.close()
                elif fault.kind == "malformed":
                    self._send(200, b'{"id": "x", "choices": [{"message": ')
                elif fault.kind == "empty":
                    self._send(
                        200,
                        json.dumps(
                            {
                                "id": "x",
                                "object": "chat.completion",
                                "created": 0,
                                "model": "loopback",
                                "choices": [],
                            }
                        ).encode(),
                    )

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # many clients connect at once under high concurrency
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="loopback-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _completion(request: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4 + 1
    completion = sum(len(t) for t in texts) // 4 + 1
    return {
        "id": f"chatcmpl-loopback-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "loopback"),
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
