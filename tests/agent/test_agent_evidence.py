"""Live evidence and canaries against a real HTTP service under real load, from the command line.

`tests/agent/http_service.py` serves `GET /order/<id>` with the app module `shop` written
below (`handle` raises for every 7th order: about 14% of the traffic gets a 500). A load
generator in the test process (keep-alive clients on threads, consecutive order ids) runs
through every test and records each request's status, what code answered and when it was
sent, so the figures livefix reports can be checked against what the clients saw.
"""

from __future__ import annotations

import http.client
import itertools
import json
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from agent_support import WAIT, stop_process, token

from livefix.agent import AgentClient
from livefix.errors import LivefixError

SERVICE = Path(__file__).with_name("http_service.py")

SHOP = '''\
def handle(order_id):
    if order_id % 7 == 0:
        raise ValueError(f"order {order_id} is out of stock")
    return {"order": order_id, "code": "v1"}
'''

FIXED = '''\
def handle(order_id):
    return {"order": order_id, "code": "fixed"}
'''

SLOW = '''\
def handle(order_id):
    import time

    time.sleep(0.02)  # the regression under test: every call 20 ms slower
    if order_id % 7 == 0:
        raise ValueError(f"order {order_id} is out of stock")
    return {"order": order_id, "code": "slow"}
'''


# -- the service and its traffic --------------------------------------------------------------


