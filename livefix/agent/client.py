"""A client for one agent: connect, authenticate, send requests, collect events.

Connects the command line, the fleet coordinator and (later) the adapter's
`attach` to an agent. Synchronous and single-threaded: `request()` sends one
request and reads until its response, keeping the events that arrive meanwhile.
A failed response is raised as the LivefixError it carries. Standard library only.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, Callable

from livefix import protocol
from livefix.agent import auth, wire
from livefix.agent.framing import DEFAULT_MAX_MESSAGE_BYTES, FramingError, MessageReader, encode, set_io_timeouts
from livefix.agent.transport import Address, connect, parse_address, runtime_dir
from livefix.errors import LivefixError

if TYPE_CHECKING:  # `ssl` costs ~15 ms at start-up and only TLS users need it
    import ssl

EventHandler = Callable[[str, dict[str, Any]], None]


def default_token(token: str | None = None, token_file: str | None = None) -> str:
    """The token to present: explicit, `$LIVEFIX_TOKEN`, `$LIVEFIX_TOKEN_FILE`, else the per-user file."""
    found = auth.resolve_token(token, token_file)
    if found is not None:
        return found
    path = runtime_dir(create=False) / "token"
    return auth.read_token_file(path)


class AgentClient:
    """One authenticated connection to an agent."""

    def __init__(
        self,
        address: str | Address,
        token: str,
        *,
        timeout: float | None = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        on_event: EventHandler | None = None,
        then: tuple[str, dict[str, Any]] | None = None,
        wait: bool = True,
    ) -> None:
        """Connect and authenticate (raising LivefixError if either fails). `then`: a first
        request sent together with the token, saving a round trip: its body is `self.first`,
        or its failure `self.first_error`. `wait=False`: send them and return; `complete()`
        reads the answers (to talk to many agents at once from one thread)."""
        self.address = parse_address(address)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []  # events heard (only without `on_event`), newest last
        self.on_event = on_event
        self.hello: dict[str, Any] = {}
        self._seq = wire.Sequencer()
        self._commands: dict[int, str] = {}
        self._responses: dict[Any, dict[str, Any]] = {}
        self.first: dict[str, Any] | None = None
        self.first_error: LivefixError | None = None
        self._sock = connect(self.address, timeout=timeout, ssl_context=ssl_context, server_hostname=server_hostname)
        set_io_timeouts(self._sock, timeout or 60.0, timeout or 60.0)
        self._reader = MessageReader(self._sock, DEFAULT_MAX_MESSAGE_BYTES * 4)
        try:
            self._handshake = (self.send(protocol.AUTHENTICATE, {"token": token}),
                               self.send(*then) if then is not None else None)
            if wait:
                self.complete()
        except BaseException:
            self.close()
            raise

    def complete(self, timeout: float | None = -1) -> None:
        """Read the answers to the token (raise its refusal) and to the `then` request."""
        hello, first = self._handshake
        try:
            self.hello = self.receive(hello, timeout)
            if first is not None:
                try:
                    self.first = self.receive(first, timeout)
                except LivefixError as error:
                    if error.details.get("reason") in ("disconnected", "timeout"):
                        raise
                    self.first_error = error
        except BaseException:
            self.close()
            raise

    def request(self, command: str, arguments: dict[str, Any] | None = None, timeout: float | None = -1) -> dict[str, Any]:
        """Send a request and return its body; raise the LivefixError of a failure."""
        return self.receive(self.send(command, arguments), timeout)

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        """Send a request without waiting (requests are answered in order); its seq for `receive`."""
        seq = self._seq.next()
        self._commands[seq] = command
        try:
            self._sock.sendall(encode(wire.request(seq, command, arguments if arguments is not None else {})))
        except OSError as exc:
            raise self._lost(f"could not send {command}: {exc}") from None
        return seq

    def receive(self, seq: int, timeout: float | None = -1) -> dict[str, Any]:
        """The body of the response to request `seq`; raise the LivefixError of a failure."""
        command = self._commands.pop(seq, "request")
        wait = self.timeout if timeout == -1 else timeout
        while seq not in self._responses:
            try:
                message = self._reader.read(idle_timeout=wait, message_timeout=wait)
            except FramingError as exc:
                if exc.reason == "timeout":
                    raise LivefixError(
                        "failed", f"no answer to {command} from the agent at {self.address} within {wait:g} s",
                        reason="timeout", address=str(self.address)) from None
                raise self._lost(f"bad message from the agent: {exc.message}") from None
            except OSError as exc:
                raise self._lost(str(exc)) from None
            if message is None:
                raise self._lost(f"the agent closed the connection during {command}")
            if message.get("type") == "event":
                self._event(message)
            elif message.get("type") == "response":
                answered = message.get("request_seq")
                # request_seq 0: the agent refused the connection itself (limits, framing).
                self._responses[seq if answered == 0 else answered] = message
        message = self._responses.pop(seq)
        if message.get("success"):
            body = message.get("body")
            return body if isinstance(body, dict) else {}
        raise wire.error_from_response(message)

    def _event(self, message: dict[str, Any]) -> None:
        if self.on_event is None:
            # Kept for the caller to look at; bounded, as a long session hears many applies.
            self.events.append(message)
            del self.events[:-1000]
            return
        body = message.get("body")
        self.on_event(str(message.get("event")), body if isinstance(body, dict) else {})

    def _lost(self, why: str) -> LivefixError:
        return LivefixError("failed", f"lost the connection to the agent at {self.address}: {why}",
                            reason="disconnected", address=str(self.address))

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def hang_up(self) -> None:
        """End our side and wait (up to the timeout) for the agent to close its side.

        When this returns the agent has released the connection (its slot counts
        against the agent's connection limit again), unlike a plain close()."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
            while True:
                message = self._reader.read(idle_timeout=self.timeout, message_timeout=self.timeout)
                if message is None:
                    break
                if message.get("type") == "event":
                    self._event(message)
        except (OSError, FramingError):
            pass
        finally:
            self.close()

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
