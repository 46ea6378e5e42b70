"""Two-phase fleet changes carried by another tool's messaging (Dask's RPC, Celery's broker).

Connects a coordinator (the command line, or a program calling `apply`) to worker
processes that another system runs and reaches. Both ends live here; each integration
supplies a `Transport`: how to find the workers, send them one operation and collect
every answer, hold the fleet's lock and keep its journal.

- Worker side: one `Participant` per process (`participant(key)`), serving `prepare`,
  `commit`, `abort`, `undo`, `sync`, `history` and `status` on the process's engine, with
  the agent's validation and approval policy (`AgentService`). Prepared plans are kept
  by transaction id and dropped when their time runs out.
- Coordinator side: `Coordinator.apply/rollback/each`, with the signatures, outcomes and
  exit codes of `livefix.agent.fleet.Fleet`, so the command line drives either.

A fleet generation N is the journal's first N entries; each entry has an id, and a
process remembers which entry ids it ran, so `sync(journal)` brings any process (a late
worker, a respawned pool child, one that missed a rollback) to exactly the journal:
roll back what differs, apply what is missing. Standard library only.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from livefix import protocol
from livefix.agent import module_facts
from livefix.agent.fleet import FleetResult, WorkerOutcome, added_warnings, all_unchanged, with_module_hint
from livefix.agent.service import AgentService
from livefix.engine import Engine, default_engine
from livefix.errors import LivefixError
from livefix.service import ServiceOptions

log = logging.getLogger("livefix.fleet")

# {"generation": N, "entries": [{"id", "generation", "action", "changes" | "modules"/"package", "imports", ...}]}
Journal = dict[str, Any]
PhaseHook = Callable[[str, list[WorkerOutcome]], None]

# A prepared plan no commit or abort reached (its coordinator died) is dropped after this.
DEFAULT_PLAN_EXPIRY = 120.0
_REQUEST_KEYS = ("action", "changes", "modules", "package", "migrate")


def empty_journal() -> Journal:
    return {"generation": 0, "entries": []}


def wire_changes(changes: Any) -> list[dict[str, Any]]:
    """Changes as the wire carries them, from `livefix.Change` objects or dicts (one or a list)."""
    if isinstance(changes, dict) or hasattr(changes, "to_wire"):
        changes = [changes]
    return [c.to_wire() if hasattr(c, "to_wire") else dict(c) for c in changes]


# -- worker side -----------------------------------------------------------------------


@dataclass
class _Pending:
    owner: int  # the AgentService owner its plan is kept under
    prepare_id: str
    timer: threading.Timer


class Participant:
    """This process as a member of a fleet: two-phase changes, catch-up, fleet position."""

    def __init__(self, engine: Engine, options: ServiceOptions | None = None, fleet: str | None = None) -> None:
        self.engine = engine
        self.fleet = fleet  # which fleet this process belongs to ("dask", "celery:NAME"), for status
        self.service = AgentService(engine, options)
        self.catch_up: list[dict[str, Any]] = []  # what the latest sync did, entry by entry
        self._lock = threading.RLock()
        self._pending: dict[str, _Pending] = {}
        # Answers already given per (operation, transaction): workers sharing one process
        # (Dask's threaded workers) get the same answer instead of a second change.
        self._answered: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._owners = iter(range(1, sys.maxsize))
        # Index N: (id of journal entry N, the engine generation that ran it); 0 is the base.
        self._ran: list[tuple[str | None, int]] = [(None, engine.generation)]
        # A pool forks children while this process may be committing on another thread: the
        # fork waits for it, so a child never inherits a half-held lock or half-done state.
        os.register_at_fork(before=self._before_fork, after_in_parent=self._after_fork,
                            after_in_child=self._forked)

    @property
    def fleet_generation(self) -> int:
        return len(self._ran) - 1

    def identity(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "service": self.fleet,
                "fleetGeneration": self.fleet_generation, "generation": self.engine.generation}

    def serve(self, op: str, args: dict[str, Any] | None) -> dict[str, Any]:
        """Answer one operation: `{"ok": True, "body": ...}` or `{"ok": False, "error": ...}`,
        with who answered. Never raises: a transport sends this back as it is."""
        try:
            body = self.handle(op, args or {})
            reply = {"ok": True, "body": body}
        except LivefixError as error:
            reply = {"ok": False, "error": error.to_dict()}
        except Exception as exc:  # a bug of ours: logged with its traceback, answered as a failure
            log.exception("livefix: fleet operation %s failed unexpectedly", op)
            reply = {"ok": False, "error": LivefixError(
                "internal", f"{op} failed unexpectedly: {type(exc).__name__}: {exc}").to_dict()}
        return {**reply, **self.identity()}

    def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "ping": lambda a: self.identity(),
            "prepare": self._prepare,
            "commit": self._commit,
            "abort": self._abort,
            "undo": self._undo,
            "sync": self._sync_request,
            "history": lambda a: {**self.engine.history(), "fleetGeneration": self.fleet_generation},
            "status": lambda a: {**self.service.handle(protocol.STATUS, a),
                                 "agent": {**self.identity(), "catchUp": self.catch_up}},
        }.get(op)
        if handler is None:
            raise LivefixError("invalid", f"unknown fleet operation {op!r}", op=op)
        with self._lock:
            return handler(args)

    # -- two-phase ------------------------------------------------------------------------

    def _prepare(self, args: dict[str, Any]) -> dict[str, Any]:
        txn = _txn(args)
        done = self._answered.get(("prepare", txn))
        if done is not None:
            return done
        request = args.get("request")
        if not isinstance(request, dict):
            raise LivefixError("invalid", "`request` must be an object like {action, changes}")
        self.service.check_limits(request)
        owner = next(self._owners)
        body = self.service.prepare_request(owner, {
            **{k: request[k] for k in _REQUEST_KEYS if k in request},
            "verify": args.get("verify"), "approved": bool(args.get("approved")),
        })
        expires = args.get("expires")
        if isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0:
            expires = DEFAULT_PLAN_EXPIRY
        timer = threading.Timer(float(expires), self._expire, (txn,))
        timer.daemon = True
        timer.name = "livefix-plan-expiry"
        timer.start()
        reply = {k: v for k, v in body.items() if k != "prepareId"}
        reply["fleetGeneration"] = self.fleet_generation
        reply["imports"] = sorted({edit["module"] for edit in body.get("planned", []) if edit.get("module")})
        self._pending[txn] = _Pending(owner, str(body["prepareId"]), timer)
        self._remember(("prepare", txn), reply)
        return reply

    def _commit(self, args: dict[str, Any]) -> dict[str, Any]:
        txn = _txn(args)
        done = self._answered.get(("commit", txn))
        if done is not None:
            return done
        entry = args.get("entry")
        if not isinstance(entry, dict) or not isinstance(entry.get("generation"), int):
            raise LivefixError("invalid", "`entry` must be the journal entry this commit makes")
        pending = self._pending.pop(txn, None)
        if pending is None:
            raise LivefixError("notFound", f"no prepared change {txn} here (never prepared, aborted or expired)",
                               reason="notPrepared")
        pending.timer.cancel()
        before = self.engine.generation
        try:
            body = self.service.commit_request({"prepareId": pending.prepare_id})
        finally:
            self.service.discard(pending.owner)
        self._reached(int(entry["generation"]), txn, int(body.get("generation", before)), before)
        body = {**body, "fleetGeneration": self.fleet_generation}
        self._remember(("commit", txn), body)
        return body

    def _abort(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"aborted": self._drop(_txn(args))}

    def _undo(self, args: dict[str, Any]) -> dict[str, Any]:
        """Take back transaction `txn` whatever it reached here: drop its plan, or roll back
        its commit to fleet generation `fleetTo`. Idempotent."""
        txn = _txn(args)
        if self._drop(txn):
            return {"undone": "aborted", "generation": self.engine.generation, "fleetGeneration": self.fleet_generation}
        ids = [entry_id for entry_id, _ in self._ran]
        if txn not in ids:
            return {"undone": "nothing", "generation": self.engine.generation, "fleetGeneration": self.fleet_generation}
        self._truncate(ids.index(txn) - 1, approved=True)
        return {"undone": "rolledBack", "generation": self.engine.generation, "fleetGeneration": self.fleet_generation}

    def _drop(self, txn: str) -> bool:
        pending = self._pending.pop(txn, None)
        if pending is None:
            return False
        pending.timer.cancel()
        self.service.discard(pending.owner)
        return True

    def _expire(self, txn: str) -> None:
        with self._lock:
            if self._drop(txn):
                log.warning("livefix: dropped prepared change %s: no commit or abort came in time", txn)

    def _remember(self, key: tuple[str, str], body: dict[str, Any]) -> None:
        self._answered[key] = body
        while len(self._answered) > 32:
            self._answered.popitem(last=False)

    def _reached(self, fleet: int, entry_id: str, engine_generation: int, before: int) -> None:
        del self._ran[fleet:]
        while len(self._ran) < fleet:
            # It was behind (its catch-up failed): what it ran in between is unknown, so a
            # later sync finds no common entry there and rolls back to before it.
            self._ran.append((None, before))
        self._ran.append((entry_id, engine_generation))

    # -- catch-up -------------------------------------------------------------------------

    def _sync_request(self, args: dict[str, Any]) -> dict[str, Any]:
        journal = args.get("journal")
        if not isinstance(journal, dict) or not isinstance(journal.get("entries"), list):
            raise LivefixError("invalid", "`journal` must be {generation, entries}")
        return self.sync(journal, approved=bool(args.get("approved", True)))

    def sync(self, journal: Journal, approved: bool = True) -> dict[str, Any]:
        """Bring this process to exactly the journal's fleet generation: roll back what it ran
        that the journal does not have (a rollback it missed), then apply the entries it lacks
        (importing the modules they change first: a late worker would otherwise import them
        from their files later, unfixed). Raises at the first entry that fails; the fleet
        generation it stopped at is kept, and `catch_up` says why."""
        with self._lock:
            entries = list(journal.get("entries", []))
            common = 0
            while (common < len(entries) and common + 1 < len(self._ran)
                   and self._ran[common + 1][0] == entries[common].get("id")):
                common += 1
            self.catch_up = []
            rolled_back = 0
            if self.fleet_generation > common:
                rolled_back = self.fleet_generation - common
                self._truncate(common, approved)
            for entry in entries[common:]:
                outcome: dict[str, Any] = {"generation": entry.get("generation"), "action": entry.get("action")}
                self.catch_up.append(outcome)
                try:
                    self._import_modules(entry)
                    verdict = module_facts.superseded(_facts_of(entry))
                    if verdict is not None:  # a deploy or an edit since: the process runs the file
                        self._ran.append((str(entry.get("id")), self.engine.generation))
                        outcome.update(verdict)
                        continue
                    generation = self._replay(entry)
                except LivefixError as error:
                    outcome.update(status="failed", error=error.to_dict())
                    raise LivefixError(
                        error.kind, f"catching up with fleet generation {entry.get('generation')} failed: {error.message}",
                        **{**error.details, "fleetGeneration": self.fleet_generation},
                    ) from None
                outcome.update(status="applied", workerGeneration=generation)
            return {"fleetGeneration": self.fleet_generation, "generation": self.engine.generation,
                    "rolledBack": rolled_back, "applied": len(entries) - common,
                    "report": _sync_report(rolled_back, len(entries) - common, self.fleet_generation)}

    def _import_modules(self, entry: dict[str, Any]) -> None:
        for name in entry.get("imports") or []:
            if name not in sys.modules:
                try:
                    importlib.import_module(name)
                except Exception as exc:  # noqa: BLE001 - any import failure is this entry's failure
                    raise LivefixError("notFound", f"cannot import {name}: {type(exc).__name__}: {exc}",
                                       module=name) from None

    def _replay(self, entry: dict[str, Any]) -> int:
        before = self.engine.generation
        request = {k: entry[k] for k in _REQUEST_KEYS if k in entry}
        owner = next(self._owners)
        try:
            prepared = self.service.prepare_request(owner, {**request, "verify": entry.get("verify"), "approved": True})
            body = self.service.commit_request({"prepareId": prepared["prepareId"]})
        finally:
            self.service.discard(owner)
        generation = int(body.get("generation", before))
        self._ran.append((str(entry.get("id")), generation))
        return generation

    def _truncate(self, fleet: int, approved: bool) -> None:
        """Roll back to what this process ran at fleet generation `fleet`."""
        target = self._ran[fleet][1]
        if self.engine.generation != target:
            self.service.handle(protocol.ROLLBACK, {"to": target, "approved": approved})
        del self._ran[fleet + 1:]

    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork(self) -> None:
        self._lock.release()

    def _forked(self) -> None:
        """In a child just forked: the parent's plans and answers are not this process's."""
        self._lock = threading.RLock()
        self._pending.clear()
        self._answered.clear()


def _facts_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's changes as module facts with the digest of the file each was made against."""
    return list(entry.get("facts") or [])


