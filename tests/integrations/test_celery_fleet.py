"""`livefix.integrations.celery` on real Celery workers (`celery worker --pool prefork`, real
pool processes forked by billiard) and a real Redis server (Debian's redis-server, started
on a free port for this module and always stopped), under a task load that calls the
function being fixed the whole time.

Every assertion is on what tasks return and on what every process reports: after an apply
returns, every task started later answers with the fix, on pool processes that did not
exist when it was applied (`--max-tasks-per-child 1` forks a new one per task) and on a
worker started later; a pool process killed between prepare and commit is named and leaves
every other process on the old code; a change one process cannot prepare changes nothing.
No sleeps: task results, the fleet's own replies and process exits are the events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("celery", reason="Celery tests need `pip install livefix[celery]`")
pytest.importorskip("redis", reason="Celery tests need `pip install livefix[celery]` (celery[redis])")

from celery import Celery  # noqa: E402
from fleet_support import (  # noqa: E402
    BROKEN_FIX, FIX, NEW, OLD, WAIT, Load, RedisServer, env_with_path, kill, livefix_cli, make_project, values,
)

import livefix.integrations.celery as lfc  # noqa: E402

pytestmark = pytest.mark.timeout(180)

CHANGE = [{"module": "fleetshop.pricing", "qualname": "price", "source": FIX}]
# How long the coordinator waits for a silent process before asking its parent. Generous: on a
# loaded 2-core machine (other suites running) a starved pool process took over 5 s to answer a prepare.
TIMEOUT = 15.0

APP = """\
import os

from celery import Celery

import livefix.integrations.celery as lfc

URL = os.environ["FLEET_BROKER"]
app = Celery("fleetapp", broker=URL, backend=URL)
app.conf.update(worker_hijack_root_logger=False, worker_prefetch_multiplier=1, result_expires=300,
                broker_connection_retry_on_startup=True)
lfc.setup(app)

from fleetshop import pricing  # noqa: E402


@app.task(name="fleetapp.priced")
def priced():
    return os.getpid(), pricing.price(7)
"""


class CeleryWorker:
    """`celery -A fleetapp worker` in its own session (it and its pool stopped together)."""

    def __init__(self, project: Path, url: str, name: str, *options: str) -> None:
        self.name = name
        self.log = project / f"{name}.log"
        env = {**env_with_path(project), "FLEET_BROKER": url}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "fleetapp", "worker", "--pool", "prefork", "-n", f"{name}@%h",
                 "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", *options],
                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def nodes(self, url: str) -> list:
        """This worker's processes, as the fleet sees them (a ping through the broker)."""
        return [w for w in lfc.status(url, timeout=TIMEOUT) if w.address.startswith(f"{self.name}@")]

    def wait_ready(self, url: str, count: int) -> list:
        """Until `count` of its processes answer (each call waits for the fleet's answers)."""
        deadline = threading.Event()
        timer = threading.Timer(WAIT, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                assert self.process.poll() is None, f"{self.name} exited:\n{self.log.read_text()[-3000:]}"
                nodes = self.nodes(url)
                if len(nodes) >= count and all(w.status == "ok" for w in nodes):
                    return nodes
            raise AssertionError(f"{self.name} did not start {count} processes:\n{self.log.read_text()[-3000:]}")
        finally:
            timer.cancel()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the main process: warm shutdown, its pool with it
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(20)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # any pool process left behind
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        server = RedisServer()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed and could not be installed "
                    "(scripts/test.sh runs `apt-get install redis-server`)")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("celery-fleet"))
    (root / "fleetapp.py").write_text(APP)
    yield root


@pytest.fixture(scope="module")
def workers(project: Path, redis_url: str) -> Iterator[tuple[CeleryWorker, CeleryWorker]]:
    started = [CeleryWorker(project, redis_url, "w1", "--concurrency", "2"),
               CeleryWorker(project, redis_url, "w2", "--concurrency", "2", "--max-tasks-per-child", "1")]
    try:
        for worker in started:
            worker.wait_ready(redis_url, 3)
        yield started[0], started[1]
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope="module")
def client(redis_url: str) -> Celery:
    """An app of the test's own for tasks sent from the test's thread (the load has another:
    a Celery result backend is not shared across threads)."""
    return Celery("fleet-test", broker=redis_url, backend=redis_url)


