"""`listen()`: the agent, the one livefix root object of a service process.

Connects the pieces inside a service: the engine (installed to track sources),
the AgentService (approval policy, audit log, two-phase plans), the token, the
listening socket and the server thread, and, for a fleet worker, the registry:
a worker that starts after fleet applies first runs them (the journal), then
registers its socket, under the service's lock. Standard library only.
"""

from __future__ import annotations

import atexit
import logging
import os
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

from livefix import protocol
from livefix.agent import auth, host_os, module_facts, transport
from livefix.agent.registry import Registry
from livefix.agent.server import AgentServer, UntracedThread
from livefix.agent.service import AgentService, Limits
from livefix.engine import Engine, default_engine
from livefix.errors import LivefixError
from livefix.service import ServiceOptions

log = logging.getLogger("livefix.agent")

_current: "Agent | None" = None
_current_lock = threading.Lock()


class Agent:
    """A listening agent. `address` is what `livefix ... TARGET` takes."""

    def __init__(
        self,
        engine: Engine,
        address: transport.Address,
        token: str,
        token_file: Path | None,
        options: ServiceOptions,
        limits: Limits,
        ssl_context: ssl.SSLContext | None,
        allow_remote: bool,
        registry: Registry | None,
    ) -> None:
        self.engine = engine
        self.requested = address
        self.address = address
        self.token_file = token_file
        self.registry = registry
        self.ready = threading.Event()
        self.failure: LivefixError | None = None
        self._token = token
        self._ssl = ssl_context
        self._allow_remote = allow_remote
        self.service = AgentService(engine, options, limits=limits, info=self.info)
        # One outcome per journal entry replayed at start; kept by the fleet position, which
        # forgets the ones a later live commit or rollback of the fleet made untrue.
        self.catch_up: list[dict[str, Any]] = self.service.fleet.catch_up
        self.server: AgentServer | None = None
        self._closed = False
        self.published: str | None = None  # the `.addr` file of a TCP agent on Windows (host_os)
        self._pid = os.getpid()

    # -- start-up ------------------------------------------------------------------------

    def start(self, ready_timeout: float | None) -> None:
        """Bind (and, in a fleet, catch up and register) on an untraced thread; wait for it."""
        UntracedThread(self._start, "livefix-agent-start").start()
        if not self.ready.wait(ready_timeout):
            log.warning("livefix agent: still starting after %s s; it will listen when ready", ready_timeout)
            return
        if self.failure is not None:
            raise self.failure

    def _start(self) -> None:
        try:
            if self.registry is None:
                self._bind()
            else:
                with self.registry.locked(timeout=None):
                    self._replay_journal()
                    self._bind()
        except LivefixError as error:
            self.failure = error
        except Exception as exc:  # noqa: BLE001 - reported to listen()'s caller
            log.exception("livefix agent: could not start")
            self.failure = LivefixError("internal", f"the livefix agent could not start: {exc}")
        finally:
            self.ready.set()

    def _bind(self) -> None:
        listener = transport.bind(self.requested, allow_remote=self._allow_remote, ssl_context=self._ssl)
        self.address = transport.address_of(listener, self.requested)
        self.server = AgentServer(listener, self.service, self._token, self._ssl, hello=self.info)
        self.server.start()
        if self.published is not None:
            transport.ensure_private_dir(Path(self.published).parent)
            host_os.write_address(self.published, str(self.address))

    def _replay_journal(self) -> None:
        """Bring a worker that starts late to the fleet's generation (the lock is held).

        Stops at the first entry that fails (e.g. its module is not imported yet): the
        worker then says which fleet generation it really runs, and `catchUp` why."""
        assert self.registry is not None
        journal = self.registry.read_journal()
        self.service.fleet.reached(0, self.engine.generation)
        for entry in journal["entries"]:
            generation = int(entry.get("generation", 0))
            outcome: dict[str, Any] = {"generation": generation, "action": entry.get("action")}
            self.catch_up.append(outcome)
            before = self.engine.generation
            if entry.get("action") != "apply":
                # A process that starts now imports modules from disk: a fleet reload is already in it.
                outcome["status"] = "skipped"
                self.service.fleet.reached(generation, before)
                continue
            verdict = module_facts.superseded(entry.get("changes") or [])
            if verdict is not None:
                log.warning("livefix agent: fleet generation %s not replayed: %s", generation, verdict["reason"])
                outcome.update(verdict)
                self.service.fleet.reached(generation, before, before=before)
                continue
            try:
                # Changes to modules this worker has not imported yet (its app loads after
                # listen(), in a pre-fork server) are kept and applied at their import.
                parts = module_facts.split(entry["changes"], keep_for_import=True)
                if parts.loaded:
                    plan = self.engine.prepare(parts.loaded, action="apply", migrate=entry.get("migrate"))
                    self.service.commit_approved(plan, entry.get("verify"))
                waiting = self.service.keep_for_import(
                    parts.later, f"fleet generation {generation}", entry.get("migrate"), entry.get("verify"),
                    on_done=lambda done, o=outcome, g=generation: self._applied_at_import(o, g, done),
                    fleet_generation=generation,
                ) if parts.later else []
            except LivefixError as error:
                log.error("livefix agent: could not replay fleet generation %s: %s", generation, error)
                outcome.update(status="failed", error=error.to_dict())
                return
            self.service.fleet.reached(generation, self.engine.generation, before=before)
            outcome.update(status="pending" if waiting else "applied", workerGeneration=self.engine.generation)
            if waiting:
                outcome["pending"] = waiting

    def _applied_at_import(self, outcome: dict[str, Any], fleet_generation: int, done: dict[str, Any]) -> None:
        """A caught-up change kept for an import ran (or failed) at that import: say so in `catchUp`."""
        waiting = [m for m in outcome.get("pending", []) if m != done["module"]]
        outcome["pending"] = waiting
        if done["status"] == "applied":
            self.service.fleet.applied_at_import(fleet_generation, int(done["generation"]))
            if not waiting and outcome.get("status") == "pending":
                outcome["status"] = "applied"
            outcome["workerGeneration"] = done["generation"]
        elif done["status"] in ("superseded", "inFile"):  # the module's file changed since: it runs the file
            outcome.update(status=done["status"], reason=done.get("reason"))
        else:
            outcome.update(status="failed", error=done.get("error"))
            if self.service.fleet.current is not None and self.service.fleet.current >= fleet_generation:
                self.service.fleet.current = fleet_generation - 1  # it does not run that generation
        if not waiting:
            outcome.pop("pending", None)

    # -- serving -------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self.server is not None and not self._closed

    def info(self) -> dict[str, Any]:
        """Who this agent is (the authenticate response and `status`'s `agent`)."""
        return {
            "pid": os.getpid(),
            "address": str(self.address),
            "service": self.registry.name if self.registry else None,
            "fleetGeneration": self.service.fleet.current,
            "generation": self.engine.generation,
            "python": sys.version.split()[0],
            "approval": self.service.options.approval,
            "catchUp": self.catch_up,
            "pending": self.engine.pending.pending(),  # changes waiting for their module's import
            "connections": self.server.connection_count if self.server is not None else 0,
        }

    def close(self) -> None:
        """Stop listening and unregister (the service runs on, with whatever code it runs)."""
        global _current
        if self._closed or os.getpid() != self._pid:  # a forked child's copy owns no socket
            return
        self._closed = True
        if self.server is not None:  # only a socket we bound is ours to remove
            self.server.close()
            for path in (self.address.path if self.address.kind == "unix" else None, self.published):
                if path:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        with _current_lock:
            if _current is self:
                _current = None