def _txn(args: dict[str, Any]) -> str:
    txn = args.get("txn")
    if not isinstance(txn, str) or not txn:
        raise LivefixError("invalid", "`txn` must be the transaction id")
    return txn


def _sync_report(rolled_back: int, applied: int, fleet: int) -> str:
    if not rolled_back and not applied:
        return f"already at fleet generation {fleet}"
    done = []
    if rolled_back:
        done.append(f"rolled back {rolled_back} fleet generation{'s' if rolled_back != 1 else ''}")
    if applied:
        done.append(f"applied {applied}")
    return f"{' and '.join(done)}: at fleet generation {fleet}"


_participants: dict[str, Participant] = {}
_participants_lock = threading.Lock()


def participant(key: str, options: ServiceOptions | None = None) -> Participant:
    """This process's participant in fleet `key` (created on first use, like the engine:
    the process is the unit a fleet changes, whichever worker object asks)."""
    with _participants_lock:
        found = _participants.get(key)
        if found is None:
            found = _participants[key] = Participant(default_engine(), options, key)
        elif options is not None:
            found.service.options = options
        return found


# -- coordinator side --------------------------------------------------------------------

# Why a worker did not answer, as a transport reports it in the error's `reason`:
EXITED = "exited"  # it left the fleet on its own (a recycled pool child): runs nothing, not a failure
DEAD = "dead"  # it is gone (killed, removed from the cluster): runs nothing, but a commit it missed failed
NO_ANSWER = "noAnswer"  # no answer in time: it may be alive, running either version


