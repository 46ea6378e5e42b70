"""A DAP session served by a livefix agent (`livefix.listen()`), with no debugger at all.

`attach` with `"livefix": {"connect": "<address>", "token": "..."}` connects the adapter
to the agent in a running service (through the agent's own client, `livefix.agent.client`)
instead of to debugpy. The session then answers livefix's requests (forwarded to the
agent, same bodies and errors as on the debugpy route), `threads` (from the agent's
captured frames), and, so that editors can finish their start-up sequence,
`setBreakpoints`/`setExceptionBreakpoints`/`setFunctionBreakpoints` (nothing verified:
there is no debugger). Events the agent sends (`livefix/applied`, `output`) reach the
client; the agent client reads them while it waits for its responses.
"""

from __future__ import annotations

from typing import Any, Callable

from livefix import protocol
from livefix.errors import LivefixError

SendEvent = Callable[[str, dict[str, Any]], None]

_NO_DEBUGGER = "not available: this session is attached to a livefix agent, not to a debugger"


class AgentSession:
    """The agent connection behind one DAP session; every call happens on the client's handler thread."""

    def __init__(self, address: str, token: str | None, token_file: str | None, send_event: SendEvent) -> None:
        from livefix.agent.client import AgentClient, default_token

        self._send_event = send_event
        self.agent = AgentClient(address, default_token(token, token_file), on_event=self._on_event)

    def _on_event(self, event: str, body: dict[str, Any]) -> None:
        self._send_event(event, body)

    def handle(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The response body for a DAP request in this session; LivefixError when refused."""
        if command in protocol.COMMANDS:
            return self.agent.request(command, arguments)
        if command == "threads":
            frames = self.agent.request(protocol.CAPTURE_FRAMES, {"maxFrames": 1})
            return {"threads": [{"id": t["id"], "name": t["name"]} for t in frames.get("threads", [])]}
        if command in ("setBreakpoints", "setFunctionBreakpoints"):
            wanted = arguments.get("breakpoints") or []
            return {"breakpoints": [{"verified": False, "message": _NO_DEBUGGER} for _ in wanted]}
        if command in ("setExceptionBreakpoints", "configurationDone"):
            return {}
        raise LivefixError("unsupported", f"{command} is {_NO_DEBUGGER}", command=command)

    def close(self) -> None:
        self.agent.hang_up()
