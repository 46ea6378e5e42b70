"""The agent's server: accepts connections and answers framed requests on untraced daemon threads.

Connects a listening socket (see transport) to the AgentService. One accept thread
sleeps in `select` on the listener and a wake-up pipe, so an idle agent costs the
service nothing; each connection gets its own daemon thread, which must
authenticate (`livefix/authenticate` with the token) before anything else is
served. Every request is answered, failures included; a peer that breaks the
framing, stays silent before authenticating or floods connections is told why and
closed. Standard library only.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import os
import selectors
import socket
import ssl
import struct
import sys
import threading
from typing import Any, Callable

from livefix import protocol
from livefix.agent import wire
from livefix.agent.auth import token_matches
from livefix.agent.framing import FramingError, MessageReader, encode, set_io_timeouts
from livefix.agent.service import AgentService
from livefix.errors import LivefixError

log = logging.getLogger("livefix.agent")


class UntracedThread(threading.Thread):
    """A daemon thread that no tracer or profiler follows.

    threading's bootstrap installs the `threading.settrace()`/`setprofile()` hooks
    (debuggers, coverage) right before it calls `run()`, so a Python `run()` would be
    reported to them as a call before it could remove them. Our `run` is therefore
    built only from C callables (see `_untraced_run`): the hooks are removed before
    any Python frame of ours exists. pydevd also skips threads marked
    `is_pydev_daemon_thread`/`pydev_do_not_trace`. We never register a
    `sys.monitoring` tool (3.12+)."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.pydev_do_not_trace = True
        self.is_pydev_daemon_thread = True
        self.run = _untraced_run(target)  # type: ignore[method-assign]


def _untraced_run(target: Callable[[], None]) -> Callable[[], object]:
    """`sys.settrace(None); sys.setprofile(None); target()`, with no Python frame before `target`."""
    steps = itertools.chain(
        itertools.starmap(sys.settrace, [(None,)]),
        itertools.starmap(sys.setprofile, [(None,)]),
        itertools.starmap(target, [()]),
    )
    return functools.partial(collections.deque, steps, 0)  # consumes the steps, keeps nothing


