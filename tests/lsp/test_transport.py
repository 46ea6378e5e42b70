"""`python -m livefix.lsp --tcp --port N`: the same server over TCP, for editors that connect."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from lsprotocol import types

from lsp_support import TIMEOUT, client_converter
from pygls.lsp.client import LanguageClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_tcp_server_answers_code_actions(workspace: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-m", "livefix.lsp", "--tcp", "--port", str(port), "-v",
        cwd=str(workspace), env=env, stderr=asyncio.subprocess.PIPE,
    )
    client = LanguageClient("livefix-tests", "1", converter_factory=client_converter)
    drain = None
    try:
        assert server.stderr is not None
        # pygls logs "Serving on ..." once the socket listens: wait for that line.
        while b"Serving on" not in (line := await asyncio.wait_for(server.stderr.readline(), TIMEOUT)):
            assert line, "the server exited before listening"
        # Keep reading the log, or a full pipe would block the server.
        drain = asyncio.ensure_future(server.stderr.read())
        await client.start_tcp("127.0.0.1", port)
        result = await asyncio.wait_for(
            client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=workspace.as_uri())),
            TIMEOUT,
        )
        assert result.server_info is not None and result.server_info.name == "livefix-lsp"
        client.initialized(types.InitializedParams())
        path = workspace / "src" / "shop" / "tiny.py"
        path.write_text("def one():\n    return 1\n")
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=path.read_text())
            )
        )
        actions = await asyncio.wait_for(
            client.text_document_code_action_async(
                types.CodeActionParams(
                    text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
                    range=types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=4)),
                    context=types.CodeActionContext(diagnostics=[]),
                )
            ),
            TIMEOUT,
        )
        assert [a.title for a in actions or []] == ["Apply `one` to running process", "Reload `shop.tiny` in running process"]
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        client.exit(None)
    finally:
        await client.stop()
        if server.returncode is None:
            server.kill()
        await server.wait()
        if drain is not None:
            await drain