def listen(
    address: str | int | tuple[str, int] | None = None,
    *,
    service: str | None = None,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    approval: protocol.ApprovalPolicy = "risky",
    audit_log: str | None = None,
    allow_remote: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    limits: Limits | None = None,
    engine: Engine | None = None,
    ready_timeout: float | None = 10.0,
    strict: bool = False,
) -> Agent:
    """Start the livefix agent in this process and return it (one agent per process).

    livefix never keeps a service from starting: when the agent cannot start (no usable
    runtime directory, a socket it cannot bind, a token file it cannot read) it logs a
    warning saying why and returns an agent that does not listen (`agent.listening` is
    False, `agent.failure` says why), unless `strict=True`, which raises instead. Mistakes
    in the arguments themselves always raise.

    `address`: None for a Unix socket in the per-user runtime directory (the fleet
    registry when `service` is given), `unix:PATH`, `HOST:PORT` or a port (loopback).
    The token is `token`, else `$LIVEFIX_TOKEN`, else the file `token_file` or
    `$LIVEFIX_TOKEN_FILE`, else `<runtime dir>/token` (created, mode 0600).
    `approval` and `audit_log` are the adapter's `livefix` options."""
    global _current
    options = ServiceOptions.from_wire({"approval": approval, "auditLog": audit_log})
    if service and address is not None:
        # A fleet finds its workers by their socket files in the registry directory.
        raise LivefixError("invalid", "a fleet worker (service=...) listens in its registry: pass no address")
    with _current_lock:
        if _current is not None:
            raise LivefixError("busy", f"livefix is already listening in this process on {_current.address}")
        if ssl_context is None and certfile:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(certfile, keyfile)
        parsed_address = transport.parse_address(address) if address is not None else None
        if parsed_address is not None:  # a remote address without its safeguards is a mistake: raised
            transport.check_remote(parsed_address, allow_remote, ssl_context)
    try:
        return _start(parsed_address, service, token, token_file, options, ssl_context, allow_remote, limits, engine,
                      ready_timeout)
    except (LivefixError, OSError) as error:
        if strict:
            raise
        failure = error if isinstance(error, LivefixError) else LivefixError("failed", f"{type(error).__name__}: {error}")
        log.warning("livefix: the agent did not start (%s); the service runs on without it "
                    "(listen(strict=True) raises instead)", failure.message)
        agent = Agent(engine or default_engine(), parsed_address or transport.Address("unix", path=""), "", None,
                      options, limits or Limits(), None, allow_remote, None)
        agent.failure = failure
        return agent


