"""`livefix.integrations.dask` on a real `distributed.LocalCluster` of worker processes
(nannies, spawned interpreters, the scheduler's own RPC), under a task load that calls the
function being fixed the whole time.

Every assertion is on what tasks return: after an apply returns, every task started later
answers with the fix, on every worker, on a worker that joins later and after
`client.restart()`; a worker killed between prepare and commit is named and leaves the
others on the old code; a change one worker cannot prepare changes nothing anywhere.
No sleeps: the load thread's batches and the cluster's own waits are the events.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

distributed = pytest.importorskip("distributed", reason="Dask tests need `pip install livefix[dask]`")

import dask  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from fleet_support import (  # noqa: E402
    BROKEN_FIX, FIX, NEW, OLD, WAIT, Load, env_with_path, kill, livefix_cli, make_project, values,
)

import livefix.integrations.dask as lfd  # noqa: E402

pytestmark = pytest.mark.timeout(180)

CHANGE = [{"module": "fleetshop.pricing", "qualname": "price", "source": FIX}]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("dask-fleet"))
    # Spawned workers take the coordinator's sys.path (multiprocessing's spawn carries it).
    sys.path.insert(0, str(root))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [old])])
    yield root
    sys.path.remove(str(root))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def cluster(project: Path) -> Iterator[tuple[LocalCluster, Client]]:
    # A killed worker's address refuses connections: anything still sending to it (a task's
    # result, Client.run) retries for distributed's connect timeout, 30 s by default.
    with dask.config.set({"distributed.comm.timeouts.connect": "5s"}):
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=2, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        try:
            lfd.register(client, modules=["fleetshop.pricing", "fleetshop.tasks"])
            yield cluster, client
        finally:
            client.close()
            cluster.close()


@pytest.fixture
def fleet(cluster: tuple[LocalCluster, Client]) -> Iterator[tuple[LocalCluster, Client]]:
    """The module's cluster, given back as loaded: two workers, fleet generation 0."""
    yield cluster
    local, client = cluster
    local.scale(2)
    client.wait_for_workers(2, timeout=WAIT)
    if lfd.history(client)["journal"]["generation"]:
        result = lfd.rollback(client, to=0, approved=True)
        assert result.outcome == "applied", result.report


def on_workers(client: Client) -> dict[str, tuple[int, int]]:
    """Every worker's (pid, price(7)), asked outside the task system."""
    from fleetshop.tasks import priced

    return client.run(priced)


def load_on(client: Client) -> Load:
    from fleetshop.tasks import priced

    def batch() -> list:
        futures = client.map(priced, range(4), pure=False)
        return client.gather(futures, errors="raise")

    return Load(batch, threads=2)


def test_apply_under_load_reaches_later_and_restarted_workers_and_rolls_back(fleet: tuple[LocalCluster, Client]) -> None:
    cluster, client = fleet
    with load_on(client) as load:
        assert values(load.since(load.mark())) == {OLD}
        start = load.mark()
        result = lfd.apply(client, CHANGE, approved=True)  # approved: tasks may be running price()
        assert result.outcome == "applied", result.report
        assert result.fleet_generation == 1 and len(result.workers) == 2
        applied = load.mark()
        assert values(load.since(applied)) == {NEW}
        assert {value for _, value in on_workers(client).values()} == {NEW}

        # A worker that joins later gets the fix before its first task.
        cluster.scale(3)
        client.wait_for_workers(3, timeout=WAIT)
        assert [value for _, value in on_workers(client).values()] == [NEW] * 3
        assert values(load.since(load.mark())) == {NEW}

        # Every worker restarted (new processes, the modules imported afresh from the files).
        before = {pid for pid, _ in on_workers(client).values()}
        client.restart()
        client.wait_for_workers(3, timeout=WAIT)
        restarted = on_workers(client)
        assert not before & {pid for pid, _ in restarted.values()}
        assert [value for _, value in restarted.values()] == [NEW] * 3
        assert values(load.since(load.mark())) == {NEW}
        fixed = load.completed()  # batches done before the rollback: none may go back to the old code

        result = lfd.rollback(client)
        assert result.outcome == "applied", result.report
        assert result.fleet_generation == 0 and len(result.workers) == 3
        back = load.mark()
        assert values(load.since(back)) == {OLD}
        assert [value for _, value in on_workers(client).values()] == [OLD] * 3
        load.check_monotonic(start, fixed)
    assert lfd.history(client)["journal"] == {"generation": 0, "entries": []}


def test_workers_restarted_after_a_deploy_run_the_new_files(fleet: tuple[LocalCluster, Client], project: Path) -> None:
    """A fix is a fact about the file it was made against: workers restarted after a deploy
    (the file changed) run the deployed file, not the old fix replayed over it, and say so."""
    _, client = fleet
    assert lfd.apply(client, CHANGE, approved=True).outcome == "applied"
    pricing = project / "fleetshop" / "pricing.py"
    original = pricing.read_text()
    try:
        pricing.write_text(original.replace("n * 2", "n * 5"))  # the deploy
        client.restart()
        client.wait_for_workers(2, timeout=WAIT)
        assert [value for _, value in on_workers(client).values()] == [35, 35]
        catch_ups = [(w.body or {}).get("agent", {}).get("catchUp") for w in lfd.status(client)]
        assert all([c["status"] for c in catch_up] == ["superseded"] for catch_up in catch_ups), catch_ups
    finally:
        pricing.write_text(original)
        client.restart()  # the module's file as the other tests expect it
        client.wait_for_workers(2, timeout=WAIT)
    assert [value for _, value in on_workers(client).values()] == [NEW, NEW]  # same file: the fix is replayed


