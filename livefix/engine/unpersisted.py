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

A definition is *edited in the file* when the file's version is neither what runs nor any
version the process ran before the active generations changed it (back to what it last
read from the file): someone changed it in the file since the fix, and persisting would
write over that edit. The earlier texts come from the generations' patches (applied
backwards from the running text), only for a definition the file has otherwise, so status
pays for them only then, and the answer is kept with the rest.

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
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

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
    # The file's version is neither what runs nor what ran before the fix: edited there since.
    edited: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The `unpersisted` entry of `livefix/status`."""
        entry: dict[str, Any] = {
            "generation": self.generation, "module": self.module, "qualname": self.qualname, "path": self.path,
        }
        if self.removed:
            entry["removed"] = True
        if self.file_error:
            entry["fileError"] = self.file_error
        if self.edited:
            entry["editedInFile"] = True
        return entry

    def sources_to_wire(self) -> list[dict[str, Any]]:
        """The `sources` entries of `livefix/runningSources`: one per running text."""
        base = self.to_wire()
        if self.removed:
            return [{**base, "source": None}]
        return [{**base, "source": source} for source in self.sources]


class TextPatch(Protocol):
    def text_before(self, after_text: str | None) -> str | None: ...


class PastGeneration(Protocol):
    """What the finder reads of a generation (`core.Generation`)."""

    number: int
    status: str
    texts: Mapping[str, TextPatch]  # module -> how it changed the module's running text
    from_file: frozenset[str]  # modules it read from their files


@dataclasses.dataclass
class _Known:
    """The answer for one module while its running text and its file stay the same."""

    source: "weakref.ref[ModuleSource]"
    stamp: Stamp
    results: dict[str, Unpersisted | None]
    # The newest active generation that changed the module then: the earlier texts the answer
    # was computed from hold only while it stays the newest (a commit sets the running text
    # before it records its generation, and its verify runs in between).
    newest: int = 0


class UnpersistedFinder:
    """Answers "which of these definitions do the files lack?" for one engine."""

    def __init__(self, store: SourceStore, generations: Callable[[], Sequence[PastGeneration]] | None = None) -> None:
        self.store = store
        self._generations = generations  # the engine's, oldest first: what ran before each one
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
        newest = next((generation.number for generation in self._changes(name)), 0)
        if (
            known is not None and stamp is not None and known.stamp == stamp and known.source() is running
            and known.newest == newest and all(q in known.results for q in qualnames)
        ):
            results = known.results
        else:
            text = running.text
            results = _compare(name, path, text, qualnames, lambda: self._earlier_texts(name, text))
            # A file written within the file system's timestamp grain could be written again
            # with the same stamp: such a stamp is not trusted (git's "racy clean").
            if stamp is not None and stamp[0] < time.time_ns() - _RACY_NS:
                self._known[name] = _Known(weakref.ref(running), stamp, results, newest)
            else:
                self._known.pop(name, None)
        found = []
        for qualname, generation in qualnames.items():
            entry = results.get(qualname)
            if entry is not None:
                found.append(dataclasses.replace(entry, generation=generation))
        return found

    def _changes(self, name: str) -> Iterator[PastGeneration]:
        """The active generations that changed the module's running text, newest first."""
        for generation in reversed(list(self._generations()) if self._generations is not None else []):
            if generation.status == "active" and name in generation.texts:
                yield generation

    def _earlier_texts(self, name: str, running: str) -> Iterator[str]:
        """The module's running text before each active generation that changed it, newest
        first, back to the last one that read the module from its file (what ran before that
        was superseded by the file as it was then, which the text after it holds)."""
        after: str | None = running
        for generation in self._changes(name):
            if name in generation.from_file:
                return
            change = generation.texts.get(name)  # gone meanwhile: the module was re-imported
            after = change.text_before(after) if change is not None else None
            if after is None:
                return
            yield after


