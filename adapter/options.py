"""The `livefix` launch/attach option, checked in the adapter before debugpy sees the request.

`{"approval": "never" | "risky" | "always", "auditLog": "<path>", "bootstrap": bool}`, all
optional (`bootstrap: false`: never inject livefix with `evaluate`, see bootstrap.py). The
adapter rejects a bad option with a clear error (kind `invalid`) instead of starting a
session that would behave unexpectedly, and always forwards a normalised object, so
that the debuggee knows the session is a livefix one (see the plugin) and child
processes (`subProcess`) inherit the same settings through their attach configuration.
"""

from __future__ import annotations

import os
from typing import Any

from livefix.errors import LivefixError
from livefix.service import ServiceOptions

OPTION = "livefix"
KNOWN_KEYS = ("approval", "auditLog", "bootstrap", "connect", "token", "tokenFile")
# Only meaningful when attaching to a livefix agent (`connect`); the agent's own settings
# (approval, audit log) are chosen by the process that called livefix.listen().
AGENT_KEYS = ("connect", "token", "tokenFile")


def normalise(raw: Any, cwd: str | None = None) -> dict[str, Any]:
    """The normalised `livefix` option, or LivefixError("invalid") naming what is wrong."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LivefixError("invalid", f'The "livefix" option must be an object like {{"approval": "risky"}}, not {raw!r}')
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise LivefixError(
            "invalid",
            f'Unknown key(s) in the "livefix" option: {", ".join(unknown)} (known: {", ".join(KNOWN_KEYS)})',
            option=OPTION, unknown=unknown,
        )
    if "connect" in raw:
        return _agent_option(raw)
    for key in AGENT_KEYS:
        if key in raw:
            raise LivefixError("invalid", f'livefix.{key} only applies with livefix.connect (attach to a livefix agent)', option=OPTION)
    options = ServiceOptions.from_wire(raw)  # raises LivefixError("invalid") with the reason
    normalised: dict[str, Any] = {"approval": options.approval}
    if "bootstrap" in raw:
        if not isinstance(raw["bootstrap"], bool):
            raise LivefixError("invalid", "livefix.bootstrap must be true or false", option=OPTION)
        normalised["bootstrap"] = raw["bootstrap"]
    if options.audit_log:
        # The debuggee may run elsewhere (cwd, sudo): pin relative paths to the launch cwd.
        path = options.audit_log
        if not os.path.isabs(path) and cwd:
            path = os.path.join(cwd, path)
        normalised["auditLog"] = path
    return normalised


def agent_address(normalised: dict[str, Any]) -> str | None:
    """The agent address of an `attach` to a livefix agent, else None."""
    return normalised.get("connect")


def _agent_option(raw: dict[str, Any]) -> dict[str, Any]:
    extra = sorted(set(raw) - set(AGENT_KEYS))
    if extra:
        raise LivefixError(
            "invalid",
            f"With livefix.connect only {', '.join(AGENT_KEYS)} apply (the agent's process sets {', '.join(extra)})",
            option=OPTION,
        )
    for key in AGENT_KEYS:
        if key in raw and not (isinstance(raw[key], str) and raw[key]):
            raise LivefixError("invalid", f"livefix.{key} must be a non-empty string", option=OPTION)
    return {key: raw[key] for key in AGENT_KEYS if key in raw}