class Connection:
    """One peer: its socket, a write lock (events and responses interleave) and its state."""

    def __init__(self, sock: socket.socket, ident: int, peer: str, peer_key: str = "") -> None:
        self.sock = sock
        self.ident = ident
        self.peer = peer
        self.peer_key = peer_key  # who is on the other end, for per-peer limits
        self.authenticated = False
        self.seq = wire.Sequencer()
        self._write_lock = threading.Lock()
        self.closed = False

    def send(self, message: dict[str, Any]) -> bool:
        """Send one message; False (and the connection is closed) when the peer cannot take it."""
        data = encode(message)
        with self._write_lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.close()
                return False

    def close(self, linger: bool | float = False) -> None:
        """Close; with `linger`, first let the peer read what we sent.

        Closing a socket with unread input makes the kernel send RST, which can
        destroy our last (error) message before the peer reads it; so shut down our
        side and drain a bounded amount of input first."""
        if linger is not False and not self.closed:
            try:
                self.sock.shutdown(socket.SHUT_WR)
                wait = 1.0 if linger is True else float(linger)
                if wait > 0:
                    set_io_timeouts(self.sock, wait, wait)
                else:
                    self.sock.setblocking(False)  # only what has already arrived
                drained = 0
                while drained < 1 << 20:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        break
                    drained += len(chunk)
            except OSError:
                pass
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class AgentServer:
    """Serves one listening socket until `close()`."""

    def __init__(
        self,
        listener: socket.socket,
        service: AgentService,
        token: str,
        ssl_context: ssl.SSLContext | None = None,
        hello: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.listener = listener
        self.service = service
        self.limits = service.limits
        self._token = token
        self._ssl = ssl_context
        self._hello = hello or (lambda: {})
        self._connections: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._next_ident = 0
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = UntracedThread(self._accept_loop, "livefix-agent")
        service.emit = self.broadcast

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the accept thread."""
        if self._stopping:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def drop_after_fork(self) -> None:
        """In a forked child: close the inherited sockets (no thread serves them here),
        so that clients of the parent's agent never wait on a copy nobody reads."""
        for sock in [self.listener, *(c.sock for c in self._connections.values())]:
            try:
                sock.close()
            except OSError:
                pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def broadcast(self, name: str, body: dict[str, Any]) -> None:
        """Send an event to every authenticated peer (the Service's `emit`)."""
        with self._lock:
            peers = [c for c in self._connections.values() if c.authenticated]
        report = body.get("report")
        for peer in peers:
            peer.send(wire.event(peer.seq.next(), name, body))
            if name in protocol.REPORTED_EVENTS and isinstance(report, str) and report:
                # As on the DAP route: the report also goes to the client's console.
                peer.send(wire.event(peer.seq.next(), "output", {"category": "console", "output": report + "\n"}))

    # -- accepting -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping:
                # No timeout: an idle agent must not wake up (it would cost the service GIL time).
                for key, _ in selector.select():
                    if key.fileobj is self.listener and not self._stopping:
                        self._accept_one()
        except Exception:
            log.exception("livefix agent: accept loop failed; the agent stops, the service runs on")
        finally:
            selector.close()
            self.listener.close()

    def _accept_one(self) -> None:
        try:
            sock, addr = self.listener.accept()
        except OSError:
            return
        if sock.family != getattr(socket, "AF_UNIX", None):  # Windows may lack AF_UNIX (host_os)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = str(addr) if addr else "unix"
        with self._lock:
            self._next_ident += 1
            connection = Connection(sock, self._next_ident, peer, peer_key(sock, addr))
            evicted = self._evictable(connection.peer_key)
            self._connections[connection.ident] = connection
        if evicted is not None:
            # Peers that never authenticate (any local user can connect to a loopback port)
            # must not keep the others out: the oldest of theirs makes room.
            set_io_timeouts(evicted.sock, 1.0, 1.0)
            if self._ssl is None:
                evicted.send(wire.error_response(evicted.seq.next(), 0, "", LivefixError(
                    "busy", "too many connections waiting to authenticate; this one, the oldest, is closed",
                    limit="maxUnauthenticated")))
            evicted.close(linger=0.0)  # never hold up the accept thread
        UntracedThread(lambda: self._serve(connection), f"livefix-agent-conn-{connection.ident}").start()

    def _evictable(self, key: str) -> "Connection | None":
        """The connection a new one from `key` replaces, when the unauthenticated pool is full."""
        waiting = [c for c in self._connections.values() if not c.authenticated and not c.closed]
        mine = [c for c in waiting if c.peer_key == key]
        if len(mine) >= self.limits.max_unauthenticated_per_peer:
            return min(mine, key=lambda c: c.ident)
        if len(waiting) >= self.limits.max_unauthenticated:
            return min(waiting, key=lambda c: c.ident)
        return None

    # -- serving one connection ----------------------------------------------------------

    def _serve(self, connection: Connection) -> None:
        try:
            if self._ssl is not None:
                connection.sock.settimeout(self.limits.auth_timeout)
                connection.sock = self._ssl.wrap_socket(connection.sock, server_side=True)
            set_io_timeouts(connection.sock, self.limits.send_timeout, self.limits.message_timeout)
            self._converse(connection)
        except (OSError, ssl.SSLError) as exc:
            log.debug("livefix agent: connection %s ended: %s", connection.peer, exc)
        except Exception:
            log.exception("livefix agent: connection %s failed", connection.peer)
        finally:
            with self._lock:
                self._connections.pop(connection.ident, None)
            self.service.discard(connection.ident)
            connection.close(linger=not connection.closed)

    def _converse(self, connection: Connection) -> None:
        reader = MessageReader(connection.sock, self.limits.max_message_bytes)
        while not connection.closed:
            try:
                message = reader.read(
                    idle_timeout=None if connection.authenticated else self.limits.auth_timeout,
                    message_timeout=self.limits.message_timeout,
                )
            except FramingError as exc:
                reason = "unauthenticated" if exc.reason == "timeout" and not connection.authenticated else exc.reason
                text = (
                    f"no authentication within {self.limits.auth_timeout:g} s; closing"
                    if reason == "unauthenticated"
                    else f"malformed message ({exc.message}); closing the connection"
                )
                connection.send(wire.error_response(
                    connection.seq.next(), 0, "", LivefixError("invalid", text, reason=reason)))
                connection.close(linger=True)
                return
            if message is None:
                return
            if not self._answer(connection, message):
                return

    def _answer(self, connection: Connection, message: dict[str, Any]) -> bool:
        """Answer one well-framed message; False when the connection must close."""
        seq = message.get("seq")
        request_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        command = message.get("command")
        if message.get("type") != "request" or not isinstance(command, str):
            error = LivefixError("invalid", "expected a request: {seq, type: \"request\", command, arguments?}",
                                 reason="notRequest")
            self._reply_error(connection, request_seq, command if isinstance(command, str) else "", error)
            return connection.authenticated
        if not connection.authenticated:
            return self._authenticate(connection, request_seq, command, message.get("arguments"))
        if command == protocol.AUTHENTICATE:
            return self._reply(connection, request_seq, command, self._hello())
        if command == protocol.COMMIT and _hung_up(connection.sock):
            # The coordinator gave up on this worker (timeout) and closed: it may already
            # have rolled the others back, so committing now would break all-or-nothing.
            log.warning("livefix agent: not committing for %s, which hung up", connection.peer)
            # A peer that only half-closed still reads: it is told, rather than left waiting.
            self._reply_error(connection, request_seq, command, LivefixError(
                "failed", "not committed: the connection was closed (or half-closed) before the commit was read; "
                "the prepared change is discarded", reason="hungUp"))
            return False
        try:
            body = self.service.handle_for(connection.ident, command, message.get("arguments"))
        except LivefixError as error:
            return self._reply_error(connection, request_seq, command, error)
        except Exception as exc:  # never leave a request unanswered
            log.exception("livefix agent: %s failed unexpectedly", command)
            error = LivefixError("internal", f"{command} failed unexpectedly: {type(exc).__name__}: {exc}")
            return self._reply_error(connection, request_seq, command, error)
        return self._reply(connection, request_seq, command, body)

    def _authenticate(self, connection: Connection, request_seq: int, command: str, arguments: Any) -> bool:
        if command != protocol.AUTHENTICATE:
            error = LivefixError(
                "invalid", f"not authenticated: send {protocol.AUTHENTICATE} with the token first", reason="unauthenticated"
            )
            self._reply_error(connection, request_seq, command, error)
            return False
        presented = arguments.get("token") if isinstance(arguments, dict) else None
        if not token_matches(presented, self._token):
            error = LivefixError("invalid", "wrong or missing token", reason="unauthorized")
            self._reply_error(connection, request_seq, command, error)
            log.warning("livefix agent: refused a connection from %s: wrong or missing token", connection.peer)
            return False
        with self._lock:
            admitted = sum(1 for c in self._connections.values() if c.authenticated) < self.limits.max_connections
            connection.authenticated = admitted
        if not admitted:
            error = LivefixError("busy", f"too many livefix connections (limit {self.limits.max_connections}); "
                                 "try again later", limit="maxConnections")
            self._reply_error(connection, request_seq, command, error)
            return False
        return self._reply(connection, request_seq, command, self._hello())

    def _reply(self, connection: Connection, request_seq: int, command: str, body: dict[str, Any]) -> bool:
        return connection.send(wire.response(connection.seq.next(), request_seq, command, body))

    def _reply_error(self, connection: Connection, request_seq: int, command: str, error: LivefixError) -> bool:
        return connection.send(wire.error_response(connection.seq.next(), request_seq, command, error))


def peer_key(sock: socket.socket, addr: Any) -> str:
    """Who a peer is, for per-peer limits: its host on TCP, its user on a Unix socket."""
    if sock.family == getattr(socket, "AF_UNIX", None):
        option = getattr(socket, "SO_PEERCRED", None)
        if option is not None:
            try:
                _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
                return f"uid:{uid}"
            except OSError:
                pass
        return "unix"
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)


def _hung_up(sock: socket.socket) -> bool:
    """True when the peer has closed its side and sent nothing more (EOF is next)."""
    if isinstance(sock, ssl.SSLSocket):
        return False  # TLS cannot peek below the record layer; such peers are not coordinators
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
