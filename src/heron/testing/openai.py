"""A loopback OpenAI Embeddings API (POST /v1/embeddings) that the real SDK talks to.

Vectors are deterministic (heron's hashing embedder), requests are recorded, and
failures can be scripted: `fail_next(429, retry_after=0)` answers the next request with
that status before serving normally again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from heron.docsearch.embedding import HashingEmbedder
from heron.testing.http import JsonHandler, start_server, stop_server

DEFAULT_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


@dataclass
class FakeOpenAI:
    """Start with `with FakeOpenAI() as fake:`; point the SDK at `fake.base_url`."""

    api_key: str = "sk-test"
    requests: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[tuple[int, float | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, status: int, retry_after: float | None = None) -> None:
        with self._lock:
            self._failures.append((status, retry_after))

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), **body})
                with fake._lock:
                    failure = fake._failures.pop(0) if fake._failures else None
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self.reply(401, {"error": {"message": "Incorrect API key provided"}})
                elif failure is not None:
                    status, retry_after = failure
                    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
                    self.reply(status, {"error": {"message": "scripted failure"}}, headers)
                elif self.path != "/v1/embeddings":
                    self.reply(404, {"error": {"message": f"no route {self.path}"}})
                else:
                    self.reply(200, fake._embeddings(body))

        self._server = start_server(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_server(self._server)

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        model = str(body["model"])
        dims = int(body.get("dimensions") or DEFAULT_DIMENSIONS.get(model, 1536))
        vectors = HashingEmbedder(dims).embed([str(text) for text in inputs])
        return {
            "object": "list",
            "model": model,
            "data": [
                {"object": "embedding", "index": i, "embedding": vector}
                for i, vector in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }
