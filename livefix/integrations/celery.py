"""Fix every process of a Celery fleet (each worker's main process and every pool process),
two-phase, with one reply per process; processes that start later catch up.

Connects a coordinator (`livefix apply --celery BROKER_URL ...`, or `apply(app, changes)`)
to Celery worker processes through their broker. Celery's own remote control
(`app.control.broadcast(..., reply=True)`, commands registered with `@control_command`) is
served by each worker's *main* process, in its consumer: the prefork pool's child
processes, which run the tasks, never see a control command, and nothing in Celery runs
code in every child on request. So every process of the fleet serves its own node of a
kombu pidbox mailbox (the mechanism Celery's remote control is built on) from a thread:
the main process from `worker_init` (before it forks its pool), each pool child from
`worker_process_init` (respawned children included: `--max-tasks-per-child`, a child that
died). The mailbox has an exchange of its own ("livefix.<fleet>.pidbox"): `celery inspect`
sees only Celery's nodes, and a livefix broadcast reaches every process and gets one
reply from each.

Catch-up and membership live in Redis (the broker's when it is Redis, else `journal_url`):
the fleet's journal, its lock and the registry of live nodes. A process that starts takes
the lock, syncs to the journal, starts its node and registers, then lets go; a coordinator
holds the lock from discovery to the journal write. So every process either takes part in
a change or starts after it and replays it. A pool child inherits its parent's code at the
fork (the parent took part in every change), and its sync is then a no-op; the fork waits
for a commit in progress (`Participant`). A child forked during a change waits for it to end
(up to 20 s: `worker_proc_alive_timeout` is raised to 30 s so that its parent lets it);
past that (a coordinator that died holding the lock) it starts anyway and syncs again, under
the lock, as soon as the lock is free.

Celery itself is imported only in `setup` (the worker side); the coordinator needs kombu
and redis, which `celery[redis]` installs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from livefix.errors import LivefixError

try:
    from kombu import Connection
    from kombu.pidbox import Mailbox
except ImportError as exc:  # the command line shows this, exit 1
    raise LivefixError("unsupported", f"Celery fleets need celery[redis] ({exc}): pip install 'livefix[celery]'") from exc

import livefix
from livefix import protocol
from livefix.agent.fleet import FleetResult, WorkerOutcome
from livefix.integrations import two_phase
from livefix.integrations.two_phase import DEAD, EXITED, NO_ANSWER, Coordinator, Journal, PhaseHook
from livefix.service import ServiceOptions

log = logging.getLogger("livefix.celery")

COMMAND = "livefix"  # the one pidbox method; the operation is an argument
# While answers are missing, how often the coordinator looks whether the silent processes
# left the fleet or died (a client watching remote state, not a test's wait).
LOOK_AGAIN = 0.25


@dataclass(frozen=True)
class Settings:
    """The worker side's options (`setup`)."""

    fleet: str = "celery"  # one mailbox and one journal per fleet name on a broker
    approval: str = "risky"  # the workers' approval policy: "never", "risky", "always"
    audit_log: str | None = None
    journal_url: str | None = None  # a Redis URL; default: the broker's, when it is Redis
    heartbeat: float = 5.0  # how often a node refreshes its registration


def mailbox(fleet: str) -> Mailbox:
    return Mailbox(f"livefix.{fleet}", type="fanout", accept=["json"])


def journal_url_for(broker_url: str | None, journal_url: str | None) -> str | None:
    if journal_url:
        return journal_url
    if broker_url and urlsplit(broker_url).scheme in ("redis", "rediss"):
        return broker_url
    return None


