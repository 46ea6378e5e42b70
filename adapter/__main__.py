"""`python -m livefix.adapter`: debugpy's debug adapter with livefix added.

DAP over stdio by default (as editors start adapters); `--host HOST --port PORT` listens on
TCP instead. Every other debugpy adapter option (`--log-dir`, `--log-stderr`, ...) is
accepted unchanged, because this *is* debugpy's adapter: livefix only installs its hooks
(`livefix.adapter.debugpy_hooks`) before handing over to `debugpy.adapter.__main__.main`.
"""

from __future__ import annotations

import locale
import sys


def main(argv: list[str] | None = None) -> None:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
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
