"""Fleets: one change to every worker of a service, all or nothing, with real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from agent_support import APP, WAIT, Worker, token

from livefix import protocol
from livefix.agent.client import AgentClient
from livefix.agent.fleet import Fleet
from livefix.agent.registry import Registry


WORKERS = 16
FIX = APP.replace("n * 10", "n * 100")
PRICE_FIX = "def price(n):\n    return n * 100\n"
CHANGE = {"module": "shop", "qualname": "price", "source": PRICE_FIX}


def start_fleet(spawn: Any, count: int, **options: Any) -> list[Worker]:
    """Start `count` workers at once (each registers under service "shop")."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: spawn(service="shop", **options), range(count)))


def outputs(workers: list[Worker]) -> list[Any]:
    return [w.call() for w in workers]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefix.cli", *args], capture_output=True, text=True,
                          timeout=WAIT * 2, stdin=subprocess.DEVNULL)


def fleet_status(worker: Worker, runtime: Path) -> dict[str, Any]:
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
        return client.request(protocol.STATUS)["agent"]


def test_fleet_apply_and_rollback_from_the_command_line(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    workers = start_fleet(spawn, WORKERS)
    assert outputs(workers) == [21] * WORKERS
    fix = tmp_path / "shop_fix.py"
    fix.write_text(FIX)
    dry = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would apply on all {WORKERS} workers; nothing changed" in dry.stdout
    assert "Applying fix to shop.price" in dry.stdout
    assert outputs(workers) == [21] * WORKERS
    assert Registry("shop").read_journal()["generation"] == 0
    done = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "applied" and result["fleetGeneration"] == 1
    assert sorted(w["pid"] for w in result["workers"]) == sorted(w.pid for w in workers)
    assert {w["status"] for w in result["workers"]} == {"committed"}
    assert outputs(workers) == [201] * WORKERS
    assert {fleet_status(w, runtime)["fleetGeneration"] for w in workers} == {1}

    human = cli("history", "service:shop")
    assert human.returncode == 0
    assert human.stdout.count("apply   active") == WORKERS

    back = cli("rollback", "--service", "shop")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"rollback done on all {WORKERS} workers" in back.stdout
    assert outputs(workers) == [21] * WORKERS
    assert Registry("shop").read_journal()["generation"] == 0


def test_a_worker_that_cannot_prepare_changes_nothing_anywhere(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    odd_app = tmp_path / "odd"
    odd_app.mkdir()
    (odd_app / "store.py").write_text(APP)  # this worker runs the app under another module name
    workers = start_fleet(spawn, WORKERS - 1) + [spawn(odd_app, service="shop", app="store")]
    before = [w.history() for w in workers]
    result = Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [CHANGE]})
    assert result.outcome == "aborted"
    assert result.error is not None and result.error.kind == "notFound"
    statuses = {w.pid: w.status for w in result.workers}
    assert statuses.pop(workers[-1].pid) == "failed"
    assert set(statuses.values()) == {"aborted"}
    assert "no worker was changed" in result.report
    assert outputs(workers) == [21] * WORKERS
    assert [w.history() for w in workers] == before  # nothing was even committed
    assert Registry("shop").read_journal()["generation"] == 0
    # The CLI says so with its exit code.
    fix = tmp_path / "shop_fix.py"
    fix.write_text(FIX)
    done = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop")
    assert done.returncode == 1
    assert "not done: no worker was changed" in done.stdout
    assert outputs(workers) == [21] * WORKERS


def test_a_worker_killed_mid_apply_rolls_the_others_back(spawn: Any, runtime: Path) -> None:
    workers = start_fleet(spawn, WORKERS)
    victim = workers[5]

    def kill_after_prepare(phase: str, _: list[Any]) -> None:
        if phase == "prepared":
            victim.kill()  # every worker prepared; one dies before the commits

    result = Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [CHANGE]}, on_phase=kill_after_prepare)
    assert result.outcome == "rolledBack", result.report
    statuses = {w.pid: w.status for w in result.workers}
    assert statuses.pop(victim.pid) == "gone"  # its process died: it runs nothing
    assert set(statuses.values()) == {"rolledBack"}
    survivors = [w for w in workers if w is not victim]
    assert outputs(survivors) == [21] * (WORKERS - 1)
    for worker in survivors:
        history = worker.history()
        assert history["generation"] == 0
        assert [g["status"] for g in history["generations"]] == ["rolledBack"]
    assert Registry("shop").read_journal()["generation"] == 0
    # The dead worker's socket is pruned; the next apply reaches every survivor.
    again = Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [CHANGE]})
    assert again.outcome == "applied"
    assert len(again.workers) == WORKERS - 1
    assert outputs(survivors) == [201] * (WORKERS - 1)