class RedisStore:
    """The fleet's journal, lock and node registry in Redis."""

    def __init__(self, url: str, fleet: str) -> None:
        import redis  # celery[redis] installs it

        self.redis = redis.Redis.from_url(url)
        self.prefix = f"livefix:{fleet}:"

    @contextmanager
    def locked(self, wait: float, lease: float) -> Iterator[None]:
        lock = self.redis.lock(self.prefix + "lock", timeout=lease, blocking_timeout=wait)
        if not lock.acquire():
            raise LivefixError("busy", f"another livefix fleet operation held the fleet's lock for {wait:g} s",
                               reason="locked")
        try:
            yield
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - its lease ran out: someone else may hold it now
                log.warning("livefix: the fleet lock's lease (%s s) ran out before it was released", lease)

    def read_journal(self) -> Journal:
        raw = self.redis.get(self.prefix + "journal")
        return json.loads(raw) if raw else two_phase.empty_journal()

    def write_journal(self, journal: Journal) -> None:
        self.redis.set(self.prefix + "journal", json.dumps(journal))

    def register(self, name: str, info: dict[str, Any]) -> None:
        self.redis.hset(self.prefix + "members", name, json.dumps({**info, "seen": time.time()}))

    def deregister(self, name: str) -> None:
        self.redis.hdel(self.prefix + "members", name)

    def members(self) -> dict[str, dict[str, Any]]:
        return {key.decode(): json.loads(value) for key, value in self.redis.hgetall(self.prefix + "members").items()}


# -- worker side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Budget:
    """How long a starting process may wait for each step of joining the fleet."""

    lock: float
    bind: float
    confirm: float


MAIN_BUDGET = _Budget(lock=30.0, bind=10.0, confirm=5.0)
# How long a starting process may hold the fleet's lock: it needs milliseconds, but one
# killed while holding it (a pool process forked during a warm shutdown, then terminated)
# would otherwise hold up every process that starts after it.
START_LEASE = 15.0
# A pool child forked during a fleet change waits for it to end before its first task, so
# that it never runs code the change is about to take back. Its parent kills a child that is
# not up within `worker_proc_alive_timeout` (4 s by default): raised to PROC_ALIVE_TIMEOUT.
CHILD_BUDGET = _Budget(lock=20.0, bind=2.0, confirm=1.0)
PROC_ALIVE_TIMEOUT = 30.0


