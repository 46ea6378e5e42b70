"""Fleet operations: one change to every worker of a service, all or nothing.

Connects a coordinator (the command line, later the adapter) to every worker
registered under a service name. Apply is two-phase, under the service's lock:
prepare everywhere (`livefix/prepare`: parse, compile, check, impact, approval);
commit everywhere (`livefix/commit`) only if every worker prepared, `livefix/abort`
otherwise; if a commit fails, the workers that committed are rolled back to the
generation they ran before. With a `canary`, one worker (the lowest pid) commits first
and the others follow only if its canary holds. The outcome is reported per worker, and
a successful apply is journalled so that workers that start later catch up. Standard
library only.
"""

from __future__ import annotations

import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from livefix import protocol
from livefix.agent import host_os
from livefix.agent.client import AgentClient
from livefix.agent.registry import Member, Registry
from livefix.errors import LivefixError

# Called between phases with the phase name ("prepared", "canary": the canary worker alone
# committed, its window open; "committed") and the workers:
# lets a caller observe (and a test interfere at) an exact point of the protocol.
PhaseHook = Callable[[str, list["WorkerOutcome"]], None]

# How often the coordinator asks the canary worker whether its window closed: a client
# waiting on a remote state (the verdict comes at most this late), not a test's wait.
VERDICT_POLL_SECONDS = 0.25
UNDO_BUSY_SECONDS = 10.0  # how long an undo asks a busy worker again