@pytest.fixture
def fleet(workers: tuple[CeleryWorker, CeleryWorker], redis_url: str) -> Iterator[tuple[CeleryWorker, CeleryWorker]]:
    yield workers
    if lfc.history(redis_url, timeout=TIMEOUT)["journal"]["generation"]:
        result = lfc.rollback(redis_url, to=0, approved=True, timeout=TIMEOUT)
        assert result.outcome == "applied", result.report


def load_on(redis_url: str) -> Load:
    local = threading.local()  # a Celery result backend per thread: they are not shared safely

    def batch() -> list:
        if not hasattr(local, "app"):
            local.app = Celery("fleet-load", broker=redis_url, backend=redis_url)
        sent = [local.app.send_task("fleetapp.priced") for _ in range(2)]
        return [result.get(timeout=WAIT, propagate=False) for result in sent]

    return Load(batch, threads=3)


def fleet_generations(redis_url: str) -> dict[str, int]:
    """Every process's fleet generation, as it reports it."""
    for _ in range(3):
        nodes = lfc.status(redis_url, timeout=TIMEOUT)
        # A pool process that did not answer (the known silence of apply_as_a_user_would, seen
        # here too): `status` names it `unreachable`; a user asks again, at most twice more.
        if "unreachable" not in {w.status for w in nodes}:
            break
    # A w2 pool process that finished its one task between discovery and the request: gone.
    assert {w.status for w in nodes} <= {"ok", "gone"}, [w.to_dict() for w in nodes]
    return {w.address: w.body["agent"]["fleetGeneration"] for w in nodes if w.status == "ok"}


def apply_as_a_user_would(redis_url: str, load: Load) -> Any:
    """Apply; when a pool process did not answer the prepare (known, not understood yet: seen
    about once in three full runs on the 2-core CI machine, with w2's pool processes replaced
    after every task), the fleet aborted with nothing changed, which is checked, and a user
    tries again: at most twice more."""
    for _ in range(3):
        result = lfc.apply(redis_url, CHANGE, approved=True, timeout=TIMEOUT)
        silent = [w for w in result.workers if w.status == "unreachable"]
        if result.outcome != "aborted" or not silent or len(silent) != len([w for w in result.workers
                                                                            if w.status != "aborted"]):
            return result
        assert values(load.since(load.mark())) == {OLD}, result.report  # the abort changed nothing
        assert lfc.history(redis_url, timeout=TIMEOUT)["journal"]["generation"] == 0
    return result


def test_apply_under_load_reaches_new_pool_processes_and_later_workers(
    fleet: tuple[CeleryWorker, CeleryWorker], redis_url: str, project: Path, client: Celery,
) -> None:
    w1, w2 = fleet
    with load_on(redis_url) as load:
        assert values(load.since(load.mark())) == {OLD}
        start = load.mark()
        result = apply_as_a_user_would(redis_url, load)  # tasks may be running price()
        assert result.outcome == "applied", result.report
        assert result.fleet_generation == 1
        took_part = {w.pid for w in result.workers}
        assert {w.address.split("@")[0] for w in result.workers} == {"w1", "w2"}
        assert len(took_part) >= 4, result.report  # both main processes and their pool processes
        applied = load.mark()
        after = load.since(applied, results=12, until=lambda got: {pid for pid, _ in got} - took_part)
        assert values(after) == {NEW}
        # w2 forks a new pool process for every task: processes that did not exist at the
        # commit answered too, with the fix.
        assert {pid for pid, _ in after} - took_part, "no pool process started after the apply ran a task"
        assert set(fleet_generations(redis_url).values()) == {1}

        # A worker started later replays the journal before its first task.
        w3 = CeleryWorker(project, redis_url, "w3", "--concurrency", "1", "-Q", "late")
        try:
            w3.wait_ready(redis_url, 2)
            pid, value = client.send_task("fleetapp.priced", queue="late").get(timeout=WAIT)
            assert value == NEW and pid not in took_part
            assert set(fleet_generations(redis_url).values()) == {1}
            fixed = load.completed()

            result = lfc.rollback(redis_url, timeout=TIMEOUT)
            assert result.outcome == "applied", result.report
            assert {w.address.split("@")[0] for w in result.workers} == {"w1", "w2", "w3"}
            back = load.mark()
            assert values(load.since(back, results=12)) == {OLD}
            assert client.send_task("fleetapp.priced", queue="late").get(timeout=WAIT)[1] == OLD
            assert set(fleet_generations(redis_url).values()) == {0}
        finally:
            w3.stop()
        load.check_monotonic(start, fixed)
    assert lfc.history(redis_url, timeout=TIMEOUT)["journal"] == {"generation": 0, "entries": []}