class Transport(Protocol):
    label: str  # names the fleet in reports: "dask tcp://host:8786", "celery redis://host/0"

    def locked(self, timeout: float) -> AbstractContextManager[None]:
        """The fleet's lock (one coordinator at a time; workers starting meanwhile wait)."""

    def read_journal(self) -> Journal: ...

    def write_journal(self, journal: Journal) -> None: ...

    def members(self) -> tuple[list[str], list[str]]:
        """The workers now (names), and warnings about any left out."""

    def call(self, op: str, args: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
        """Send `op` to every named worker; each one's `Participant.serve` reply, or for one
        that did not answer `{"ok": False, "error": {..., "reason": EXITED|DEAD|NO_ANSWER}}`."""


class Coordinator:
    """Fleet operations over a transport, shaped like `livefix.agent.fleet.Fleet`."""

    def __init__(self, transport: Transport, *, plan_expiry: float = DEFAULT_PLAN_EXPIRY) -> None:
        self.transport = transport
        self.plan_expiry = plan_expiry

    def apply(
        self,
        prepare: dict[str, Any],
        *,
        verify: str | None = None,
        on_phase: PhaseHook | None = None,
        lock_timeout: float = 30.0,
        dry_run: bool = False,
    ) -> FleetResult:
        """Prepare everywhere; commit everywhere only if every worker prepared; if a commit
        fails, undo the commits that went through. `prepare`: {action: "apply"|"reload",
        changes | modules/package, migrate?, approved?}."""
        if prepare.get("canary") not in (None, False):
            raise LivefixError("unsupported", f"a canary is not supported on a {self.transport.label.split()[0]} "
                               "fleet yet: apply without --canary", reason="canary")
        action = str(prepare.get("action", "apply"))
        request = {k: prepare[k] for k in _REQUEST_KEYS if k in prepare}
        request["action"] = action
        with self.transport.locked(lock_timeout):
            journal = self.transport.read_journal()
            names, warnings = self.transport.members()
            if not names:
                raise LivefixError("notFound", f"no worker in {self.transport.label}", service=self.transport.label)
            txn = uuid.uuid4().hex
            replies = self.transport.call("prepare", {
                "txn": txn, "request": request, "verify": verify, "approved": bool(prepare.get("approved")),
                "expires": self.plan_expiry,
            }, names)
            workers = [_outcome(name, replies.get(name), "prepared") for name in names]
            result = FleetResult(self.transport.label, action, "aborted", workers, warnings=warnings)
            fleet_now = int(journal.get("generation", 0))
            for worker in workers:
                at = (worker.body or {}).get("fleetGeneration")
                if worker.status == "prepared" and at is not None and at != fleet_now:
                    result.warnings.append(f"{_who(worker)} runs fleet generation {at}, not {fleet_now}: "
                                           "its catch-up failed (see `livefix status`)")
            prepared = [w for w in workers if w.status == "prepared"]
            failed = [w for w in workers if w.status not in ("prepared", "gone")]
            if failed or not prepared:
                self._send("abort", {"txn": txn}, prepared, "aborted")
                first = next((w for w in failed if w.status == "failed"), failed[0] if failed else None)
                result.error = with_module_hint(_error_of(first), prepare) if first else \
                    LivefixError("failed", "every worker left before preparing")
                return _finish(result)
            if all_unchanged(prepared):
                self._send("abort", {"txn": txn}, prepared, "unchanged")
                result.outcome = "unchanged"
                if verify is not None:
                    result.warnings.append(f"verify {verify} was not run: nothing changed")
                return _finish(result)
            result.warnings.extend(added_warnings(prepared))
            if dry_run:
                self._send("abort", {"txn": txn}, prepared, "aborted")
                result.outcome = "checked"
                return _finish(result)
            if on_phase is not None:
                on_phase("prepared", workers)
            generation = fleet_now + 1
            # `imports`: the modules it changes, which a process catching up imports first.
            entry: dict[str, Any] = {**request, "id": txn, "generation": generation, "time": time.time(),
                                     "imports": sorted({m for w in prepared for m in (w.body or {}).get("imports", [])})}
            # The files the change was made against: a process that starts after a deploy (they
            # differ) runs its files rather than replaying the old fix over the new code.
            facts = next(((w.body or {}).get("changes") for w in prepared if (w.body or {}).get("changes")), None)
            if facts and any(f.get("fileHash") for f in facts):
                entry["facts"] = facts
            if verify is not None:
                entry["verify"] = verify
            replies = self.transport.call("commit", {"txn": txn, "entry": entry}, [w.address for w in prepared])
            for worker in prepared:
                _update(worker, replies.get(worker.address), "committed")
            if on_phase is not None:
                on_phase("committed", workers)
            failed = [w for w in prepared if w.status not in ("committed", "gone")]
            if not failed:
                journal = {"generation": generation, "entries": [*journal.get("entries", []), entry]}
                try:
                    self.transport.write_journal(journal)
                    result.fleet_generation = generation
                except (OSError, LivefixError) as exc:
                    result.warnings.append(f"could not record the change in the fleet journal ({exc}): "
                                           "workers that start from now on will not catch up with it")
                result.outcome = "applied"
                return _finish(result)
            # A commit failed: take back every commit that went through, and whatever a worker
            # that did not answer may have done.
            result.error = _error_of(next((w for w in failed if w.status == "failed"), failed[0]))
            again = [w for w in prepared if w.status == "committed" or _reason(w) == NO_ANSWER]
            replies = self.transport.call("undo", {"txn": txn, "fleetTo": generation - 1}, [w.address for w in again])
            for worker in again:
                reply = replies.get(worker.address) or {}
                if reply.get("ok"):
                    worker.status = "rolledBack" if reply["body"].get("undone") == "rolledBack" else "aborted"
                    worker.generation = reply["body"].get("generation")
                elif _reason_of(reply) in (DEAD, EXITED):  # gone since: it runs nothing any more
                    worker.status = "gone" if _reason_of(reply) == EXITED else "unreachable"
                    worker.error = reply.get("error")
                elif worker.status == "committed":
                    worker.status, worker.error = "rollbackFailed", reply.get("error")
                else:
                    worker.status = "unknown"  # it never answered: it may run either version
            result.outcome = "partial" if any(w.status in ("rollbackFailed", "unknown") for w in workers) else "rolledBack"
            return _finish(result)

    def rollback(self, to: int | None = None, approved: bool = False, lock_timeout: float = 30.0) -> FleetResult:
        """Every worker back to fleet generation `to` (default: before the latest apply)."""
        with self.transport.locked(lock_timeout):
            journal = self.transport.read_journal()
            now = int(journal.get("generation", 0))
            target = now - 1 if to is None else to
            if target < 0 or target >= now:
                raise LivefixError("nothingToRollBack", f"{self.transport.label} runs fleet generation {now}; "
                                   f"nothing to roll back to {max(target, 0)}", generation=now)
            back: Journal = {"generation": target, "entries": list(journal.get("entries", []))[:target]}
            names, warnings = self.transport.members()
            replies = self.transport.call("sync", {"journal": back, "approved": approved}, names)
            workers = [_outcome(name, replies.get(name), "rolledBack") for name in names]
            result = FleetResult(self.transport.label, "rollback", "applied", workers, warnings=warnings)
            failed = [w for w in workers if w.status not in ("rolledBack", "gone")]
            if failed and all((w.error or {}).get("kind") == "approvalRequired" for w in failed) and len(failed) == len(workers):
                result.outcome, result.error = "aborted", _error_of(failed[0])
            elif failed:
                result.outcome, result.error = "partial", _error_of(failed[0])
            else:
                self.transport.write_journal(back)
                result.fleet_generation = target
            return _finish(result)

    def each(self, command: str, arguments: dict[str, Any] | None = None) -> list[WorkerOutcome]:
        """One read-only request (`livefix/history`, `livefix/status`) to every worker."""
        op = {protocol.HISTORY: "history", protocol.STATUS: "status"}.get(command)
        if op is None:
            raise LivefixError("unsupported", f"{command} is not served on a {self.transport.label.split()[0]} fleet")
        names, _ = self.transport.members()
        replies = self.transport.call(op, arguments or {}, names)
        workers = [_outcome(name, replies.get(name), "ok") for name in names]
        return [w for w in workers if w.status != "gone"]  # left since it was found (a recycled pool process)

    def journal(self) -> Journal:
        return self.transport.read_journal()

    def _send(self, op: str, args: dict[str, Any], workers: list[WorkerOutcome], status: str) -> None:
        if not workers:
            return
        replies = self.transport.call(op, args, [w.address for w in workers])
        for worker in workers:
            if (replies.get(worker.address) or {}).get("ok"):
                worker.status = status


class CoordinatedFleet:
    """A `livefix.agent.fleet.Fleet` look-alike over a transport opened per operation:
    subclasses say how (`_coordinator`, a context manager yielding a Coordinator)."""

    def _coordinator(self) -> AbstractContextManager[Coordinator]:
        raise NotImplementedError

    def apply(self, prepare: dict[str, Any], **options: Any) -> FleetResult:
        with self._coordinator() as coordinator:
            return coordinator.apply(prepare, **options)

    def rollback(self, to: int | None = None, approved: bool = False, lock_timeout: float = 30.0) -> FleetResult:
        with self._coordinator() as coordinator:
            return coordinator.rollback(to=to, approved=approved, lock_timeout=lock_timeout)

    def each(self, command: str, arguments: dict[str, Any] | None = None) -> list[WorkerOutcome]:
        with self._coordinator() as coordinator:
            return coordinator.each(command, arguments)

    def journal(self) -> Journal:
        with self._coordinator() as coordinator:
            return coordinator.journal()


def _outcome(name: str, reply: dict[str, Any] | None, success: str) -> WorkerOutcome:
    worker = WorkerOutcome(pid=int((reply or {}).get("pid") or 0), address=name)
    _update(worker, reply, success)
    if worker.status == success:
        worker.before = (reply or {}).get("generation")
    return worker


def _update(worker: WorkerOutcome, reply: dict[str, Any] | None, success: str) -> None:
    reply = reply or {"ok": False, "error": {"kind": "failed", "message": f"no answer from {worker.address}",
                                             "reason": NO_ANSWER}}
    if reply.get("pid"):
        worker.pid = int(reply["pid"])
    if reply.get("ok"):
        worker.status, worker.body, worker.error = success, reply.get("body"), None
        worker.generation = (reply.get("body") or {}).get("generation", reply.get("generation"))
        return
    worker.error = reply.get("error") or {"kind": "internal", "message": "malformed answer"}
    reason = worker.error.get("reason")
    if reason in (DEAD, EXITED, NO_ANSWER):
        worker.generation = None  # what it runs now is not known (or it runs nothing)
    worker.status = "gone" if reason == EXITED else "unreachable" if reason in (DEAD, NO_ANSWER) else "failed"


def _reason(worker: WorkerOutcome) -> str | None:
    return (worker.error or {}).get("reason")


def _reason_of(reply: dict[str, Any]) -> str | None:
    return (reply.get("error") or {}).get("reason")


def _who(worker: WorkerOutcome) -> str:
    return f"worker {worker.address}" + (f" (pid {worker.pid})" if worker.pid else "")


def _error_of(worker: WorkerOutcome) -> LivefixError:
    error = dict(worker.error or {"kind": "failed", "message": "failed"})
    message = str(error.pop("message", "failed"))
    kind = error.pop("kind", "failed")
    error.setdefault("worker", worker.address)
    return LivefixError.from_dict({"kind": kind, "message": f"{_who(worker)}: {message}", **error})


def _finish(result: FleetResult) -> FleetResult:
    result.report = report(result)
    return result


def report(result: FleetResult) -> str:
    """The outcome, then one line per worker, each named as its fleet knows it."""
    counts: dict[str, int] = {}
    for worker in result.workers:
        counts[worker.status] = counts.get(worker.status, 0) + 1
    live = [w for w in result.workers if w.status != "gone"]
    n = len(live)
    fleet = result.service
    head = {
        "applied": f"{fleet}: {result.action} done on all {n} worker{'s' if n != 1 else ''}"
        + (f" (fleet generation {result.fleet_generation})" if result.fleet_generation is not None else ""),
        "aborted": f"{fleet}: {result.action} not done: no worker was changed",
        "unchanged": f"{fleet}: nothing to {result.action}: every worker already runs this code; nothing changed "
        "and no fleet generation was recorded",
        "checked": f"{fleet}: dry run: {result.action} would apply on all {n} workers; nothing changed",
        "rolledBack": f"{fleet}: a commit failed; every worker that committed was rolled back",
        "partial": f"{fleet}: {result.action} FAILED and could not be fully undone: workers differ",
    }[result.outcome]
    lines = [head + " [" + ", ".join(f"{k} {s}" for s, k in sorted(counts.items())) + "]"]
    if result.error is not None:
        lines.append(f"  reason: {result.error.message}")
    lines.extend(f"  warning: {warning}" for warning in result.warnings)
    for worker in result.workers:
        line = f"  {_who(worker)}: {worker.status}"
        if worker.generation is not None:
            line += f", generation {worker.generation}"
        if worker.status == "gone":
            line += " (left the fleet on its own: runs nothing)"
        if worker.error and worker.status != "gone":
            line += f" - {worker.error.get('kind')}: {worker.error.get('message')}"
        lines.append(line)
    return "\n".join(lines)


__all__ = ["Coordinator", "DEAD", "EXITED", "Journal", "NO_ANSWER", "Participant", "Transport",
           "empty_journal", "participant", "report", "wire_changes"]