def test_a_respawned_worker_is_brought_to_the_current_generation(spawn: Any, runtime: Path) -> None:
    workers = start_fleet(spawn, 4)
    fleet = Fleet("shop", token(runtime))
    assert fleet.apply({"action": "apply", "changes": [CHANGE]}).outcome == "applied"
    second = {**CHANGE, "qualname": "total", "source": "def total(n):\n    return price(n) + 2\n"}
    assert fleet.apply({"action": "apply", "changes": [second]}).outcome == "applied"
    assert outputs(workers) == [202] * 4
    workers[0].kill()
    respawned = spawn(service="shop")
    assert [c["status"] for c in respawned.catch_up] == ["applied", "applied"]
    assert respawned.call() == 202
    assert fleet_status(respawned, runtime)["fleetGeneration"] == 2
    # It takes part in what follows, rollbacks included.
    live = workers[1:] + [respawned]
    result = fleet.rollback(to=1)
    assert result.outcome == "applied", result.report
    assert outputs(live) == [201] * 4
    assert fleet.rollback().outcome == "applied"
    assert outputs(live) == [21] * 4
    late = spawn(service="shop")
    assert late.catch_up == [] and late.call() == 21


def test_fleet_approval_is_asked_once_for_all(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    workers = start_fleet(spawn, 3, approval="always")
    fix = tmp_path / "shop_fix.py"
    fix.write_text(FIX)
    refused = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop")
    assert refused.returncode == 3
    assert "Approval required" in refused.stdout
    assert outputs(workers) == [21] * 3
    approved = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--yes")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert outputs(workers) == [201] * 3
    # Under "always", going back is a change too.
    refused = cli("rollback", "--service", "shop")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert outputs(workers) == [201] * 3
    approved = cli("rollback", "--service", "shop", "--yes")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert outputs(workers) == [21] * 3


def test_no_workers_is_an_error(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEFIX_TOKEN", "any")
    done = cli("apply", "--service", "nobody", os.devnull)
    assert done.returncode == 1
    assert "no worker is registered under service 'nobody'" in done.stderr


def _wait_for_connections(worker: Worker, runtime: Path, count: int) -> None:
    """Until the agent serves only `count` connections (this probe included), or fail."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with AgentClient(worker.address, token(runtime), timeout=WAIT) as probe:
            if probe.hello["connections"] == count:
                return
    raise AssertionError(f"worker {worker.pid} still serves other connections after {WAIT} s")


def _wait_until_stopped(pid: int) -> None:
    """Until every thread of `pid` is stopped (SIGSTOP takes effect asynchronously)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except (OSError, IndexError):
                continue
        if states and all(state in ("T", "t") for state in states):
            return
    raise AssertionError(f"process {pid} did not stop")


def test_a_stopped_worker_aborts_a_command_line_apply_with_exit_1(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    """docs/agent.md: an aborted fleet apply exits 1 (refused, nothing changed), even when a
    worker that stopped answering caused it; 5 is for an agent that cannot be reached at all."""
    workers = start_fleet(spawn, 3)
    victim = workers[1]
    fix = tmp_path / "fix.py"
    fix.write_text(PRICE_FIX)
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        _wait_until_stopped(victim.pid)
        done = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--timeout", "2")
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not done: no worker was changed" in done.stdout, done.stdout
    assert outputs(workers) == [21] * 3


def test_a_stalled_worker_does_not_commit_after_the_coordinator_gave_up(spawn: Any, runtime: Path) -> None:
    workers = start_fleet(spawn, 4)
    victim = workers[2]

    def stall_after_prepare(phase: str, _: list[Any]) -> None:
        if phase == "prepared":
            os.kill(victim.pid, signal.SIGSTOP)  # the commit request will wait in its socket
            _wait_until_stopped(victim.pid)

    try:
        result = Fleet("shop", token(runtime), timeout=2.0).apply(
            {"action": "apply", "changes": [CHANGE]}, on_phase=stall_after_prepare
        )
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    # The coordinator cannot know what a worker that does not answer runs, and says so.
    assert result.outcome == "partial", result.report
    statuses = {w.pid: w.status for w in result.workers}
    assert statuses.pop(victim.pid) == "unknown"
    assert set(statuses.values()) == {"rolledBack"}
    # Resumed, the victim finds the commit in its socket from a coordinator that hung up.
    _wait_for_connections(victim, runtime, 1)
    assert outputs(workers) == [21] * 4
    assert victim.history()["generation"] == 0


def test_a_worker_that_imports_its_app_after_listen_gets_the_fleets_fix_at_the_import(spawn: Any, runtime: Path) -> None:
    workers = start_fleet(spawn, 2)
    fleet = Fleet("shop", token(runtime))
    assert fleet.apply({"action": "apply", "changes": [CHANGE]}).outcome == "applied"
    # It calls listen() before importing its app (gunicorn's post_fork, preload_app off): the
    # fleet's fix is kept for the import and applied there, before the app serves anything.
    late = spawn(service="shop", late_import=True)
    assert [c["status"] for c in late.catch_up] == ["applied"]
    assert fleet_status(late, runtime)["fleetGeneration"] == 1
    assert fleet_status(late, runtime)["pending"] == []
    assert outputs(workers + [late]) == [201, 201, 201]
    result = fleet.apply({"action": "apply", "changes": [CHANGE]}, dry_run=True)
    assert result.outcome == "unchanged" and result.warnings == [], result.report  # every worker runs it already


def test_a_worker_that_has_not_imported_the_module_keeps_a_fleet_apply_for_its_import(
    spawn: Any, runtime: Path
) -> None:
    workers = start_fleet(spawn, 2)
    lazy = spawn(service="shop", import_on_command=True)
    result = Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [CHANGE]})
    assert result.outcome == "applied", result.report  # the whole fleet: not aborted by the lazy worker
    assert f"worker {lazy.pid}: committed, generation 0; kept until it imports shop (applied then)" in result.report
    assert fleet_status(lazy, runtime)["pending"][0]["module"] == "shop"
    status = cli("status", "--service", "shop")
    assert status.returncode == 0, status.stdout + status.stderr  # kept for an import: nothing runs old code
    assert "kept until this process imports shop: price (fleet generation 1)" in status.stdout
    imported = lazy.ask("import")
    assert imported["pending"] == []
    assert outputs(workers + [lazy]) == [201, 201, 201]
    assert [g["generation"] for g in lazy.history()["generations"]] == [1]
    # Rolled back like any other worker.
    assert Fleet("shop", token(runtime)).rollback().outcome == "applied"
    assert outputs(workers + [lazy]) == [21, 21, 21]


def test_a_fix_that_fails_at_the_import_says_so_in_status_and_the_fleet_warns(
    spawn: Any, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = start_fleet(spawn, 1)
    fleet = Fleet("shop", token(runtime))
    # The verify holds where the fleet applied it and fails in a worker set up otherwise (the
    # same file: a worker whose file differs does not replay the fix at all; see the deploy test).
    verify = "total(2) == 201 and __import__('os').environ.get('SHOP_REGION') != 'eu'"
    assert fleet.apply({"action": "apply", "changes": [CHANGE]}, verify=verify).outcome == "applied"
    monkeypatch.setenv("SHOP_REGION", "eu")
    lazy = spawn(service="shop", import_on_command=True)
    assert [c["status"] for c in lazy.catch_up] == ["pending"] and lazy.catch_up[0]["pending"] == ["shop"]
    imported = lazy.ask("import")  # the import itself succeeds
    outcome = imported["catchUp"][0]
    assert outcome["status"] == "failed" and outcome["error"]["kind"] == "verifyFailed"
    assert lazy.call() == 21  # its file's code: the fix was rolled back there
    assert fleet_status(lazy, runtime)["fleetGeneration"] == 0
    status = cli("status", "--service", "shop")
    assert status.returncode == 6, status.stdout + status.stderr  # a worker differs from the fleet
    assert f"catch-up of fleet generation 1 FAILED: verify {verify} was false" in status.stdout
    assert f"worker {lazy.pid} runs fleet generation 0, not 1: its catch-up failed" in status.stdout
    result = fleet.apply({"action": "apply", "changes": [CHANGE]}, dry_run=True)
    assert result.warnings == [
        f"worker {lazy.pid} runs fleet generation 0, not 1: its catch-up failed (see `livefix status`)"
    ], result.report
    assert outputs(workers) == [201]


def test_a_fleet_rollback_withdraws_a_change_kept_for_an_import_that_never_happened(
    spawn: Any, runtime: Path
) -> None:
    """Found by a new user: the lazy worker had nothing to roll back (its engine never ran the
    change), so the rollback left the kept change in place, to land at its later import."""
    workers = start_fleet(spawn, 1)
    lazy = spawn(service="shop", import_on_command=True)
    fleet = Fleet("shop", token(runtime))
    assert fleet.apply({"action": "apply", "changes": [CHANGE]}).outcome == "applied"
    assert [p["fleetGeneration"] for p in fleet_status(lazy, runtime)["pending"]] == [1]
    back = cli("rollback", "--service", "shop")
    assert back.returncode == 0, back.stdout + back.stderr
    assert fleet_status(lazy, runtime)["pending"] == []
    status = cli("status", "--service", "shop")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "kept until this process imports" not in status.stdout
    assert lazy.ask("import")["pending"] == []
    assert outputs(workers + [lazy]) == [21, 21]  # the old code everywhere, the lazy worker included
    assert [g["status"] for g in lazy.history()["generations"]] == []


def test_a_fix_file_that_no_worker_imports_is_refused_not_kept_for_its_import(
    spawn: Any, runtime: Path, app: Path
) -> None:
    """`livefix apply --service shop fix.py::price` with fix.py in the workers' directory (on
    their sys.path): kept "until it imports fix", which never happens, while exit 0 said done."""
    workers = start_fleet(spawn, 2)
    app_dir = app  # every worker's sys.path holds it
    fix = app_dir / "fix.py"
    fix.write_text(PRICE_FIX)
    done = cli("apply", "--service", "shop", f"{fix}::price")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "name the module with --module" in done.stdout + done.stderr, done.stdout + done.stderr
    assert all(fleet_status(w, runtime)["pending"] == [] for w in workers)
    assert outputs(workers) == [21, 21]
    assert Registry("shop").read_journal()["generation"] == 0
    elsewhere = app_dir.parent / "fixes"  # not on the workers' sys.path: refused by each worker, same hint
    elsewhere.mkdir()
    (elsewhere / "fix.py").write_text(PRICE_FIX)
    refused = cli("apply", "--service", "shop", f"{elsewhere / 'fix.py'}::price")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "name the module with --module" in refused.stdout, refused.stdout
    # The module's own file, on the other hand, is found in the workers that imported it.
    own = cli("apply", "--service", "shop", f"{app_dir / 'shop.py'}::price")
    assert own.returncode == 0, own.stdout + own.stderr


def test_applying_what_every_worker_already_runs_records_nothing_and_rollback_keeps_the_fix(
    spawn: Any, runtime: Path, tmp_path: Path
) -> None:
    """Found by a new user: the second apply of the same fix recorded an empty fleet
    generation, its verify was skipped in silence, and the next rollback undid only that
    no-op, so the fix the user meant to take back stayed."""
    workers = start_fleet(spawn, 2)
    fix = tmp_path / "fix.py"
    fix.write_text(PRICE_FIX)
    first = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop")
    assert first.returncode == 0, first.stdout + first.stderr
    again = cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop", "--verify", "price(1) == 5")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to apply: every worker already runs this code" in again.stdout
    assert "verify price(1) == 5 was not run: nothing changed" in again.stdout
    assert Registry("shop").read_journal()["generation"] == 1
    back = cli("rollback", "--service", "shop")
    assert back.returncode == 0, back.stdout + back.stderr
    assert outputs(workers) == [21, 21]  # the fix itself was taken back


def test_a_fleet_apply_that_adds_a_definition_says_so(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    """A misspelled qualname adds a function nobody calls: "done" alone hid that."""
    workers = start_fleet(spawn, 2)
    fix = tmp_path / "fix.py"
    fix.write_text(PRICE_FIX.replace("def price", "def prise"))
    done = cli("apply", "--service", "shop", f"{fix}::prise", "--module", "shop", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["warnings"] == ["shop.prise is new: the change adds it and no code calls it yet (a misspelled name?)"]
    assert outputs(workers) == [21, 21]


def test_after_a_deploy_new_workers_run_the_new_files_not_the_old_fleet_fix(
    spawn: Any, runtime: Path, app: Path
) -> None:
    """Found by a new user: the service stopped, a new version of the app deployed, and every
    new worker replayed the old journal's fix over the new code (and every request failed on
    a name the deploy had renamed). A fix is a fact about the file it was made against."""
    old = start_fleet(spawn, 1)
    assert Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [CHANGE]}).outcome == "applied"
    assert outputs(old) == [201]
    old[0].kill()
    (app / "shop.py").write_text(APP.replace("n * 10", "n * 1000"))  # the deploy: a proper fix of its own
    new = spawn(service="shop")
    assert [c["status"] for c in new.catch_up] == ["superseded"]
    assert "changed since this change was made against it" in new.catch_up[0]["reason"]
    assert new.call() == 2001  # the deployed file's code
    lazy = spawn(service="shop", import_on_command=True)  # its app loads after listen(): its file is found
    assert [c["status"] for c in lazy.catch_up] == ["superseded"]
    assert lazy.ask("import")["pending"] == []
    assert lazy.call() == 2001
    status = cli("status", "--service", "shop")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "fleet generation 1 not replayed, this process runs its file: " in status.stdout
    # A worker that respawns without a deploy still catches up (the file is the one the fix was made against).
    (app / "shop.py").write_text(APP)
    again = spawn(service="shop")
    assert [c["status"] for c in again.catch_up] == ["applied"] and again.call() == 201


def test_the_command_line_refuses_a_target_and_a_fleet_at_once_and_shows_the_journal(
    spawn: Any, runtime: Path, tmp_path: Path
) -> None:
    workers = start_fleet(spawn, 2)
    fix = tmp_path / "fix.py"
    fix.write_text(PRICE_FIX)
    for words in (("status", str(workers[0].pid), "--service", "shop"),
                  ("apply", str(workers[0].pid), f"{fix}::price", "--module", "shop", "--service", "shop"),
                  ("rollback", "--service", "shop", "extra")):
        done = cli(*words)
        assert done.returncode == 2, (words, done.stdout, done.stderr)  # a bad command line changes nothing
    assert outputs(workers) == [21, 21]
    assert cli("apply", "--service", "shop", f"{fix}::price", "--module", "shop").returncode == 0
    history = cli("history", "--service", "shop")
    assert history.returncode == 0, history.stdout + history.stderr
    assert history.stdout.startswith("fleet generation 1\n    1  apply   shop.price\n"), history.stdout
    as_json = json.loads(cli("history", "--service", "shop", "--json").stdout)
    assert as_json["journal"]["generation"] == 1 and len(as_json["workers"]) == 2
    unknown = cli("status", "--service", "nobody")
    assert "no worker is registered under service 'nobody'" in unknown.stderr


def test_output_closed_early_is_not_an_internal_error(spawn: Any, runtime: Path) -> None:
    """`livefix status --service shop --json | head -1`: the reader leaves; no traceback."""
    start_fleet(spawn, 2)
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write breaks the pipe
    done = subprocess.run([sys.executable, "-m", "livefix.cli", "status", "--service", "shop", "--json"],
                          stdout=writer, stderr=subprocess.PIPE, text=True, timeout=WAIT * 2)
    os.close(writer)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr


def test_a_comment_edited_in_the_file_does_not_split_the_fleet_and_a_code_edit_is_said_to(
    spawn: Any, runtime: Path, app: Path
) -> None:
    """Found by a new user: a comment appended to the app's file, then a worker respawned: it
    did not replay the fix (the file's bytes had changed) and `status` exited 0."""
    workers = start_fleet(spawn, 2)
    assert Fleet("shop", token(runtime)).apply({"action": "apply", "changes": [CHANGE]}).outcome == "applied"
    (app / "shop.py").write_text("# an unrelated comment\n" + APP)
    respawned = spawn(service="shop")
    assert [c["status"] for c in respawned.catch_up] == ["applied"]
    assert outputs(workers + [respawned]) == [201, 201, 201]
    assert cli("status", "--service", "shop").returncode == 0
    # An edit of code (not a whole-service deploy): the next worker runs the file, and status says they differ.
    (app / "shop.py").write_text(APP.replace("price(n) + 1", "price(n) + 5"))
    edited = spawn(service="shop")
    assert [c["status"] for c in edited.catch_up] == ["superseded"]
    assert edited.call() == 25
    status = cli("status", "--service", "shop")
    assert status.returncode == 6, status.stdout + status.stderr
    assert f"started after its file's code changed and run the file instead" in status.stdout
    assert str(edited.pid) in status.stdout.split("workers differ:")[1]
    # A rollback: the workers that ran the fix go back; the edited one had nothing to undo and says so.
    back = Fleet("shop", token(runtime)).rollback()
    statuses = {w.pid: w.status for w in back.workers}
    assert statuses.pop(edited.pid) == "unchanged" and set(statuses.values()) == {"rolledBack"}, back.report
    assert fleet_status(edited, runtime)["catchUp"] == []  # its catch-up of the undone generation no longer holds
