"""Locates the definitions livefix can replace in a document, with `ast` (fast).

A *target* is a function, method or class whose qualified name the engine can find
in the running process: one defined at module level or in a class body, possibly
inside `if`/`try`/`with`/`for`/`while`/`match` blocks of those scopes. Anything
defined inside a function lives under `f.<locals>` and is no target: the engine
replaces the whole enclosing function instead, so a cursor there maps to it.
Lines are 0-based here (LSP lines), as are all positions this package passes around.
"""

from __future__ import annotations

import ast
import bisect
from dataclasses import dataclass, field, replace
from typing import Iterator, Literal, cast

from livefix.lsp.text import Lines

DefinitionKind = Literal["function", "class"]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Definition:
    """One function or class definition the engine can target."""

    qualname: str
    kind: DefinitionKind
    first_line: int  # its first decorator's line, or the `def`/`class` line
    def_line: int  # the `def`/`class` line
    end_line: int  # the last line of its body
    scope: str  # the enclosing class's qualname; "" at module level
    ordinal: int  # how many definitions of the same qualname precede it in the document
    is_overload: bool = False  # `@overload` stubs never run, so they are never sent
    decorators: tuple[str, ...] = ()  # `ast.dump` of each decorator, to tell `@x.setter` from `@property`

    @property
    def name(self) -> str:
        return self.qualname.rpartition(".")[2]

    def contains_line(self, line: int) -> bool:
        return self.first_line <= line <= self.end_line


@dataclass(frozen=True)
class Broken:
    """A module-level statement that does not parse on its own."""

    first: int  # its first line
    last: int  # its last line of code
    line: int  # where the parser gave up
    message: str  # why

    def shifted(self, delta: int) -> "Broken":
        return Broken(self.first + delta, self.last + delta, self.line + delta, self.message)


