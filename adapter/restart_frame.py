"""Restart frame in the adapter: advertise it only where the debuggee serves it, and say which
frames can restart.

debugpy's adapter answers `initialize` with `supportsRestartFrame: false`, and pydevd has
no `restartFrame`. The livefix plugin serves it (and `livefix/frameInfo`,
`livefix/rerunFrame`) when its pydevd internals are there (see
`pydevd_plugins/extensions/livefix_frame_requests.py`). So, before the program runs, the
adapter probes the debuggee with `livefix/frameInfo` (no `frameId`) and, when the answer
says so, sends a `capabilities` event turning `supportsRestartFrame` on. From then on, every
`stackTrace` response carries `canRestart` on each frame (DAP: absent means true once the
capability is on): false below the top frame, and for the top frame what the debuggee
says, one `livefix/frameInfo` away. The editor then offers "Restart Frame" exactly where
the restart is correct (docs/adapter.md, "Restart frame").
"""

from __future__ import annotations

from typing import Any

from livefix.adapter import debugpy_hooks

RESTART_FRAME = "restartFrame"
# livefix's frame requests; also named in the plugin's livefix_frame_requests.py (both
# belong in livefix/protocol.py, which was not free to change when they were added).
FRAME_INFO = "livefix/frameInfo"
RERUN_FRAME = "livefix/rerunFrame"
COMMANDS = (FRAME_INFO, RERUN_FRAME)
# Answered by the paused thread when it gets to them, not by pydevd's reader thread.
ANSWERED_LATER = (RESTART_FRAME, RERUN_FRAME)


def debuggee_serves_restart(server: Any) -> bool:
    """Does the debuggee's livefix plugin serve restartFrame? (one `livefix/frameInfo`)"""
    answer = debugpy_hooks.send(server, FRAME_INFO, {})
    return answer.success and isinstance(answer.body, dict) and answer.body.get("restartFrame") is True


def mark_restartable(server: Any, arguments: Any, body: Any) -> None:
    """Set `canRestart` on every frame of a `stackTrace` response body, in place."""
    frames = body.get("stackFrames") if isinstance(body, dict) else None
    if not frames:
        return
    for frame in frames:
        frame["canRestart"] = False
    start = arguments.get("startFrame") if isinstance(arguments, dict) else None
    if start not in (None, 0):
        return  # only the top frame (index 0) can ever restart
    top = frames[0]
    answer = debugpy_hooks.send(server, FRAME_INFO, {"frameId": top.get("id")})
    if answer.success and isinstance(answer.body, dict):
        top["canRestart"] = answer.body.get("canRestart") is True