class _Node:
    """This process in the fleet: its participant, served on the mailbox by a thread."""

    def __init__(self, app: Any, worker: str, role: str, parent: str | None, settings: Settings) -> None:
        self.app = app
        self.worker = worker
        self.role = role  # "main" (the worker's main process) or "pool" (a pool child)
        self.parent = parent
        self.settings = settings
        self.name = f"{worker}[{os.getpid()}]"
        self.participant = two_phase.participant(f"celery:{settings.fleet}", ServiceOptions.from_wire(
            {"approval": settings.approval, "auditLog": settings.audit_log}))
        url = journal_url_for(app.conf.broker_url, settings.journal_url)
        self.store = RedisStore(url, settings.fleet) if url else None
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self._stop = threading.Event()
        # Registration and goodbye are serialised: a heartbeat racing the goodbye of a process
        # that exits would register it again, and the coordinator would wait for a dead node.
        self._registration = threading.Lock()
        # Sync with the journal again, under the lock, as soon as the lock is free: this
        # process listened only after letting the lock go (or lost the broker for a while).
        self._resync = False
        self.failure: BaseException | None = None

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "worker": self.worker, "role": self.role,
                "parent": self.parent}

    def start(self, budget: _Budget) -> None:
        """Catch up and start listening under the fleet's lock, so that every fleet change
        either finds this process listening or comes before its catch-up."""
        if self.store is None:
            log.warning("livefix: %s has no Redis journal (broker %s): processes that start later will not catch "
                        "up with fleet changes; pass journal_url= to setup()", self.name, _safe(self.app.conf.broker_url))
            self._listen(budget)
            return
        try:
            with self.store.locked(wait=budget.lock, lease=START_LEASE):
                self._sync()
                if self._listen(budget):
                    self._register()
                    return
        except LivefixError as error:
            if error.kind != "busy":
                raise
            log.warning("livefix: %s starts while a fleet change is in progress; it catches up once that is over",
                        self.name)
            self._listen(budget)
        self._resync = True

    def _sync(self) -> None:
        assert self.store is not None
        try:
            self.participant.sync(self.store.read_journal())
        except LivefixError as error:
            log.error("livefix: %s could not catch up with the fleet: %s", self.name, error.message)

    def _listen(self, budget: _Budget) -> bool:
        """Start the node's thread; True once it answered its own ping through the broker
        (only that proves the subscription: a fanout message sent before it is lost)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="livefix-celery-node", daemon=True)
            self._thread.start()
        if not self._bound.wait(budget.bind):
            log.warning("livefix: %s is still connecting to the broker", self.name)
            return False
        if self.failure is not None:
            raise LivefixError("failed", f"{self.name} could not listen on the livefix mailbox: {self.failure}")
        with self.app.connection_for_write() as connection:
            answer = mailbox(self.settings.fleet)(connection).call(
                [self.name], COMMAND, {"op": "ping"}, timeout=budget.confirm)
        return bool(answer)

    def _register(self) -> None:
        with self._registration:
            if self.store is not None and not self._stop.is_set():
                self.store.register(self.name, self.info())

    def stop(self) -> None:
        with self._registration:
            self._stop.set()
            if self.store is not None:
                try:
                    self.store.deregister(self.name)
                except Exception:  # noqa: BLE001 - the broker may be gone at shutdown; the entry goes stale
                    log.debug("livefix: could not deregister %s", self.name, exc_info=True)

    def _serve(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                with self.app.connection_for_write() as connection:
                    node = mailbox(self.settings.fleet)(connection).Node(
                        self.name, handlers={COMMAND: self._handle}, channel=connection.default_channel)
                    node.listen()
                    self._drain(connection, 0.01)  # subscribes (kombu subscribes on its first poll)
                    if self._bound.is_set():
                        self._resync = True  # reconnected: it may have missed a change meanwhile
                    self._bound.set()
                    pause = 0.5
                    beat = 0.0
                    while not self._stop.is_set():
                        if self._resync:
                            self._try_resync()
                        if time.monotonic() >= beat:
                            beat = time.monotonic() + self.settings.heartbeat
                            self._register()
                        self._drain(connection, min(self.settings.heartbeat, 1.0))
            except Exception as exc:  # noqa: BLE001 - the broker went away: reconnect
                if not self._bound.is_set():
                    self.failure = exc
                    self._bound.set()
                    return
                log.warning("livefix: %s lost the broker (%s); reconnecting", self.name, exc)
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)

    def _drain(self, connection: Connection, timeout: float) -> None:
        try:
            connection.drain_events(timeout=timeout)
        except socket.timeout:
            pass

    def _try_resync(self) -> None:
        """Sync if the lock is free now; else keep serving (this node may take part in the
        change in progress) and try again on the next turn."""
        if self.store is None:
            self._resync = False
            return
        try:
            with self.store.locked(wait=0, lease=START_LEASE):
                self._sync()
            self._resync = False
        except LivefixError as error:
            if error.kind != "busy":
                raise

    def _handle(self, state: Any, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """The mailbox method: runs on the node's thread, while the process runs tasks."""
        if op == "alive":  # a parent vouches for its pool children (a killed one leaves no word)
            pids = [int(p) for p in (args or {}).get("pids", [])]
            reply = {"ok": True, "body": {"alive": [pid for pid in pids if _alive(pid)]}}
        else:
            reply = self.participant.serve(op, args or {})
        return {**reply, **self.info(), "name": self.name}


def _alive(pid: int) -> bool:
    """Is `pid` a live process (a zombie, killed but not reaped yet, is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc here: the signal said it exists


class Integration:
    """One per process that calls `setup`: connects the worker's signals to its node."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.node: _Node | None = None

    def worker_init(self, sender: Any = None, **_: Any) -> None:
        """The worker's main process, its task modules imported, its pool not started yet."""
        livefix.install()
        conf = self.app.conf
        if float(conf.worker_proc_alive_timeout or 0) < PROC_ALIVE_TIMEOUT:
            log.info("livefix: worker_proc_alive_timeout raised from %s to %s s (a pool process started during a "
                     "fleet change waits for its end)", conf.worker_proc_alive_timeout, PROC_ALIVE_TIMEOUT)
            conf.worker_proc_alive_timeout = PROC_ALIVE_TIMEOUT
        try:
            self.node = _Node(self.app, str(sender.hostname), "main", None, self.settings)
            self.node.start(MAIN_BUDGET)
        except Exception:  # noqa: BLE001 - the worker runs on, unfixable, and says why
            log.exception("livefix: worker %s could not join the fleet", getattr(sender, "hostname", "?"))

    def worker_process_init(self, sender: Any = None, **_: Any) -> None:
        """A pool child, just forked (its parent's node and thread stayed with the parent)."""
        parent = f"{sender}[{os.getppid()}]"
        try:
            self.node = _Node(self.app, str(sender), "pool", parent, self.settings)
            self.node.start(CHILD_BUDGET)
        except Exception:  # noqa: BLE001 - never keep a pool process from running tasks
            log.exception("livefix: pool process %s could not join the fleet", os.getpid())

    def worker_process_shutdown(self, **_: Any) -> None:
        if self.node is not None and self.node.role == "pool":
            self.node.stop()

    def worker_shutdown(self, **_: Any) -> None:
        if self.node is not None:
            self.node.stop()


