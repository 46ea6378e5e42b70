"""Drift: what runs in the process versus what the document says.

The client forwards each `livefix/applied` event body (apply, reload, rollback) as
the notification `livefix/generationApplied`. Its `sources` list says, per
definition, the source that now runs (`None`: back to the code as loaded, or
removed). The tracker keeps the latest per definition; `drifts` compares them with
a document and yields one `Drift` per definition whose running text is not in it.
"""

from __future__ import annotations

import ast
import logging
import os
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from livefix.lsp.definitions import Definition, DefinitionKind
from livefix.lsp.documents import Snapshot
from livefix.lsp.text import dedent_code, normalize_newlines, same_definition

log = logging.getLogger(__name__)

DIAGNOSTIC_SOURCE = "livefix"
DIAGNOSTIC_CODE = "drift"


@dataclass(frozen=True)
class RunningDefinition:
    """The source of one definition as it now runs in the process."""

    module: str | None
    path: str | None  # normalised with `normalize_path`
    qualname: str
    source: str
    generation: int
    kind: DefinitionKind | None  # what `source` defines; None if it is no single definition


def definition_kind(source: str) -> DefinitionKind | None:
    """Whether `source` (indented or not) is one function or one class definition."""
    try:
        body = ast.parse(dedent_code(normalize_newlines(source)).strip("\n") + "\n").body
    except (SyntaxError, ValueError):
        return None
    if len(body) != 1:
        return None
    if isinstance(body[0], ast.ClassDef):
        return "class"
    return "function" if isinstance(body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) else None


@dataclass(frozen=True)
class Drift:
    """A running definition that differs from (or is absent from) a document."""

    running: RunningDefinition
    definition: Definition | None  # its definition in the document (of the same kind), None if absent
    anchor_line: int  # where the diagnostic goes
    other: Definition | None = None  # the document's definition of that name, of another kind


def normalize_path(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


class DriftTracker:
    """The latest running source of every definition the process reported."""

    def __init__(self) -> None:
        self._running: dict[tuple[str | None, str | None, str], RunningDefinition] = {}

    def record(self, body: Any) -> list[tuple[str | None, str | None]]:
        """Take in one `livefix/applied` body; returns the (module, path) pairs it touched."""
        touched: list[tuple[str | None, str | None]] = []
        if not isinstance(body, dict) or body.get("dryRun"):
            return touched
        sources = body.get("sources")
        if not isinstance(sources, list):
            log.warning("livefix/generationApplied without `sources`: nothing to compare (%r)", body.get("action"))
            return touched
        for entry in sources:
            if not isinstance(entry, dict) or not isinstance(entry.get("qualname"), str):
                log.warning("ignoring malformed running source %r", entry)
                continue
            module = entry.get("module") if isinstance(entry.get("module"), str) else None
            path = normalize_path(entry["path"]) if isinstance(entry.get("path"), str) else None
            key = (module, path, entry["qualname"])
            source = entry.get("source")
            generation = next((g for g in (entry.get("generation"), body.get("generation")) if isinstance(g, int)), 0)
            if isinstance(source, str):
                kind = definition_kind(source)
                self._running[key] = RunningDefinition(module, path, entry["qualname"], source, generation, kind)
            else:  # back to the code as loaded (or removed): nothing to compare against
                self._running.pop(key, None)
            touched.append((module, path))
        return touched

    def for_document(self, path: str | None, module: str | None) -> list[RunningDefinition]:
        """Running definitions of the module in `path`.

        Matched by path; by module name only when the process's path is unknown or does
        not exist here (a process attached in a container or on another machine).
        """
        normalized = normalize_path(path) if path else None
        found = []
        for running in self._running.values():
            if running.path is not None and running.path == normalized:
                found.append(running)
            elif module is not None and running.module == module:
                if running.path is None or not os.path.exists(running.path):
                    found.append(running)
        return found

    def __bool__(self) -> bool:
        return bool(self._running)


def drifts(snapshot: Snapshot, running: list[RunningDefinition]) -> list[Drift]:
    """The running definitions that `snapshot` does not contain (needs a parsed document)."""
    assert snapshot.index is not None
    found: list[Drift] = []
    for entry in running:
        candidates = snapshot.index.candidates(entry.qualname)
        if any(same_definition(snapshot.definition_source(c), entry.source) for c in candidates):
            continue
        # Only a definition of the same kind can be sent back to the process: the engine
        # must never replace a running method by a class (or a class by a function).
        same_kind = [c for c in candidates if entry.kind is None or c.kind == entry.kind]
        if same_kind:
            found.append(Drift(entry, same_kind[0], same_kind[0].def_line))
            continue
        if candidates:
            found.append(Drift(entry, None, candidates[0].def_line, other=candidates[0]))
            continue
        scope = entry.qualname.rpartition(".")[0]
        classes = [d for d in snapshot.index.by_qualname.get(scope, []) if d.kind == "class"] if scope else []
        found.append(Drift(entry, None, classes[0].def_line if classes else 0))
    return found


def diagnostic(snapshot: Snapshot, drift: Drift) -> types.Diagnostic:
    running = drift.running
    message = f"running process has generation {running.generation} of `{running.qualname}`; not in this file"
    if drift.other is not None and running.kind is not None:
        message += f" (it runs as a {running.kind}; this file defines a {drift.other.kind})"
    return types.Diagnostic(
        range=snapshot.header_range(drift.anchor_line),
        message=message,
        severity=types.DiagnosticSeverity.Information,
        source=DIAGNOSTIC_SOURCE,
        code=DIAGNOSTIC_CODE,
        data={"qualname": running.qualname, "generation": running.generation},
    )
