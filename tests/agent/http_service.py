"""A real HTTP service for the live-evidence tests: stdlib ThreadingHTTPServer + livefix.listen().

Run as `python http_service.py APP_DIR`. APP_DIR holds the app module `shop` (written by the
test) whose `handle(order_id)` answers `GET /order/<id>`: its result as JSON with status 200,
or status 500 when it raises (as a web framework's error handler would). Keep-alive
(HTTP/1.1), so a client's connection is served by one long-lived thread, started before
livefix watches anything. Prints one JSON line `{"port", "address", "pid"}` once it serves,
then runs until stdin closes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, sys.argv[1])

import shop  # noqa: E402

import livefix  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        prefix = "/order/"
        if not self.path.startswith(prefix) or not self.path[len(prefix):].isdigit():
            self._answer(404, {"error": "not found"})
            return
        try:
            result = shop.handle(int(self.path[len(prefix):]))
        except Exception as exc:  # the service's error handler: the client gets a 500
            self._answer(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._answer(200, {"result": result})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would only fill the test's pipe


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
agent = livefix.listen()
threading.Thread(target=server.serve_forever, name="http-accept", daemon=True).start()
print(json.dumps({"port": server.server_address[1], "address": str(agent.address), "pid": os.getpid()}), flush=True)

sys.stdin.read()  # until the test closes stdin (or kills us)
server.shutdown()
agent.close()