def test_worker_killed_between_prepare_and_commit(fleet: tuple[LocalCluster, Client]) -> None:
    cluster, client = fleet
    killed: dict[str, object] = {}

    def kill_one(phase: str, workers: list) -> None:
        if phase == "prepared" and not killed:
            victim = workers[0]
            killed.update(address=victim.address, pid=victim.pid)
            kill(victim.pid)

    with load_on(client) as load:
        result = lfd.apply(client, CHANGE, approved=True, on_phase=kill_one)
        assert result.outcome == "rolledBack", result.report
        assert result.error is not None and killed["address"] in result.error.message
        assert f"worker {killed['address']} (pid {killed['pid']}): unreachable" in result.report
        survivors = [w for w in result.workers if w.address != killed["address"]]
        assert [w.status for w in survivors] in (["rolledBack"], ["aborted"]), result.report
        assert [value for _, value in on_workers(client).values()] == [OLD] * len(on_workers(client))

        client.wait_for_workers(2, timeout=WAIT)  # its nanny started it again
        back = load.mark()
        assert values(load.since(back)) == {OLD}
        assert [value for _, value in on_workers(client).values()] == [OLD, OLD]
        assert lfd.history(client)["journal"]["generation"] == 0

        # The next apply reaches everyone, the restarted worker included.
        result = lfd.apply(client, CHANGE, approved=True)
        assert result.outcome == "applied", result.report
        assert values(load.since(load.mark())) == {NEW}
        assert [value for _, value in on_workers(client).values()] == [NEW, NEW]


def test_a_worker_that_cannot_prepare_stops_the_change_everywhere(fleet: tuple[LocalCluster, Client]) -> None:
    _, client = fleet
    from fleetshop.tasks import rare

    first, second = sorted(on_workers(client))
    assert client.run(rare, workers=[first]) == {first: "old"}  # imported there, and only there
    rare_fix = [{"module": "fleetshop.rare", "qualname": "rare", "source": "def rare():\n    return 'new'\n"}]
    result = lfd.apply(client, rare_fix, approved=True)
    assert result.outcome == "aborted", result.report
    assert result.error is not None and result.error.kind == "notFound"
    assert second in result.error.message and "fleetshop.rare" in result.error.message
    by_address = {w.address: w for w in result.workers}
    assert by_address[first].status == "aborted" and by_address[second].status == "failed"
    assert client.run(rare, workers=[first]) == {first: "old"}

    result = lfd.apply(client, [{**CHANGE[0], "source": BROKEN_FIX}], approved=True)
    assert result.outcome == "aborted" and result.error is not None and result.error.kind == "syntax"
    assert [w.status for w in result.workers] == ["failed", "failed"]
    assert [value for _, value in on_workers(client).values()] == [OLD, OLD]

    result = lfd.apply(client, CHANGE, approved=True, dry_run=True)
    assert result.outcome == "checked", result.report

    # A verify that fails on the workers: each one's engine undid its commit.
    result = lfd.apply(client, CHANGE, approved=True, verify="price(7) == 0")
    assert result.outcome == "rolledBack" and result.error is not None and result.error.kind == "verifyFailed"

    # The workers' approval policy: under "always" nothing changes without approval.
    lfd.register(client, modules=["fleetshop.pricing", "fleetshop.tasks"], approval="always")
    try:
        result = lfd.apply(client, CHANGE)
        assert result.outcome == "aborted" and result.error is not None and result.error.kind == "approvalRequired"
        assert [w.status for w in result.workers] == ["failed", "failed"]
    finally:
        lfd.register(client, modules=["fleetshop.pricing", "fleetshop.tasks"])
    assert [value for _, value in on_workers(client).values()] == [OLD, OLD]
    assert lfd.history(client)["journal"]["generation"] == 0


def test_command_line(fleet: tuple[LocalCluster, Client], project: Path) -> None:
    cluster, client = fleet
    address = cluster.scheduler_address
    env = env_with_path(project)
    applied = livefix_cli("apply", "--dask", address, f"{project / 'fix.py'}::price", "--module", "fleetshop.pricing",
                          "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "apply done on all 2 workers (fleet generation 1)" in applied.stdout
    assert [value for _, value in on_workers(client).values()] == [NEW, NEW]

    history = livefix_cli("history", "--dask", address, env=env)
    assert history.returncode == 0, history.stdout + history.stderr
    assert history.stdout.count("== worker ") == 2
    assert history.stdout.count("active     fleetshop.pricing.price") == 2

    status = livefix_cli("status", "--dask", address, "--json", env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert '"fleetGeneration": 1' in status.stdout

    rolled = livefix_cli("rollback", "--dask", address, env=env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert [value for _, value in on_workers(client).values()] == [OLD, OLD]

    nothing = livefix_cli("rollback", "--dask", address, env=env)
    assert nothing.returncode == 1 and "nothing to roll back" in nothing.stderr