class Service:
    """The running http_service.py: its port, agent address and pid."""

    def __init__(self, app_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SERVICE), str(app_dir)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout] + [lines.put("")],
                         daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        try:
            line = lines.get(timeout=WAIT)
        except queue.Empty:
            line = ""
        if not line:
            self.kill()
            raise AssertionError(f"the service did not start; stderr:\n{''.join(self.stderr)}")
        hello = json.loads(line)
        self.port: int = hello["port"]
        self.address: str = hello["address"]
        self.pid: int = hello["pid"]

    def get(self, order_id: int) -> tuple[int, dict[str, Any]]:
        """One request on a fresh connection: (status, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            connection.request("GET", f"/order/{order_id}")
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def kill(self) -> None:
        stop_process(self.proc)


@dataclass(frozen=True)
class Hit:
    sent: float  # time.time() just before the request was sent
    done: float  # just after its answer was read
    status: int
    code: str | None  # which version of handle answered ("v1", "fixed", "slow"; None for a 500)


class Load:
    """Clients on threads, each with a keep-alive connection, sending consecutive order ids."""

    CLIENTS = 3

    def __init__(self, port: int) -> None:
        self.port = port
        self.hits: list[Hit] = []  # list.append is atomic: no lock needed
        self.failures: list[str] = []
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, name=f"load-{n}", daemon=True) for n in range(self.CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            while not self._stop.is_set():
                sent = time.time()
                connection.request("GET", f"/order/{next(self._ids)}")
                response = connection.getresponse()
                body = json.loads(response.read())
                self.hits.append(Hit(sent, time.time(), response.status, (body.get("result") or {}).get("code")))
                # The clients' pacing (a realistic client, and CPU left for the CLI on a small
                # machine), not synchronisation.
                self._stop.wait(0.001)
        except Exception as exc:  # noqa: BLE001 - reported by stop(), so the test fails with it
            if not self._stop.is_set():
                self.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def wait_for(self, what: str, condition: Callable[[list[Hit]], bool]) -> None:
        """Poll the hits until `condition` holds (a deadline, no fixed sleep)."""
        deadline = time.monotonic() + WAIT
        pause = threading.Event()
        while not condition(list(self.hits)):
            assert not self.failures, self.failures
            assert time.monotonic() < deadline, f"the load never saw {what}"
            pause.wait(0.02)

    def stop(self) -> list[Hit]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WAIT)
        assert not self.failures, self.failures
        return list(self.hits)


@pytest.fixture
def service(runtime: Path, tmp_path: Path) -> Iterator[Service]:
    app = tmp_path / "app"
    app.mkdir()
    (app / "shop.py").write_text(SHOP)
    running = Service(app)
    yield running
    running.kill()


@pytest.fixture
def load(service: Service) -> Iterator[Load]:
    traffic = Load(service.port)
    # The service is serving all three clients, errors included, before anything is changed.
    traffic.wait_for("a 500 and 50 answers", lambda hits: len(hits) >= 50 and any(h.status == 500 for h in hits))
    yield traffic
    traffic.stop()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefix.cli", *args], capture_output=True, text=True,
                          timeout=WAIT, stdin=subprocess.DEVNULL)


def cli_json(*args: str) -> Any:
    done = cli(*args, "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_old_code_runs(service: Service) -> None:
    """What users see from the code as loaded: results from v1, a 500 for every 7th order."""
    assert service.get(8) == (200, {"result": {"order": 8, "code": "v1"}})
    status, body = service.get(14)
    assert (status, body) == (500, {"error": "ValueError: order 14 is out of stock"})


# -- a. a fix that removes the errors: the canary passes ------------------------------------------


def test_fix_removing_errors_passes_its_canary(service: Service, load: Load, tmp_path: Path) -> None:
    fix = write(tmp_path, "fix.py", FIXED)
    done = cli("apply", str(service.pid), f"{fix}::handle", "--module", "shop", "--canary",
               "--canary-before", "2", "--canary-window", "3", "--min-calls", "20")
    assert done.returncode == 0, (done.stdout, done.stderr)
    out = done.stdout
    assert "Applied generation 1" in out
    # The evidence table, then the report line and the verdict.
    assert re.search(r"^function\s+code\s+calls\s+errors\s+error rate\s+p50 ms\s+p99 ms$", out, re.M), out
    assert re.search(r"^shop\.handle\s+before\s+[\d,]+\s+[\d,]+\s+\d+\.\d%", out, re.M), out
    assert re.search(r"^\s+after\s+[\d,]+\s+0\s+0\.0%", out, re.M), out
    reported = re.search(r"shop\.handle: error rate 0% \(was (\d+(?:\.\d)?)%\), p99 [\d.]+ ms \(was [\d.]+ ms\), "
                         r"[\d,]+ calls", out)
    assert reported, out
    assert 10 <= float(reported.group(1)) <= 20, out
    assert "Canary of generation 1 passed" in out

    evidence = cli_json("watch", str(service.pid), "1")
    assert evidence["state"] == "final" and evidence["canary"]["verdict"]["outcome"] == "passed"
    figures = evidence["functions"]["shop.handle"]
    before, after = figures["before"], figures["after"]
    assert before["calls"] >= 20 and 0.10 <= before["errorRate"] <= 0.20, before
    assert before["errors"] == round(before["calls"] * before["errorRate"])
    assert before["errorTypes"] in (None, {"ValueError": before["errors"]})  # None where the hook cannot see it
    assert after["calls"] >= 20 and after["errors"] == 0 and after["errorRate"] == 0, after
    assert before["p99Ms"] is not None and after["p99Ms"] is not None

    history = cli_json("history", str(service.pid))
    assert history["generation"] == 1
    [entry] = history["generations"]
    assert entry["status"] == "active"
    assert entry["evidence"]["functions"] == evidence["functions"]  # frozen: the same figures

    commit = evidence["since"]
    load.wait_for("an answer sent after the window", lambda hits: any(h.sent > evidence["until"] for h in hits))
    hits = load.stop()
    old = [h for h in hits if h.done < commit]
    new = [h for h in hits if h.sent > commit]
    assert old and new
    # Before the commit users saw the bug; after it (through the whole window) none saw it.
    assert sum(h.status == 500 for h in old) >= 1
    assert {h.code for h in old if h.status == 200} == {"v1"}
    assert {(h.status, h.code) for h in new} == {(200, "fixed")}
    assert service.get(14) == (200, {"result": {"order": 14, "code": "fixed"}})


# -- b. a fix that slows everything down: the canary rolls it back -------------------------------


def test_slow_fix_is_rolled_back_by_its_canary(service: Service, load: Load, tmp_path: Path) -> None:
    fix = write(tmp_path, "slow.py", SLOW)
    # One second of the old code's traffic is what the new code's p99 is compared with (without
    # it, or a --max-p99-ms, the canary has nothing to judge against and says "inconclusive").
    done = cli("apply", str(service.pid), f"{fix}::handle", "--module", "shop", "--canary",
               "--canary-before", "1", "--canary-window", "10")
    assert done.returncode == 4, (done.stdout, done.stderr)
    out = done.stdout
    assert "Applied generation 1" in out
    verdict = re.search(r"^Canary rolled back generation 1: (.*)$", out, re.M)
    assert verdict, out
    assert re.search(r"shop\.handle: p99 \d+ ms \(was [\d.]+ ms\), more than 1\.5x slower", verdict.group(1)), out

    # Looking again later says the same, in words and exit code.
    again = cli("watch", str(service.pid), "1")
    assert again.returncode == 4 and "Canary rolled back generation 1" in again.stdout, (again.stdout, again.stderr)

    history = cli_json("history", str(service.pid))
    assert history["generation"] == 0
    [entry] = history["generations"]
    assert (entry["generation"], entry["status"]) == (1, "rolledBack")
    canary = entry["evidence"]["canary"]["verdict"]
    assert canary["outcome"] == "rolledBack"
    assert canary["report"] == verdict.group(0)
    assert any("p99" in reason for reason in canary["reasons"])
    after = canary["evidence"]["shop.handle"]["after"]
    assert after["calls"] >= 20 and after["p99Ms"] >= 20, after  # the sleep is in the figures

    # The old code answers again: the load sees v1 (and its 500s), not the slow code.
    rolled_back = time.time()
    load.wait_for("v1 answers after the rollback",
                  lambda hits: sum(h.sent > rolled_back and h.code == "v1" for h in hits) >= 20)
    hits = load.stop()
    assert {h.code for h in hits if h.sent > rolled_back} == {"v1", None}
    assert any(h.code == "slow" for h in hits)  # the slow code did serve while it was judged
    assert_old_code_runs(service)


# -- c. watching a function ---------------------------------------------------------------------


def test_watch_counts_calls_of_a_watched_function(service: Service, load: Load, runtime: Path) -> None:
    with AgentClient(service.address, token(runtime)) as client:
        started = client.request("livefix/watch", {"targets": ["shop:handle"]})
        assert list(started["functions"]) == ["shop.handle"]
        deadline = time.monotonic() + WAIT
        pause = threading.Event()
        while not (client.request("livefix/watch", {})["functions"]["shop.handle"][0]["errors"] >= 2):
            assert time.monotonic() < deadline, "the watched function was never counted"
            pause.wait(0.05)

        body = cli_json("watch", str(service.pid), "shop:handle", "--once")
        [figures] = body["functions"]["shop.handle"]
        assert figures["calls"] >= 14 and figures["errors"] >= 2, figures
        assert 0 < figures["errorRate"] < 0.5 and figures["p99Ms"] is not None

        text = cli("watch", str(service.pid), "shop:handle", "--once")
        assert text.returncode == 0, text.stderr
        assert re.search(r"^shop\.handle\s+v1\s+[\d,]+\s+[\d,]+\s+\d+\.\d%", text.stdout, re.M), text.stdout


def test_a_cli_watch_leaves_other_clients_watches_alone(service: Service, runtime: Path) -> None:
    with AgentClient(service.address, token(runtime)) as client:
        client.request("livefix/watch", {"targets": ["shop:handle"]})
        assert cli("watch", str(service.pid), "shop:handle", "--once").returncode == 0
        assert list(client.request("livefix/watch", {})["functions"]) == ["shop.handle"]


# -- d. bad canary terms are refused and change nothing -------------------------------------------


def test_bad_canary_terms_are_refused_and_change_nothing(
    service: Service, load: Load, runtime: Path, tmp_path: Path
) -> None:
    fix = write(tmp_path, "fix.py", FIXED)
    target = str(service.pid)
    rate = cli("apply", target, f"{fix}::handle", "--module", "shop", "--canary", "--max-error-rate", "2")
    assert rate.returncode == 1, (rate.stdout, rate.stderr)
    assert "livefix: canary max_error_rate is a fraction of calls (0..1)" in rate.stderr
    refused = cli("apply", target, f"{fix}::handle", "--module", "shop", "--max-error-rate", "2", "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["kind"] == "invalid"

    change = {"module": "shop", "qualname": "handle", "source": FIXED}
    with AgentClient(service.address, token(runtime)) as client:
        for canary, says in (({"nope": 1}, "`canary` has no setting 'nope'"),
                             ({"window": 0}, "canary window must be more than 0 seconds"),
                             ({"minCalls": 0.5}, "canary min_calls must be a whole number"),
                             ("soon", "`canary` must be an object")):
            with pytest.raises(LivefixError) as caught:
                client.request("livefix/apply", {"changes": [change], "canary": canary})
            assert caught.value.kind == "invalid", caught.value
            assert says in caught.value.message, caught.value.message
        assert client.request("livefix/history", {})["generation"] == 0
        with pytest.raises(LivefixError) as caught:
            client.request("livefix/evidence", {})
        assert caught.value.kind == "notFound"  # no fix, so nothing was ever watched

    assert cli_json("history", target) == {"generation": 0, "generations": []}
    # Users still get what the code as loaded gives them.
    mark = time.time()
    load.wait_for("answers after the refusals", lambda hits: sum(h.sent > mark for h in hits) >= 30)
    assert {h.code for h in load.stop() if h.sent > mark} == {"v1", None}
    assert_old_code_runs(service)
