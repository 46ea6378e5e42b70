"""What the Dask and Celery fleet tests share: the project the workers run, a task load
running while fixes go in, a real Redis server, and the checks on the results.

The workers' code (`fleetshop`) is written to a temporary directory put on the workers'
path; every task answers `(pid, price(7))`: 14 with the code as loaded, 21 with the fix.
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

WAIT = 45.0  # generous: a loaded CI machine; a test that passes never waits this long
OLD, NEW = 14, 21  # price(7) as loaded, and with the fix

PRICING = """\
def price(n):
    return n * 2
"""

FIX = """\
def price(n):
    return n * 3
"""

BROKEN_FIX = """\
def price(n)
    return n * 3
"""

TASKS = """\
import os

from fleetshop import pricing


def priced(_=None):
    return os.getpid(), pricing.price(7)


def rare():
    from fleetshop import rare

    return rare.rare()
"""

RARE = """\
def rare():
    return "old"
"""


def make_project(root: Path) -> Path:
    """`fleetshop` (pricing, tasks, rare) under `root`; the directory to put on the path."""
    package = root / "fleetshop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pricing.py").write_text(PRICING)
    (package / "tasks.py").write_text(TASKS)
    (package / "rare.py").write_text(RARE)
    (root / "fix.py").write_text(FIX)
    return root


# -- task load ----------------------------------------------------------------------------------


@dataclass
class Batch:
    mark: int  # the number of marks made before this batch started
    started: float
    ended: float = 0.0
    results: list[tuple[int, int]] = field(default_factory=list)  # (pid, price(7))
    errors: list[str] = field(default_factory=list)


class Load:
    """Runs `run_batch` over and over on `threads` threads while the test changes the fleet.

    `run_batch` returns one `(pid, value)` or an exception per task. A `mark()` taken after
    an operation returned separates the batches that started before it from those started
    after: every task of those must run the code the operation left. Each thread waits
    only for its own batch, so one slow task does not hold the others up."""

    def __init__(self, run_batch: Callable[[], list[tuple[int, int] | BaseException]], threads: int = 1) -> None:
        self.run_batch = run_batch
        self.batches: list[Batch] = []
        self._marks = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"fleet-load-{n}", daemon=True)
                         for n in range(threads)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        self.since(self.mark())  # running before the test goes on
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                batch = Batch(self._marks, time.monotonic())
            try:
                for outcome in self.run_batch():
                    if isinstance(outcome, BaseException):
                        batch.errors.append(f"{type(outcome).__name__}: {outcome}")
                    else:
                        batch.results.append((int(outcome[0]), int(outcome[1])))
            except Exception as exc:  # noqa: BLE001 - a lost batch (a worker killed under it) is recorded
                batch.errors.append(f"{type(exc).__name__}: {exc}")
            with self._cond:
                batch.ended = time.monotonic()
                self.batches.append(batch)
                self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            self._marks += 1
            return self._marks

    def since(self, mark: int, results: int = 8,
              until: Callable[[list[tuple[int, int]]], object] | None = None) -> list[tuple[int, int]]:
        """The results of batches started after `mark`, once there are `results` of them
        (and `until(results)` holds)."""
        def collected() -> list[tuple[int, int]]:
            return [r for b in self.batches if b.mark >= mark for r in b.results]

        def ready() -> bool:
            got = collected()
            return len(got) >= results and (until is None or bool(until(got)))

        with self._cond:
            if not self._cond.wait_for(ready, WAIT):
                errors = [e for b in self.batches if b.mark >= mark for e in b.errors]
                raise AssertionError(f"the task load did not deliver after mark {mark} in {WAIT:g} s: "
                                     f"{collected()[-20:]}, errors {errors[-5:]}")
            return collected()

    def completed(self) -> float:
        """A point in time: every batch that ended before it returned its results before now."""
        return time.monotonic()

    def check_monotonic(self, start: int, end: float) -> None:
        """From mark `start` to the time `end`: a batch that started after another one ended
        never got the old code from a process that had answered that one with the fix."""
        with self._cond:
            batches = [b for b in self.batches if b.mark >= start and b.ended <= end]
        assert batches, "no batch ran between the marks"
        for batch in batches:
            fixed = {pid for other in batches if other.ended < batch.started
                     for pid, value in other.results if value == NEW}
            old = {pid for pid, value in batch.results if value == OLD}
            assert not old & fixed, f"processes {sorted(old & fixed)} ran the old code after running the fix"


def values(results: list[tuple[int, int]]) -> set[int]:
    return {value for _, value in results}


# -- Redis -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Debian's redis-server on a free port in a temporary directory, nothing saved."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.dir = tempfile.mkdtemp(prefix="livefix-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.log: list[str] = []
        self._ready = threading.Event()
        # Its log says when it listens; the reader keeps draining it so the pipe never fills.
        self._reader = threading.Thread(target=self._read_log, name="redis-log", daemon=True)
        self._reader.start()
        if not self._ready.wait(WAIT) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("redis-server did not start: " + "\n".join(self.log[-20:]))

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line.rstrip())
            if "Ready to accept connections" in line:
                self._ready.set()
        self._ready.set()  # it exited: the caller sees that

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(WAIT)  # EOF once the server exited
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def livefix_cli(*args: str, env: dict[str, str] | None = None, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefix.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def env_with_path(path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
    return env


def iter_lines(path: Path) -> Iterator[str]:
    if path.exists():
        yield from path.read_text(errors="replace").splitlines()
