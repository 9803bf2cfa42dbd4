"""A product's event receiver for the tests: a local HTTP server that records what reached it and
answers the statuses it is told to (200 unless told otherwise)."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class EventReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []  # the next statuses to answer, in order; then 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and the client's
            # delayed ACK stall every keep-alive request by ~40 ms.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                answer = b'{"ok": true}' if status < 300 else b"upstream trouble: " + b"x" * 1000
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/billing"

    def events(self) -> list[dict]:
        return [r.json for r in self.received]


@pytest.fixture
def receiver():
    server = EventReceiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
