"""livefix agent: serves livefix requests in a running service, without a debugger.

`livefix.listen()` (one line in a service's start-up) starts it: an untraced daemon
thread answering the same requests as the adapter over Content-Length framed JSON,
on a private Unix socket or loopback TCP, to clients that present the token. See
docs/agent.md. Modules: framing, auth, transport, wire (message shapes), service
(two-phase apply, limits), server, registry (fleets), client, fleet, agent (listen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livefix.agent.agent import Agent, current, listen
    from livefix.agent.client import AgentClient
    from livefix.agent.service import Limits

__all__ = ["Agent", "AgentClient", "Limits", "current", "listen"]

# Imported on first use: the command line imports `livefix.agent.client` and must not pay
# for the serving side (which brings the whole engine) on every command.
_HOME = {
    "Agent": "livefix.agent.agent",
    "current": "livefix.agent.agent",
    "listen": "livefix.agent.agent",
    "AgentClient": "livefix.agent.client",
    "Limits": "livefix.agent.service",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'livefix.agent' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
