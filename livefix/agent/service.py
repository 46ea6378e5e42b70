"""The agent's dispatcher: livefix.service.Service plus two-phase apply and limits.

Connects the agent's connections to the engine. Every request the adapter serves
is answered by the shared `Service` (same arguments, bodies and errors); on top,
the agent serves `livefix/prepare` (engine.prepare + the approval policy, keeping
the Plan under a prepare id), `livefix/commit` and `livefix/abort` for fleet
applies, and refuses sources and change lists beyond its limits. Standard library only.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from livefix import protocol
from livefix.agent import module_facts
from livefix.engine.pending import importing
from livefix.engine import Engine, Plan
from livefix.errors import LivefixError
from livefix.service import EmitEvent, Service, ServiceOptions, migrations, module_names

log = logging.getLogger("livefix.agent")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one peer can make the agent do (all sizes in bytes, times in seconds)."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_source_bytes: int = protocol.MAX_SOURCE_BYTES  # one change's source (the debug adapter's limit too)
    max_changes: int = protocol.MAX_CHANGES  # changes in one request (likewise)
    max_connections: int = 16  # concurrent authenticated connections; more are refused with `busy`
    # Connections still waiting to authenticate have a pool of their own, so that peers without
    # the token cannot take the slots of those with it; per peer (a host, or a user on a Unix
    # socket) and in all. A new one past either bound evicts that peer's (or anyone's) oldest.
    max_unauthenticated: int = 64
    max_unauthenticated_per_peer: int = 8
    max_plans: int = 8  # prepared, uncommitted plans per connection
    auth_timeout: float = 5.0  # from connect to a successful authenticate
    message_timeout: float = 10.0  # from a message's first byte to its last
    send_timeout: float = 10.0  # a peer that does not read its responses is dropped


def _livefix_thread(thread: dict[str, Any]) -> bool:
    """One of livefix's own threads (the agent's, this request's, the evidence scheduler...):
    not the program's, so frames leave it out unless `threadIds` names it. Every thread
    livefix starts is named `livefix-...`."""
    return bool(thread.get("livefix")) or str(thread.get("name", "")).startswith("livefix-")


@dataclass
class _Prepared:
    plan: Plan | None  # None: every change waits for its module's import
    owner: int
    generation: int  # the engine generation the plan was computed against
    verify: str | None
    later: list[dict[str, Any]] = field(default_factory=list)  # changes kept until their module's import
    migrate: Any = None


class FleetPosition:
    """Where this worker stands in its fleet: the fleet generation it runs, and which of
    its own (engine) generations ran each fleet generation it went through.

    Engine generation numbers are per process (a rolled-back number is never reused),
    so a fleet rollback to fleet generation N must be translated per worker."""

    def __init__(self) -> None:
        self.current: int | None = None
        self._engine_generation: dict[int, int] = {}
        self.catch_up: list[dict[str, Any]] = []  # what replaying the journal at start did

    def moved(self, fleet: int, committed: bool) -> None:
        """A live fleet commit of generation `fleet` (or a rollback to it): what catching up
        said about that generation and later ones no longer holds (a rollback drops them from
        the journal, and a later apply reuses their numbers)."""
        first = fleet if committed else fleet + 1
        self.catch_up[:] = [entry for entry in self.catch_up if int(entry.get("generation") or 0) < first]

    def reached(self, fleet: int, engine: int, before: int | None = None) -> None:
        if before is not None:
            self._engine_generation.setdefault(fleet - 1, before)
        self._engine_generation[fleet] = engine
        for later in [g for g in self._engine_generation if g > fleet]:
            del self._engine_generation[later]
        self.current = fleet

    def applied_at_import(self, fleet: int, engine: int) -> None:
        """Fleet generation `fleet`'s change, kept for an import, ran as engine generation
        `engine`: from `fleet` on, this worker's fleet generations include it. (Engine rollback
        is linear: a fleet rollback below a later fleet generation undoes both.)"""
        for known in list(self._engine_generation):
            if known >= fleet and self._engine_generation[known] < engine:
                self._engine_generation[known] = engine

    def engine_generation(self, fleet: int) -> int:
        if fleet not in self._engine_generation:
            raise LivefixError(
                "notFound", f"this worker has no record of fleet generation {fleet}", fleetGeneration=fleet
            )
        return self._engine_generation[fleet]


class AgentService(Service):
    """One per agent: the shared Service plus prepared plans keyed by prepare id."""

    def __init__(
        self,
        engine: Engine,
        options: ServiceOptions | None = None,
        emit: EmitEvent | None = None,
        limits: Limits | None = None,
        info: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(engine, options, emit)
        self.limits = limits or Limits()
        self._info = info
        self._prepared: dict[str, _Prepared] = {}
        self.fleet = FleetPosition()
        self._prepared_lock = threading.Lock()

    def handle_for(self, owner: int, command: str, arguments: Any) -> dict[str, Any]:
        """Answer one request from connection `owner`: a body, or raise LivefixError."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise LivefixError("invalid", f"{command} arguments must be an object")
        self.check_limits(arguments)
        if command == protocol.PREPARE:
            return self._guard(command, lambda: self.prepare_request(owner, arguments))
        if command == protocol.COMMIT:
            return self._guard(command, lambda: self.commit_request(arguments))
        if command == protocol.ABORT:
            return self.abort_request(arguments)
        if command == protocol.ROLLBACK and "fleetTo" in arguments:
            return self._fleet_rollback(arguments)
        body = self.handle(command, arguments)
        if command == protocol.ROLLBACK:
            self._note_fleet_generation(arguments)
        if command == protocol.STATUS and self._info is not None:
            body = {**body, "agent": self._info()}
        if command == protocol.CAPTURE_FRAMES and not arguments.get("threadIds"):
            body = {**body, "threads": [t for t in body.get("threads", []) if not _livefix_thread(t)]}
        return body

    def check_limits(self, arguments: dict[str, Any]) -> None:
        protocol.check_limits(arguments, self.limits.max_changes, self.limits.max_source_bytes)

    # -- two-phase apply ---------------------------------------------------------

    def prepare_request(self, owner: int, args: dict[str, Any]) -> dict[str, Any]:
        """Parse, compile, check and approve a change without touching anything."""
        action = args.get("action", "apply")
        verify = args.get("verify")
        if verify is not None and not isinstance(verify, str):
            raise LivefixError("invalid", "`verify` must be a string")
        later: list[dict[str, Any]] = []
        later_from_path: list[str] = []
        facts: list[dict[str, Any]] | None = None
        plan: Plan | None
        if action == "apply":
            # A fleet's change is a fact about a module: resolved here, and kept for the import
            # of a module this worker has not imported yet (`keepForImport`, from a fleet).
            changes = protocol.as_change_args(args.get("changes"))
            parts = module_facts.split(changes, bool(args.get("keepForImport")))
            try:
                if parts.later:
                    self.engine.pending.check(parts.later)
            except LivefixError as error:
                if error.details.get("reason") != "alreadyImported":
                    raise
                # The worker's app finished importing the module just now: it is loaded.
                parts = module_facts.split(changes, bool(args.get("keepForImport")))
                if parts.later:
                    self.engine.pending.check(parts.later)
            later, facts, later_from_path = parts.later, parts.facts, parts.later_from_path
            plan = self.engine.prepare(
                parts.loaded, action="apply", migrate=migrations(args), canary=args.get("canary"),
            ) if parts.loaded else None
        elif action == "reload":
            modules = module_names(args)
            package = args.get("package")
            if package is not None and not isinstance(package, str):
                raise LivefixError("invalid", "`package` must be a string")
            plan = self.engine.prepare_reload(
                modules=modules, package=package, migrate=migrations(args), canary=args.get("canary")
            )
        else:
            raise LivefixError("invalid", f"`action` must be \"apply\" or \"reload\", not {action!r}")
        if plan is not None:
            self.check_approval(plan, bool(args.get("approved", False)))
        prepare_id = uuid.uuid4().hex
        with self._prepared_lock:
            mine = [key for key, entry in self._prepared.items() if entry.owner == owner]
            if len(mine) >= self.limits.max_plans:
                raise LivefixError("busy", f"{len(mine)} prepared changes are waiting for commit or abort on this connection")
            self._prepared[prepare_id] = _Prepared(plan, owner, self.engine.generation, verify, later, migrations(args))
        waiting = sorted({c["module"] for c in later})
        report = plan.report_before() if plan is not None else ""
        if waiting:
            report = (report + "\n" if report else "") + (
                f"not imported in this worker yet, kept until its import: {', '.join(waiting)}")
        body = {
            "prepareId": prepare_id,
            "generation": self.engine.generation,
            "planned": plan.planned() if plan is not None else [],
            "impact": plan.impact if plan is not None else {"threads": [], "signatureChanges": [], "removals": []},
            "risks": plan.risks() if plan is not None else [],
            "report": report,
            "fleetGeneration": self.fleet.current,
        }
        if facts is not None:
            body["changes"] = facts  # what the fleet journal records
        if waiting:
            body["pending"] = waiting
        if later_from_path:
            body["pendingFromPath"] = later_from_path
        if (plan is None or plan.empty) and not later:
            body["unchanged"] = True  # this worker already runs exactly that code
        return body

    def commit_request(self, args: dict[str, Any]) -> dict[str, Any]:
        """Commit a prepared plan (approval was settled at prepare)."""
        entry = self._take(args)
        # The engine refuses a plan prepared before another change (`busy`, reason `stale`).
        verify = args.get("verify", entry.verify)
        if verify is not None and not isinstance(verify, str):
            raise LivefixError("invalid", "`verify` must be a string")
        fleet = args.get("fleetGeneration")
        if entry.plan is not None:
            body = self.commit_approved(entry.plan, verify)
        else:
            body = {"generation": self.engine.generation, "applied": [], "dryRun": False, "warnings": [],
                    "impact": {"threads": [], "signatureChanges": [], "removals": []}, "report": ""}
        if entry.later:
            label = f"fleet generation {fleet}" if isinstance(fleet, int) else "a change"
            body["pending"] = self.keep_for_import(entry.later, label, entry.migrate, verify,
                                                   fleet_generation=fleet if isinstance(fleet, int) else None)
            body["report"] = (body["report"] + "\n" if body["report"] else "") + (
                f"Kept until this worker imports {', '.join(body['pending'])}: applied then")
        if isinstance(fleet, int) and not isinstance(fleet, bool):
            self.fleet.reached(fleet, int(body.get("generation", self.engine.generation)), before=entry.generation)
            self.fleet.moved(fleet, committed=True)
        return body

    def keep_for_import(self, changes: list[dict[str, Any]], label: str, migrate: Any, verify: str | None,
                        on_done: Callable[[dict[str, Any]], None] | None = None,
                        fleet_generation: int | None = None) -> list[str]:
        """Keep changes until their modules' import; one imported meanwhile is applied now."""
        now = [c for c in changes if c["module"] in sys.modules and not importing(c["module"])]
        later = [c for c in changes if c not in now]
        if now:
            self.engine.apply(now, verify=verify, migrate=migrate)
        def done(outcome: dict[str, Any]) -> None:
            if outcome["status"] == "applied":
                log.warning("livefix agent: %s applied to %s at its import (generation %s)",
                            label, outcome["module"], outcome.get("generation"))
            elif outcome["status"] == "superseded":
                log.warning("livefix agent: %s not applied to %s at its import: %s",
                            label, outcome["module"], outcome.get("reason"))
            else:
                log.error("livefix agent: %s could not be applied to %s at its import: %s",
                          label, outcome["module"], outcome.get("error", {}).get("message"))
            if on_done is not None:
                on_done(outcome)
        kept = self.engine.pending.defer(later, label, migrate=migrate, verify=verify, on_done=done,
                                         fleet_generation=fleet_generation) if later else []
        for name in kept:  # its import finished while this was kept: the hook has run, so apply here
            module = sys.modules.get(name)
            if module is not None and not importing(name):
                self.engine.pending.imported(module)
        return kept

    def _fleet_rollback(self, args: dict[str, Any]) -> dict[str, Any]:
        """`livefix/rollback` with `fleetTo`: back to what this worker ran at that fleet generation."""
        fleet = args.get("fleetTo")
        if not isinstance(fleet, int) or isinstance(fleet, bool) or fleet < 0:
            raise LivefixError("invalid", "`fleetTo` must be a fleet generation number")
        target = self.fleet.engine_generation(fleet)
        rest = {k: v for k, v in args.items() if k not in ("fleetTo", "to")}
        if target == self.engine.generation:  # e.g. its commit of a later fleet generation was undone
            body = {
                "generation": target, "applied": [], "dryRun": False, "warnings": [],
                "impact": {"threads": [], "signatureChanges": [], "removals": []},
                "report": f"Nothing to roll back: this worker already runs fleet generation {fleet}",
                "unchanged": True,
            }
        else:
            body = self.handle(protocol.ROLLBACK, {**rest, "to": target})
        # Changes of later fleet generations still waiting for an import never ran: withdrawn,
        # or they would land at the import after the fleet went back (even with nothing above).
        withdrawn = self.engine.pending.withdraw_fleet(fleet)
        if withdrawn:
            modules = ", ".join(sorted({entry["module"] for entry in withdrawn}))
            body = {**body, "withdrawn": withdrawn, "unchanged": False,
                    "report": f"Withdrawn the changes kept until this worker imports {modules}"
                    if body.get("report", "").startswith("Nothing to roll back") else
                    body.get("report", "") + f"\nWithdrawn the changes kept until this worker imports {modules}"}
        self.fleet.reached(fleet, target)
        self.fleet.moved(fleet, committed=False)
        return body

    def _note_fleet_generation(self, args: dict[str, Any]) -> None:
        """A rollback that undoes a fleet commit says which fleet generation runs again."""
        generation = args.get("fleetGeneration")
        if isinstance(generation, int) and not isinstance(generation, bool):
            self.fleet.current = generation

    def commit_approved(self, plan: Plan, verify: str | None) -> dict[str, Any]:
        """Commit a plan whose approval is settled (prepared and approved, or a fleet replay),
        with the audit line and the `livefix/applied` event of any other commit."""
        return self._commit(plan, verify, {"approved": True})

    def abort_request(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            self._take(args)
        except LivefixError as error:
            if error.kind != "notFound":
                raise
            return {"aborted": False}
        return {"aborted": True}

    def discard(self, owner: int) -> int:
        """Forget every plan prepared on a connection that closed; how many there were."""
        with self._prepared_lock:
            stale = [key for key, entry in self._prepared.items() if entry.owner == owner]
            for key in stale:
                del self._prepared[key]
        return len(stale)

    def _take(self, args: dict[str, Any]) -> _Prepared:
        prepare_id = args.get("prepareId")
        if not isinstance(prepare_id, str):
            raise LivefixError("invalid", "`prepareId` must be the id a livefix/prepare response returned")
        with self._prepared_lock:
            entry = self._prepared.pop(prepare_id, None)
        if entry is None:
            raise LivefixError("notFound", f"no prepared change {prepare_id!r} (committed, aborted or expired)")
        return entry

    def _guard(self, command: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return call()
        except LivefixError:
            raise
        except Exception as exc:  # unexpected: log with traceback, answer as a failure
            log.exception("livefix agent: %s failed unexpectedly", command)
            raise LivefixError("internal", f"{command} failed unexpectedly: {type(exc).__name__}: {exc}") from exc