@dataclass
class DefinitionIndex:
    """Every target of one document, in document order, and lookups over them."""

    definitions: list[Definition] = field(default_factory=list)
    by_qualname: dict[str, list[Definition]] = field(default_factory=dict)
    # (first line incl. decorators, last line) of each module-level statement.
    statements: list[tuple[int, int]] = field(default_factory=list)
    # A module-level `if __name__ == ...:` block that ends the file: its first line.
    main_guard_line: int | None = None
    # (line of a module-level compound statement, line of its first inner statement):
    # their indentation difference is the file's indentation unit.
    indent_sample: tuple[int, int] | None = None
    # The module-level statements that do not parse (also in `statements`, by their
    # lines): their definitions are not indexed; the other statements' are.
    broken: list[Broken] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the whole document parses (then this is exactly `ast`'s view of it)."""
        return not self.broken

    @property
    def error(self) -> str | None:
        """Where and why the first broken statement does not parse."""
        return f"line {self.broken[0].line + 1}: {self.broken[0].message}" if self.broken else None

    @classmethod
    def parse(cls, text: str, line_offset: int = 0) -> "DefinitionIndex":
        """Index `text`; raises `SyntaxError` (or `ValueError` for NUL bytes) if it does not parse.

        `line_offset` is added to every line (for a piece of a larger document).
        """
        index = cls()
        body = ast.parse(text).body
        for definition in _walk(body, scope="", counts={}, offset=line_offset):
            index.definitions.append(definition)
            index.by_qualname.setdefault(definition.qualname, []).append(definition)
        for statement in body:
            first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
            last = statement.end_lineno or statement.lineno
            index.statements.append((first - 1 + line_offset, last - 1 + line_offset))
            inner = getattr(statement, "body", None)
            if index.indent_sample is None and isinstance(inner, list) and inner and inner[0].lineno > statement.lineno:
                index.indent_sample = (statement.lineno - 1 + line_offset, inner[0].lineno - 1 + line_offset)
        if body and _is_main_guard(body[-1]):
            index.main_guard_line = index.statements[-1][0]
        return index

    @classmethod
    def parse_recovering(cls, text: str, line_offset: int = 0) -> "DefinitionIndex":
        """Like `parse`, but a text that does not parse is indexed statement by statement.

        Each module-level statement (found by `recovery.statement_starts`) is parsed
        on its own; those that parse are indexed, the others are listed in `broken`.
        A module-level statement that parses on its own parses the same inside the
        file, so the definitions outside the broken statements are the ones the file
        will have once it is fixed there.
        """
        try:
            return cls.parse(text, line_offset)
        except (SyntaxError, ValueError) as exc:
            from livefix.lsp.recovery import recover  # only broken documents need it

            return recover(text, line_offset, exc)

    def reparse(self, old: Lines, new: Lines) -> "DefinitionIndex":
        """The index of `new`, re-parsing only the module-level statements an edit touched.

        `self` indexes `old`. A module-level statement that parses on its own is
        tokenized and parsed the same inside the whole file (it closes every bracket,
        string and block it opens), so only the changed statements are parsed again
        and the rest is shifted. Whenever that reasoning might not hold (the edit
        reaches into indentation around the piece, the piece does not parse alone),
        the whole text is parsed, with the same result as `parse_recovering`.

        While the document has a broken statement, typing goes on in it: an edit inside
        a broken statement that leaves it broken re-indexes only that statement
        (`parse_recovering` of it). Every other edit of a broken document (one that
        mends it, one elsewhere) and the edit that breaks the first statement go to
        the whole text, so a complete index is always exactly `ast`'s.
        """
        try:
            spliced = self._splice(old, new)
        except (SyntaxError, ValueError):
            spliced = None  # the piece does not parse on its own: the whole text decides
        return spliced if spliced is not None else DefinitionIndex.parse_recovering(new.text)

    def _splice(self, old: Lines, new: Lines) -> "DefinitionIndex | None":
        head = _common_prefix(old.text, new.text)
        tail = _common_prefix(old.text[head:][::-1], new.text[head:][::-1])
        if head == len(old.text) == len(new.text):
            return self
        first_changed = bisect.bisect_right(old.starts, head) - 1
        # Up to the line holding the first unchanged character: a removed line break
        # joins the next line to the changed one, so that line counts as changed too.
        last_changed = bisect.bisect_right(old.starts, len(old.text) - tail) - 1
        start, end = first_changed, last_changed
        for first, last in self.statements:  # widen to whole module-level statements
            if first <= last_changed and last >= first_changed:
                start, end = min(start, first), max(end, last)
        delta = len(new) - len(old)
        new_end = end + delta
        if new_end < start - 1 or old.offset(start) != new.offset(start):
            return None
        if old.text[old.offset(end + 1) :] != new.text[new.offset(new_end + 1) :]:
            return None  # the lines after the piece must be the same lines, only renumbered
        after = new.line(new_end + 1) if new_end + 1 < len(new) else ""
        if after[:1] in (" ", "\t") and after.strip() and not after.lstrip().startswith("#"):
            return None  # the line after the piece would continue it: not a safe cut
        piece = new.text[new.offset(start) : new.offset(new_end + 1)]
        try:
            part = DefinitionIndex.parse(piece, line_offset=start)
        except (SyntaxError, ValueError) as exc:
            from livefix.lsp.recovery import closes_everything, recover, starts_statement

            # Typing on in a broken statement: only that statement is indexed again, if
            # it is one (it begins a statement and leaves no string or bracket open, so
            # it cannot reach into the next). Anything else (the first break, an edit
            # elsewhere, a cut that may not be one) is for the whole text to decide.
            typing_on = any(b.first <= end and b.last >= start for b in self.broken)
            if not (typing_on and starts_statement(new.line(start)) and closes_everything(piece)):
                raise
            part = recover(piece, start, exc)
        else:
            if not self.complete:
                return None  # this may have mended the document: the whole text decides

        before = [s for s in self.statements if s[1] < start]
        later = [(f + delta, l + delta) for f, l in self.statements if f > end]
        index = DefinitionIndex()
        counts: dict[str, int] = {}
        shifted = (shift(d, delta) for d in self.definitions if d.first_line > end)
        for definition in (*(d for d in self.definitions if d.end_line < start), *part.definitions, *shifted):
            definition = replace(definition, ordinal=counts.get(definition.qualname, 0))
            counts[definition.qualname] = definition.ordinal + 1
            index.definitions.append(definition)
            index.by_qualname.setdefault(definition.qualname, []).append(definition)
        index.statements = [*before, *part.statements, *later]
        index.broken = [
            *(b for b in self.broken if b.last < start),
            *part.broken,
            *(b.shifted(delta) for b in self.broken if b.first > end),
        ]

        sample = self.indent_sample
        if sample is not None and sample[0] < start:
            index.indent_sample = sample
        elif part.indent_sample is not None:
            index.indent_sample = part.indent_sample
        elif sample is not None and sample[0] > end:
            index.indent_sample = (sample[0] + delta, sample[1] + delta)
        elif sample is not None:
            return None  # the first compound statement went away: which is next is unknown here
        if later:
            guard = self.main_guard_line
            index.main_guard_line = guard + delta if guard is not None and guard > end else None
        elif part.statements:
            index.main_guard_line = part.main_guard_line
        elif before:
            if self.statements and self.statements[-1][1] >= start:
                return None  # the last statement was removed: is the new last one a guard?
            index.main_guard_line = self.main_guard_line
        return index

    def statement_containing(self, line: int) -> tuple[int, int] | None:
        """The (first, last) lines of the module-level statement that contains `line`."""
        for first, last in self.statements:
            if first <= line <= last:
                return first, last
        return None

    def function_at(self, line: int) -> Definition | None:
        """The function or method whose text contains `line` (decorators included).

        A line inside a nested function or a class defined in a function belongs to the
        enclosing target function. Classes are never returned: a cursor in a class body
        outside its methods has nothing to apply but the module.
        """
        for definition in self.definitions:
            if definition.kind == "function" and definition.contains_line(line):
                return definition
        return None

    def runnable(self, definition: Definition) -> Definition | None:
        """The definition that actually runs for `definition`'s name.

        For an `@overload` stub that is the implementation (the last definition of the
        same qualname that is not a stub); `None` when there is none (a stub-only file).
        """
        if not definition.is_overload:
            return definition
        candidates = [d for d in self.by_qualname.get(definition.qualname, []) if not d.is_overload]
        return candidates[-1] if candidates else None

    def candidates(self, qualname: str) -> list[Definition]:
        """Definitions of `qualname` that could be the running one (stubs left out)."""
        return [d for d in self.by_qualname.get(qualname, []) if not d.is_overload]


def shift(definition: Definition, delta: int) -> Definition:
    return replace(
        definition,
        first_line=definition.first_line + delta,
        def_line=definition.def_line + delta,
        end_line=definition.end_line + delta,
    )


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slices (each compare runs in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _walk(body: list[ast.stmt], scope: str, counts: dict[str, int], offset: int = 0) -> Iterator[Definition]:
    for node in body:
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            qualname = f"{scope}.{node.name}" if scope else node.name
            ordinal = counts.get(qualname, 0)
            counts[qualname] = ordinal + 1
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            yield Definition(
                qualname=qualname,
                kind="class" if isinstance(node, ast.ClassDef) else "function",
                first_line=first - 1 + offset,
                def_line=node.lineno - 1 + offset,
                end_line=(node.end_lineno or node.lineno) - 1 + offset,
                scope=scope,
                ordinal=ordinal,
                is_overload=any(_is_overload(d) for d in node.decorator_list),
                decorators=tuple(ast.dump(d) for d in node.decorator_list),
            )
            if isinstance(node, ast.ClassDef):
                yield from _walk(node.body, qualname, counts, offset)
        else:
            for block in _blocks(node):
                yield from _walk(block, scope, counts, offset)


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists of a compound statement, in source order (same scope)."""
    if isinstance(node, (ast.Try, _try_star())):
        # try: body, then each handler, then else, then finally (`try`/`except*` alike)
        statement = cast(ast.Try, node)
        yield statement.body
        for handler in statement.handlers:
            yield handler.body
        yield statement.orelse
        yield statement.finalbody
    elif isinstance(node, ast.Match):
        for case in node.cases:
            yield case.body
    else:  # if / for / while / with: body, then else
        for name in ("body", "orelse"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                yield value


def _try_star() -> type:
    # ast.TryStar exists from Python 3.11; on 3.10 `except*` cannot appear anyway.
    return getattr(ast, "TryStar", ast.Try)


def _is_main_guard(statement: ast.stmt) -> bool:
    test = getattr(statement, "test", None)
    return (
        isinstance(statement, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _is_overload(decorator: ast.expr) -> bool:
    if isinstance(decorator, ast.Name):
        return decorator.id == "overload"
    if isinstance(decorator, ast.Attribute):
        return decorator.attr == "overload"
    return False


def is_target_qualname(qualname: str) -> bool:
    """Whether the engine can target `qualname` (no `<locals>`, no empty parts)."""
    parts = qualname.split(".")
    return bool(qualname) and all(part.isidentifier() for part in parts)