def test_pool_process_killed_between_prepare_and_commit(fleet: tuple[CeleryWorker, CeleryWorker], redis_url: str) -> None:
    w1, _ = fleet
    killed: dict[str, object] = {}

    def kill_pool_process(phase: str, workers: list) -> None:
        if phase == "prepared" and not killed:
            victim = next(w for w in workers if w.address.startswith("w1@") and w.pid != w1.process.pid)
            killed.update(address=victim.address, pid=victim.pid)
            kill(victim.pid)

    with load_on(redis_url) as load:
        result = lfc.apply(redis_url, CHANGE, approved=True, timeout=TIMEOUT, on_phase=kill_pool_process)
        assert result.outcome == "rolledBack", result.report
        assert result.error is not None and str(killed["address"]) in result.error.message
        assert f"worker {killed['address']} (pid {killed['pid']}): unreachable" in result.report
        assert "its process is gone" in result.report
        others = [w for w in result.workers if w.address != killed["address"]]
        # (a w2 pool process may have finished its one task and left meanwhile: "gone")
        assert {w.status for w in others} <= {"rolledBack", "aborted", "gone"}, result.report
        back = load.mark()
        assert values(load.since(back, results=12)) == {OLD}

        # It is still registered (it never said goodbye); the next look at the fleet leaves it
        # out, since its worker says its process is gone.
        transport = lfc.CeleryTransport(redis_url, timeout=TIMEOUT)
        try:
            names, warnings = transport.members()
        finally:
            transport.close()
        assert killed["address"] not in names
        assert f"{killed['address']} is registered but its process is gone (its worker says so): left out" in warnings
        assert set(fleet_generations(redis_url).values()) == {0}

        # The next apply reaches the pool process billiard started in its place.
        result = lfc.apply(redis_url, CHANGE, approved=True, timeout=TIMEOUT)
        assert result.outcome == "applied", result.report
        assert killed["pid"] not in {w.pid for w in result.workers}
        assert values(load.since(load.mark(), results=12)) == {NEW}
        assert set(fleet_generations(redis_url).values()) == {1}


def test_refusals_and_the_command_line(fleet: tuple[CeleryWorker, CeleryWorker], redis_url: str, project: Path) -> None:
    result = lfc.apply(redis_url, [{**CHANGE[0], "source": BROKEN_FIX}], approved=True, timeout=TIMEOUT)
    assert result.outcome == "aborted" and result.error is not None and result.error.kind == "syntax"
    # (a w2 pool process may finish its last task and leave meanwhile: "gone")
    statuses = {w.status for w in result.workers}
    assert "failed" in statuses and statuses <= {"failed", "gone"}, result.report
    result = lfc.apply(redis_url, CHANGE, approved=True, dry_run=True, timeout=TIMEOUT)
    assert result.outcome == "checked", result.report
    assert set(fleet_generations(redis_url).values()) == {0}

    env = env_with_path(project)
    applied = livefix_cli("apply", "--celery", redis_url, f"{project / 'fix.py'}::price", "--module",
                          "fleetshop.pricing", "--yes", "--timeout", str(TIMEOUT), env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "(fleet generation 1)" in applied.stdout
    assert set(fleet_generations(redis_url).values()) == {1}

    history = livefix_cli("history", "--celery", redis_url, "--timeout", str(TIMEOUT), env=env)
    assert history.returncode == 0, history.stdout + history.stderr
    sections = history.stdout.split("== worker ")[1:]
    assert len(sections) >= 4 and {s.split("(")[1].split("@")[0] for s in sections} == {"w1", "w2"}
    assert all(s.count("active     fleetshop.pricing.price") == 1 for s in sections), history.stdout

    rolled = livefix_cli("rollback", "--celery", redis_url, "--timeout", str(TIMEOUT), env=env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert set(fleet_generations(redis_url).values()) == {0}
