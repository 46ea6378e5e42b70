"""livefix agent: serves livefix requests in a running service, without a debugger.

`livefix.listen()` (one line in a service's start-up) starts it: an untraced daemon
thread answering the same requests as the adapter over Content-Length framed JSON,
on a private Unix socket or loopback TCP, to clients that present the token. See
docs/agent.md. Modules: framing, auth, transport, wire (message shapes), service
(two-phase apply, limits), server, registry (fleets), client, fleet, agent (listen).
"""

from livefix.agent.agent import Agent, current, listen
from livefix.agent.client import AgentClient
from livefix.agent.service import Limits

__all__ = ["Agent", "AgentClient", "Limits", "current", "listen"]
