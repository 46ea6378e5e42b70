"""Helpers for the agent tests: real service processes (tests/agent/worker.py) and waits."""

from __future__ import annotations

import json
import queue
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


from livefix.agent.framing import encode

WORKER = Path(__file__).with_name("worker.py")
WAIT = 60.0  # generous: the machine is shared; tests wait on output, never on the clock

APP = '''\
def price(n):
    return n * 10


def total(n):
    return price(n) + 1
'''






class Worker:
    """A running service process (tests/agent/worker.py) and its stdout lines."""

    def __init__(self, app_dir: Path, options: dict[str, Any], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(app_dir), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._drain, daemon=True)
        self._stderr_thread.start()
        hello = self.read()
        self.address: str = hello["ready"]
        self.pid: int = hello["pid"]
        self.catch_up: list[dict[str, Any]] = hello["catchUp"]
        self.listening: bool = hello.get("listening", True)

    @staticmethod
    def _pump(stream: Any, into: "queue.Queue[str | None]") -> None:
        for line in stream:
            into.put(line)
        into.put(None)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def read(self) -> Any:
        try:
            line = self.lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"worker {self.proc.pid} said nothing for {WAIT} s; stderr:\n{''.join(self.stderr)}")
        if line is None:
            self.proc.wait(timeout=WAIT)
            self._stderr_thread.join(timeout=WAIT)  # all of stderr, for the message
            raise AssertionError(f"worker {self.proc.pid} exited ({self.proc.returncode}); stderr:\n{''.join(self.stderr)}")
        return json.loads(line)

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def call(self) -> Any:
        """What the service's users see: shop.total(2)."""
        return self.ask("call")

    def history(self) -> Any:
        return self.ask("history")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ask_exit(self) -> int:
        """End the service cleanly (its agent closes); its exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("exit\n")
        self.proc.stdin.flush()
        return self.proc.wait(WAIT)

    def kill(self) -> None:
        stop_process(self.proc)


def stop_process(proc: "subprocess.Popen[str]") -> None:
    """Kill a test's service process (if still running), reap it and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=WAIT)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def token(runtime: Path) -> str:
    """The per-user token file the first agent created."""
    return (runtime / "token").read_text().strip()


def garbage(rng: random.Random) -> bytes:
    """Valid frames, broken frames and noise, spliced together."""
    pieces = []
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.3:
            pieces.append(encode({"seq": rng.randint(-5, 10**12), "type": "request", "command": "x" * rng.randint(0, 50)}))
        elif choice < 0.5:
            length = rng.choice([0, 1, 5, -1, 2**31, 2**63, rng.randint(0, 300)])
            pieces.append(f"Content-Length: {length}\r\n\r\n".encode())
        elif choice < 0.7:
            good = encode({"a": [1, 2, {"b": None}]})
            cut = rng.randint(0, len(good))
            pieces.append(good[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 20))) + good[cut:])
        elif choice < 0.85:
            pieces.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 400))))
        else:
            pieces.append(rng.choice([b"\r\n", b"\r\n\r\n", b":", b"Content-Length:", b"{", b"}"]) * rng.randint(1, 40))
    return b"".join(pieces)
