"""`python -m livefix.lsp`: the language server over stdio, or TCP with `--tcp`."""

from __future__ import annotations

import argparse
import logging
import sys

from livefix.lsp.server import create_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livefix.lsp", description="livefix language server")
    parser.add_argument("--tcp", action="store_true", help="listen on TCP instead of using stdio")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument("--log-file", help="write the log here instead of stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    # Never log to stdout: over stdio it carries the protocol.
    destination = {"filename": args.log_file} if args.log_file else {"stream": sys.stderr}
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", **destination)
    server = create_server()
    if args.tcp:
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
