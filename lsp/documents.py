"""A parsed view of each document the server looks at, cached per text.

The editor asks for code actions on every cursor move, so the `ast` index of a
document is built once per text, not once per request. Positions leave this module
in the client's units (UTF-16 by default), computed with pygls's position codec.
"""

from __future__ import annotations

import bisect
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from lsprotocol import types
from pygls import uris

from livefix.lsp.definitions import Definition, DefinitionIndex
from livefix.lsp.modules import ModuleResolver
from livefix.lsp.text import Lines

log = logging.getLogger(__name__)

@dataclass
class Snapshot:
    """One version of one document: its text, module name and definitions."""

    uri: str
    path: str | None
    module: str | None
    version: int | None
    text: str
    lines: Lines
    # Every module-level statement that parses on its own, indexed: the definitions
    # outside a statement being typed keep their actions while it is broken.
    recovered: DefinitionIndex
    error: str | None  # where and why the text does not parse; None when it does
    units: Callable[[str], int]  # length of a string in the client's position units

    @property
    def index(self) -> DefinitionIndex | None:
        """The whole document's index; None while any statement does not parse.

        Drift and persisting need it whole: a definition in a broken statement
        is not "absent", and an edit must not be built on a text that does not parse.
        """
        return self.recovered if self.recovered.complete else None

    def position(self, line: int, character_offset: int | None = None) -> types.Position:
        """Position of `line` at Python-character offset `character_offset` (None: line end)."""
        if line >= len(self.lines):
            last = len(self.lines) - 1
            return types.Position(line=last, character=self.units(self.lines.line(last)))
        text = self.lines.line(line)
        prefix = text if character_offset is None else text[:character_offset]
        return types.Position(line=line, character=self.units(prefix))

    def position_at(self, offset: int) -> types.Position:
        """Position of a Python-character offset into the text."""
        line = bisect.bisect_right(self.lines.starts, offset) - 1
        return types.Position(line=line, character=self.units(self.text[self.lines.starts[line] : offset]))

    def definition_range(self, definition: Definition) -> types.Range:
        """From the start of its first decorator's line to the end of its last line."""
        return types.Range(start=types.Position(line=definition.first_line, character=0), end=self.position(definition.end_line))

    def definition_source(self, definition: Definition) -> str:
        """The exact text of `definition_range`: indentation, decorators, line breaks and all."""
        start = self.lines.offset(definition.first_line)
        end = self.lines.starts[definition.end_line] + len(self.lines.line(definition.end_line))
        return self.text[start:end]

    def header_range(self, line: int) -> types.Range:
        """The text of `line` without its indentation (where a diagnostic is shown)."""
        text = self.lines.line(line)
        indent = len(text) - len(text.lstrip(" \t"))
        return types.Range(start=self.position(line, indent), end=self.position(line))


class DocumentCache:
    """Snapshots of open documents (from the editor) and closed ones (from disk)."""

    def __init__(self, workspace: Callable[[], Any], resolver: Callable[[], ModuleResolver]) -> None:
        self._workspace = workspace  # late-bound: pygls creates the workspace at initialize
        self._resolver = resolver
        self._cache: dict[str, Snapshot] = {}

    def get(self, uri: str) -> Snapshot:
        workspace = self._workspace()
        path = uris.to_fs_path(uri) if uri.startswith("file:") else None
        document = workspace.text_documents.get(uri)
        if document is not None:
            text, version = document.source, document.version
        elif path is not None and os.path.isfile(path):
            # Not pygls's reader: it would turn CRLF into LF and every position would shift.
            try:
                # utf-8-sig: editors drop a BOM from the text they show and sync, so do we.
                with open(path, encoding="utf-8-sig", newline="") as file:
                    text, version = file.read(), None
            except (OSError, UnicodeDecodeError) as exc:  # unreadable: nothing to offer, no crash
                log.info("cannot read %s: %s", path, exc)
                text, version = "", None
        else:
            text, version = "", None
        cached = self._cache.get(uri)
        if cached is not None and cached.version == version and cached.text == text:
            return cached
        lines = Lines(text)
        if cached is not None:
            # After a keystroke only the statement being edited is parsed again.
            index = cached.recovered.reparse(cached.lines, lines)
        else:
            index = DefinitionIndex.parse_recovering(text)
        codec = workspace.position_codec
        snapshot = Snapshot(
            uri=uri,
            path=path,
            module=self._resolver().module_for(path) if path else None,
            version=version,
            text=text,
            lines=lines,
            recovered=index,
            error=index.error,
            units=codec.client_num_units,
        )
        if document is not None:
            self._cache[uri] = snapshot
        return snapshot

    def forget(self, uri: str) -> None:
        self._cache.pop(uri, None)

    def clear(self) -> None:
        """Drop every snapshot (module roots changed, so module names may have)."""
        self._cache.clear()
