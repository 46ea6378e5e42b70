"""The livefix language server: wires LSP features to the locator, drift and persister.

One `LivefixServer` per process holds its collaborators (options, module resolver,
document cache, drift tracker); the handlers registered by `create_server` stay thin
and delegate. Standard methods are named with lsprotocol constants; the one custom
notification comes from `livefix.protocol`, the single source of truth for names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import cattrs
from lsprotocol import types
from pygls import uris
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, default_converter

from livefix import protocol
from livefix.errors import LivefixError
from livefix.lsp import actions, errors
from livefix.lsp.documents import DocumentCache, Snapshot
from livefix.lsp.drift import Drift, DriftTracker, RunningDefinition, diagnostic, drifts, normalize_path
from livefix.lsp.modules import ModuleResolver
from livefix.lsp.options import Options, parse_options

log = logging.getLogger(__name__)

SERVER_NAME = "livefix-lsp"
SERVER_VERSION = "0.1.0"


def _converter() -> cattrs.Converter:
    """pygls's converter, but notifications it has no type for keep their JSON params.

    pygls turns such params into namedtuples, renaming keys that are not identifiers;
    `livefix/generationApplied` carries a DAP event body, which the tracker reads as JSON.
    """
    converter = default_converter()
    converter.register_structure_hook(JsonRPCNotification, lambda obj, cls: cls(**obj))
    return converter


class LivefixServer(LanguageServer):
    """The root object of the language server process."""

    def __init__(self) -> None:
        super().__init__(
            SERVER_NAME,
            SERVER_VERSION,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            converter_factory=_converter,
        )
        self.options = Options()
        self.option_problems: list[str] = []
        self.resolver = ModuleResolver()
        self.documents = DocumentCache(lambda: self.workspace, lambda: self.resolver)
        self.tracker = DriftTracker()
        self._published: dict[str, list[types.Diagnostic]] = {}  # uri -> the drift diagnostics last sent
        self._folders: list[str] = []  # workspace folders and module roots, normalised
        self.warming_up: asyncio.Task[None] | None = None

    # -- configuration ---------------------------------------------------------------

    def configure(self, raw_options: Any) -> None:
        self.options, self.option_problems = parse_options(raw_options)
        self.rebuild_resolver()

    def rebuild_resolver(self) -> None:
        folders = [uris.to_fs_path(f.uri) for f in self.workspace.folders.values()]
        if not folders and self.workspace.root_path:
            folders = [self.workspace.root_path]
        self.resolver = ModuleResolver.for_workspace([f for f in folders if f], self.options.module_roots)
        self._folders = [normalize_path(f) for f in [*folders, *self.resolver.roots] if f]
        self.documents.clear()

    # -- drift -----------------------------------------------------------------------

    def running_for(self, snapshot: Snapshot) -> list[RunningDefinition]:
        """What the process reported running for the document's module."""
        return self.tracker.for_document(snapshot.path, snapshot.module) if self.tracker else []

    def drifts_for(self, snapshot: Snapshot) -> list[Drift]:
        if not self.tracker or snapshot.index is None or not self.options.drift_diagnostics:
            return []
        return drifts(snapshot, self.running_for(snapshot))

    def publish_drift(self, uri: str) -> None:
        """(Re)publish the drift diagnostics of one document, when they changed.

        Only documents the user can look at get diagnostics: open ones, and files that
        exist in the workspace (a process's path that does not exist here, such as a
        container's, has no document to show them on). Diagnostics identical to the
        ones last sent are not sent again.
        """
        if not self.tracker and uri not in self._published:
            return  # the common case: nothing was ever applied, so nothing to do per keystroke
        found: list[types.Diagnostic] = []
        version = None
        if self._shown(uri):
            snapshot = self.documents.get(uri)
            if snapshot.index is None:
                return  # mid-edit syntax error: keep what is shown rather than flicker
            found, version = [diagnostic(snapshot, d) for d in self.drifts_for(snapshot)], snapshot.version
        if found == self._published.get(uri, []):
            return
        if found:
            self._published[uri] = found
        else:
            self._published.pop(uri, None)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=version)
        )

    def _shown(self, uri: str) -> bool:
        """Whether `uri` is open in the editor, or a file in the workspace."""
        if uri in self.workspace.text_documents:
            return True
        path = uris.to_fs_path(uri) if uri.startswith("file:") else None
        return bool(path) and os.path.isfile(path) and self._in_workspace(path)  # type: ignore[arg-type]

    def _in_workspace(self, path: str) -> bool:
        real = normalize_path(path)
        return any(real.startswith(folder + os.sep) for folder in self._folders)

    def generation_applied(self, body: Any) -> None:
        touched = self.tracker.record(body)
        targets = set(self.workspace.text_documents) | set(self._published)
        for module, path in touched:
            if path and os.path.exists(path):
                targets.add(uris.from_fs_path(path) or "")
            elif module:  # a process elsewhere (a container): its module's file here, if any
                local = self.resolver.path_for(module)
                if local:
                    targets.add(uris.from_fs_path(local) or "")
        for uri in sorted(t for t in targets if t):
            self.publish_drift(uri)

    # -- persisting --------------------------------------------------------------------

    async def persist(self, argument: Any) -> dict[str, Any]:
        """`livefix.persist {uri, qualname, source}`: edit the document via workspace/applyEdit."""
        action = "persist"
        try:
            uri, qualname, source = _persist_arguments(argument)
            action = f"persist `{qualname}`"
            if not self._client_applies_edits():
                raise LivefixError("unsupported", "this editor does not accept edits from the server (workspace/applyEdit)")
            snapshot = self.documents.get(uri)
            on_disk = snapshot.path is not None and os.path.isfile(snapshot.path)
            if uri not in self.workspace.text_documents and not on_disk:
                raise LivefixError("notFound", f"{uri} is neither open in the editor nor a file", uri=uri)
            # Imported here: libcst is the heaviest import and only persisting needs it
            # (`warm_up` has usually imported it already, in the background).
            from livefix.lsp.persist import persist_change

            change = persist_change(snapshot.text, qualname, source, snapshot.index)
        except LivefixError as error:
            errors.refuse(self, error, action)
        except Exception as exc:  # never leave the request unanswered or the user uninformed
            errors.unexpected(self, exc, action)
        if change is None:
            self.publish_drift(uri)
            return {"applied": False, "reason": "the document already has this definition"}
        edit = types.TextEdit(
            range=types.Range(start=snapshot.position_at(change.start), end=snapshot.position_at(change.end)),
            new_text=change.new_text,
        )
        try:
            result = await self.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=self._workspace_edit(snapshot, edit), label=f"Persist {qualname}")
            )
        except Exception as exc:  # the client answered applyEdit with an error
            errors.unexpected(self, exc, action)
        if not result.applied:
            reason = result.failure_reason or "the document changed meanwhile"
            errors.refuse(self, LivefixError("failed", f"the editor did not apply the edit ({reason})"), action)
        return {"applied": True, "range": _range_dict(edit.range)}

    async def warm_up(self) -> None:
        """Import libcst and persist once in the background, so the first real persist is fast.

        Importing libcst costs 150-500 ms, which the first `livefix.persist` would
        otherwise pay. Started after `initialized` on a worker thread, so neither the
        handshake nor the requests that follow wait for it; a persist arriving meanwhile
        waits on Python's import lock for the same import instead of doing it twice.
        The result goes to the client's log (`window/logMessage`).
        """
        try:
            elapsed = await asyncio.get_running_loop().run_in_executor(None, _warm_up)
        except Exception as exc:  # only makes the first persist slower (and report the same error)
            log.warning("warming up the persister failed", exc_info=True)
            message, kind = f"livefix: loading the persister failed ({type(exc).__name__}: {exc})", types.MessageType.Warning
        else:
            log.info("persister warmed up in %.0f ms", elapsed * 1000)
            message, kind = f"livefix: ready to persist (libcst loaded in {elapsed * 1000:.0f} ms)", types.MessageType.Log
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def _client_applies_edits(self) -> bool:
        workspace = self.client_capabilities.workspace
        return bool(workspace and workspace.apply_edit)

    def _workspace_edit(self, snapshot: Snapshot, edit: types.TextEdit) -> types.WorkspaceEdit:
        capabilities = self.client_capabilities.workspace
        versioned = bool(
            capabilities and capabilities.workspace_edit and capabilities.workspace_edit.document_changes
        )
        if versioned:
            # Versioned: the editor refuses the edit if the buffer changed since we read it.
            identifier = types.OptionalVersionedTextDocumentIdentifier(uri=snapshot.uri, version=snapshot.version)
            return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=identifier, edits=[edit])])
        return types.WorkspaceEdit(changes={snapshot.uri: [edit]})


