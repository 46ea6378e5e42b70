"""Serves livefix requests against the engine: one dispatcher for every transport.

The pydevd plugin (DAP route, inside a debugged process) and the agent
(`livefix.listen()`, no debugger) both receive `(command, arguments)` pairs and hand
them to `Service.handle`, which validates the arguments, applies the approval
policy, calls the engine, writes the audit line and returns the response body, or
raises `LivefixError`. Transports send the `livefix/applied` event (and the report
as console output) through the `emit` callback. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from livefix import protocol
from livefix.engine import Engine, Plan
from livefix.errors import LivefixError

log = logging.getLogger("livefix.service")

EmitEvent = Callable[[str, dict[str, Any]], None]


@dataclass
class ServiceOptions:
    """The `livefix` launch/attach option object (`approval`, `auditLog`)."""

    approval: protocol.ApprovalPolicy = "risky"
    audit_log: str | None = None

    @classmethod
    def from_wire(cls, raw: Any) -> "ServiceOptions":
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise LivefixError("invalid", "the `livefix` option must be an object like {approval, auditLog}")
        approval = raw.get("approval", "risky")
        if approval not in protocol.APPROVAL_POLICIES:
            raise LivefixError(
                "invalid", f"livefix.approval must be one of {', '.join(protocol.APPROVAL_POLICIES)}, not {approval!r}"
            )
        audit_log = raw.get("auditLog")
        if audit_log is not None and not isinstance(audit_log, str):
            raise LivefixError("invalid", "livefix.auditLog must be a file path")
        return cls(approval=approval, audit_log=audit_log)


class Service:
    """One per process: the engine, the approval policy, the audit log, the event sink."""

    def __init__(
        self,
        engine: Engine,
        options: ServiceOptions | None = None,
        emit: EmitEvent | None = None,
        thread_id: Callable[[int], int] | None = None,
    ) -> None:
        self.engine = engine
        self.options = options or ServiceOptions()
        self.emit = emit
        # Maps a Python thread ident to the id the client knows (pydevd's DAP thread id).
        self.thread_id = thread_id
        self._audit_lock = threading.Lock()
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            protocol.APPLY: self.apply_request,
            protocol.RELOAD: self.reload_request,
            protocol.ROLLBACK: self.rollback_request,
            protocol.HISTORY: self.history_request,
            protocol.CAPTURE_FRAMES: self.capture_frames_request,
            protocol.STATUS: self.status_request,
            protocol.EVIDENCE: self.evidence_request,
            protocol.WATCH: self.watch_request,
            protocol.RUNNING_SOURCES: self.running_sources_request,
        }
        # The canary's verdicts reach this transport's clients as they happen.
        engine.watches.listeners.append(self._canary_verdict)

    # -- dispatch ------------------------------------------------------------------

    def handle(self, command: str, arguments: Any) -> dict[str, Any]:
        """Answer one request: the response body, or raise LivefixError. Never anything else."""
        handler = self._handlers.get(command)
        if handler is None:
            raise LivefixError("invalid", f"unknown livefix request {command!r}", command=command)
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise LivefixError("invalid", f"{command} arguments must be an object")
        try:
            return handler(arguments)
        except LivefixError as error:
            if command in _CHANGING and not getattr(error, "audited", False):
                # Refused before anything ran (bad source, approval missing...): still worth a
                # line, since an audit log is also a record of who tried to change the process.
                self._audit(command.split("/")[-1], {"error": error.to_dict()}, arguments.get("changes"), "refused")
            raise
        except Exception as exc:  # unexpected: log with traceback, answer as a failure
            log.exception("livefix: %s failed unexpectedly", command)
            raise LivefixError("internal", f"{command} failed unexpectedly: {type(exc).__name__}: {exc}") from exc

    # -- requests ------------------------------------------------------------------

    def apply_request(self, args: dict[str, Any]) -> dict[str, Any]:
        changes = protocol.as_change_args(args.get("changes"))
        verify = _optional_str(args, "verify")
        plan = self.engine.prepare(
            changes, action="apply", thread_id=self.thread_id, migrate=migrations(args), canary=args.get("canary")
        )
        asked = {c.get("qualname") for c in changes if c.get("qualname")}
        warning = protocol.added_definitions_warning(
            sorted(f"{e['module']}.{e['qualname']}" for e in plan.planned() if e["kind"] == "added" and e["qualname"] in asked))
        if warning:
            plan.warnings.append(warning)
        return self._commit(plan, verify, args)

    def reload_request(self, args: dict[str, Any]) -> dict[str, Any]:
        modules = module_names(args)
        package = _optional_str(args, "package")
        verify = _optional_str(args, "verify")
        plan = self.engine.prepare_reload(
            modules=modules, package=package, thread_id=self.thread_id, migrate=migrations(args),
            canary=args.get("canary"),
        )
        return self._commit(plan, verify, args)

    def rollback_request(self, args: dict[str, Any]) -> dict[str, Any]:
        to = args.get("to")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool) or to < 0):
            raise LivefixError("invalid", "`to` must be a generation number (0 = as loaded)")
        if self.options.approval == "always" and not args.get("approved", False):
            # Under "always" every change to the process is approved, rolling back included;
            # under "risky" a rollback returns to code that already ran, so it goes ahead.
            raise LivefixError(
                "approvalRequired",
                "Approval required: the approval policy is \"always\"",
                reasons=['the approval policy is "always"'],
                impact={"threads": [], "signatureChanges": [], "removals": []},
                report=f"Rolling back {'the latest generation' if to is None else f'to generation {to}'}",
            )
        result = self.engine.rollback(to=to, thread_id=self.thread_id)
        body = result.to_body()
        self._audit("rollback", body, changes=None)
        self._announce("rollback", body)
        return body

    def history_request(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(self.engine.history())

    def capture_frames_request(self, args: dict[str, Any]) -> dict[str, Any]:
        thread_ids = args.get("threadIds")
        if thread_ids is not None and (not isinstance(thread_ids, list) or not all(isinstance(t, int) for t in thread_ids)):
            raise LivefixError("invalid", "`threadIds` must be a list of thread ids")
        max_frames = args.get("maxFrames")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise LivefixError("invalid", "`maxFrames` must be a positive integer")
        return dict(
            self.engine.capture_frames(
                thread_ids=thread_ids,
                max_frames=max_frames,
                include_locals=bool(args.get("locals", False)),
                thread_id=self.thread_id,
            )
        )

    def status_request(self, args: dict[str, Any]) -> dict[str, Any]:
        modules = module_names(args)
        return {
            "generation": self.engine.generation,
            "modules": self.engine.modified_modules(
                modules=modules, include_libraries=bool(args.get("includeLibraries", False))
            ),
            "unpersisted": [entry.to_wire() for entry in self.engine.unpersisted(modules)],
        }

    def running_sources_request(self, args: dict[str, Any]) -> dict[str, Any]:
        modules = module_names(args)
        return {
            "generation": self.engine.generation,
            "sources": [source for entry in self.engine.unpersisted(modules) for source in entry.sources_to_wire()],
        }

    def evidence_request(self, args: dict[str, Any]) -> dict[str, Any]:
        generation = args.get("generation")
        if generation is not None and (not isinstance(generation, int) or isinstance(generation, bool) or generation < 1):
            raise LivefixError("invalid", "`generation` must be a generation number (1 or more)")
        return dict(self.engine.evidence(generation))

    def watch_request(self, args: dict[str, Any]) -> dict[str, Any]:
        targets = args.get("targets")
        if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
            raise LivefixError("invalid", "`targets` must be a list of \"module:qualname\" strings")
        if args.get("stop"):
            if not targets:
                return self.engine.unwatch(None)
            for target in targets:
                self.engine.unwatch(target)
            return self.engine.watched()
        for target in targets or []:
            self.engine.watch(target)
        return self.engine.watched()

    # -- shared steps ----------------------------------------------------------------

    def approval_needed(self, plan: Plan) -> list[str]:
        """Why this plan needs the developer's approval under the policy ([] = it does not).
        A plan that changes nothing needs none: there is nothing to approve (a whole module
        sent again asked for approval of "nothing", found by a new user)."""
        if self.options.approval == "never" or plan.empty:
            return []
        if self.options.approval == "always":
            return plan.risks() or ["the approval policy is \"always\""]
        return plan.risks()

    def check_approval(self, plan: Plan, approved: bool) -> None:
        """Raise `approvalRequired` (with the impact) when the policy asks and it was not given."""
        reasons = self.approval_needed(plan)
        if reasons and not approved:
            raise LivefixError(
                "approvalRequired",
                f"Approval required: {'; '.join(reasons)}",
                reasons=reasons,
                impact=plan.impact,
                applied=plan.planned(),
                report=plan.report_before(),
                instances=[gap.to_wire() for gap in plan.gaps],
            )

    def _commit(self, plan: Plan, verify: str | None, args: dict[str, Any]) -> dict[str, Any]:
        dry_run = bool(args.get("dryRun", False))
        if dry_run:
            return plan.dry_run_body()
        self.check_approval(plan, bool(args.get("approved", False)))
        before = self.engine.generation
        try:
            result = self.engine.commit(plan, verify=verify)
        except LivefixError as error:
            self._audit(plan.action, {"error": error.to_dict()}, changes=plan.changes)
            error.audited = True  # type: ignore[attr-defined]
            raise
        body = result.to_body()
        self._audit(plan.action, body, changes=plan.changes)
        if result.generation != before:  # "nothing to reload" changed nothing: no event to every client
            self._announce(plan.action, body)
        return body

    def _announce(self, action: str, body: dict[str, Any]) -> None:
        if self.emit is None:
            return
        try:
            self.emit(protocol.APPLIED_EVENT, {**body, "action": action})
        except Exception:
            log.exception("livefix: could not send the %s event", protocol.APPLIED_EVENT)

    def _canary_verdict(self, verdict: dict[str, Any]) -> None:
        """A canary decided (on its own thread): tell the clients, and the audit log."""
        if verdict.get("outcome") in ("rolledBack", "failed"):
            self._audit("canary", {"generation": verdict.get("generation"), "applied": None,
                                   "error": {"kind": "canary", "message": verdict.get("report")}},
                        changes=None, result="rolledBack" if verdict["outcome"] == "rolledBack" else "failed")
        if self.emit is None:
            return
        try:
            self.emit(protocol.CANARY_EVENT, {k: v for k, v in verdict.items() if k != "rollback"})
        except Exception:
            log.exception("livefix: could not send the %s event", protocol.CANARY_EVENT)
        rollback = verdict.get("rollback")
        if rollback is not None:  # editors follow what runs through `livefix/applied`
            self._announce("rollback", rollback)

    def _audit(self, action: str, body: dict[str, Any], changes: Any, result: str | None = None) -> None:
        path = self.options.audit_log
        if not path:
            return
        line = {
            "time": time.time(),
            "action": action,
            "generation": body.get("generation"),
            "changes": [
                {
                    "module": c.get("module"),
                    "path": c.get("path"),
                    "qualname": c.get("qualname"),
                    "sha256": hashlib.sha256(str(c.get("source", "")).encode("utf-8", "surrogatepass")).hexdigest(),
                }
                for c in (changes if isinstance(changes, list) else [])
                if isinstance(c, dict)
            ],
            "result": result or ("failed" if "error" in body else "ok"),
            "applied": body.get("applied"),
            "error": body.get("error"),
        }
        try:
            with self._audit_lock, open(path, "a", encoding="utf-8") as audit:
                audit.write(json.dumps(line, sort_keys=True) + "\n")
        except OSError:
            log.exception("livefix: could not write the audit log %s", path)


_CHANGING = frozenset({protocol.APPLY, protocol.RELOAD, protocol.ROLLBACK})


def module_names(args: dict[str, Any], key: str = "modules") -> list[str] | None:
    """The optional list-of-module-names argument, checked."""
    modules = args.get(key)
    if modules is not None and (not isinstance(modules, list) or not all(isinstance(m, str) for m in modules)):
        raise LivefixError("invalid", f"`{key}` must be a list of module names")
    return modules


def migrations(args: dict[str, Any]) -> dict[str, Any] | None:
    """The optional `migrate` argument: class -> attribute defaults or `def migrate(obj)` source.
    Only data crosses the wire; the engine checks the classes and compiles the functions."""
    migrate = args.get("migrate")
    if migrate is None:
        return None
    if not isinstance(migrate, dict) or not all(
        isinstance(key, str) and isinstance(value, (dict, str)) for key, value in migrate.items()
    ):
        raise LivefixError(
            "invalid",
            '`migrate` must map class names to attribute defaults or migration source: '
            '{"Cart": {"discount": 0}} or {"Cart": "def migrate(obj): ..."}',
        )
    return migrate


def _optional_str(args: dict[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise LivefixError("invalid", f"`{key}` must be a string")
    return value
