"""Fix every worker of a Dask `distributed` cluster, two-phase, and every worker that joins later.

Connects a coordinator (`livefix apply --dask tcp://scheduler:8786 ...`, or `apply(client,
changes)` in a program) to the worker processes of a cluster, through the scheduler's own
RPC: `Client.run` calls `Participant.serve` inside each worker process (on its event loop,
outside task scheduling), so prepare, commit, undo and sync reach every worker whatever
tasks it runs.

The fleet's journal travels in the `LivefixPlugin` worker plugin: the scheduler keeps the
newest registration of a plugin name and hands it to every worker that registers later
(a scaled-up worker, one its nanny restarted, every worker after `client.restart()`), whose
`setup` imports the modules the journal changes and applies what that process lacks. After
each fleet change the plugin is registered again with the new journal: re-registering a
name replaces it on the scheduler and calls `setup` again on every running worker (the old
instance torn down first), where it changes nothing for workers already there and catches
up any worker that joined during the change. One coordinator at a time: a `distributed.Lock`
on the scheduler.

`distributed` is imported here only: nothing else in livefix imports this module unless
Dask is used (the command line imports it for `--dask`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from typing import Any, Iterator

from livefix.errors import LivefixError

try:
    from distributed import Client, Lock
    from distributed.diagnostics.plugin import WorkerPlugin
    from distributed.protocol.pickle import loads
except ImportError as exc:  # the command line shows this, exit 1
    raise LivefixError("unsupported", f"Dask fleets need distributed ({exc}): pip install 'livefix[dask]'") from exc

import livefix
from livefix import protocol
from livefix.agent.fleet import FleetResult, WorkerOutcome
from livefix.integrations import two_phase
from livefix.integrations.two_phase import DEAD, NO_ANSWER, Coordinator, Journal, PhaseHook
from livefix.service import ServiceOptions

log = logging.getLogger("livefix.dask")

PLUGIN_NAME = "livefix"
FLEET_KEY = "dask"
# While answers are outstanding, how often the coordinator asks the scheduler whether the
# silent workers are still in the cluster (a killed worker's RPC would otherwise wait out
# distributed's connect retries): a client watching remote state, not a test's wait.
MEMBERSHIP_POLL_SECONDS = 0.25


class LivefixPlugin(WorkerPlugin):
    """Carries the fleet journal to every worker, present and future, and catches it up.

    `modules`: imported in every worker at setup, so that a fix can reach workers that have
    not run a task importing them yet (a prepare is refused where a module is not loaded).
    `approval`: the workers' approval policy ("never", "risky", "always")."""

    idempotent = False  # registering again replaces the instance (and its journal) everywhere

    def __init__(self, journal: Journal | None = None, modules: tuple[str, ...] | list[str] = (),
                 approval: str = "risky", audit_log: str | None = None) -> None:
        self.journal = journal or two_phase.empty_journal()
        self.modules = tuple(modules)
        self.approval = approval
        self.audit_log = audit_log

    def setup(self, worker: Any) -> None:
        livefix.install()  # record module sources from now on: later reloads diff against them
        member = two_phase.participant(FLEET_KEY, ServiceOptions.from_wire(
            {"approval": self.approval, "auditLog": self.audit_log}))
        for name in self.modules:
            try:
                __import__(name)
            except Exception:  # a worker that cannot import it refuses fixes to it, by name
                log.exception("livefix: worker %s could not import %s", worker.address, name)
        try:
            body = member.sync(self.journal)
            if body["rolledBack"] or body["applied"]:
                log.info("livefix: worker %s caught up: %s", worker.address, body["report"])
        except LivefixError as error:
            # Never fail the plugin (the worker would still run, without saying why): the
            # worker reports the fleet generation it reached, and later applies warn.
            log.error("livefix: worker %s could not catch up with the fleet: %s", worker.address, error.message)


def _serve(op: str, args: dict[str, Any], dask_worker: Any = None) -> dict[str, Any]:
    """Runs in the worker process (Client.run passes `dask_worker`)."""
    reply = two_phase.participant(FLEET_KEY).serve(op, args)
    if dask_worker is not None:
        reply["workerName"] = str(dask_worker.name)
    return reply


