"""Code actions: send a definition or a module to the running process, settle drift.

The apply and reload commands (`livefix.applyDefinition`, `livefix.reloadModule`)
are executed by the client, which owns the debug session: it turns their single
argument into a `livefix/apply` or `livefix/reload` request (docs/lsp.md). Only
`livefix.persist` is executed here, by the server.
"""

from __future__ import annotations

from typing import Any, Sequence

from lsprotocol import types

from livefix.lsp.definitions import Definition
from livefix.lsp.documents import Snapshot
from livefix.lsp.drift import Drift, RunningDefinition, diagnostic

APPLY_DEFINITION = "livefix.applyDefinition"
RELOAD_MODULE = "livefix.reloadModule"
PERSIST = "livefix.persist"

PERSIST_TITLE = "Persist running definition to source"
REVERT_TITLE = "Revert process to this file's definition"


def apply_arguments(snapshot: Snapshot, definition: Definition) -> dict[str, Any]:
    """`{uri, path, module, qualname, source, range, line}` for `livefix.applyDefinition`.

    `source` is the exact text of `range`: whole lines from the first decorator to
    the end of the body, with the file's indentation and line breaks; `line` is the
    1-based line of its first decorator (the engine's `line` field).
    """
    span = snapshot.definition_range(definition)
    return {
        "uri": snapshot.uri,
        "path": snapshot.path,
        "module": snapshot.module,
        "qualname": definition.qualname,
        "source": snapshot.definition_source(definition),
        "range": {
            "start": {"line": span.start.line, "character": span.start.character},
            "end": {"line": span.end.line, "character": span.end.character},
        },
        "line": definition.first_line + 1,
    }


def code_actions(
    snapshot: Snapshot, request: types.Range, drifts: list[Drift], running: Sequence[RunningDefinition] = ()
) -> list[types.CodeAction]:
    """The actions for a cursor or selection in `snapshot`.

    `running` is what the process reported running for this document: no "Apply" is
    offered for a function whose name runs as a class (the engine would replace one
    kind of object by another).
    """
    if snapshot.module is None and not (snapshot.path or "").endswith((".py", ".pyw")):
        return []  # not a Python file the process could have loaded
    actions: list[types.CodeAction] = []
    actions.extend(_drift_actions(snapshot, request, drifts))
    # `recovered`: while one statement is being typed (does not parse), the
    # definitions in the others are still offered.
    index = snapshot.recovered
    target = index.function_at(request.start.line)
    target = index.runnable(target) if target is not None else None
    if target is not None and not any(
        r.qualname == target.qualname and r.kind not in (None, target.kind) for r in running
    ):
        actions.append(
            types.CodeAction(
                title=f"Apply `{target.qualname}` to running process",
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(
                    title=f"Apply `{target.qualname}` to running process",
                    command=APPLY_DEFINITION,
                    arguments=[apply_arguments(snapshot, target)],
                ),
            )
        )
    if snapshot.module is not None:
        title = f"Reload `{snapshot.module}` in running process"
        actions.append(
            types.CodeAction(
                title=title,
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(
                    title=title,
                    command=RELOAD_MODULE,
                    arguments=[{"uri": snapshot.uri, "path": snapshot.path, "module": snapshot.module}],
                ),
            )
        )
    return actions


def _drift_actions(snapshot: Snapshot, request: types.Range, drifts: list[Drift]) -> list[types.CodeAction]:
    actions: list[types.CodeAction] = []
    for drift in drifts:
        shown = drift.definition or drift.other
        span = (shown.first_line, shown.end_line) if shown is not None else (drift.anchor_line, drift.anchor_line)
        if request.end.line < span[0] or request.start.line > span[1]:
            continue
        related = [diagnostic(snapshot, drift)]
        qualname = drift.running.qualname
        actions.append(
            types.CodeAction(
                title=PERSIST_TITLE,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related,
                is_preferred=True,
                command=types.Command(
                    title=PERSIST_TITLE,
                    command=PERSIST,
                    arguments=[{"uri": snapshot.uri, "qualname": qualname, "source": drift.running.source}],
                ),
            )
        )
        if drift.definition is not None:
            actions.append(
                types.CodeAction(
                    title=REVERT_TITLE,
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=related,
                    command=types.Command(
                        title=REVERT_TITLE,
                        command=APPLY_DEFINITION,
                        arguments=[apply_arguments(snapshot, drift.definition)],
                    ),
                )
            )
    return actions
