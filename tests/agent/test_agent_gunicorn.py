"""The fleet on a real pre-fork server: gunicorn (sync and gthread workers) serving a Flask
app, `livefix.listen(service=...)` in gunicorn's `post_fork` as the README says, with and
without `preload_app`, under load from four client threads. Workers killed around an
apply and respawned by gunicorn must end on the fleet's code, with no failed request.

With `preload_app = False` (gunicorn's default) a worker calls listen() before it imports
the app: the fleet's change waits for that import (engine.pending) and applies there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("gunicorn")
pytest.importorskip("flask")

from livefix.agent.client import default_token  # noqa: E402
from livefix.agent.fleet import Fleet  # noqa: E402
from livefix.agent.registry import Registry  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(sys.platform == "win32", reason="gunicorn is POSIX only")]

WAIT = 60.0
WORKERS = 4

PRICING = "def price(n):\n    return n * 10\n"
FIX = "def price(n):\n    return n * 100\n"
CHANGE = {"module": "pricing", "qualname": "price", "source": FIX}

APP = """\
import os

from flask import Flask

import pricing

app = Flask(__name__)


@app.route("/")
def index():
    return f"{pricing.price(2)} {os.getpid()}"
"""

CONFIG = """\
import livefix

bind = "127.0.0.1:{port}"
workers = {workers}
worker_class = "{worker_class}"
threads = {threads}
preload_app = {preload}
graceful_timeout = 5


def post_fork(server, worker):
    livefix.listen(service="shop")
"""


class Server:
    """A gunicorn master and its workers, with client threads keeping it busy."""

    def __init__(self, directory: Path, runtime: str, worker_class: str, preload: bool) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        (directory / "gunicorn.conf.py").write_text(CONFIG.format(
            port=self.port, workers=WORKERS, worker_class=worker_class, preload=preload,
            threads=2 if worker_class == "gthread" else 1))  # threads > 1 turns sync into gthread
        self.env = {**os.environ, "LIVEFIX_RUNTIME_DIR": runtime}
        self.env.pop("LIVEFIX_TOKEN", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"], cwd=directory, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.answers: list[tuple[int, str]] = []  # (HTTP status or 0 for a failure, body)
        self._stop = threading.Event()
        self._load: list[threading.Thread] = []

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def get(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=WAIT) as response:
                return response.status, response.read().decode()
        except Exception as error:  # noqa: BLE001 - every failed request counts (http.client's too)
            return 0, f"{type(error).__name__}: {error}"

    def start_load(self) -> None:
        def client() -> None:
            while not self._stop.is_set():
                self.answers.append(self.get())

        self._load = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for thread in self._load:
            thread.start()

    def stop_load(self) -> list[tuple[int, str]]:
        self._stop.set()
        for thread in self._load:
            thread.join(WAIT)
        return self.answers

    def close(self) -> None:
        self._stop.set()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()


def until(condition: Any, what: str, server: Server) -> Any:
    """Wait for a state of the real processes (a condition variable would need their help)."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            value = condition()
            if value:
                return value
            deadline.wait(0.05)
    finally:
        timer.cancel()
    raise AssertionError(f"{what} did not happen within {WAIT} s; gunicorn said:\n{''.join(server.log[-40:])}")


def members(runtime: str) -> set[int]:
    previous = os.environ.get("LIVEFIX_RUNTIME_DIR")
    os.environ["LIVEFIX_RUNTIME_DIR"] = runtime
    try:
        return {member.pid for member in Registry("shop").members()}
    finally:
        if previous is None:
            os.environ.pop("LIVEFIX_RUNTIME_DIR", None)
        else:
            os.environ["LIVEFIX_RUNTIME_DIR"] = previous