def _start(
    parsed_address: transport.Address | None,
    service: str | None,
    token: str | None,
    token_file: str | os.PathLike[str] | None,
    options: ServiceOptions,
    ssl_context: ssl.SSLContext | None,
    allow_remote: bool,
    limits: Limits | None,
    engine: Engine | None,
    ready_timeout: float | None,
) -> Agent:
    global _current
    with _current_lock:
        if _current is not None:
            raise LivefixError("busy", f"livefix is already listening in this process on {_current.address}")
        resolved = auth.resolve_token(token, token_file)
        default_file: Path | None = None
        if resolved is None:
            default_file = transport.runtime_dir() / "token"
            resolved = _default_token(default_file)
        registry = Registry(service) if service else None
        published: str | None = None
        if parsed_address is None and host_os.tcp_agents():
            # Windows: a loopback port, published where the socket file would be (host_os).
            parsed = transport.Address("tcp", host="127.0.0.1", port=0)
            published = registry.address_path() if registry else str(
                transport.runtime_dir() / "agents" / f"{os.getpid()}{host_os.ADDRESS_FILE}")
        elif parsed_address is None:
            path = registry.socket_path() if registry else str(transport.runtime_dir() / "agents" / f"{os.getpid()}.sock")
            parsed = transport.Address("unix", path=path)
        else:
            parsed = parsed_address
        engine = engine or default_engine()
        engine.install()
        agent = Agent(engine, parsed, resolved, default_file, options, limits or Limits(), ssl_context,
                      allow_remote, registry)
        agent.published = published
        _current = agent
    try:
        agent.start(ready_timeout)
    except BaseException:
        agent.close()
        raise
    atexit.register(agent.close)  # a clean exit leaves no socket or address file behind (not a fork's)
    return agent


def current() -> Agent | None:
    """The agent listening in this process, if any."""
    return _current


def _default_token(path: Path) -> str:
    """The per-user token file, created on first use (0600)."""
    try:
        return auth.read_token_file(path)
    except LivefixError:
        if path.exists():
            # Another worker starting at the same moment may have created it since our read
            # failed (its write is atomic); if it is unsafe or unreadable, this read says so
            # rather than replace it.
            return auth.read_token_file(path)
    try:
        auth.write_token_file(path, auth.generate_token())
    except FileExistsError:
        pass  # another worker created it at the same moment
    return auth.read_token_file(path)


def _forget_in_child() -> None:
    """A forked child inherits the sockets but not the threads: it must call listen() itself."""
    global _current
    if _current is not None and _current.server is not None:
        _current.server.drop_after_fork()
    _current = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
