"""Which definitions the active generations changed that their files do not say yet.

A fix made to a running process must not live only there: the next start would run the
bug again. A definition counts as *unpersisted* while

- the newest active generation that changed it did not read it from the module's file
  (a reload runs what the file said: if the file differs now, the file is the newer one,
  and `modified_modules` reports it, with reload as the remedy; persisting would write
  the older code over the newer edit), and
- the module's file does not have it as it runs: absent from the file, different, or not
  known to be there (the file cannot be read or does not parse). A definition the
  generation removed is unpersisted while the file still defines it.

"As it runs" is compared as code: line breaks, trailing whitespace and indentation (tabs
or spaces, as the file's own style writes the persisted definition) do not count, tokens
and comments do (`statements.same_but_layout`).

Status asks often, so the answer is kept per module for as long as its running text (the
same `ModuleSource`) and its file (the same stamp, taken long enough after the file's
last write) stay what they were: an unchanged file is stat-ed, not read. When the texts
differ, only definitions whose top-level statement lies in a changed hunk are looked at
(`textdiff`): everything else is equal text.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import time
import weakref
from typing import Any, Iterable

from livefix.engine import compiler
from livefix.engine.sources import _RACY_NS, ModuleSource, SourceStore, Stamp, file_stamp, module_file, read_source
from livefix.engine.statements import bound_names, same_but_layout
from livefix.engine.textdiff import Chunk, diff_texts, statement_text

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclasses.dataclass(frozen=True)
class Unpersisted:
    """One definition the process runs and its file does not say."""

    module: str
    qualname: str
    path: str | None
    generation: int
    # The running definitions the file lacks (dedented, decorators included): one, or
    # several for a property's accessors; () when the generation removed the definition.
    sources: tuple[str, ...]
    removed: bool = False
    file_error: str | None = None  # why the file could not be compared (unreadable, does not parse)

    def to_wire(self) -> dict[str, Any]:
        """The `unpersisted` entry of `livefix/status`."""
        entry: dict[str, Any] = {
            "generation": self.generation, "module": self.module, "qualname": self.qualname, "path": self.path,
        }
        if self.removed:
            entry["removed"] = True
        if self.file_error:
            entry["fileError"] = self.file_error
        return entry

    def sources_to_wire(self) -> list[dict[str, Any]]:
        """The `sources` entries of `livefix/runningSources`: one per running text."""
        base = self.to_wire()
        if self.removed:
            return [{**base, "source": None}]
        return [{**base, "source": source} for source in self.sources]


@dataclasses.dataclass
class _Known:
    """The answer for one module while its running text and its file stay the same."""

    source: "weakref.ref[ModuleSource]"
    stamp: Stamp
    results: dict[str, Unpersisted | None]


class UnpersistedFinder:
    """Answers "which of these definitions do the files lack?" for one engine."""

    def __init__(self, store: SourceStore) -> None:
        self.store = store
        self._known: dict[str, _Known] = {}

    def find(self, touched: dict[tuple[str, str], int], modules: Iterable[str] | None = None) -> list[Unpersisted]:
        """The unpersisted definitions among `touched` ((module, qualname) -> the newest
        active generation that changed it, from other than the file), in generation order."""
        wanted = set(modules) if modules is not None else None
        by_module: dict[str, dict[str, int]] = {}
        for (name, qualname), generation in touched.items():
            if wanted is None or name in wanted:
                by_module.setdefault(name, {})[qualname] = generation
        found: list[Unpersisted] = []
        for name, qualnames in by_module.items():
            found.extend(self._module(name, qualnames))
        for name in [n for n in list(self._known) if n not in by_module and wanted is None]:
            self._known.pop(name, None)  # no active generation changed it any more: forget it
        found.sort(key=lambda entry: (entry.generation, entry.module, entry.qualname))
        return found

    def _module(self, name: str, qualnames: dict[str, int]) -> list[Unpersisted]:
        module = sys.modules.get(name)
        path = module_file(module) if module is not None else None
        running = self.store.current(name)
        if path is None or running is None or running.text is None:
            return []  # not loaded any more, or no text: nothing livefix could compare or write
        try:
            stamp: Stamp | None = file_stamp(path)
        except OSError:
            stamp = None
        known = self._known.get(name)
        if (
            known is not None and stamp is not None and known.stamp == stamp and known.source() is running
            and all(q in known.results for q in qualnames)
        ):
            results = known.results
        else:
            results = _compare(name, path, running.text, qualnames)
            # A file written within the file system's timestamp grain could be written again
            # with the same stamp: such a stamp is not trusted (git's "racy clean").
            if stamp is not None and stamp[0] < time.time_ns() - _RACY_NS:
                self._known[name] = _Known(weakref.ref(running), stamp, results)
            else:
                self._known.pop(name, None)
        found = []
        for qualname, generation in qualnames.items():
            entry = results.get(qualname)
            if entry is not None:
                found.append(dataclasses.replace(entry, generation=generation))
        return found


def _compare(name: str, path: str, running: str, qualnames: Iterable[str]) -> dict[str, Unpersisted | None]:
    """Per qualname, what the file lacks (None: the file has it as it runs)."""
    results: dict[str, Unpersisted | None] = {q: None for q in qualnames}
    problem = None
    try:
        disk = read_source(path)
    except OSError as error:
        disk, problem = None, f"cannot read {path}: {error.strerror or error}"
    except (UnicodeDecodeError, SyntaxError) as error:  # SyntaxError: a bad encoding declaration
        disk, problem = None, f"cannot decode {path}: {error}"
    if disk == running:
        return results
    diff = None
    if disk is not None:
        try:
            diff = diff_texts(running, disk, path)
        except (SyntaxError, ValueError) as error:
            problem = f"{path} does not parse (line {getattr(error, 'lineno', None)}: {getattr(error, 'msg', error)})"
        else:
            if diff is None:
                return results
    running_side = _Side(running, path, diff.old if diff is not None else None)
    file_side = _Side(disk, path, diff.new) if disk is not None and diff is not None else None
    for qualname in results:
        if diff is not None and not (running_side.in_hunks(qualname) or file_side.in_hunks(qualname)):  # type: ignore[union-attr]
            continue  # outside the hunks the texts are equal: the same definition in both
        lacking, removed = [], False
        running_defs = running_side.definitions(qualname)
        if file_side is None:
            lacking = [text for _, text in running_defs]
            removed = not running_defs
        else:
            file_defs = file_side.definitions(qualname)
            for node, text in running_defs:
                if not any(same_but_layout(text, node, other_text, other) for other, other_text in file_defs):
                    lacking.append(text)
            removed = not running_defs and bool(file_defs)
        if lacking or removed:
            results[qualname] = Unpersisted(
                name, qualname, path, 0, tuple(compiler.dedent_definition(t) for t in lacking), removed, problem,
            )
    return results


class _Side:
    """One text (running or file): its definitions looked up in the diff's hunks (parsed
    already) first, in the whole text (parsed once, when first needed) when the hunks do
    not have one, to tell "absent" from "not in a hunk"."""

    def __init__(self, text: str, path: str, chunk: Chunk | None) -> None:
        self.text = text
        self.path = path
        self.chunk = chunk
        statements = chunk.statements if chunk is not None else []
        self._hunks = index_definitions(statements)
        # The top-level names the hunks bind (an assignment or import can shadow a def too).
        self._tops = {q.split(".")[0] for q in self._hunks} | {n for node in statements for n in bound_names(node)}
        self._whole: dict[str, list[ast.stmt]] | None = None
        self._lines: list[str] | None = None

    def in_hunks(self, qualname: str) -> bool:
        return qualname.split(".")[0] in self._tops

    def definitions(self, qualname: str) -> list[tuple[ast.stmt, str]]:
        """Each definition of `qualname` and its text (decorators included)."""
        found = self._hunks.get(qualname)
        if found and self.chunk is not None:
            return [(node, statement_text(self.chunk, node)) for node in found]
        if self._whole is None:
            try:
                self._whole = index_definitions(list(ast.parse(self.text, filename=self.path).body))
            except (SyntaxError, ValueError):
                self._whole = {}
            self._lines = self.text.splitlines(True)
        lines = self._lines or []
        return [(node, "".join(lines[compiler.first_line_node(node).lineno - 1 : node.end_lineno or node.lineno]))
                for node in self._whole.get(qualname, [])]


def index_definitions(body: list[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """Every `def`/`class` statement by qualname (`Cart.total`), in source order: those of the
    module and of class bodies, also inside their `if`/`try`/`with`/`for`/`while`/`match`
    blocks (as the language server's index finds them). A class name is also its own key."""
    index: dict[str, list[ast.stmt]] = {}

    def walk(statements: list[ast.stmt], prefix: str) -> None:
        for node in _definitions_in(statements):
            qualname = prefix + node.name  # type: ignore[attr-defined]
            index.setdefault(qualname, []).append(node)
            if isinstance(node, ast.ClassDef):
                walk(node.body, qualname + ".")

    walk(body, "")
    return index


def _definitions_in(body: list[ast.stmt]) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, _DEFINITIONS):
            found.append(node)
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                found.extend(_definitions_in(inner))
        for holder in (*getattr(node, "handlers", ()), *getattr(node, "cases", ())):
            found.extend(_definitions_in(holder.body))
    return found