def _warm_up() -> float:
    """Runs on a worker thread: every first-time cost of a persist (imports, libcst's parser)."""
    start = time.perf_counter()
    from livefix.lsp.persist import persist_change

    persist_change("class A:\n    def f(self):\n        return 1\n", "A.f", "def f(self):\n    return 2\n")
    return time.perf_counter() - start


def _persist_arguments(argument: Any) -> tuple[str, str, str]:
    if not isinstance(argument, dict):
        raise LivefixError("invalid", "livefix.persist takes one argument {uri, qualname, source}")
    values = tuple(argument.get(key) for key in ("uri", "qualname", "source"))
    if not all(isinstance(value, str) for value in values):
        raise LivefixError("invalid", "livefix.persist needs string `uri`, `qualname` and `source`")
    return values  # type: ignore[return-value]


def _range_dict(span: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": span.start.line, "character": span.start.character},
        "end": {"line": span.end.line, "character": span.end.character},
    }


def _kind(kind: str | types.CodeActionKind) -> str:
    return kind.value if isinstance(kind, types.CodeActionKind) else kind


def _wanted(kind: str | None, only: list[str] | None) -> bool:
    """LSP kinds are hierarchical: asking for `refactor` includes `refactor.rewrite`."""
    if not only:
        return True
    return kind is not None and any(kind == k or kind.startswith(f"{k}.") for k in only)


