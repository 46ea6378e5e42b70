"""Indexing a text that does not parse: where its module-level statements begin.

While a person types, the document often does not parse: one statement is broken,
every other one is fine. `ast` gives up on the whole file, so the definitions index
(`definitions.py`) parses the module-level statements one by one instead, and needs
to know where each one begins without a parser: a line at column 0 that starts a
logical line. A scan of strings, comments, brackets and backslash continuations
finds those lines, as Python's tokenizer would, with allowances for the text being
typed: a bracket still open when a column-0 `def`, `class`, `async def` or decorator
line arrives is taken to be unclosed (a `def` at column 0 inside brackets is not
Python anyone writes), and a triple-quoted string that never ends is taken to end
with its first line (the quotes just typed), not to swallow the rest.

`recover` parses each statement found on its own and indexes those that parse. A
statement that does not parse ends at the next line at column 0, and the scan starts
again there: quotes just typed pair with the next docstring's as Python reads them,
which would otherwise hide every statement after them.
Lines are 0-based, as everywhere in this package.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from dataclasses import replace

from livefix.lsp.definitions import Broken, Definition, DefinitionIndex
from livefix.lsp.text import Lines

_TOKENS = re.compile(
    r"""
      (?P<string>'''|\"\"\"|'|")
    | (?P<comment>\#[^\r\n]*)
    | (?P<open>[(\[{])
    | (?P<close>[)\]}])
    | (?P<backslash>\\(?:\r\n|\r|\n))
    | (?P<newline>\r\n|\r|\n)
    """,
    re.VERBOSE,
)
# The rest of a string after its opening quotes, up to and including the closing ones
# (a backslash escapes the next character in every kind of string, raw ones included).
_STRING_END = {
    "'''": re.compile(r"(?:[^'\\]|\\.|'(?!''))*'''", re.DOTALL),
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""', re.DOTALL),
    "'": re.compile(r"(?:[^'\\\r\n]|\\(?:\r\n|.))*'", re.DOTALL),
    '"': re.compile(r'(?:[^"\\\r\n]|\\(?:\r\n|.))*"', re.DOTALL),
}
_LINE_END = re.compile(r"\r\n|\r|\n")
# Lines that continue the compound statement above them rather than start one.
_CONTINUATION = re.compile(r"(?:else|elif|except|finally)\b")
# Column-0 lines that end an unclosed bracket: no one writes them inside brackets.
_DEFINITION = re.compile(r"(?:def|class|async[ \t]+def)[ \t]|@")


def statement_starts(lines: Lines, first: int = 0) -> list[int]:
    """The first line of each module-level statement of `lines.text` from line `first` on
    (decorators included), scanning from there as if the text began there.

    Lines before the first statement (comments, or indented text that is no
    statement) are not included: the caller treats them as a piece of their own.
    """
    inside, _closed = _scan(lines, first)
    return _starts(lines, range(first, len(lines)), inside)


def closes_everything(text: str) -> bool:
    """Whether `text` ends outside every string and bracket it opens, as Python reads it.

    Then the line after it is read the same whether `text` parses or not: a statement
    that does not parse cannot reach past its end.
    """
    _inside, closed = _scan(Lines(text), 0)
    return closed


def _scan(lines: Lines, first: int) -> tuple[set[int], bool]:
    """The lines from `first` on that begin inside a string, a bracket or a continuation,
    and whether everything opened was closed (no recovery was needed) by the end."""
    text = lines.text
    inside: set[int] = set()
    closed = True
    depth = 0
    position = lines.offset(first)
    while (match := _TOKENS.search(text, position)) is not None:
        kind = match.lastgroup
        position = match.end()
        if kind == "string":
            quote = match.group()
            end = _STRING_END[quote].match(text, position)
            if end is None:
                # Unterminated: a single-quoted string ends with its line (a syntax error
                # either way); a triple-quoted one is taken to be the quotes being typed.
                closed = closed and len(quote) == 1
                line_end = _LINE_END.search(text, position)
                position = line_end.start() if line_end else len(text)
                continue
            opened, ended = _line_of(lines, match.start()), _line_of(lines, end.end())
            inside.update(range(opened + 1, ended + 1))
            position = end.end()
        elif kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "backslash":
            following = _line_of(lines, position)
            inside.add(following)
            if following >= len(lines) - 1 and not lines.line(following).strip():
                closed = False  # continued past the end of the text
        elif kind == "newline" and depth:
            following = _line_of(lines, position)
            if following < len(lines) and _DEFINITION.match(lines.line(following)):
                depth, closed = 0, False  # the bracket was never closed (the statement being typed)
            else:
                inside.add(following)
    return inside, closed and depth == 0


def column_zero_starts(lines: Lines, first: int, last: int) -> list[int]:
    """Like `statement_starts` for lines `first`..`last`, by column-0 lines alone.

    The fallback inside a statement that does not parse: there a string or bracket
    may be the one being typed, so what the scan says is inside it may not be.
    """
    return _starts(lines, range(first, last + 1), set())


def starts_statement(line: str) -> bool:
    """Whether `line` can begin a module-level statement (if no string or bracket is open)."""
    return bool(line) and line[0] not in " \t\f#)]}" and not _CONTINUATION.match(line)


def _starts(lines: Lines, numbers: range, inside: set[int]) -> list[int]:
    starts: list[int] = []
    decorated = False  # the previous start was a decorator line: this line belongs to it
    for number in numbers:
        line = lines.line(number)
        if number in inside or not starts_statement(line):
            continue
        if not decorated:
            starts.append(number)
        decorated = line.startswith("@")
    return starts


# At most this many scans again after a broken statement, then lines at column 0 decide.
_RESCANS = 20


def recover(text: str, line_offset: int, error: SyntaxError | ValueError) -> DefinitionIndex:
    """The index of a text that does not parse (`error`), one module-level statement at a time.

    `line_offset` is added to every line, as for `DefinitionIndex.parse`.
    """
    lines = Lines(text)
    index = DefinitionIndex()
    found: list[Definition] = []

    def pieces(starts: list[int], first: int, last: int) -> list[tuple[int, int]]:
        bounds = [first, *(n for n in starts if first < n <= last), last + 1]
        return [(bounds[k], bounds[k + 1] - 1) for k in range(len(bounds) - 1)]

    def mark_broken(first: int, last: int, exc: SyntaxError | ValueError) -> None:
        while last > first and (not lines.line(last).strip() or lines.line(last).lstrip().startswith("#")):
            last -= 1  # the broken statement ends at its last line of code
        index.statements.append((line_offset + first, line_offset + last))
        index.broken.append(_broken(line_offset + first, line_offset + last, exc, line_offset + first))

    end = len(lines) - 1
    # What comes before the first statement (comments, stray indented text) is a piece too.
    queue = deque(pieces(statement_starts(lines), 0, end))
    rescans = 0
    while queue:
        first, last = queue.popleft()
        try:
            part = DefinitionIndex.parse(text[lines.offset(first) : lines.offset(last + 1)], line_offset + first)
        except (SyntaxError, ValueError) as exc:
            after = column_zero_starts(lines, first + 1, last)
            if not after:
                mark_broken(first, last, exc)
                continue
            # A string or bracket left open (the quotes just typed) hid the statements
            # after it from the scan: the statement ends where a line at column 0 begins,
            # and the scan starts again there, as if the text began there.
            if rescans < _RESCANS:
                rescans += 1
                queue = deque(pieces(statement_starts(lines, after[0]), after[0], end))
            else:  # pathological text: the rest of this piece splits at its column-0 lines
                queue.extendleft(reversed(pieces(after, after[0], last)))
            queue.appendleft((first, after[0] - 1))  # parsed alone, for its own error
            continue
        found.extend(part.definitions)
        index.statements.extend(part.statements)
        if index.indent_sample is None:
            index.indent_sample = part.indent_sample
        if part.statements:
            index.main_guard_line = part.main_guard_line
    if not index.broken:
        # Every piece parses, the whole does not: a cut was wrong somewhere. The statement
        # holding the error is broken then: never call a text complete that does not parse.
        line = line_offset + (getattr(error, "lineno", None) or 1) - 1
        spans = [s for s in index.statements if s[0] <= line <= s[1]]
        if not spans:  # the error is between statements: nothing can be trusted
            spans = index.statements = [(line_offset, line_offset + len(lines) - 1)]
        first, last = spans[0]
        found = [d for d in found if not first <= d.first_line <= last]
        index.broken.append(_broken(first, last, error, line_offset))
    if not index.statements or max(b.last for b in index.broken) >= max(s[1] for s in index.statements):
        index.main_guard_line = None  # the last statement is broken: whether it is a guard is unknown
    counts: dict[str, int] = {}
    for definition in found:
        definition = replace(definition, ordinal=counts.get(definition.qualname, 0))
        counts[definition.qualname] = definition.ordinal + 1
        index.definitions.append(definition)
        index.by_qualname.setdefault(definition.qualname, []).append(definition)
    return index


def _broken(first: int, last: int, exc: SyntaxError | ValueError, line_offset: int) -> Broken:
    """The broken statement `first`..`last`; `exc` came from parsing text starting at `line_offset`."""
    line = getattr(exc, "lineno", None)
    # "(detected at line N)" counts lines of the piece parsed, not of the document.
    message = re.sub(r" \(detected at line \d+\)", "", getattr(exc, "msg", None) or str(exc))
    return Broken(first, last, line_offset + line - 1 if line else first, message)


def _line_of(lines: Lines, offset: int) -> int:
    return bisect.bisect_right(lines.starts, offset) - 1