def every_worker_answers(server: Server, runtime: str, value: str) -> bool:
    """Every registered worker has answered `value` at least once since this was asked."""
    live = members(runtime)
    seen: set[int] = set()
    for _ in range(40 * WORKERS):
        status, body = server.get()
        if status == 200 and body.split()[0] == value:
            seen.add(int(body.split()[1]))
        if live <= seen:
            return True
    return False


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="lf-", dir="/tmp")
    monkeypatch.setenv("LIVEFIX_RUNTIME_DIR", path)
    monkeypatch.delenv("LIVEFIX_TOKEN", raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(tmp_path: Path, runtime: str) -> Iterator[Any]:
    started: list[Server] = []

    def start(worker_class: str, preload: bool) -> Server:
        (tmp_path / "pricing.py").write_text(PRICING)
        (tmp_path / "app.py").write_text(APP)
        server = Server(tmp_path, runtime, worker_class, preload)
        started.append(server)
        until(lambda: len(members(runtime)) == WORKERS, f"{WORKERS} workers registered", server)
        until(lambda: server.get()[0] == 200, "the first answer", server)
        return server

    yield start
    for server in started:
        server.close()


def kill_one_worker(runtime: str, how: signal.Signals = signal.SIGKILL) -> int:
    """SIGTERM: gunicorn's graceful recycle (max_requests, a reload); SIGKILL: a crash."""
    victim = min(members(runtime))
    os.kill(victim, how)
    return victim


def failed(answers: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [answer for answer in answers if answer[0] != 200]


@pytest.mark.parametrize(
    "worker_class, preload",
    [("sync", False), ("gthread", False), ("sync", True)],
    ids=["sync", "gthread", "sync-preload"],
)
def test_workers_respawned_after_an_apply_run_the_fleets_code(serve: Any, runtime: str, worker_class: str,
                                                              preload: bool) -> None:
    server = serve(worker_class, preload)
    server.start_load()
    fleet = Fleet("shop", default_token(), timeout=WAIT)
    result = fleet.apply({"action": "apply", "changes": [CHANGE]})
    assert result.outcome == "applied", result.report
    victim = kill_one_worker(runtime, signal.SIGTERM)  # recycled, as max_requests does
    until(lambda: victim not in members(runtime) and len(members(runtime)) == WORKERS,
          "gunicorn's replacement worker registered", server)
    assert until(lambda: every_worker_answers(server, runtime, "200"), "every worker on the fix", server)

    result = fleet.rollback()
    assert result.outcome == "applied", result.report
    assert until(lambda: every_worker_answers(server, runtime, "20"), "every worker back on the old code", server)
    answers = server.stop_load()
    assert answers and failed(answers) == []


@pytest.mark.parametrize("moment", ["prepared", "committed"])
def test_a_worker_killed_during_an_apply_leaves_the_fleet_on_one_behaviour(serve: Any, runtime: str,
                                                                           moment: str) -> None:
    server = serve("sync", False)
    server.start_load()
    victims: list[int] = []

    def kill_at(phase: str, _: list[Any]) -> None:
        if phase == moment and not victims:
            victims.append(kill_one_worker(runtime))

    result = Fleet("shop", default_token(), timeout=WAIT).apply({"action": "apply", "changes": [CHANGE]},
                                                               on_phase=kill_at)
    until(lambda: victims[0] not in members(runtime) and len(members(runtime)) == WORKERS,
          "gunicorn's replacement worker registered", server)
    # Killed before its commit: the apply is undone everywhere (all or nothing); after: it
    # stands, and the replacement catches up at its import. Either way, one behaviour.
    assert result.outcome == ("applied" if moment == "committed" else "rolledBack"), result.report
    expected = "200" if moment == "committed" else "20"
    assert until(lambda: every_worker_answers(server, runtime, expected), f"every worker answering {expected}", server)
    answers = server.stop_load()
    # A crash loses the requests the crashed worker was serving (one per client thread at
    # most, a dropped connection); none other fails, and no request gets an error page.
    assert len(failed(answers)) <= 4 and all(status == 0 for status, _ in failed(answers)), failed(answers)