@dataclass
class WorkerOutcome:
    """What happened on one worker."""

    pid: int
    address: str
    # prepared | committed | aborted | failed | rolledBack | rollbackFailed | unreachable
    # | unknown (its commit went unanswered and it does not answer now: it may run either)
    # | gone (its process died during the apply: it runs nothing)
    status: str = "pending"
    generation: int | None = None  # the worker's engine generation afterwards
    before: int | None = None  # its generation before the apply
    error: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    client: AgentClient | None = field(default=None, repr=False)
    canary: bool = False  # prepared with the canary: it commits first, alone

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pid": self.pid, "address": self.address, "status": self.status}
        for key in ("generation", "before", "error"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if (self.body or {}).get("pending"):
            out["pending"] = self.body["pending"]  # type: ignore[index]
        return out


@dataclass
class FleetResult:
    """The fleet outcome: `applied` (every worker), `checked` (a dry run that every worker
    passed), `unchanged` (every worker already ran that code: nothing changed, nothing
    recorded), `aborted` (none changed), `rolledBack`
    (commits undone), `canaryRolledBack` (the canary worker's change was judged worse and
    undone; no other worker ran it), `partial` (a rollback failed too: workers differ; see
    each one)."""

    service: str
    action: str
    outcome: str
    workers: list[WorkerOutcome]
    fleet_generation: int | None = None
    error: LivefixError | None = None  # the first failure, when not applied
    report: str = ""
    warnings: list[str] = field(default_factory=list)
    # With a canary: {"worker": pid, "generation": its engine generation, "verdict": {...}}.
    canary: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "action": self.action,
            "outcome": self.outcome,
            "fleetGeneration": self.fleet_generation,
            "workers": [w.to_dict() for w in self.workers],
            "report": self.report,
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        if self.warnings:
            out["warnings"] = self.warnings
        if self.canary is not None:
            out["canary"] = self.canary
        return out


class Fleet:
    """A coordinator for one service name."""

    def __init__(self, service: str, token: str, *, timeout: float = 60.0, registry: Registry | None = None) -> None:
        self.registry = registry or Registry(service)
        self.service = service
        self.token = token
        self.timeout = timeout

    # -- two-phase apply ---------------------------------------------------------------

    def apply(
        self,
        prepare: dict[str, Any],
        *,
        verify: str | None = None,
        on_phase: PhaseHook | None = None,
        lock_timeout: float = 30.0,
        dry_run: bool = False,
    ) -> FleetResult:
        """Apply (`prepare["action"]` "apply" with `changes`, or "reload") on every worker or none.

        `dry_run`: prepare everywhere, then abort everywhere (outcome `checked` when every
        worker could apply it): the fleet's own dry run, changing nothing.

        With `prepare["canary"]`, only the first worker (lowest pid) is prepared with the
        canary; it commits alone, the coordinator waits for its verdict (the service's lock
        held, the others' plans pending), then commits the others (passed, inconclusive) or
        aborts them (outcome `canaryRolledBack`). The others run the change without a canary
        of their own: one of them rolling back by itself after the fleet reported `applied`
        would leave the workers silently different from the journal."""
        action = str(prepare.get("action", "apply"))
        # A worker that has not imported a changed module yet keeps the change for its import.
        args = {**prepare, "action": action, "keepForImport": True}
        if verify is not None:
            args["verify"] = verify
        plain = {key: value for key, value in args.items() if key != "canary"}
        with self.registry.locked(lock_timeout):
            # Phase 1, prepare everywhere, travels with the token: one round trip per worker.
            workers = self._connect_all(
                then=(protocol.PREPARE, plain), first=(protocol.PREPARE, args) if _wants_canary(prepare) else None
            )
            try:
                return self._apply_locked(action, prepare, verify, workers, on_phase, dry_run)
            finally:
                for worker in workers:
                    if worker.client is not None:
                        worker.client.close()

    def _apply_locked(
        self,
        action: str,
        prepare: dict[str, Any],
        verify: str | None,
        workers: list[WorkerOutcome],
        on_phase: PhaseHook | None,
        dry_run: bool = False,
    ) -> FleetResult:
        if not workers:
            raise LivefixError("notFound", f"no worker is registered under service {self.service!r}", service=self.service)
        result = FleetResult(self.service, action, "aborted", workers)
        if on_phase is not None:
            on_phase("prepared", workers)
        fleet_now = int(self.registry.read_journal().get("generation", 0))
        for worker in workers:
            at = (worker.body or {}).get("fleetGeneration")
            if at is not None and at != fleet_now:
                result.warnings.append(
                    f"worker {worker.pid} runs fleet generation {at}, not {fleet_now}: "
                    "its catch-up failed (see `livefix status`)"
                )
        failed = [w for w in workers if w.status != "prepared"]
        if failed:
            self._abort([w for w in workers if w.status == "prepared"])
            # The most telling failure: one a worker reported, before "unreachable".
            first = next((w for w in failed if w.status == "failed"), failed[0])
            result.error = with_module_hint(
                LivefixError.from_dict(first.error or {"kind": "failed", "message": "prepare failed"}), prepare)
            return self._finish(result)
        if all_unchanged(workers):
            self._abort(workers)
            for worker in workers:
                worker.status = "unchanged"
            result.outcome = "unchanged"
            if verify is not None:
                result.warnings.append(f"verify {verify} was not run: nothing changed")
            return self._finish(result)
        result.warnings.extend(added_warnings(workers))
        unclaimed = _unclaimed_paths(workers) if action == "apply" else []
        if unclaimed:
            self._abort(workers)
            result.error = LivefixError(
                "notFound",
                f"no worker runs a module from {', '.join(unclaimed)}; if it holds a fix for a module, name the module "
                "with --module MODULE (workers that have not imported that module yet then keep the fix for its import)",
                path=unclaimed[0], reason="noModule",
            )
            return self._finish(result)
        # The changes as facts about modules (as a worker resolved them), not paths of this machine.
        facts = next((w.body.get("changes") for w in workers if w.body and w.body.get("changes")), None) \
            if action == "apply" else None
        if dry_run:
            self._abort(workers)
            result.outcome = "checked"
            return self._finish(result)
        # Phase 2: commit everywhere; the journal decides what later workers run.
        generation = fleet_now + 1
        already = {id(w) for w in workers if (w.body or {}).get("unchanged")}  # said per worker in the report
        if _wants_canary(prepare):
            first = next((w for w in workers if w.canary), None)
            if first is None:  # it was gone before it prepared (others prepared without a canary)
                self._abort(workers)
                result.error = LivefixError("failed", "the worker chosen for the canary went away before it "
                                            "prepared; nothing was changed: try again")
                return self._finish(result)
            rest = [w for w in workers if w is not first]
            if not self._canary(first, rest, generation, result, on_phase, _before(prepare.get("canary"))):
                return self._finish(result)
            self._commit(rest, generation)
        else:
            self._commit(workers, generation)
        if on_phase is not None:
            on_phase("committed", workers)
        failed = [w for w in workers if w.status != "committed"]
        if not failed:
            entry: dict[str, Any] = {"action": action}
            for key in ("changes", "modules", "package", "migrate"):
                if key in prepare:
                    entry[key] = prepare[key]
            if facts:
                entry["changes"] = facts
            if verify is not None:
                entry["verify"] = verify
            try:
                result.fleet_generation = self.registry.record_apply(entry)
            except (OSError, LivefixError) as exc:
                # Every worker runs the change; only workers that start later will not.
                result.warnings.append(f"could not record the change in the fleet journal ({exc}): "
                                       "workers that start from now on will not catch up with it")
            result.outcome = "applied"
            for worker in workers:
                if id(worker) in already:
                    worker.status = "unchanged"  # it ran that code already: its commit changed nothing
            return self._finish(result)
        # A commit failed: undo the ones that went through.
        self._undo([w for w in workers if w.status == "committed"], generation - 1)
        # A worker that lost its connection or timed out during commit may have committed
        # anyway: if it is still alive, look, and bring it back too.
        for worker in failed:
            if (worker.error or {}).get("reason") in ("disconnected", "timeout"):
                self._recover(worker, generation - 1)
        result.error = LivefixError.from_dict(failed[0].error or {"kind": "failed", "message": "commit failed"})
        result.outcome = "partial" if any(w.status in ("rollbackFailed", "unknown") for w in workers) else "rolledBack"
        return self._finish(result)

    def _commit(self, workers: list[WorkerOutcome], fleet_generation: int, extra_time: float = 0.0) -> None:
        def args(worker: WorkerOutcome) -> dict[str, Any]:
            assert worker.body is not None
            return {"prepareId": worker.body["prepareId"], "fleetGeneration": fleet_generation}

        for worker, body in self._fan_out(workers, protocol.COMMIT, args, extra_time=extra_time):
            worker.status, worker.generation, worker.body = "committed", body.get("generation"), body

    # -- canary: one worker first -----------------------------------------------------------

    def _canary(
        self,
        first: WorkerOutcome,
        rest: list[WorkerOutcome],
        fleet_generation: int,
        result: FleetResult,
        on_phase: PhaseHook | None,
        before: float,
    ) -> bool:
        """Commit on the `first` worker alone and wait for its canary's verdict. True: it held
        (the caller commits the `rest`); False: `result` says what happened, the others'
        plans are aborted and the first worker runs what it ran before (or the report says
        it could not)."""
        # Its commit waits out the canary's "before" window (old-code traffic) first.
        self._commit([first], fleet_generation, extra_time=before)
        if on_phase is not None:
            on_phase("canary", [first])
        verdict: dict[str, Any] | None = None
        if first.status == "committed":
            evidence = (first.body or {}).get("evidence") or {}
            if evidence.get("canary") is None:  # nothing it replaced can be judged (only additions)
                verdict = {"outcome": "inconclusive",
                           "report": "the change replaced no function the canary could judge; it stays"}
            else:
                verdict = self._await_verdict(first, float(evidence.get("window") or 0))
        if verdict is not None:
            result.canary = {"worker": first.pid, "generation": first.generation, "verdict": verdict}
            if verdict.get("outcome") in ("passed", "inconclusive"):
                return True
        self._abort(rest)  # the others never ran it
        if verdict is None:  # no verdict: its commit failed, or the worker failed or hung mid-window
            committed, error = first.status == "committed", first.error
            first.status = "failed"
            if committed or (error or {}).get("reason") in ("disconnected", "timeout"):
                # It may run the change: reconnect, abort its plan if still pending, else roll back.
                self._recover(first, fleet_generation - 1)
            # else its commit was refused (verify failed, stale...): the engine undid it already.
            result.error = LivefixError.from_dict(error or {"kind": "failed", "message": "canary failed"})
            result.outcome = "partial" if first.status in ("rollbackFailed", "unknown") else "rolledBack"
            return False
        self._settle(first, fleet_generation - 1)
        report = str(verdict.get("report") or "")
        result.error = LivefixError(
            "verifyFailed",  # a canary is a verify on live traffic: the CLI's exit 4
            f"canary on worker {first.pid}: {report}; the other {len(rest)} worker{'s' if len(rest) != 1 else ''} "
            "never ran the change",
            reason="canary", outcome=verdict.get("outcome"), worker=first.pid, reasons=verdict.get("reasons", []),
        )
        result.outcome = "canaryRolledBack" if first.status == "rolledBack" else "partial"
        return False

    def _await_verdict(self, worker: WorkerOutcome, window: int | float) -> dict[str, Any] | None:
        """Ask the canary worker for its generation's evidence until the window closed: its
        verdict, or None (the failure recorded on the worker) when it could not be had."""
        assert worker.generation is not None
        deadline = time.monotonic() + window + self.timeout
        pause = threading.Event()
        while True:
            body = self._call(worker, protocol.EVIDENCE, {"generation": worker.generation}, keep_status=True)
            if body is None:
                return None
            if body.get("state") == "final":
                verdict = (body.get("canary") or {}).get("verdict")
                return dict(verdict) if verdict else {"outcome": "inconclusive", "report": str(body.get("report", ""))}
            if time.monotonic() >= deadline:
                worker.error = LivefixError(
                    "failed", f"worker {worker.pid} gave no canary verdict within {window:g} s + {self.timeout:g} s",
                    reason="timeout", address=worker.address,
                ).to_dict()
                return None
            pause.wait(min(VERDICT_POLL_SECONDS, max(deadline - time.monotonic(), 0.05)))

    def _settle(self, worker: WorkerOutcome, fleet_generation: int) -> None:
        """Bring the canary worker back to `fleet_generation`: code and fleet position. After
        the canary rolled back by itself, the code is there already and only its fleet
        position moves back (it would otherwise claim a fleet generation nobody journalled)."""
        body = self._call(worker, protocol.ROLLBACK, {"fleetTo": fleet_generation, "approved": True}, keep_status=True)
        if body is not None:
            worker.status, worker.generation = "rolledBack", body.get("generation")
        else:
            worker.status = "rollbackFailed"

    def _abort(self, workers: list[WorkerOutcome]) -> None:
        def args(worker: WorkerOutcome) -> dict[str, Any]:
            assert worker.body is not None
            return {"prepareId": worker.body["prepareId"]}

        for worker, _ in self._fan_out(workers, protocol.ABORT, args, keep_status=True):
            worker.status = "aborted"

    def _recover(self, worker: WorkerOutcome, fleet_generation: int) -> None:
        """Settle a worker whose commit went unanswered: abort the plan if it is still
        pending (the commit request may not have been read yet), else roll it back."""
        if worker.client is not None:
            worker.client.close()
        if not host_os.process_alive(worker.pid):
            # It died (a crash, a kill): it runs nothing any more, and its replacement starts
            # from the journal, which this failed apply never reached.
            worker.status = "gone"
            worker.client = None
            return
        try:
            worker.client = AgentClient(worker.address, self.token, timeout=self.timeout)
        except LivefixError as error:
            worker.client = None
            if error.kind != "notFound":  # alive but not answering: we cannot know what it runs
                worker.status, worker.error = "unknown", error.to_dict()
            return  # else gone for good: it runs nothing any more
        assert worker.body is not None
        aborted = self._call(worker, protocol.ABORT, {"prepareId": worker.body.get("prepareId")}, keep_status=True)
        if aborted is not None and aborted.get("aborted"):
            worker.status = "aborted"
            return
        self._undo([worker], fleet_generation)

    def _undo(self, workers: list[WorkerOutcome], fleet_generation: int) -> None:
        def args(worker: WorkerOutcome) -> dict[str, Any]:
            return {"to": worker.before or 0, "approved": True, "fleetGeneration": fleet_generation}

        done = dict((id(w), body) for w, body in self._fan_out(workers, protocol.ROLLBACK, args, keep_status=True))
        # A worker busy with another livefix operation (a change landing at a module's import,
        # say) is asked again for a while: an undo that gives up leaves the fleet split.
        deadline = time.monotonic() + min(self.timeout, UNDO_BUSY_SECONDS)
        pause = threading.Event()
        while time.monotonic() < deadline:
            busy = [w for w in workers if id(w) not in done and (w.error or {}).get("kind") == "busy"
                    and (w.error or {}).get("reason") != "stale"]
            if not busy:
                break
            pause.wait(0.05)
            for worker, body in self._fan_out(busy, protocol.ROLLBACK, args, keep_status=True):
                done[id(worker)], worker.error = body, None
        for worker in workers:
            body = done.get(id(worker))
            if body is not None:
                worker.status, worker.generation = "rolledBack", body.get("generation")
            elif (worker.error or {}).get("kind") == "nothingToRollBack":
                worker.status, worker.generation = "rolledBack", worker.before  # its commit never happened
            else:
                worker.status = "rollbackFailed"

    # -- other fleet requests ------------------------------------------------------------

    def journal(self) -> dict[str, Any]:
        """The fleet's generations: what a worker that starts now replays."""
        return self.registry.read_journal()

    def rollback(self, to: int | None = None, approved: bool = False, lock_timeout: float = 30.0) -> FleetResult:
        """Roll every worker back (`to`: a fleet generation; default: the latest fleet apply).

        Under the "always" approval policy the workers refuse without `approved`; when
        every one refused, the outcome is `aborted` (ask, then call again approved)."""
        with self.registry.locked(lock_timeout):
            journal = self.registry.read_journal()
            fleet_now = int(journal.get("generation", 0))
            target = fleet_now - 1 if to is None else to
            # `to` = the current generation is allowed: it brings back in line a worker that
            # still keeps a change of an undone generation for an import (nothing else moves).
            if target < 0 or target > fleet_now or (to is None and target >= fleet_now):
                raise LivefixError("nothingToRollBack", f"service {self.service!r} runs fleet generation {fleet_now}; "
                                   f"nothing to roll back to {max(target, 0)}", generation=fleet_now)
            workers = self._connect_all()
            try:
                for worker, body in self._fan_out(workers, protocol.ROLLBACK,
                                                  lambda _: {"fleetTo": target, "approved": approved}):
                    # A worker that did not run what is undone (it started after a deploy, say)
                    # changes nothing: said as such, not as rolled back.
                    worker.status, worker.generation, worker.body = (
                        "unchanged" if body.get("unchanged") else "rolledBack", body.get("generation"), body)
                result = FleetResult(self.service, "rollback", "applied", workers)
                failed = [w for w in workers if w.status not in ("rolledBack", "unchanged")]
                if failed and len(failed) == len(workers) and all(
                    (w.error or {}).get("kind") == "approvalRequired" for w in failed
                ):
                    result.outcome = "aborted"
                    result.error = LivefixError.from_dict(failed[0].error or {})
                elif failed:
                    result.outcome = "partial"
                    result.error = LivefixError.from_dict(failed[0].error or {"kind": "failed", "message": "rollback failed"})
                else:
                    result.fleet_generation = self.registry.record_rollback(target)
                return self._finish(result)
            finally:
                for worker in workers:
                    if worker.client is not None:
                        worker.client.close()

    def each(self, command: str, arguments: dict[str, Any] | None = None) -> list[WorkerOutcome]:
        """Send one read-only request (history, status, frames) to every worker."""
        workers = self._connect_all()
        try:
            for worker, body in self._fan_out(workers, command, lambda _: arguments or {}):
                worker.status, worker.body = "ok", body
            return workers
        finally:
            for worker in workers:
                if worker.client is not None:
                    worker.client.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _connect_all(
        self, then: tuple[str, dict[str, Any]] | None = None, first: tuple[str, dict[str, Any]] | None = None
    ) -> list[WorkerOutcome]:
        """Connect to every registered worker (with `then` sent along with the token; `first`
        instead to the first one reached, lowest pid first: the canary's)."""
        workers = [WorkerOutcome(m.pid, m.address or f"unix:{m.path}") for m in self.registry.members()]
        for worker in workers:  # send everything first: the workers answer in parallel
            canary = first is not None and not any(w.canary for w in workers)
            try:
                worker.client = AgentClient(worker.address, self.token, timeout=self.timeout,
                                            then=first if canary else then, wait=False)
                worker.canary = canary
            except LivefixError as error:
                self._unreachable(worker, error)
        deadline = time.monotonic() + self.timeout
        for worker in workers:
            if worker.client is None:
                continue
            try:
                worker.client.complete(_remaining(deadline))
            except LivefixError as error:
                worker.client = None
                self._unreachable(worker, error)
                continue
            worker.status = "connected"
            if then is None:
                continue
            if worker.client.first_error is not None:
                worker.status, worker.error = "failed", worker.client.first_error.to_dict()
            else:
                body = worker.client.first or {}
                worker.status, worker.body, worker.before = "prepared", body, body.get("generation")
        return [w for w in workers if w.status != "gone"]

    def _unreachable(self, worker: WorkerOutcome, error: LivefixError) -> None:
        if error.kind == "notFound":
            # The socket file outlived its worker (killed hard): drop it from the registry.
            self.registry.unregister(worker.address[len("unix:"):])
            worker.status = "gone"
        else:
            worker.status, worker.error = "unreachable", error.to_dict()

    def _fan_out(
        self,
        workers: list[WorkerOutcome],
        command: str,
        args: Callable[[WorkerOutcome], dict[str, Any]],
        keep_status: bool = False,
        extra_time: float = 0.0,
    ) -> list[tuple[WorkerOutcome, dict[str, Any]]]:
        """Send `command` to every worker, then read every answer: the workers work in
        parallel and this thread only waits (no coordinator threads to fight over the GIL).
        Returns the workers that answered with their bodies; a failure is recorded on the
        worker (`error`, and status `failed` unless `keep_status`)."""
        sent = []
        for worker in workers:
            if worker.client is None:
                if not keep_status:
                    worker.status = "failed"
                continue
            try:
                sent.append((worker, worker.client.send(command, args(worker))))
            except LivefixError as error:
                self._failed(worker, error, keep_status)
        answered = []
        deadline = time.monotonic() + self.timeout + extra_time
        for worker, seq in sent:
            if worker.client is None:
                continue
            try:
                answered.append((worker, worker.client.receive(seq, _remaining(deadline))))
            except LivefixError as error:
                self._failed(worker, error, keep_status)
        return answered

    def _call(
        self, worker: WorkerOutcome, command: str, args: dict[str, Any], keep_status: bool = False
    ) -> dict[str, Any] | None:
        answered = self._fan_out([worker], command, lambda _: args, keep_status)
        return answered[0][1] if answered else None

    def _failed(self, worker: WorkerOutcome, error: LivefixError, keep_status: bool) -> None:
        worker.error = error.to_dict()
        if not keep_status:
            worker.status = "failed"
        if error.details.get("reason") == "disconnected" and worker.client is not None:
            worker.client.close()
            worker.client = None

    def _finish(self, result: FleetResult) -> FleetResult:
        result.report = fleet_report(result)
        return result


def _wants_canary(prepare: dict[str, Any]) -> bool:
    """A canary was asked for: `{}` (`--canary` alone: the defaults) and `True` count; None and False do not."""
    return prepare.get("canary") not in (None, False)


def _before(canary: Any) -> float:
    """The canary's "before" seconds (the commit waits them out), 0 when not given or not a number."""
    value = canary.get("before") if isinstance(canary, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0.0


def with_module_hint(error: LivefixError, prepare: dict[str, Any]) -> LivefixError:
    """A file sent without a module that a worker runs no module from: most likely a fix
    written in a file of its own, so say how to name the module (as for one process)."""
    sent = {c.get("path") for c in prepare.get("changes") or [] if isinstance(c, dict) and not c.get("module")}
    if error.kind == "notFound" and error.details.get("path") in sent - {None}:
        return LivefixError(error.kind, f"{error.message}; if the file holds a fix for a module, name the module "
                            "with --module MODULE", **error.details)
    return error


def all_unchanged(workers: list[WorkerOutcome]) -> bool:
    """Every worker that prepared already runs exactly that code: the fleet records no
    generation for it (a rollback would then undo the fix before it, not this no-op)."""
    prepared = [w for w in workers if w.status == "prepared"]
    return bool(prepared) and all((w.body or {}).get("unchanged") for w in prepared)


def added_definitions(workers: list[WorkerOutcome]) -> list[str]:
    """Definitions a change adds (in any worker): a misspelled name adds one nobody calls."""
    found = {f"{e.get('module')}.{e.get('qualname')}" for w in workers
             for e in (w.body or {}).get("planned", []) if e.get("kind") == "added"}
    return sorted(found)


def added_warnings(workers: list[WorkerOutcome]) -> list[str]:
    warning = protocol.added_definitions_warning(added_definitions(workers))
    return [warning] if warning else []


def _unclaimed_paths(workers: list[WorkerOutcome]) -> list[str]:
    """Files sent without a module that every worker kept for an import: no worker runs a
    module from them, so they name no module anyone can tell (a fix file beside the app)."""
    kept = [set((w.body or {}).get("pendingFromPath") or []) for w in workers if w.status == "prepared"]
    return sorted(set.intersection(*kept)) if kept else []


def _remaining(deadline: float) -> float:
    """What is left of a shared deadline; never zero, so answers already here are still read."""
    return max(deadline - time.monotonic(), 0.05)


def fleet_report(result: FleetResult) -> str:
    """A report a person reads: the outcome, then one line per worker."""
    counts: dict[str, int] = {}
    for worker in result.workers:
        counts[worker.status] = counts.get(worker.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    n = len(result.workers)
    nothing_moved = bool(result.workers) and all(w.status == "unchanged" for w in result.workers)
    head = {
        "applied": (f"Fleet {result.service}: {result.action} recorded (fleet generation {result.fleet_generation}); "
                    f"none of the {n} workers ran what it undid, so none changed"
                    if nothing_moved and result.action == "rollback" else
                    f"Fleet {result.service}: {result.action} done on all {n} workers"
                    + (f" (fleet generation {result.fleet_generation})" if result.fleet_generation is not None else "")),
        "aborted": f"Fleet {result.service}: {result.action} not done: no worker was changed",
        "unchanged": f"Fleet {result.service}: nothing to {result.action}: every worker already runs this code; "
        "nothing changed and no fleet generation was recorded",
        "checked": f"Fleet {result.service}: dry run: {result.action} would apply on all {n} workers; nothing changed",
        "rolledBack": f"Fleet {result.service}: a commit failed; every worker that committed was rolled back",
        "partial": f"Fleet {result.service}: {result.action} FAILED and could not be fully undone: workers differ",
        "canaryRolledBack": f"Fleet {result.service}: the canary rolled the {result.action} back on worker "
        f"{(result.canary or {}).get('worker')}; the other {n - 1} workers never ran it",
    }[result.outcome]
    lines = [head + f" [{summary}]"]
    if result.error is not None:
        lines.append(f"  reason: {result.error.message}")
    if result.canary is not None and result.outcome == "applied":
        verdict = result.canary.get("verdict") or {}
        lines.append(f"  canary held on worker {result.canary.get('worker')}: {verdict.get('report', '')}; "
                     f"applied on {n} workers")
    lines.extend(f"  warning: {warning}" for warning in result.warnings)
    reports = {str((w.body or {}).get("report")) for w in result.workers if (w.body or {}).get("report")}
    if result.outcome == "checked" and len(reports) == 1:
        lines.append(textwrap.indent(reports.pop(), "  "))  # the same plan everywhere: say it once
    for worker in result.workers:
        line = f"  worker {worker.pid}: {worker.status}"
        if worker.generation is not None:
            line += f", generation {worker.generation}"
        if worker.error:
            line += f" - {worker.error.get('kind')}: {worker.error.get('message')}"
        waiting = (worker.body or {}).get("pending")
        if waiting:  # a worker before its app loaded, say: it applies the change at the import
            line += f"; kept until it imports {', '.join(waiting)} (applied then)"
        lines.append(line)
    return "\n".join(lines)


__all__ = ["Fleet", "FleetResult", "Member", "WorkerOutcome", "fleet_report"]
