"""An editor stand-in for the language server tests: a real LSP client (pytest-lsp).

`Editor` starts `python -m livefix.lsp` as a subprocess, speaks LSP to it over stdio
and keeps its own copy of every open document, as an editor does: a
`workspace/applyEdit` from the server is applied to that copy (positions in UTF-16
code units, converted here independently of the server's code) and sent back as
`textDocument/didChange`. Waiting is on events with timeouts, never on sleeps.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Union

from lsprotocol import types
from pygls import uris
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from livefix import protocol  # the shared protocol module (pure stdlib) names the notification

SERVER = [sys.executable, "-I", "-m", "livefix.lsp", *os.environ.get("LIVEFIX_LSP_TEST_ARGS", "").split()]  # -I: the source tree must not shadow the install
TIMEOUT = 30.0
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def client_converter() -> Any:
    """pygls's converter, except that a code action carrying a command stays a CodeAction.

    lsprotocol structures `Command | CodeAction` by trying Command first, and a
    CodeAction's `title` + `command` fit it (the nested command turns into a string),
    so the test client would see Commands the server never sent. An object whose
    `command` is itself an object can only be a CodeAction.
    """
    converter = default_converter()

    def structure(item: Any, _: Any) -> Any:
        kind = types.CodeAction if isinstance(item.get("command"), dict) or "kind" in item or "edit" in item else types.Command
        return converter.structure(item, kind)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)
    return converter


def find_marker(text: str, name: str) -> int:
    """0-based line of the `# @name` marker comment in `text` (exactly one must exist)."""
    pattern = re.compile(r"#\s*@" + re.escape(name) + r"\b")
    lines = [n for n, line in enumerate(LINE_BREAK.split(text)) if pattern.search(line)]
    if len(lines) != 1:
        raise LookupError(f"marker @{name} found {len(lines)} times")
    return lines[0]


def offset_of(text: str, position: types.Position) -> int:
    """Python-string offset of an LSP position counted in UTF-16 code units."""
    starts = [0] + [m.end() for m in LINE_BREAK.finditer(text)]
    if position.line >= len(starts):
        return len(text)
    start = starts[position.line]
    end = starts[position.line + 1] if position.line + 1 < len(starts) else len(text)
    line = text[start:end].rstrip("\r\n")
    encoded = line.encode("utf-16-le")[: 2 * position.character]
    return start + len(encoded.decode("utf-16-le"))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class Editor:
    """One language server process and the documents this 'editor' has open."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.publish_count: dict[str, int] = {}
        self.applied_edits: list[types.ApplyWorkspaceEditParams] = []
        self.messages: list[types.ShowMessageParams] = []
        self.log_messages: list[types.LogMessageParams] = []
        self.refuse_edits = False  # answer applyEdit with applied=false (a user who cancelled)
        self._changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        root: Path,
        options: Any = None,
        document_changes: bool = True,
        apply_edit: bool = True,
        env: dict[str, str] | None = None,
    ) -> "Editor":
        client = LanguageClient(converter_factory=client_converter)
        editor = cls(client)
        # pytest-lsp has no workspace/applyEdit handler: this editor applies edits itself.
        # (Plain functions: pygls tags handlers with attributes, which bound methods refuse.)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            editor._on_diagnostics(params)

        def on_apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            return editor._on_apply_edit(params)

        def on_message(params: types.ShowMessageParams) -> None:
            editor._on_message(params)

        def on_log(params: types.LogMessageParams) -> None:
            editor.log_messages.append(params)
            editor._notify_change()

        register_lsp_features(
            client,
            {
                **DEFAULT_CLIENT_FEATURES,
                types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: on_diagnostics,
                types.WORKSPACE_APPLY_EDIT: on_apply_edit,
                types.WINDOW_SHOW_MESSAGE: on_message,
                types.WINDOW_LOG_MESSAGE: on_log,
            },
        )
        server_env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONPATH"}
        await client.start_io(*SERVER, cwd=str(root), env=server_env)
        capabilities = types.ClientCapabilities(
            workspace=types.WorkspaceClientCapabilities(
                apply_edit=apply_edit,
                workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=document_changes),
            ),
            text_document=types.TextDocumentClientCapabilities(
                code_action=types.CodeActionClientCapabilities(
                    code_action_literal_support=types.ClientCodeActionLiteralOptions(
                        code_action_kind=types.ClientCodeActionKindOptions(value_set=list(types.CodeActionKind))
                    )
                ),
                publish_diagnostics=types.PublishDiagnosticsClientCapabilities(version_support=True),
            ),
            general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
        )
        folder = types.WorkspaceFolder(uri=root.as_uri(), name=root.name)
        await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=capabilities,
                    root_uri=root.as_uri(),
                    workspace_folders=[folder],
                    initialization_options=options,
                )
            ),
            TIMEOUT,
        )
        return editor

    async def close(self) -> None:
        process = self.client._server
        try:
            await asyncio.wait_for(self.client.shutdown_session(), TIMEOUT)
            await asyncio.wait_for(self.client.stop(), TIMEOUT)
        finally:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()

    # -- what the server sends -------------------------------------------------------

    def _notify_change(self) -> None:
        self._changed.set()

    def _on_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.diagnostics[params.uri] = list(params.diagnostics)
        self.publish_count[params.uri] = self.publish_count.get(params.uri, 0) + 1
        self._notify_change()

    def _on_message(self, params: types.ShowMessageParams) -> None:
        self.messages.append(params)
        self._notify_change()

    def _on_apply_edit(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        self.applied_edits.append(params)
        self._notify_change()
        if self.refuse_edits:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="cancelled by the test")
        edit = params.edit
        per_uri: dict[str, list[types.TextEdit]] = {}
        for change in edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            if change.text_document.version is not None and change.text_document.version != self.versions.get(change.text_document.uri):
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason="document version changed")
            per_uri.setdefault(change.text_document.uri, []).extend(change.edits)  # type: ignore[arg-type]
        for uri, edits in (edit.changes or {}).items():
            per_uri.setdefault(uri, []).extend(edits)
        for uri, edits in per_uri.items():
            if uri not in self.texts:  # as VS Code does for an edit to a closed file: open it
                self.open(Path(uris.to_fs_path(uri) or ""))
            # As an editor does: apply, then tell the server what changed.
            for text_edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
                self.change(uri, text_edit.range, text_edit.new_text)
        return types.ApplyWorkspaceEditResult(applied=True)

    async def wait_until(self, predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
        """Wait for the server to send something that makes `predicate()` truthy."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (result := predicate()):
            self._changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return result

    async def settle(self, uri: str) -> None:
        """Barrier: the server answers requests in order, so once a request made now is
        answered, every notification it sent before (diagnostics) has arrived."""
        await self.code_actions(uri, 0)

    # -- what the editor sends -------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        if text is None:
            with open(path, encoding="utf-8", newline="") as file:
                text = file.read()
        self.texts[uri] = text
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )
        return uri

    def change(self, uri: str, span: types.Range, new_text: str) -> None:
        """An incremental edit of an open document (not saved)."""
        text = self.texts[uri]
        start, end = offset_of(text, span.start), offset_of(text, span.end)
        self.texts[uri] = text[:start] + new_text + text[end:]
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangePartial(range=span, text=new_text)],
            )
        )

    def replace_all(self, uri: str, new_text: str) -> None:
        self.texts[uri] = new_text
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=new_text)],
            )
        )

    def save(self, uri: str, path: Path) -> None:
        with open(path, "w", encoding="utf-8", newline="") as file:
            file.write(self.texts[uri])
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))

    def generation_applied(self, body: dict[str, Any]) -> None:
        """What the client does with each `livefix/applied` DAP event body."""
        self.client.protocol.notify(protocol.GENERATION_APPLIED_NOTIFICATION, body)

    async def code_actions(self, uri: str, line: int, character: int = 0, end: tuple[int, int] | None = None, only: list[Any] | None = None) -> list[types.CodeAction]:
        end_line, end_character = end or (line, character)
        result = await asyncio.wait_for(
            self.client.text_document_code_action_async(
                types.CodeActionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    range=types.Range(
                        start=types.Position(line=line, character=character),
                        end=types.Position(line=end_line, character=end_character),
                    ),
                    context=types.CodeActionContext(diagnostics=[], only=only),
                )
            ),
            TIMEOUT,
        )
        return [action for action in result or [] if isinstance(action, types.CodeAction)]

    async def execute(self, command: types.Command) -> Any:
        return await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
            ),
            TIMEOUT,
        )


def running_body(generation: int, sources: list[dict[str, Any]], action: str = "apply") -> dict[str, Any]:
    """A `livefix/applied` event body (livefix.protocol.ChangeResultBody) for `sources`."""
    return {
        "generation": generation,
        "applied": [{"module": s["module"], "qualname": s["qualname"], "kind": "replaced"} for s in sources],
        "impact": {"threads": [], "signatureChanges": [], "removals": []},
        "report": f"Applied generation {generation}",
        "dryRun": False,
        "warnings": [],
        "action": action,
        "sources": [{"generation": generation, **s} for s in sources],
    }
