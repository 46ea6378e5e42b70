"""Fleet canary: the change runs on one worker first, the others follow only if it holds.

Real worker processes (tests/agent/worker.py) under service "shop"; the canary worker is
the lowest pid. Traffic comes from the workers' own loop (`busy`) or from the test asking a
worker to `call`; nothing here waits on the clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent_support import APP, WAIT, Worker, token

from livefix import protocol
from livefix.agent.client import AgentClient
from livefix.agent.fleet import Fleet, WorkerOutcome
from livefix.agent.registry import Registry

WORKERS = 3
SLOW_FIX = APP.replace("    return n * 10\n", "    import time\n    time.sleep(0.02)\n    return n * 10\n")
GOOD_FIX = APP.replace("n * 10", "n * 100")
GOOD_CHANGE = {"module": "shop", "qualname": "price", "source": "def price(n):\n    return n * 100\n"}


def start_fleet(spawn: Any, count: int, **options: Any) -> list[Worker]:
    """`count` workers of service "shop", lowest pid (the canary worker) first. The first one
    starts alone: it creates the token file, which workers starting at the same moment race
    for (livefix/agent/agent.py `_default_token`: read fails, another creates it, `exists()`)."""
    first = spawn(service="shop", **options)
    with ThreadPoolExecutor(max_workers=count) as pool:
        rest = list(pool.map(lambda _: spawn(service="shop", **options), range(count - 1)))
    return sorted([first, *rest], key=lambda w: w.pid)


def outputs(workers: list[Worker]) -> list[Any]:
    return [w.call() for w in workers]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefix.cli", *args], capture_output=True, text=True,
                          timeout=WAIT * 2, stdin=subprocess.DEVNULL)


def fleet_generation(worker: Worker, runtime: Path) -> Any:
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
        return client.request(protocol.STATUS)["agent"]["fleetGeneration"]


def generations(worker: Worker) -> list[dict[str, Any]]:
    return worker.history()["generations"]


def test_a_slow_fix_is_rolled_back_on_the_canary_and_never_reaches_the_others(
    spawn: Any, runtime: Path, tmp_path: Path
) -> None:
    workers = start_fleet(spawn, WORKERS, busy=True)  # each calls shop.total(1) every 50 ms
    canary, others = workers[0], workers[1:]
    assert outputs(workers) == [21] * WORKERS
    fix = tmp_path / "shop_fix.py"
    fix.write_text(SLOW_FIX)
    # --max-p99-ms: the new code sleeps 20 ms, so its p99 is above 10 ms whatever the machine's
    # load; the window is only an upper bound (the canary rolls back after 5 calls of it).
    done = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--canary",
               "--canary-window", "30", "--min-calls", "5", "--max-p99-ms", "10", "--yes", "--json")
    assert done.returncode == 4, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "canaryRolledBack"
    assert result["error"]["kind"] == "verifyFailed" and result["error"]["reason"] == "canary"
    assert result["canary"]["worker"] == canary.pid
    assert result["canary"]["verdict"]["outcome"] == "rolledBack"
    assert any("p99" in reason for reason in result["canary"]["verdict"]["reasons"])
    statuses = {w["pid"]: w["status"] for w in result["workers"]}
    assert statuses == {canary.pid: "rolledBack", **{w.pid: "aborted" for w in others}}
    assert f"worker {canary.pid}" in result["report"] and "never ran" in result["report"]
    assert "p99" in result["report"]

    # Exactly one worker ran the change, and it was rolled back; the others never ran it.
    [tried] = generations(canary)
    assert tried["status"] == "rolledBack"
    assert tried["evidence"]["canary"]["verdict"]["outcome"] == "rolledBack"
    assert [generations(w) for w in others] == [[]] * len(others)
    assert outputs(workers) == [21] * WORKERS
    assert Registry("shop").read_journal() == {"generation": 0, "entries": []}
    # The canary worker is back at the fleet generation the journal has: the next fleet
    # apply finds every worker where it expects them.
    assert fleet_generation(canary, runtime) == 0
    result2 = Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [GOOD_CHANGE]})
    assert result2.outcome == "applied" and not result2.warnings, result2.report
    assert outputs(workers) == [201] * WORKERS

    # The human report says the same.
    again = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--canary",
                "--canary-window", "30", "--min-calls", "5", "--max-p99-ms", "10", "--yes")
    assert again.returncode == 4, again.stdout + again.stderr
    assert f"the canary rolled the apply back on worker {canary.pid}" in again.stdout
    assert f"the other {WORKERS - 1} workers never ran it" in again.stdout
    assert outputs(workers) == [201] * WORKERS


def test_a_good_fix_passes_on_the_canary_then_every_worker_runs_it(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    workers = start_fleet(spawn, WORKERS, busy=True)
    canary = workers[0]
    fix = tmp_path / "shop_fix.py"
    fix.write_text(GOOD_FIX)
    done = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--canary",
               "--canary-window", "2", "--min-calls", "5", "--max-error-rate", "0.5", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "applied" and result["fleetGeneration"] == 1
    assert result["canary"]["worker"] == canary.pid
    # "passed" (its busy loop calls it ~40 times in the window); "inconclusive" would also
    # let the fleet follow, and is not this test's business (test_the_others_wait... is exact).
    assert result["canary"]["verdict"]["outcome"] in ("passed", "inconclusive")
    assert {w["status"] for w in result["workers"]} == {"committed"}
    assert f"canary held on worker {canary.pid}: " in result["report"]
    assert f"applied on {WORKERS} workers" in result["report"]
    assert outputs(workers) == [201] * WORKERS
    assert [fleet_generation(w, runtime) for w in workers] == [1] * WORKERS
    # The journal has the change without the canary: a worker that starts now just applies it.
    [entry] = Registry("shop").read_journal()["entries"]
    assert entry["generation"] == 1 and "canary" not in entry
    late = spawn(service="shop")
    assert [c["status"] for c in late.catch_up] == ["applied"]
    assert late.call() == 201


def test_the_others_wait_on_the_old_code_while_the_canary_judges(spawn: Any, runtime: Path) -> None:
    # No traffic of their own: the test makes exactly minCalls calls, and the canary has a
    # threshold to judge them by (without one, and without old traffic, it is inconclusive).
    workers = start_fleet(spawn, WORKERS)
    canary, others = workers[0], workers[1:]
    seen: dict[str, Any] = {}

    def during_the_window(phase: str, committed: list[WorkerOutcome]) -> None:
        if phase == "canary":
            seen["committed"] = [w.pid for w in committed]
            seen["canary"] = [canary.call() for _ in range(5)]  # the canary's minCalls
            seen["others"] = outputs(others)

    result = Fleet("shop", token(runtime)).apply(
        {"action": "apply", "changes": [GOOD_CHANGE], "canary": {"window": 2, "minCalls": 5, "maxErrorRate": 0.5}},
        on_phase=during_the_window,
    )
    assert result.outcome == "applied", result.report
    assert seen == {"committed": [canary.pid], "canary": [201] * 5, "others": [21] * len(others)}
    assert result.canary is not None and result.canary["verdict"]["outcome"] == "passed"
    assert outputs(workers) == [201] * WORKERS
    # Only the canary worker judged the change; the others run it without a canary of their own.
    assert "canary" in generations(canary)[0]["evidence"]
    assert all("canary" not in generations(w)[0].get("evidence", {}) for w in others)
