"""A loopback Logfire/OTLP endpoint (POST /v1/traces, /v1/metrics, /v1/logs; GET /v1/info)
that the real logfire SDK exports to when LOGFIRE_BASE_URL points at it. It decodes the
trace exports so tests can ask which spans arrived and with which credentials."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from heron.testing.http import JsonHandler, start_server, stop_server


@dataclass
class Export:
    path: str
    authorization: str
    body: bytes


@dataclass
class FakeLogfire:
    """Start with `with FakeLogfire() as fake:`; set LOGFIRE_BASE_URL to `fake.base_url`."""

    exports: list[Export] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def span_names(self) -> list[str]:
        """Names of every exported span, in arrival order."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        names: list[str] = []
        with self._lock:
            traces = [e for e in self.exports if e.path == "/v1/traces"]
        for export in traces:
            request = ExportTraceServiceRequest()
            request.ParseFromString(export.body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    names.extend(span.name for span in scope.spans)
        return names

    def authorizations(self) -> set[str]:
        with self._lock:
            return {export.authorization for export in self.exports}

    def __enter__(self) -> FakeLogfire:
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path == "/v1/info":
                    self.reply(200, {"project_name": "heron", "project_url": fake.base_url})
                else:
                    self.reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with fake._lock:
                    fake.exports.append(
                        Export(self.path, self.headers.get("Authorization", ""), body)
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = start_server(Handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        stop_server(self._server)
        self._server = None
