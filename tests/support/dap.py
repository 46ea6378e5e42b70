"""A small, reusable DAP client for tests and benchmarks, over stdio or TCP.

Connects a test to a real debug adapter (livefix's `python -m livefix.adapter`, or
debugpy's own) and to nothing else: Content-Length framing, one reader thread, responses
matched by `request_seq`, every event kept in order and waited for by predicate with a
timeout (no sleeps). Reverse requests (`runInTerminal`, `startDebugging`) are refused, so
debugpy reports child processes with its `debugpyAttach` event instead.

    with DapClient.stdio([sys.executable, "-m", "livefix.adapter"]) as dap:
        dap.launch({"program": path, "console": "internalConsole"})
        dap.wait_output("ready")
        body = dap.call("livefix/apply", {"changes": [...]})

Also: `find_marker(path, name)`, the line of the `# @name` comment in a debuggee script.

Import it with `tests/` on `sys.path` (`from support.dap import DapClient`), as
tests/adapter/adapter_support.py does. Start adapters with a `cwd` outside the source
tree: `python -m` puts the cwd first on `sys.path`, and the source tree's `livefix/` lacks
the installed `livefix.adapter`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

DEFAULT_TIMEOUT = 30.0

Message = dict[str, Any]
EventPredicate = Callable[[Message], bool]


class DapError(AssertionError):
    """A request failed (`success: false`) where the caller expected success."""

    def __init__(self, response: Message) -> None:
        super().__init__(f"{response.get('command')} failed: {response.get('message')} {response.get('body')}")
        self.response = response
        self.body = response.get("body") or {}


class DapTimeout(AssertionError):
    """Nothing matching arrived in time (the message says what was awaited)."""


def find_marker(path: str | os.PathLike[str], name: str) -> int:
    """1-based line of the `# @name` marker comment in `path` (exactly one must exist)."""
    pattern = re.compile(r"#\s*@" + re.escape(name) + r"\b")
    lines = [n for n, text in enumerate(Path(path).read_text().splitlines(), 1) if pattern.search(text)]
    if len(lines) != 1:
        raise LookupError(f"marker @{name} found {len(lines)} times in {path}")
    return lines[0]


class DapClient:
    """One DAP connection. Thread-safe for sending; events and responses arrive on a reader thread."""

    def __init__(self, reader: Any, writer: Any, process: subprocess.Popen[bytes] | None = None, name: str = "dap") -> None:
        self._reader = reader
        self._writer = writer
        self.process = process
        self.name = name
        self._seq = itertools.count(1)
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._responses: dict[int, Message] = {}
        self.events: list[Message] = []
        self.closed = False
        self._thread = threading.Thread(target=self._read_loop, name=f"{name} reader", daemon=True)
        self._thread.start()

    # -- construction --------------------------------------------------------------------

    @classmethod
    def stdio(
        cls, argv: list[str], env: Mapping[str, str] | None = None, cwd: str | None = None, name: str = "adapter"
    ) -> "DapClient":
        """Start an adapter subprocess and speak DAP over its stdin/stdout."""
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd,
        )
        return cls(process.stdout, process.stdin, process, name=name)

    @classmethod
    def tcp(cls, host: str, port: int, timeout: float = DEFAULT_TIMEOUT, name: str = "adapter") -> "DapClient":
        """Connect to an adapter listening on TCP (wait for it to listen before calling this)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rwb", buffering=0)
        client = cls(stream, stream, None, name=name)
        client._socket = sock  # type: ignore[attr-defined]
        return client

    def __enter__(self) -> "DapClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- wire ----------------------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            while True:
                message = self._read_message()
                if message is None:
                    break
                self._dispatch(message)
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def _read_message(self) -> Message | None:
        length = None
        while True:
            line = self._reader.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise ValueError("DAP message without Content-Length")
        data = b""
        while len(data) < length:
            chunk = self._reader.read(length - len(data))
            if not chunk:
                return None
            data += chunk
        return json.loads(data.decode("utf-8"))

    def _dispatch(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "request":  # reverse request: refuse, so debugpy falls back to events
            self._write({
                "type": "response", "request_seq": message["seq"], "command": message.get("command"),
                "success": False, "message": "not supported by the test client",
            })
            return
        with self._cond:
            if kind == "response":
                self._responses[message["request_seq"]] = message
            elif kind == "event":
                self.events.append(message)
            self._cond.notify_all()

    def _write(self, message: Message) -> None:
        data = json.dumps(message).encode("utf-8")
        with self._send_lock:
            self._writer.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
            self._writer.flush()

    # -- requests ------------------------------------------------------------------------

    def send(self, command: str, arguments: Mapping[str, Any] | None = None) -> int:
        """Send a request without waiting; returns its seq (see `response`)."""
        seq = next(self._seq)
        message: Message = {"type": "request", "seq": seq, "command": command}
        if arguments is not None:
            message["arguments"] = dict(arguments)
        self._write(message)
        return seq

    def response(self, seq: int, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """The response to request `seq` (success or not)."""
        with self._cond:
            if not self._cond.wait_for(lambda: seq in self._responses or self.closed, timeout):
                raise DapTimeout(f"{self.name}: no response to request {seq} within {timeout}s")
            if seq not in self._responses:
                raise DapTimeout(f"{self.name}: connection closed before the response to request {seq}")
            return self._responses.pop(seq)

    def request(self, command: str, arguments: Mapping[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """Send a request and return its whole response message (success or not)."""
        return self.response(self.send(command, arguments), timeout)

    def call(self, command: str, arguments: Mapping[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send a request and return its body; raise DapError when it failed."""
        response = self.request(command, arguments, timeout)
        if not response.get("success"):
            raise DapError(response)
        return response.get("body") or {}

    def fail(self, command: str, arguments: Mapping[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """Send a request that must fail; return the error response (AssertionError if it succeeded)."""
        response = self.request(command, arguments, timeout)
        if response.get("success"):
            raise AssertionError(f"{command} unexpectedly succeeded: {response.get('body')}")
        return response

    # -- events --------------------------------------------------------------------------

    def mark(self) -> int:
        """An index into `events`: pass it as `since` to wait only for later events."""
        with self._cond:
            return len(self.events)

    def wait_event(
        self, event: str | None = None, predicate: EventPredicate | None = None,
        timeout: float = DEFAULT_TIMEOUT, since: int = 0,
    ) -> Message:
        """The first event (at index >= since) named `event` and matching `predicate`."""
        def find() -> Message | None:
            for message in self.events[since:]:
                if (event is None or message.get("event") == event) and (predicate is None or predicate(message)):
                    return message
            return None

        with self._cond:
            found = self._cond.wait_for(lambda: find() is not None or self.closed, timeout)
            match = find()
        if match is None:
            what = f"event {event!r}" + (" matching the predicate" if predicate else "")
            raise DapTimeout(f"{self.name}: no {what} within {timeout}s" + ("" if found else "") + self._recent_output())
        return match

    def output(self, since: int = 0, categories: Iterable[str] = ("stdout", "stderr", "console")) -> str:
        """All `output` event text received so far (from index `since`)."""
        wanted = set(categories)
        with self._cond:
            return "".join(
                e["body"].get("output", "") for e in self.events[since:]
                if e.get("event") == "output" and e.get("body", {}).get("category") in wanted
            )

    def wait_output(
        self, pattern: str, timeout: float = DEFAULT_TIMEOUT, since: int = 0,
        categories: Iterable[str] = ("stdout", "stderr", "console"),
    ) -> re.Match[str]:
        """Wait until the output text received since `since` matches the regex `pattern`."""
        regex = re.compile(pattern, re.MULTILINE)
        with self._cond:
            self._cond.wait_for(lambda: regex.search(self.output(since, categories)) or self.closed, timeout)
            match = regex.search(self.output(since, categories))
        if not match:
            raise DapTimeout(f"{self.name}: output never matched {pattern!r} within {timeout}s" + self._recent_output())
        return match

    def _recent_output(self) -> str:
        return "\n--- output so far ---\n" + self.output()[-2000:]

    # -- session helpers -------------------------------------------------------------------

    def initialize(self, **extra: Any) -> Any:
        arguments = {
            "clientID": "livefix-tests", "adapterID": "python", "pathFormat": "path",
            "linesStartAt1": True, "columnsStartAt1": True, **extra,
        }
        return self.call("initialize", arguments)

    def start(
        self, command: str, arguments: Mapping[str, Any],
        breakpoints: Mapping[str, Iterable[int]] | None = None, timeout: float = DEFAULT_TIMEOUT,
    ) -> Message:
        """initialize, launch/attach, set breakpoints, configurationDone; the start response."""
        self.initialize()
        start_seq = self.send(command, arguments)
        # debugpy answers launch/attach only after configurationDone, but fails it early.
        with self._cond:
            self._cond.wait_for(
                lambda: any(e.get("event") == "initialized" for e in self.events) or start_seq in self._responses
                or self.closed, timeout,
            )
            early = self._responses.get(start_seq)
        if early is not None:
            return self.response(start_seq)
        for path, lines in (breakpoints or {}).items():
            self.set_breakpoints(path, lines)
        self.call("configurationDone", timeout=timeout)
        return self.response(start_seq, timeout)

    def launch(self, arguments: Mapping[str, Any], **kwargs: Any) -> Message:
        response = self.start("launch", arguments, **kwargs)
        if not response.get("success"):
            raise DapError(response)
        return response

    def attach(self, arguments: Mapping[str, Any], **kwargs: Any) -> Message:
        response = self.start("attach", arguments, **kwargs)
        if not response.get("success"):
            raise DapError(response)
        return response

    def set_breakpoints(self, path: str, lines: Iterable[int]) -> Any:
        return self.call("setBreakpoints", {
            "source": {"path": str(path)}, "breakpoints": [{"line": line} for line in lines],
        })

    def wait_stopped(self, timeout: float = DEFAULT_TIMEOUT, since: int = 0) -> Message:
        return self.wait_event("stopped", timeout=timeout, since=since)

    def top_frame(self, thread_id: int) -> Message:
        return self.call("stackTrace", {"threadId": thread_id, "levels": 1})["stackFrames"][0]

    def threads(self) -> list[Message]:
        return self.call("threads")["threads"]

    # -- teardown ------------------------------------------------------------------------

    def disconnect(self, terminate: bool | None = None, timeout: float = 10.0) -> None:
        """Send `disconnect` (terminateDebuggee as given) and wait for its response if possible."""
        if self.closed:
            return
        arguments = {} if terminate is None else {"terminateDebuggee": terminate}
        try:
            self.request("disconnect", arguments, timeout=timeout)
        except (DapTimeout, OSError, ValueError):
            pass

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect (terminating a launched debuggee) and make sure the adapter process is gone."""
        if not self.closed:
            self.disconnect(terminate=True if self.process is not None else None, timeout=timeout)
        for stream in (self._writer, self._reader):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        sock = getattr(self, "_socket", None)
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._thread.join(timeout)
