"""`python -m livefix.adapter`: debugpy's debug adapter with livefix added.

DAP over stdio by default (as editors start adapters); `--host HOST --port PORT` listens on
TCP instead. Every other debugpy adapter option (`--log-dir`, `--log-stderr`, ...) is
accepted unchanged, because this *is* debugpy's adapter: livefix only installs its hooks
(`livefix.adapter.debugpy_hooks`) before handing over to `debugpy.adapter.__main__.main`.
`--help` shows debugpy's options under this name, and what livefix adds.
"""

from __future__ import annotations

import locale
import sys
import textwrap

PROG = "python -m livefix.adapter"

ABOUT = """\
livefix's debug adapter: debugpy's adapter, with livefix's hot fixes added. Debugging
(launch, attach, breakpoints, stepping, evaluate) is debugpy's, unchanged. DAP over
stdio by default (how editors start adapters); --host/--port listen on TCP instead.

What livefix adds:
  "livefix" option of launch/attach (checked; bad keys or values fail the request):
      {KEYS}
      e.g. "livefix": {{"approval": "risky", "auditLog": "livefix-audit.jsonl"}}; attach with
      {{"connect": ADDRESS, "token": TOKEN}} reaches a process that called livefix.listen()
  custom requests, answered while the program runs or is stopped:
{COMMANDS}
  while a thread is paused: restartFrame (standard DAP: on the code the frame runs,
      offered only where that is exactly a new call), {FRAME_COMMANDS}
      (why not, and: call the frame's function again, with the fix)
  events: {APPLIED} after every apply, reload and rollback, {CANARY} with a canary's
      verdict, each with its report as console output
  limits: at most {MAX_CHANGES} changes per request, {MAX_SOURCE:,} bytes of source per change
  no ~44 ms stall per request (TCP_NODELAY on the debuggee connection)

Requests, bodies and errors: docs/protocol.md; the adapter: docs/adapter.md.
"""


def usage() -> str:
    """`--help`: debugpy's usage and options, under livefix's name, and what livefix adds."""
    from livefix import protocol
    from livefix.adapter import debugpy_hooks, options, restart_frame

    debugpy_help = debugpy_hooks.options_help(PROG)
    usage_line, _, debugpy_options = debugpy_help.partition("\n\n")
    about = ABOUT.format(
        KEYS=", ".join(options.KNOWN_KEYS),
        COMMANDS=textwrap.fill(", ".join(protocol.COMMANDS), 88, initial_indent=" " * 6, subsequent_indent=" " * 6),
        FRAME_COMMANDS=", ".join(restart_frame.COMMANDS),
        APPLIED=protocol.APPLIED_EVENT, CANARY=protocol.CANARY_EVENT,
        MAX_CHANGES=protocol.MAX_CHANGES, MAX_SOURCE=protocol.MAX_SOURCE_BYTES,
    )
    return f"{usage_line}\n\n{about}\ndebugpy's {debugpy_options.strip()}\n"


def main(argv: list[str] | None = None) -> None:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    if "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
        sys.stdout.write(usage())
        return
    from livefix.adapter import debugpy_hooks
    from livefix.adapter.client import LivefixClient

    debugpy_hooks.install(LivefixClient)

    from debugpy.adapter import __main__ as debugpy_adapter

    # As debugpy's own entry point does: honour the user's locale, fall back to "C".
    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        pass
    debugpy_adapter.main()


if __name__ == "__main__":
    main()
