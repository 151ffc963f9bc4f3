"""A local webhook receiver on 127.0.0.1 for the notification tests: it records every POST and
answers as told (`fail_first` 500s first, `hang` never answers until it is stopped)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    fail_first: int = 0
    hang: bool = False
    posts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    attempts: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    got: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self.got:
            return self.got.wait_for(lambda: len(self.posts) >= n, timeout)


@contextmanager
def receiver(fail_first: int = 0, hang: bool = False,
             path: str = "/hooks/T0001/B0002/s3cr3tT0ken?token=qu3rys3cret") -> Iterator[Receiver]:
    rec = Receiver(fail_first, hang)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.got:
                rec.attempts += 1
                attempt = rec.attempts
            if rec.hang:
                rec.released.wait(30)
                return
            if attempt <= rec.fail_first:
                self.send_response(500)
                self.end_headers()
                return
            with rec.got:
                rec.posts.append(json.loads(data))
                rec.paths.append(self.path)
                rec.got.notify_all()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_port}{path}"
    try:
        yield rec
    finally:
        rec.released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
