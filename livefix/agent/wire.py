"""DAP-shaped envelopes for the agent's messages: requests, responses, errors, events.

Connects the agent's server and client to the same message shapes as the DAP route
(see docs/protocol.md), so that one client library and one error model serve both:
a failure is `success: false`, a one-line `message`, `body.error` (a DAP Message)
and `body.livefix` (`LivefixError.to_dict()`). Standard library only.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from livefix import dap
from livefix.errors import LivefixError


class Sequencer:
    """Message sequence numbers for one side of one connection (thread-safe)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._counter)


def request(seq: int, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"seq": seq, "type": "request", "command": command}
    if arguments is not None:
        message["arguments"] = arguments
    return message


def response(seq: int, request_seq: int, command: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "type": "response", "request_seq": request_seq, "success": True, "command": command, "body": body}


def error_response(seq: int, request_seq: int, command: str, error: LivefixError) -> dict[str, Any]:
    """The one way a failure goes on the wire: the DAP route's error response (livefix.dap)."""
    message, body = dap.error_response(error)
    return {
        "seq": seq,
        "type": "response",
        "request_seq": request_seq,
        "success": False,
        "command": command,
        "message": message,
        "body": body,
    }


def event(seq: int, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "type": "event", "event": name, "body": body}


def error_from_response(message: dict[str, Any]) -> LivefixError:
    """Rebuild the LivefixError a failed response carries (for clients)."""
    body = message.get("body")
    detail = body.get("livefix") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return LivefixError.from_dict(detail)
    return LivefixError("internal", str(message.get("message") or "request failed"))