def _compare(name: str, path: str, running: str, qualnames: Iterable[str],
             earlier: Callable[[], Iterator[str]]) -> dict[str, Unpersisted | None]:
    """Per qualname, what the file lacks (None: the file has it as it runs). `earlier`: what
    the module's text was before the fixes (see `_Past`), asked only when needed."""
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
    past: _Past | None = None
    for qualname in results:
        if diff is not None and not (running_side.in_hunks(qualname) or file_side.in_hunks(qualname)):  # type: ignore[union-attr]
            continue  # outside the hunks the texts are equal: the same definition in both
        lacking: list[str] = []
        removed = edited = False
        running_defs = running_side.definitions(qualname)
        if file_side is None:
            lacking = [text for _, text in running_defs]
            removed = not running_defs
        else:
            file_defs = file_side.definitions(qualname)
            same = [[same_but_layout(text, node, other_text, other) for other, other_text in file_defs]
                    for node, text in running_defs]
            lacking = [text for (_, text), row in zip(running_defs, same) if not any(row)]
            removed = not running_defs and bool(file_defs)
            if lacking and not removed:
                # The file's own versions: each must have run in the process once, else it is an edit.
                others = [found for index, found in enumerate(file_defs) if not any(row[index] for row in same)]
                if others or not file_defs:
                    past = past or _Past(file_side.text, path, earlier)
                    edited = past.edited(qualname, others)
        if lacking or removed:
            results[qualname] = Unpersisted(
                name, qualname, path, 0, tuple(compiler.dedent_definition(t) for t in lacking), removed, problem,
                edited,
            )
    return results


class _Past:
    """The texts the process ran before its fixes of a module, each against the file: did the
    file's version of a definition run once (the file is only behind the fixes), or is it new
    (an edit made in the file since)? A file that is one of those texts (untouched since the
    module was loaded, say) is told by string comparisons alone; otherwise the texts are
    diffed with the file one by one, newest first, as far as needed."""

    def __init__(self, disk: str, path: str, earlier: Callable[[], Iterator[str]]) -> None:
        self.disk = disk
        self.path = path
        self._earlier = earlier
        self._ran: bool | None = None  # is the file one of the texts?
        self._texts: Iterator[str] | None = None
        self._sides: list[tuple[_Side, _Side]] = []  # per text diffed so far

    def edited(self, qualname: str, file_defs: list[tuple[ast.stmt, str]]) -> bool:
        """`file_defs`: the file's versions of `qualname` that do not run; none when the file
        lacks it, which is an edit (a deletion) if the process had it before the fixes.
        Without an earlier text to compare with, nothing is known to be an edit."""
        if self._ran is None:
            self._ran = any(text == self.disk for text in self._earlier())
        if self._ran:
            return False
        had, unseen = False, list(file_defs)
        for sides in self._each():
            if not (sides[0].in_hunks(qualname) or sides[1].in_hunks(qualname)):
                if file_defs:
                    return False  # this text has the file's very statement: every version in it ran
                continue  # nor does this text have it
            ran = sides[0].definitions(qualname)
            had = had or bool(ran)
            unseen = [(node, text) for node, text in unseen
                      if not any(same_but_layout(t, n, text, node) for n, t in ran)]
            if file_defs and not unseen:
                return False
        return had if not file_defs else bool(self._sides)  # compared, and the file's version ran in none

    def _each(self) -> Iterator[tuple[_Side, _Side]]:
        if self._texts is None:
            self._texts = self._earlier()
        index = 0
        while True:
            if index == len(self._sides):
                text = next(self._texts, None)
                if text is None:
                    return
                try:
                    diff = diff_texts(text, self.disk, self.path)
                except (SyntaxError, ValueError):
                    continue  # the file parsed a moment ago: the earlier text is what does not
                if diff is None:
                    continue  # equal to the file: `_ran` said so before any diff
                self._sides.append((_Side(text, self.path, diff.old), _Side(self.disk, self.path, diff.new)))
            yield self._sides[index]
            index += 1


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
