"""Every reliance of livefix's adapter on debugpy's adapter internals, in one module.

livefix's adapter *is* debugpy's adapter (`debugpy.adapter.__main__.main`), with three
hooks installed before it starts:

- `debugpy.adapter.clients.Client` is replaced by a subclass (the module looks the name up
  when it creates the stdio client and when it accepts TCP clients);
- `debugpy.adapter.servers.Connection` is replaced by a subclass that turns Nagle off on
  the adapter's end of every debuggee connection;
- failed responses that carry a body: debugpy's `Request.respond(exception)` drops the body,
  and `JsonMessageChannel.delegate` turns a failed response into an exception, losing
  `body.livefix`; `forward` and `respond_error` keep it. `forward_later` does the same
  without blocking the adapter's message loop (`OutgoingRequest.on_response`, `NO_RESPONSE`).

`--help` borrows the usage and options of debugpy's argument parser (`_parse_argv`).

`check_compatibility()` lists what is missing; tests/adapter/test_adapter_plumbing.py runs it
against the installed debugpy so that a release changing these internals fails loudly.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable

from debugpy.adapter import clients, components, servers
from debugpy.common import log, messaging


def check_compatibility() -> list[str]:
    """What the livefix adapter needs from debugpy's adapter and does not find ([] = fine)."""
    problems = []
    for owner, name in (
        (clients, "Client"), (clients, "serve"), (servers, "Connection"), (servers, "serve"),
        (components.Component, "message_handler"), (clients.Client, "launch_request"),
        (clients.Client, "attach_request"), (clients.Client, "request"),
        (messaging.JsonMessageChannel, "_send_message"), (messaging.JsonMessageChannel, "propagate"),
        (messaging, "Response"), (messaging, "MessageHandlingError"), (messaging, "NoMoreMessages"),
        (messaging, "NO_RESPONSE"), (messaging.OutgoingRequest, "on_response"),
        (log, "swallow_exception"),
    ):
        if not hasattr(owner, name):
            problems.append(f"{getattr(owner, '__name__', owner)}.{name} is missing")
    from debugpy.adapter import __main__ as adapter_main

    if not callable(getattr(adapter_main, "_parse_argv", None)):
        problems.append("debugpy.adapter.__main__._parse_argv (its options, for --help) is missing")
    if not problems:
        # serve() must build components through the module-level names we replace.
        for function, needle in (
            (clients.serve, "Client, host"), (servers.serve, "Connection, host"),
            (adapter_main.main, 'clients.Client("stdio")'),
        ):
            if needle not in inspect.getsource(function):
                problems.append(f"{function.__module__}.{function.__name__} no longer uses {needle!r}")
        if "json" not in inspect.signature(messaging.Response.__init__).parameters:
            problems.append("messaging.Response no longer keeps the raw message (json=)")
    return problems


def install(client_class: type) -> None:
    """Make debugpy's adapter use `client_class` for clients and Nagle-free server sockets."""
    clients.Client = client_class
    servers.Connection = NoDelayConnection


def options_help(prog: str) -> str:
    """debugpy's adapter's own `--help` text (its usage and options), naming `prog`."""
    from debugpy.adapter import __main__ as adapter_main

    saved, sys.argv[0] = sys.argv[0], prog  # argparse names the program after sys.argv[0]
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            adapter_main._parse_argv([prog, "--help"])
    except SystemExit:  # argparse exits after printing the help
        pass
    finally:
        sys.argv[0] = saved
    return text.getvalue()


def log_exception(message: str) -> None:
    """Log the exception being handled, with its traceback, to debugpy's adapter log."""
    log.swallow_exception("{0}", message, level="error")  # message may contain braces


def set_nodelay(sock: Any) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # not a TCP socket


class NoDelayConnection(servers.Connection):
    """A debuggee connection without Nagle on the adapter's side (the debuggee's side is
    turned off by the livefix plugin when the session carries the `livefix` option)."""

    def __init__(self, sock: socket.socket) -> None:
        set_nodelay(sock)
        super().__init__(sock)


@dataclass
class Forwarded:
    """The debuggee's answer to a forwarded request."""

    success: bool
    body: Any  # the response body (a dict-like) on success and, when sent, on failure
    message: str  # the error message on failure
    disconnected: bool = False  # no answer: the debuggee went away


def forward(server: Any, request: Any) -> Forwarded:
    """Send `request` to the debuggee (pydevd) and wait for its answer, keeping error bodies."""
    return _answer(server.channel.propagate(request))


def send(server: Any, command: str, arguments: dict[str, Any]) -> Forwarded:
    """Send a request of the adapter's own to the debuggee and wait for its answer."""
    return _answer(server.channel.send_request(command, arguments))


def forward_later(server: Any, request: Any, on_answer: Callable[[Forwarded], None]) -> Any:
    """Send `request` to the debuggee without waiting: `on_answer(Forwarded)` runs on a
    debugpy background thread when it answers. Returns what the request's handler must
    return so that debugpy sends no response of its own (the callback answers)."""
    outgoing = server.channel.propagate(request)
    outgoing.on_response(lambda response: on_answer(_forwarded(response.body, response)))
    return messaging.NO_RESPONSE


def _answer(outgoing: Any) -> Forwarded:
    return _forwarded(outgoing.wait_for_response(raise_if_failed=False), outgoing.response)


def _forwarded(result: Any, response: Any) -> Forwarded:
    if not isinstance(result, Exception):
        return Forwarded(True, result, "")
    if isinstance(result, messaging.NoMoreMessages):
        return Forwarded(False, None, str(result), disconnected=True)
    raw = getattr(response, "json", None) or {}
    body = raw.get("body") if hasattr(raw, "get") else None
    return Forwarded(False, body, str(getattr(result, "reason", result)))


def respond_error(request: Any, message: str, body: dict[str, Any]) -> None:
    """Answer `request` with a DAP error response that keeps `body` (debugpy's respond drops it)."""
    response = {
        "type": "response", "request_seq": request.seq, "command": request.command,
        "success": False, "message": message, "body": body,
    }
    with request.channel._send_message(response) as seq:
        pass
    request.response = messaging.Response(
        request.channel, seq, request, messaging.MessageHandlingError(message, silent=True)
    )