class DaskTransport:
    """The scheduler's RPC as a fleet transport."""

    def __init__(self, client: Client, timeout: float = 30.0) -> None:
        self.client = client
        self.timeout = timeout
        self.label = f"dask {client.scheduler.address}"
        self._plugin: LivefixPlugin | None = None

    @contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        lock = Lock(f"livefix-{PLUGIN_NAME}", scheduler_rpc=self.client.scheduler, loop=self.client.loop)
        if not lock.acquire(timeout=timeout):
            raise LivefixError("busy", f"another livefix fleet operation held {self.label} for {timeout:g} s")
        try:
            yield
        finally:
            lock.release()

    def plugin(self) -> LivefixPlugin | None:
        """The plugin the scheduler hands to new workers (None: never registered)."""
        # A lambda travels by value (cloudpickle): the scheduler need not import livefix.
        raw = self.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.worker_plugins.get("livefix"))
        plugin = loads(raw) if raw is not None else None
        return plugin if isinstance(plugin, LivefixPlugin) else None

    def read_journal(self) -> Journal:
        self._plugin = self.plugin()
        if self._plugin is None:
            # First fleet change: register the plugin now, so every worker installs livefix
            # (sources tracked) and workers that join during this change get it.
            self._plugin = LivefixPlugin()
            self.client.register_plugin(self._plugin, name=PLUGIN_NAME)
        return self._plugin.journal

    def write_journal(self, journal: Journal) -> None:
        current = self._plugin or self.plugin() or LivefixPlugin()
        self._plugin = LivefixPlugin(journal, current.modules, current.approval, current.audit_log)
        self.client.register_plugin(self._plugin, name=PLUGIN_NAME)

    def members(self) -> tuple[list[str], list[str]]:
        return sorted(self._workers()), []

    def _workers(self) -> set[str]:
        return set(self.client.scheduler_info(n_workers=-1)["workers"])

    def call(self, op: str, args: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
        if not names:
            return {}
        return self.client.sync(self._fan_out, op, args, list(names))

    async def _fan_out(self, op: str, args: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
        # One Client.run per worker, all at once: each answers (or fails) on its own.
        # (`Client._run` is the coroutine `Client.run` wraps; a sync client cannot await `run`.)
        calls = {asyncio.ensure_future(self.client._run(_serve, op, args, workers=[name], on_error="return")): name
                 for name in names}
        replies: dict[str, dict[str, Any]] = {}
        unreached: dict[str, str] = {}  # name -> why the scheduler could not reach it
        deadline = time.monotonic() + self.timeout
        pending = set(calls)
        while pending or unreached:
            wait = min(MEMBERSHIP_POLL_SECONDS, max(deadline - time.monotonic(), 0))
            if not pending:
                await asyncio.sleep(wait)  # only unreached workers left: give the scheduler time to notice
            else:
                done, pending = await asyncio.wait(pending, timeout=wait)
                for call in done:
                    reply = _reply(calls[call], call)
                    if isinstance(reply, dict):
                        replies[calls[call]] = reply
                    else:
                        unreached[calls[call]] = reply
            if not pending and not unreached:
                break
            # A worker that does not answer, or could not be reached: still in the cluster?
            members = set((await self.client.scheduler.identity(n_workers=-1))["workers"])
            out_of_time = time.monotonic() >= deadline
            for call in [c for c in pending if calls[c] not in members or out_of_time]:
                call.cancel()
                pending.discard(call)
                unreached[calls[call]] = f"no answer to {op} within {self.timeout:g} s"
            for name, why in list(unreached.items()):
                if name not in members:
                    replies[name] = _failure(name, DEAD, f"left the cluster during {op} (killed or removed): "
                                                         "it runs nothing any more")
                elif out_of_time:
                    replies[name] = _failure(name, NO_ANSWER, why)
                else:
                    continue  # the scheduler may not have noticed yet that it died: look again
                del unreached[name]
        return replies


def _reply(name: str, call: asyncio.Future) -> dict[str, Any] | str:
    """The worker's answer, or why it could not be reached."""
    try:
        result = call.result().get(name)
    except Exception as exc:  # noqa: BLE001 - the scheduler could not reach it
        result = exc
    if isinstance(result, dict):
        return result
    return f"not reached: {type(result).__name__}: {result}"


def _failure(name: str, reason: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"kind": "failed", "reason": reason, "address": name, "message": message}}


class DaskFleet(two_phase.CoordinatedFleet):
    """A `livefix.agent.fleet.Fleet` look-alike for one cluster: the command line's `--dask`.

    Given an address, it connects a Client for each operation and closes it after."""

    def __init__(self, target: Client | str, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout

    @contextmanager
    def _coordinator(self) -> Iterator[Coordinator]:
        if isinstance(self.target, Client):
            yield Coordinator(DaskTransport(self.target, self.timeout))
            return
        try:
            client = Client(self.target, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise LivefixError("failed", f"cannot reach the Dask scheduler at {self.target}: {exc}",
                               address=str(self.target), reason="noAgent") from None
        try:
            yield Coordinator(DaskTransport(client, self.timeout))
        finally:
            client.close()



# -- the Python API ------------------------------------------------------------------------


def register(client: Client, modules: tuple[str, ...] | list[str] = (), approval: str = "risky",
             audit_log: str | None = None) -> None:
    """Make every worker of the cluster, and every worker that joins later, fixable: installs
    livefix in each (sources tracked from now on) and imports `modules` there. Keeps the
    fleet's journal. Call it once the cluster is up, before the workers import your code."""
    ServiceOptions.from_wire({"approval": approval, "auditLog": audit_log})  # a bad policy is refused here
    transport = DaskTransport(client)
    with transport.locked(30.0):
        current = transport.plugin()
        journal = current.journal if current is not None else two_phase.empty_journal()
        client.register_plugin(LivefixPlugin(journal, modules, approval, audit_log), name=PLUGIN_NAME)


def apply(client: Client, changes: Any, *, verify: str | None = None, migrate: Any = None, approved: bool = False,
          dry_run: bool = False, timeout: float = 30.0, on_phase: PhaseHook | None = None) -> FleetResult:
    """Apply `changes` (as `livefix.apply` takes them) on every worker or none.

    Returns the fleet outcome (`result.outcome`: "applied", "aborted", "checked",
    "rolledBack" or "partial"; `result.error` the first failure, `result.report` per worker)."""
    prepare: dict[str, Any] = {"action": "apply", "changes": two_phase.wire_changes(changes), "approved": approved}
    if migrate is not None:
        prepare["migrate"] = migrate
    return Coordinator(DaskTransport(client, timeout)).apply(prepare, verify=verify, dry_run=dry_run, on_phase=on_phase)


def reload(client: Client, modules: list[str] | None = None, *, package: str | None = None,
           verify: str | None = None, approved: bool = False, dry_run: bool = False,
           timeout: float = 30.0) -> FleetResult:
    """Reload modules from each worker's files (diff-based), on every worker or none."""
    prepare: dict[str, Any] = {"action": "reload", "approved": approved}
    if modules:
        prepare["modules"] = list(modules)
    if package:
        prepare["package"] = package
    return Coordinator(DaskTransport(client, timeout)).apply(prepare, verify=verify, dry_run=dry_run)


def rollback(client: Client, to: int | None = None, *, approved: bool = False, timeout: float = 30.0) -> FleetResult:
    """Every worker back to fleet generation `to` (default: before the latest change)."""
    return Coordinator(DaskTransport(client, timeout)).rollback(to=to, approved=approved)


def history(client: Client, timeout: float = 30.0) -> dict[str, Any]:
    """The fleet journal and each worker's own history."""
    coordinator = Coordinator(DaskTransport(client, timeout))
    workers = coordinator.each(protocol.HISTORY)
    return {"journal": coordinator.journal(), "workers": {w.address: w.body or {"error": w.error} for w in workers}}


def status(client: Client, timeout: float = 30.0) -> list[WorkerOutcome]:
    """Each worker's generation, fleet generation and modules that differ from their files."""
    return Coordinator(DaskTransport(client, timeout)).each(protocol.STATUS)


__all__ = ["DaskFleet", "LivefixPlugin", "apply", "history", "register", "reload", "rollback", "status"]