def create_server() -> LivefixServer:
    """A server with every feature registered (one per process, or per test)."""
    server = LivefixServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: LivefixServer, params: types.InitializeParams) -> None:
        ls.configure(params.initialization_options)

    @server.feature(types.INITIALIZED)
    def initialized(ls: LivefixServer, params: types.InitializedParams) -> None:
        for problem in ls.option_problems:
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"livefix: {problem}"))
        # Kept on the server: the event loop holds only a weak reference to its tasks.
        ls.warming_up = asyncio.get_running_loop().create_task(ls.warm_up())

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(ls: LivefixServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        ls.rebuild_resolver()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LivefixServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.publish_drift(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LivefixServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.publish_drift(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LivefixServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.publish_drift(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LivefixServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.documents.forget(params.text_document.uri)
        ls.publish_drift(params.text_document.uri)  # now judged against the file on disk

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix],
            resolve_provider=False,
        ),
    )
    def code_action(ls: LivefixServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        snapshot = ls.documents.get(params.text_document.uri)
        found = actions.code_actions(snapshot, params.range, ls.drifts_for(snapshot), ls.running_for(snapshot))
        only = [_kind(kind) for kind in params.context.only or []]
        return [a for a in found if _wanted(_kind(a.kind) if a.kind else None, only)]

    @server.feature(protocol.GENERATION_APPLIED_NOTIFICATION)
    def generation_applied(ls: LivefixServer, params: Any) -> None:
        ls.generation_applied(params)

    @server.command(actions.PERSIST)
    async def persist(ls: LivefixServer, *arguments: Any) -> dict[str, Any]:
        return await ls.persist(arguments[0] if len(arguments) == 1 else None)

    return server