def setup(app: Any, *, fleet: str = "celery", approval: str = "risky", audit_log: str | None = None,
          journal_url: str | None = None) -> Integration:
    """Make every process of the workers of `app` fixable with `livefix ... --celery BROKER_URL`
    (or this module's `apply`). Call it where the app is defined (the module `celery -A`
    names); it only connects signals, so processes that merely send tasks are not affected."""
    from celery import signals

    ServiceOptions.from_wire({"approval": approval, "auditLog": audit_log})  # a bad policy is refused here
    integration = Integration(app, Settings(fleet=fleet, approval=approval, audit_log=audit_log,
                                            journal_url=journal_url))
    # weak=False: the receivers are bound methods of an object nothing else holds.
    signals.worker_init.connect(integration.worker_init, weak=False)
    signals.worker_process_init.connect(integration.worker_process_init, weak=False)
    signals.worker_process_shutdown.connect(integration.worker_process_shutdown, weak=False)
    signals.worker_shutdown.connect(integration.worker_shutdown, weak=False)
    return integration


# -- coordinator side --------------------------------------------------------------------------


class CeleryTransport:
    """The livefix mailbox on the broker as a fleet transport."""

    def __init__(self, broker_url: str, fleet: str = "celery", journal_url: str | None = None,
                 timeout: float = 30.0, discovery: float = 1.0, stale_after: float = 30.0) -> None:
        self.label = f"celery {_safe(broker_url)}"
        self.timeout = timeout
        self.discovery = discovery  # silence after the last ping answer that ends discovery
        self.stale_after = stale_after  # a registration not refreshed for this long is a dead node's
        self.connection = Connection(broker_url, connect_timeout=timeout)
        self.mailbox = mailbox(fleet)(self.connection)
        url = journal_url_for(broker_url, journal_url)
        self.store = RedisStore(url, fleet) if url else None
        self._registered: set[str] = set()  # every node seen registered: its entry gone means it left

    def close(self) -> None:
        self.connection.release()
        if self.store is not None:
            self.store.redis.close()

    def locked(self, timeout: float) -> Any:
        if self.store is None:
            return nullcontext()  # no shared store: one coordinator at a time is up to you
        # Prepare, commit and undo each wait `timeout` at most; a coordinator killed holding the
        # lock keeps processes from starting until the lease ends.
        return self.store.locked(wait=timeout, lease=3 * self.timeout + 15.0)

    def read_journal(self) -> Journal:
        return self.store.read_journal() if self.store is not None else two_phase.empty_journal()

    def write_journal(self, journal: Journal) -> None:
        if self.store is None:
            raise LivefixError("unsupported", "this broker is not Redis and no journal_url was given")
        self.store.write_journal(journal)

    def members(self) -> tuple[list[str], list[str]]:
        """Every node that answers a ping, and every registered node that should have."""
        registered = self.store.members() if self.store is not None else {}
        self._registered.update(registered)
        answers = self._broadcast("ping", {}, None, self.discovery, limit=len(registered) or None)
        names = set(answers)
        warnings: list[str] = []
        missing = [name for name in registered if name not in answers]
        for name, (reason, why) in self._classify(missing).items():
            if reason == NO_ANSWER:
                names.add(name)  # registered and maybe alive: it must take part (or the change stops)
                continue
            if self.store is not None and reason == DEAD:
                self.store.deregister(name)
            if reason == DEAD:
                warnings.append(f"{name} is registered but {why}: left out")
        return sorted(names), warnings

    def call(self, op: str, args: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
        """Send `op` to the named nodes; collect their answers until every one answered, left
        (deregistered), died (its worker says so) or ran out of time."""
        if not names:
            return {}
        # kombu's Mailbox.call waits until a whole `timeout` passes without an answer; this
        # looks, between short waits, whether the silent ones still exist. (`_publish` and
        # `_collect` are the halves of `Mailbox._broadcast`, which Celery's control uses too.)
        ticket = uuid.uuid4().hex
        channel = self.connection.default_channel
        self.mailbox._publish(COMMAND, {"op": op, "args": args}, destination=list(names), reply_ticket=ticket,
                              channel=channel, timeout=self.timeout)
        replies: dict[str, dict[str, Any]] = {}
        verdicts: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + self.timeout
        parents_asked = time.monotonic()
        while True:
            waiting = [n for n in names if n not in replies and n not in verdicts]
            if not waiting:
                break
            answers = self.mailbox._collect(ticket, limit=len(waiting), channel=channel,
                                            timeout=min(LOOK_AGAIN, max(deadline - time.monotonic(), 0.01)))
            replies.update(_replies(op, answers))
            waiting = [n for n in waiting if n not in replies]
            if not waiting:
                break
            out_of_time = time.monotonic() >= deadline
            ask = out_of_time or time.monotonic() - parents_asked >= 1.0
            if ask:
                parents_asked = time.monotonic()
            for name, verdict in self._classify(waiting, ask_parents=ask).items():
                if verdict[0] != NO_ANSWER or out_of_time:
                    verdicts[name] = verdict
            if out_of_time:
                break
        for name, (reason, why) in verdicts.items():
            replies.setdefault(name, {"ok": False, "error": {"kind": "failed", "reason": reason, "address": name,
                                                             "message": f"no answer to {op}: {why}"}})
        return replies

    def _broadcast(self, op: str, args: dict[str, Any], names: list[str] | None, timeout: float,
                   limit: int | None = None) -> dict[str, dict[str, Any]]:
        """One round of kombu's own: to `names` (or every node), answers until `timeout` of silence."""
        arguments = {"op": op, "args": args}
        if names is None:
            raw = self.mailbox.multi_call(COMMAND, arguments, timeout=timeout, limit=limit)
        else:
            raw = self.mailbox.call(names, COMMAND, arguments, timeout=timeout)
        return _replies(op, raw)

    def _classify(self, missing: list[str], ask_parents: bool = True) -> dict[str, tuple[str, str]]:
        """Why each named node did not answer: (EXITED | DEAD | NO_ANSWER, in words).
        `ask_parents`: ask the main process of each silent pool process whether it lives."""
        if not missing:
            return {}
        registered = self.store.members() if self.store is not None else {}
        self._registered.update(registered)
        verdicts: dict[str, tuple[str, str]] = {}
        by_parent: dict[str, list[str]] = {}
        for name in missing:
            info = registered.get(name)
            parent = str(info.get("parent") or "") if info is not None else ""
            if info is None and name in self._registered:
                verdicts[name] = (EXITED, "it left the fleet (its process exited)")
            elif info is not None and time.time() - float(info.get("seen", 0)) > self.stale_after:
                verdicts[name] = (DEAD, f"silent for over {self.stale_after:g} s")
            elif parent and parent not in registered:
                # Its worker's main process stopped (Celery's pool processes die with it).
                verdicts[name] = (DEAD, f"its worker {parent} has stopped")
            elif parent:
                by_parent.setdefault(parent, []).append(name)
            else:
                verdicts[name] = (NO_ANSWER, f"none within {self.timeout:g} s")
        if by_parent and not ask_parents:
            verdicts.update({name: (NO_ANSWER, f"none within {self.timeout:g} s")
                             for children in by_parent.values() for name in children})
        elif by_parent:
            # A pool child killed outright leaves no word: its parent knows whether it lives.
            answers = {}
            for parent, children in by_parent.items():
                pids = [int(registered[name]["pid"]) for name in children]
                answers.update(self._broadcast("alive", {"pids": pids}, [parent], min(self.timeout, 1.0)))
            for parent, children in by_parent.items():
                answer = answers.get(parent) or {}
                alive = (answer.get("body") or {}).get("alive") if answer.get("ok") else None
                for name in children:
                    if alive is not None and int(registered[name]["pid"]) not in alive:
                        verdicts[name] = (DEAD, "its process is gone (its worker says so)")
                    else:
                        verdicts[name] = (NO_ANSWER, f"none within {self.timeout:g} s")
        return verdicts


def _replies(op: str, raw: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    replies: dict[str, dict[str, Any]] = {}
    for answer in raw or []:
        for name, reply in answer.items():
            if not isinstance(reply, dict) or "ok" not in reply:  # kombu's own {"error": repr(exc)}
                reply = {"ok": False, "error": {"kind": "internal", "message": f"{op} failed there: {reply}"}}
            replies[name] = reply
    return replies


def _safe(url: str | None) -> str:
    """A broker URL without its password, for reports."""
    if not url:
        return "(no broker)"
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class CeleryFleet(two_phase.CoordinatedFleet):
    """A `livefix.agent.fleet.Fleet` look-alike for one broker: the command line's `--celery`."""

    def __init__(self, broker: Any, fleet: str = "celery", journal_url: str | None = None,
                 timeout: float = 30.0, discovery: float = 1.0) -> None:
        self.broker_url = broker if isinstance(broker, str) else str(broker.conf.broker_url)
        self.fleet = fleet
        self.journal_url = journal_url
        self.timeout = timeout
        self.discovery = discovery

    @contextmanager
    def _coordinator(self) -> Iterator[Coordinator]:
        transport = CeleryTransport(self.broker_url, self.fleet, self.journal_url, self.timeout, self.discovery)
        try:
            transport.connection.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001 - any transport error: the broker cannot be reached
            transport.close()
            raise LivefixError("failed", f"cannot reach the broker {_safe(self.broker_url)}: {exc}",
                               address=_safe(self.broker_url), reason="noAgent") from None
        try:
            yield Coordinator(transport)
        finally:
            transport.close()



# -- the Python API --------------------------------------------------------------------------


def apply(broker: Any, changes: Any, *, fleet: str = "celery", journal_url: str | None = None,
          verify: str | None = None, migrate: Any = None, approved: bool = False, dry_run: bool = False,
          timeout: float = 30.0, on_phase: PhaseHook | None = None) -> FleetResult:
    """Apply `changes` on every process of the fleet or none. `broker`: the Celery app or its
    broker URL. Returns the fleet outcome (`outcome`, `error`, per-process `report`)."""
    prepare: dict[str, Any] = {"action": "apply", "changes": two_phase.wire_changes(changes), "approved": approved}
    if migrate is not None:
        prepare["migrate"] = migrate
    return CeleryFleet(broker, fleet, journal_url, timeout).apply(prepare, verify=verify, dry_run=dry_run,
                                                                   on_phase=on_phase)


def reload(broker: Any, modules: list[str] | None = None, *, package: str | None = None, fleet: str = "celery",
           journal_url: str | None = None, verify: str | None = None, approved: bool = False,
           dry_run: bool = False, timeout: float = 30.0) -> FleetResult:
    """Reload modules from each worker's files (diff-based), on every process or none."""
    prepare: dict[str, Any] = {"action": "reload", "approved": approved}
    if modules:
        prepare["modules"] = list(modules)
    if package:
        prepare["package"] = package
    return CeleryFleet(broker, fleet, journal_url, timeout).apply(prepare, verify=verify, dry_run=dry_run)


def rollback(broker: Any, to: int | None = None, *, fleet: str = "celery", journal_url: str | None = None,
             approved: bool = False, timeout: float = 30.0) -> FleetResult:
    """Every process back to fleet generation `to` (default: before the latest change)."""
    return CeleryFleet(broker, fleet, journal_url, timeout).rollback(to=to, approved=approved)


def history(broker: Any, *, fleet: str = "celery", journal_url: str | None = None,
            timeout: float = 30.0) -> dict[str, Any]:
    """The fleet journal and each process's own history."""
    target = CeleryFleet(broker, fleet, journal_url, timeout)
    workers = target.each(protocol.HISTORY)
    return {"journal": target.journal(), "workers": {w.address: w.body or {"error": w.error} for w in workers}}


def status(broker: Any, *, fleet: str = "celery", journal_url: str | None = None,
           timeout: float = 30.0) -> list[WorkerOutcome]:
    """Each process's generation, fleet generation and modules that differ from their files."""
    return CeleryFleet(broker, fleet, journal_url, timeout).each(protocol.STATUS)


__all__ = ["CeleryFleet", "Integration", "apply", "history", "reload", "rollback", "setup", "status"]
